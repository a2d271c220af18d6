"""The Anthropic instrumentor, driving the real anthropic SDK against the loopback fake provider.

Anthropic reports ``input_tokens`` EXCLUDING cache reads and writes; our spans' input includes
them (OTel semantics), and cache writes keep their 5m/1h split.
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import otel_llmcost
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor, provider_of

pytestmark = pytest.mark.integration

SCENARIO = Scenario(
    input_tokens=500, cached_tokens=1000, cache_creation_5m=300, cache_creation_1h=100, output_tokens=80
)
USAGE = {
    "gen_ai.usage.input_tokens": 1900,  # 500 + 1000 read + 400 written
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.cache_write.input_tokens": 400,
    "llmcost.usage.cache_creation.5m.input_tokens": 300,
    "llmcost.usage.cache_creation.1h.input_tokens": 100,
    "gen_ai.usage.output_tokens": 80,
}
MESSAGES = [{"role": "user", "content": "Summarize the quarterly report in three bullet points."}]
MODEL = "claude-haiku-4-5"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


def methods() -> list[object]:
    import anthropic.resources.messages.messages as module

    return [vars(getattr(module, c))[m] for c in ("Messages", "AsyncMessages") for m in ("create", "stream")]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    originals = methods()
    AnthropicInstrumentor().instrument(tracer_provider=tracer_provider)
    yield exporter
    AnthropicInstrumentor().uninstrument()
    assert all(now is before for now, before in zip(methods(), originals, strict=True))


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    finished = exporter.get_finished_spans()
    assert len(finished) == 1, [s.name for s in finished]
    return finished[0]


def usage_of(span: ReadableSpan) -> dict[str, Any]:
    return {
        k: v for k, v in (span.attributes or {}).items() if k.startswith(("gen_ai.usage.", "llmcost.usage."))
    }


def claude(provider: FakeProvider, is_async: bool = False, **options: Any) -> Any:
    """A client with the SDK's own tracing off, so the spans under test are ours."""
    cls = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
    options.setdefault("open_telemetry", False)
    return cls(base_url=provider.anthropic_base_url, api_key="test", max_retries=0, **options)


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("stream", [False, True])
async def test_messages_create(
    provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool, stream: bool
) -> None:
    provider.push(SCENARIO)
    with otel_llmcost.attribute(team="support", session_id="s-1"):
        result = claude(provider, is_async).messages.create(
            model=MODEL, max_tokens=100, messages=MESSAGES, stream=stream
        )
        result = await result if is_async else result
        if stream:
            events = [e async for e in result] if is_async else list(result)
            assert events[-1].type == "message_stop"  # the caller sees every event
    span = only(spans)
    attrs = span.attributes or {}
    assert (span.name, span.kind) == (f"chat {MODEL}", SpanKind.CLIENT)
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.max_tokens"] == 100
    assert attrs["gen_ai.response.model"] == MODEL
    assert attrs["gen_ai.response.id"].startswith("msg_")
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert (attrs["llmcost.team"], attrs["session.id"]) == ("support", "s-1")
    assert usage_of(span) == USAGE
    assert "gen_ai.input.messages" not in attrs


@pytest.mark.parametrize("is_async", [False, True])
async def test_messages_stream_helper(
    provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool
) -> None:
    provider.push(SCENARIO)
    manager = claude(provider, is_async).messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES)
    if is_async:
        async with manager as stream:
            message = await stream.get_final_message()
    else:
        with manager as stream:
            message = stream.get_final_message()
    assert message.usage.output_tokens == 80
    assert usage_of(only(spans)) == USAGE


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("stream", [False, True])
async def test_with_raw_response(
    provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool, stream: bool
) -> None:
    provider.push(SCENARIO)
    raw = claude(provider, is_async).messages.with_raw_response.create(
        model=MODEL, max_tokens=100, messages=MESSAGES, stream=stream
    )
    raw = await raw if is_async else raw
    parsed = raw.parse()
    parsed = await parsed if inspect.isawaitable(parsed) else parsed
    if stream:
        _ = [e async for e in parsed] if is_async else list(parsed)
    else:
        assert parsed.usage.input_tokens == 500  # the caller sees Anthropic's own accounting
    assert usage_of(only(spans)) == USAGE


