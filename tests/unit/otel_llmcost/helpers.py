"""Span readers shared by the in-service package's unit tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost import AttributionSpanProcessor

GENAI = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
ATTRIBUTION_KEYS = (
    "llmcost.team",
    "llmcost.feature",
    "llmcost.use_case",
    "llmcost.user_tier",
    "user.id",
    "session.id",
    "llmcost.session.name",
    "llmcost.session.path",
    "deployment.environment.name",
)


class Traced:
    """A provider with only our processor plus an in-memory exporter."""

    def __init__(self, defaults: dict[str, str] | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(
            AttributionSpanProcessor(defaults={} if defaults is None else defaults)
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        # a scope name with no GenAI hint: only the gen_ai.* attributes make a span a GenAI span
        self.tracer = self.provider.get_tracer("tests.unit.plain")

    def llm_span(self, name: str = "chat gpt-4o", **extra: Any) -> ReadableSpan:
        self.tracer.start_span(name, attributes={**GENAI, **extra}).end()
        return self.exporter.get_finished_spans()[-1]

    @staticmethod
    def stamped(span: ReadableSpan) -> dict[str, Any]:
        attrs = dict(span.attributes or {})
        return {k: v for k, v in attrs.items() if k in ATTRIBUTION_KEYS or k.startswith("llmcost.property.")}


def exported(request: ExportTraceServiceRequest) -> tuple[dict[str, str], list[dict[str, object]]]:
    """(resource attributes, each span's attributes) of one OTLP export."""
    resource_spans = request.resource_spans[0]
    resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    spans = [
        {kv.key: kv.value.string_value or kv.value.int_value for kv in span.attributes}
        for scope in resource_spans.scope_spans
        for span in scope.spans
    ]
    return resource, spans
