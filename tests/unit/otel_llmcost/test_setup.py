"""Tracing set up in code: ``configure()`` (a new provider exporting OTLP, or joining the app's),
``instrument()`` / ``uninstrument()``, and the entry points ``opentelemetry-instrument`` loads."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import pytest
import wrapt
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_llmcost
from otel_llmcost.instrumentation._common import CAPTURE_ENV, capture_content

from .helpers import exported


@pytest.mark.usefixtures("no_global_provider")
def test_configure_without_a_provider_exports_attributed_spans_over_otlp(
    otlp_receiver: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    endpoint, received = otlp_receiver
    provider = otel_llmcost.configure(endpoint, service_name="checkout", environment="staging")
    try:
        assert trace.get_tracer_provider() is provider
        assert otel_llmcost.configure(endpoint) is provider  # again: nothing added twice
        with (
            otel_llmcost.attribute(team="payments"),
            trace.get_tracer("t").start_as_current_span("chat m", attributes={"gen_ai.request.model": "m"}),
        ):
            pass
        assert provider.force_flush()
    finally:
        provider.shutdown()
    (request,) = received
    resource, spans = exported(request)
    assert (resource["service.name"], resource["deployment.environment.name"]) == ("checkout", "staging")
    assert spans == [{"gen_ai.request.model": "m", "llmcost.team": "payments"}]


@pytest.mark.usefixtures("no_global_provider")
def test_configure_joins_an_existing_provider_and_keeps_its_exporters() -> None:
    exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(app_provider)
    assert otel_llmcost.configure(service_name="ignored") is app_provider
    assert otel_llmcost.configure() is app_provider
    processors = app_provider._active_span_processor._span_processors
    assert sum(isinstance(p, otel_llmcost.AttributionSpanProcessor) for p in processors) == 1
    assert len(processors) == 2  # the app's exporter and ours; no OTLP exporter without an endpoint
    with (
        otel_llmcost.attribute(feature="chat"),
        trace.get_tracer("t").start_as_current_span("chat m", attributes={"gen_ai.request.model": "m"}),
    ):
        pass
    assert (exporter.get_finished_spans()[0].attributes or {})["llmcost.feature"] == "chat"


def test_ensure_processor_leaves_a_foreign_provider_alone() -> None:
    assert otel_llmcost.ensure_processor(trace.NoOpTracerProvider()) is False
    provider = TracerProvider()
    assert otel_llmcost.ensure_processor(provider) is True
    assert otel_llmcost.ensure_processor(provider) is True
    assert len(provider._active_span_processor._span_processors) == 1  # once


def test_configure_capture_content_sets_the_standard_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CAPTURE_ENV, raising=False)
    assert capture_content() is False
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", TracerProvider())
    otel_llmcost.configure(capture_content=True)
    assert capture_content() is True
    otel_llmcost.configure(capture_content=False)
    assert capture_content() is False


def test_instrument_and_uninstrument_both_sdks() -> None:
    import anthropic.resources.messages.messages as am
    import openai.resources.chat.completions.completions as oc

    def current() -> tuple[object, object]:
        return vars(oc.Completions)["create"], vars(am.Messages)["create"]

    originals = current()
    provider = TracerProvider()
    assert otel_llmcost.instrument(tracer_provider=provider) == ["openai", "anthropic"]
    try:
        assert all(isinstance(f, wrapt.FunctionWrapper) for f in current())
        assert otel_llmcost.instrument(tracer_provider=provider) == ["openai", "anthropic"]  # no double wrap
        assert all(not isinstance(f.__wrapped__, wrapt.FunctionWrapper) for f in current())  # type: ignore[attr-defined]
        assert provider._active_span_processor._span_processors == ()  # instrumenting adds no processor
    finally:
        otel_llmcost.uninstrument()
    assert all(now is before for now, before in zip(current(), originals, strict=True))


def test_instrument_skips_an_sdk_that_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    import openai.resources.chat.completions.completions as oc

    monkeypatch.setitem(sys.modules, "anthropic", None)  # what Python does for a missing package
    try:
        assert otel_llmcost.instrument(tracer_provider=TracerProvider()) == ["openai"]
        assert isinstance(vars(oc.Completions)["create"], wrapt.FunctionWrapper)
    finally:
        otel_llmcost.uninstrument()
    assert not isinstance(vars(oc.Completions)["create"], wrapt.FunctionWrapper)


def test_entry_points_name_our_distro_configurator_and_instrumentors() -> None:
    from otel_llmcost.distro import LLMCostConfigurator, LLMCostDistro

    def group(name: str) -> dict[str, object]:
        return {ep.name: ep.load() for ep in entry_points(group=name)}

    assert group("opentelemetry_distro")["llmcost"] is LLMCostDistro
    assert group("opentelemetry_configurator")["llmcost"] is LLMCostConfigurator
    instrumentors = group("opentelemetry_instrumentor")
    openai_cls, anthropic_cls = instrumentors["llmcost_openai"], instrumentors["llmcost_anthropic"]
    assert (openai_cls.__module__, openai_cls.__name__) == (  # type: ignore[attr-defined]
        "otel_llmcost.instrumentation.openai",
        "OpenAIInstrumentor",
    )
    assert anthropic_cls().instrumentation_dependencies() == ("anthropic >= 0.40",)  # type: ignore[operator]
    assert openai_cls().instrumentation_dependencies() == ("openai >= 1.40",)  # type: ignore[operator]
