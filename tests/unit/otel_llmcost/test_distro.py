"""Zero-code setup in process: the ``llmcost`` distro's environment defaults and the configurator
that builds the SDK's TracerProvider with our attribution processor (as ``opentelemetry-instrument``
calls them: distro first, then configurator). The same under a real ``opentelemetry-instrument``
in a fresh venv is ``tests/integration/test_packaging.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.util._once import Once

from otel_llmcost import AttributionSpanProcessor, distro

from .helpers import exported


@pytest.fixture
def environ() -> Iterator[None]:
    """No OTEL_* variables at the start; the process environment exactly restored afterwards
    (the distro writes ``os.environ`` itself, as opentelemetry-distro does)."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith(("OTEL_", "ANTHROPIC_OPEN_TELEMETRY"))]:
        del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch, environ: None) -> None:
    """No global tracer, meter or logger provider yet (the SDK configurator sets all three), and
    the once-only stderr notice not given yet."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(metrics._internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics._internal, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(_logs._internal, "_LOGGER_PROVIDER", None)
    monkeypatch.setattr(_logs._internal, "_LOGGER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(distro, "_no_exporter_said", Once())


def auto_configure() -> TracerProvider:
    """What opentelemetry-instrument does before loading the instrumentors."""
    distro.LLMCostDistro().configure()
    distro.LLMCostConfigurator().configure(auto_instrumentation_version="test")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    return provider


def processors(provider: TracerProvider) -> list[object]:
    return list(provider._active_span_processor._span_processors)


# --- the distro's defaults ------------------------------------------------------------------------


@pytest.mark.usefixtures("environ")
@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_an_otlp_endpoint_selects_the_otlp_exporter_over_http(variable: str) -> None:
    os.environ[variable] = "http://collector:4318"
    distro.LLMCostDistro().configure()
    assert os.environ["OTEL_TRACES_EXPORTER"] == "otlp"
    assert os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"  # the exporter we install


@pytest.mark.usefixtures("environ")
def test_what_the_user_set_wins() -> None:
    os.environ.update(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317",
        OTEL_TRACES_EXPORTER="console",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
    )
    distro.LLMCostDistro().configure()
    assert (os.environ["OTEL_TRACES_EXPORTER"], os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"]) == (
        "console",
        "grpc",
    )


@pytest.mark.usefixtures("environ")
def test_no_endpoint_selects_no_exporter() -> None:
    distro.LLMCostDistro().configure()
    assert "OTEL_TRACES_EXPORTER" not in os.environ  # nothing invented: no guessed localhost


# --- the configurator -----------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_process")
@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_configurator_exports_attributed_spans_from_the_standard_variables(
    otlp_receiver: tuple[str, list[ExportTraceServiceRequest]],
    variable: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    traces_url, received = otlp_receiver
    # the generic variable is a base URL (the exporter appends /v1/traces), the traces one is used as is
    base_url = traces_url.removesuffix("/v1/traces")
    os.environ[variable] = traces_url if variable == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" else base_url
    os.environ.update(OTEL_SERVICE_NAME="checkout", OTEL_LLMCOST_TEAM="platform")
    provider = auto_configure()
    try:
        ours, export = processors(provider)
        assert isinstance(ours, AttributionSpanProcessor)
        assert isinstance(export, BatchSpanProcessor) and isinstance(export.span_exporter, OTLPSpanExporter)
        with trace.get_tracer("t").start_as_current_span("chat m", attributes={"gen_ai.request.model": "m"}):
            pass
        assert provider.force_flush()
    finally:
        provider.shutdown()
    (request,) = received
    resource, spans = exported(request)
    assert resource["service.name"] == "checkout"
    assert spans == [{"gen_ai.request.model": "m", "llmcost.team": "platform"}]
    assert capsys.readouterr().err == ""  # an exporter is configured: nothing to say


@pytest.mark.usefixtures("fresh_process")
def test_no_exporter_is_said_once_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    provider = auto_configure()
    assert [type(p) for p in processors(provider)] == [AttributionSpanProcessor]  # attributed, not sent
    distro.LLMCostConfigurator().configure()  # configured again: still said only once
    err = capsys.readouterr().err
    assert err.count(distro.NO_EXPORTER_MESSAGE) == 1
    assert err == distro.NO_EXPORTER_MESSAGE + "\n"


@pytest.mark.usefixtures("fresh_process")
def test_an_explicit_none_exporter_is_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["OTEL_TRACES_EXPORTER"] = "none"
    provider = auto_configure()
    assert [type(p) for p in processors(provider)] == [AttributionSpanProcessor]
    assert capsys.readouterr().err == ""