def test_stream_dropped_early_still_ends_its_span(
    provider: FakeProvider, spans: InMemorySpanExporter
) -> None:
    provider.push(SCENARIO)
    stream = claude(provider).messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    next(iter(stream))  # message_start: input and cache usage are known already
    del stream
    gc.collect()
    usage = usage_of(only(spans))
    assert usage["gen_ai.usage.input_tokens"] == 1900
    assert usage["llmcost.usage.cache_creation.1h.input_tokens"] == 100


@pytest.mark.parametrize("is_async", [False, True])
async def test_error_span(provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool) -> None:
    provider.push(Scenario(error_status=529))
    with pytest.raises(anthropic.APIStatusError):
        result = claude(provider, is_async).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
        await result if is_async else result
    span = only(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "OverloadedError"


def test_stream_cut_midway_keeps_the_usage_that_came_back(
    provider: FakeProvider, spans: InMemorySpanExporter
) -> None:
    provider.push(Scenario(input_tokens=700, cached_tokens=50, cut_stream_after=3))
    stream = claude(provider).messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    with pytest.raises(Exception) as cut:  # this SDK surfaces the transport's own error here
        list(stream)
    assert "peer closed connection" in str(cut.value)
    span = only(spans)
    attrs = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR and attrs["error.type"] == cut.type.__qualname__
    assert attrs["gen_ai.usage.input_tokens"] == 750  # from message_start, before the cut
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 50
    assert "llmcost.usage.estimated" not in attrs


def test_a_client_that_traces_itself_gets_no_second_span(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's own span per call is attributed by our processor; ours stands aside for that client."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(otel_llmcost.AttributionSpanProcessor(defaults={}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", tracer_provider)
    AnthropicInstrumentor().instrument(tracer_provider=tracer_provider)
    try:
        with otel_llmcost.attribute(team="support"):
            for client in (claude(provider, open_telemetry=None), claude(provider, open_telemetry=False)):
                provider.push(SCENARIO)
                client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    finally:
        AnthropicInstrumentor().uninstrument()
    native, ours = exporter.get_finished_spans()
    assert native.instrumentation_scope is not None and ours.instrumentation_scope is not None
    assert native.instrumentation_scope.name == "com.anthropic.sdk.python"
    assert ours.instrumentation_scope.name == "otel_llmcost.instrumentation.anthropic"
    for span in (native, ours):
        attrs = span.attributes or {}
        assert attrs["llmcost.team"] == "support"
        assert attrs["gen_ai.usage.input_tokens"] == 1900


def test_platform_clients_name_their_provider(spans: InMemorySpanExporter) -> None:
    bedrock = anthropic.AnthropicBedrock(aws_region="us-east-1", aws_access_key="a", aws_secret_key="b")
    assert provider_of(bedrock) == "aws.bedrock"
    # Vertex shares the Messages resource: the call is instrumented. Nothing listens on port 9, so
    # the call fails, and the failed call still has its span, with the provider.
    vertex = anthropic.AnthropicVertex(
        region="us-east5", project_id="p", access_token="x", base_url="http://127.0.0.1:9/v1",
        max_retries=0, open_telemetry=False,
    )  # fmt: skip
    with pytest.raises(anthropic.APIConnectionError):
        vertex.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=10, messages=MESSAGES)
    attrs = only(spans).attributes or {}
    assert (attrs["gen_ai.provider.name"], attrs["server.address"]) == ("gcp.vertex_ai", "127.0.0.1")
    assert attrs["error.type"] == "APIConnectionError"


def test_capture_content_is_opt_in(
    provider: FakeProvider, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    provider.push(SCENARIO)
    claude(provider).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert '"Summarize the quarterly report' in (only(spans).attributes or {})["gen_ai.input.messages"]
