"""A span processor that stamps the attribution in force onto every GenAI span, whoever made it.

Works for our instrumentors and for third-party ones (opentelemetry-instrumentation-openai-v2,
OpenLLMetry, OpenInference, the anthropic SDK's own tracing): attribution is read from the baggage
of the span's parent context when the span starts, so no instrumentation needs to know about
otel_llmcost. Attributes an instrumentation set itself are left alone. A span an SDK starts for a
call our instrumentor let it trace gets that call's request estimate, for when the call is
abandoned after sending (``otel_llmcost.abandoned``).

A span is a GenAI span when it starts with any ``gen_ai.*`` / ``llm.*`` / ``openinference.*``
attribute, or when its instrumentation scope is a known GenAI one (some instrumentations start
their spans bare and add attributes later). It runs for every span the service makes, so the
scope verdict is cached per scope name and spans with nothing to stamp return early.
"""

from __future__ import annotations

from opentelemetry import baggage, context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .abandoned import TRACED_ELSEWHERE, estimate_on_end
from .attributes import CACHE_LOOKUP as CACHE_LOOKUP_ATTRIBUTE
from .attributes import CALL_ID as CALL_ID_ATTRIBUTE
from .attributes import PROPERTY_PREFIX, STAMPED_KEYS
from .cache.options import CACHE_LOOKUP
from .context import env_defaults
from .guard import REQUEST_HOLD, settle_on_end

GENAI_PREFIXES = ("gen_ai.", "llm.", "openinference.")
# Substrings of instrumentation scope names that produce LLM call spans: ours, the official
# openai-v2 (and opentelemetry-util-genai), OpenLLMetry (opentelemetry.instrumentation.anthropic /
# .openai / .bedrock / ...), OpenInference, the anthropic SDK (com.anthropic.sdk.python[.bedrock]).
GENAI_SCOPE_HINTS = (
    "otel_llmcost", "openai", "anthropic", "openinference", "traceloop", "genai", "bedrock",
    "vertexai", "vertex_ai", "mistral", "cohere", "groq", "ollama", "gemini", "litellm", "langchain",
)  # fmt: skip


def _is_attribution_key(key: str) -> bool:
    return key in STAMPED_KEYS or key.startswith(PROPERTY_PREFIX)


class AttributionSpanProcessor(SpanProcessor):
    """Adds ``llmcost.team``, ``user.id``, ``session.id``, ... to GenAI spans as they start.

    ``defaults`` (service-wide, used where the context has no value) come from the
    ``OTEL_LLMCOST_*`` environment variables unless given. Resource attributes such as
    ``deployment.environment.name`` or ``llmcost.team`` set via ``OTEL_RESOURCE_ATTRIBUTES`` need
    no stamping: they travel with every span and the collector reads them (span values win).
    """

    def __init__(self, defaults: dict[str, str] | None = None) -> None:
        self.defaults = env_defaults() if defaults is None else dict(defaults)
        self._scopes: dict[str, bool] = {}

    def _genai_scope(self, name: str) -> bool:
        verdict = self._scopes.get(name)
        if verdict is None:
            lowered = name.lower()
            verdict = self._scopes[name] = any(hint in lowered for hint in GENAI_SCOPE_HINTS)
        return verdict

    def is_genai_span(self, span: Span) -> bool:
        scope = span.instrumentation_scope
        if scope is not None and self._genai_scope(scope.name):
            return True
        return any(key.startswith(GENAI_PREFIXES) for key in span.attributes or ())

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        elsewhere = TRACED_ELSEWHERE.get()
        if elsewhere is not None and self.is_genai_span(span):  # a span of a call another tracer traces
            estimate_on_end(span, elsewhere.estimate)
            span.set_attribute(CALL_ID_ATTRIBUTE, elsewhere.call_id)
        hold = REQUEST_HOLD.get()
        if hold is not None and not hold.attached and self.is_genai_span(span):
            settle_on_end(span, hold)  # the budget reservation of that call (reserve mode)
        lookup = CACHE_LOOKUP.get()
        if lookup is not None and self.is_genai_span(span):
            span.set_attribute(CACHE_LOOKUP_ATTRIBUTE, lookup)  # a response-cache miss it sends
        bag = baggage.get_all(parent_context)
        if not bag and not self.defaults:
            return
        if not self.is_genai_span(span):
            return
        existing = span.attributes or {}
        stamped = {k: str(v) for k, v in bag.items() if _is_attribution_key(k) and k not in existing}
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


def is_genai_span(span: Span) -> bool:
    """Module-level form of the check, for callers without a processor at hand."""
    return AttributionSpanProcessor(defaults={}).is_genai_span(span)
