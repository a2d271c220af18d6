"""A span processor that stamps the attribution in force onto every GenAI span, whoever made it.

Works for our instrumentors and for third-party ones (opentelemetry-instrumentation-openai-v2,
OpenLLMetry, OpenInference): attribution is read from the baggage of the span's parent context
when the span starts, so no instrumentation needs to know about otel_llmcost. Attributes an
instrumentation set itself are left alone.
"""

from __future__ import annotations

from opentelemetry import baggage, context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .attributes import PROPERTY_PREFIX, STAMPED_KEYS
from .context import env_defaults

GENAI_PREFIXES = ("gen_ai.", "llm.", "openinference.")
# Instrumentation scopes known to produce LLM call spans, for spans that start with no attributes.
GENAI_SCOPE_HINTS = ("openai", "anthropic", "openinference", "traceloop", "otel_llmcost", "genai", "bedrock")


def is_genai_span(span: Span) -> bool:
    attributes = span.attributes or {}
    if any(key.startswith(GENAI_PREFIXES) for key in attributes):
        return True
    scope = span.instrumentation_scope.name.lower() if span.instrumentation_scope else ""
    return any(hint in scope for hint in GENAI_SCOPE_HINTS)


class AttributionSpanProcessor(SpanProcessor):
    def __init__(self, defaults: dict[str, str] | None = None) -> None:
        self.defaults = env_defaults() if defaults is None else defaults

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        if not is_genai_span(span):
            return
        existing = span.attributes or {}
        stamped = {}
        for key, value in baggage.get_all(parent_context).items():
            if (key in STAMPED_KEYS or key.startswith(PROPERTY_PREFIX)) and key not in existing:
                stamped[key] = str(value)
        for key, value in self.defaults.items():
            if key not in existing and key not in stamped:
                stamped[key] = value
        if stamped:
            span.set_attributes(stamped)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
