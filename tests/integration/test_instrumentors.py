"""Our OpenAI and Anthropic instrumentors, driving the real SDKs against the loopback FakeProvider.

Every span goes through a real SDK TracerProvider with our AttributionSpanProcessor and an
InMemorySpanExporter. Expected token counts are derived by hand from the Scenario:

* OpenAI reports ``prompt_tokens`` INCLUDING cached tokens and ``completion_tokens`` INCLUDING
  reasoning tokens; the span says the same (OTel GenAI semantics), so the numbers pass through.
* Anthropic reports ``input_tokens`` EXCLUDING cache reads and writes; the span's input includes
  them: 500 + 1000 read + (300 + 100) written = 1900.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import otel_llmcost
from otel_llmcost import AttributionSpanProcessor
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

pytestmark = pytest.mark.integration

MODEL = "gpt-4o"
SNAPSHOT = "gpt-4o-2024-08-06"  # the fake answers with this response model
EMBED_MODEL = "text-embedding-3-small"
MESSAGES = [{"role": "user", "content": "Write a haiku about quarterly invoices."}]
TEXT = "Hello from the fake provider."

OPENAI_SCENARIO = Scenario(
    input_tokens=1200, cached_tokens=200, output_tokens=300, reasoning_tokens=100, model=SNAPSHOT
)
OPENAI_USAGE = {
    "gen_ai.usage.input_tokens": 1200,  # prompt_tokens, which already includes the 200 cached
    "gen_ai.usage.cache_read.input_tokens": 200,
    "gen_ai.usage.output_tokens": 300,  # completion_tokens, which already includes the 100 reasoning
    "gen_ai.usage.reasoning.output_tokens": 100,
}
EMBEDDINGS_USAGE = {
    "gen_ai.usage.input_tokens": 1200,  # embeddings report prompt_tokens only; no cache, no output
    "gen_ai.usage.output_tokens": 0,
}

CLAUDE = "claude-haiku-4-5"
ANTHROPIC_SCENARIO = Scenario(
    input_tokens=500, cached_tokens=1000, cache_creation_5m=300, cache_creation_1h=100, output_tokens=80
)
ANTHROPIC_USAGE = {
    "gen_ai.usage.input_tokens": 1900,  # 500 uncached + 1000 cache read + 400 cache written
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.cache_write.input_tokens": 400,  # 300 (5m) + 100 (1h)
    "llmcost.usage.cache_creation.5m.input_tokens": 300,
    "llmcost.usage.cache_creation.1h.input_tokens": 100,
    "gen_ai.usage.output_tokens": 80,
}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@dataclass
class Otel:
    provider: TracerProvider
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def only(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [(s.name, s.instrumentation_scope) for s in spans]
        return spans[0]


@pytest.fixture
def otel(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    fake.reset()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # record_outcome() and the anthropic SDK's own tracing use the global provider
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    monkeypatch.delenv("ANTHROPIC_OPEN_TELEMETRY", raising=False)
    yield Otel(provider, exporter)
    provider.shutdown()


OPENAI_METHODS = (
    ("openai.resources.chat.completions.completions", "Completions"),
    ("openai.resources.chat.completions.completions", "AsyncCompletions"),
    ("openai.resources.responses.responses", "Responses"),
    ("openai.resources.responses.responses", "AsyncResponses"),
    ("openai.resources.embeddings", "Embeddings"),
    ("openai.resources.embeddings", "AsyncEmbeddings"),
)
ANTHROPIC_METHODS = tuple(
    ("anthropic.resources.messages.messages", cls, name)
    for cls in ("Messages", "AsyncMessages")
    for name in ("create", "stream")
)


def openai_originals() -> list[object]:
    return [vars(getattr(importlib.import_module(m), c))["create"] for m, c in OPENAI_METHODS]


def anthropic_originals() -> list[object]:
    return [vars(getattr(importlib.import_module(m), c))[n] for m, c, n in ANTHROPIC_METHODS]


@pytest.fixture
def oai(otel: Otel) -> Iterator[Otel]:
    from openai.resources.chat.completions.completions import Completions

    original_create = vars(Completions)["create"]
    originals = openai_originals()
    OpenAIInstrumentor().instrument(tracer_provider=otel.provider)
    assert vars(Completions)["create"] is not original_create  # wrapped
    # the provider already had our processor: instrument() must not add a second one
    processors = otel.provider._active_span_processor._span_processors
    assert sum(isinstance(p, AttributionSpanProcessor) for p in processors) == 1
    yield otel
    OpenAIInstrumentor().uninstrument()
    assert vars(Completions)["create"] is original_create
    assert Completions.create is original_create
    assert all(now is before for now, before in zip(openai_originals(), originals, strict=True))


@pytest.fixture
def ant(otel: Otel) -> Iterator[Otel]:
    originals = anthropic_originals()
    AnthropicInstrumentor().instrument(tracer_provider=otel.provider)
    assert all(now is not before for now, before in zip(anthropic_originals(), originals, strict=True))
    yield otel
    AnthropicInstrumentor().uninstrument()
    assert all(now is before for now, before in zip(anthropic_originals(), originals, strict=True))


@contextmanager
def openai_paused(otel: Otel) -> Iterator[None]:
    """Run a block against the bare SDK (for what-the-caller-gets comparisons)."""
    OpenAIInstrumentor().uninstrument()
    try:
        yield
    finally:
        OpenAIInstrumentor().instrument(tracer_provider=otel.provider)


def client(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)


def aclient(fake: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def usage_of(span: ReadableSpan) -> dict[str, Any]:
    return {k: v for k, v in attrs(span).items() if k.startswith(("gen_ai.usage.", "llmcost.usage."))}


# --- OpenAI: each method x sync/async x streaming/not -------------------------------------------


CASES = [("chat", False), ("chat", True), ("responses", False), ("responses", True), ("embeddings", False)]


def openai_request(op: str, stream: bool, include_usage: bool = True) -> dict[str, Any]:
    if op == "chat":
        kwargs: dict[str, Any] = {"model": MODEL, "messages": MESSAGES}
        if stream:
            kwargs["stream"] = True
            if include_usage:
                kwargs["stream_options"] = {"include_usage": True}
        return kwargs
    if op == "responses":
        return {"model": MODEL, "input": MESSAGES[0]["content"], **({"stream": True} if stream else {})}
    return {"model": EMBED_MODEL, "input": MESSAGES[0]["content"]}


def resource(c: Any, op: str) -> Any:
    return {
        "chat": lambda: c.chat.completions,
        "responses": lambda: c.responses,
        "embeddings": lambda: c.embeddings,
    }[op]()


def check_openai_span(span: ReadableSpan, op: str) -> None:
    span_op = "embeddings" if op == "embeddings" else "chat"  # responses.create is a chat operation
    request_model = EMBED_MODEL if op == "embeddings" else MODEL
    assert span.name == f"{span_op} {request_model}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is not StatusCode.ERROR
    a = attrs(span)
    assert a["gen_ai.operation.name"] == span_op
    assert a["gen_ai.provider.name"] == "openai"  # loopback host: OpenAI API shape
    assert a["gen_ai.request.model"] == request_model
    assert a["gen_ai.response.model"] == SNAPSHOT
    assert a["server.address"] == "127.0.0.1"
    assert usage_of(span) == (EMBEDDINGS_USAGE if op == "embeddings" else OPENAI_USAGE)
    assert "gen_ai.input.messages" not in a  # no content by default


@pytest.mark.parametrize(("op", "stream"), CASES)
def test_openai_sync(fake: FakeProvider, oai: Otel, op: str, stream: bool) -> None:
    fake.push(OPENAI_SCENARIO)
    result = resource(client(fake), op).create(**openai_request(op, stream))
    if stream:
        assert oai.spans() == []  # the span stays open while the caller reads the stream
        items = list(result)
        assert items
    check_openai_span(oai.only(), op)


@pytest.mark.parametrize(("op", "stream"), CASES)
async def test_openai_async(fake: FakeProvider, oai: Otel, op: str, stream: bool) -> None:
    fake.push(OPENAI_SCENARIO)
    result = await resource(aclient(fake), op).create(**openai_request(op, stream))
    if stream:
        assert oai.spans() == []
        items = [item async for item in result]
        assert items
    check_openai_span(oai.only(), op)


@pytest.mark.parametrize(("op", "stream"), CASES)
def test_openai_with_raw_response_sync(fake: FakeProvider, oai: Otel, op: str, stream: bool) -> None:
    fake.push(OPENAI_SCENARIO)
    raw = resource(client(fake), op).with_raw_response.create(**openai_request(op, stream))
    assert raw.http_response.status_code == 200
    parsed = raw.parse()
    if stream:
        list(parsed)
    else:
        assert parsed.model == SNAPSHOT  # the caller still gets the parsed object
    check_openai_span(oai.only(), op)


@pytest.mark.parametrize(("op", "stream"), CASES)
async def test_openai_with_raw_response_async(fake: FakeProvider, oai: Otel, op: str, stream: bool) -> None:
    fake.push(OPENAI_SCENARIO)
    raw = await resource(aclient(fake), op).with_raw_response.create(**openai_request(op, stream))
    parsed = raw.parse()  # legacy raw responses parse synchronously, even on the async client
    if inspect.isawaitable(parsed):
        parsed = await parsed
    if stream:
        [item async for item in parsed]
    else:
        assert parsed.model == SNAPSHOT
    check_openai_span(oai.only(), op)


def test_chat_returns_same_object_types(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO, OPENAI_SCENARIO)
    c = client(fake)
    completion = c.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert type(completion) is openai.types.chat.ChatCompletion
    assert completion.choices[0].message.content == TEXT
    stream = c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)  # the proxy is transparent to isinstance
    with stream:
        assert all(isinstance(chunk, openai.types.chat.ChatCompletionChunk) for chunk in stream)
    assert len(oai.spans()) == 2


# --- streams: estimated usage, early close, drop, identical output -----------------------------


def chunk_contents(chunks: list[Any]) -> list[dict[str, Any]]:
    """What a caller sees in each chunk, minus the per-response random id and timestamp."""
    return [c.model_dump(exclude={"id", "created"}) for c in chunks]


def test_chat_stream_without_usage_is_estimated(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)
    chunks = list(client(fake).chat.completions.create(**openai_request("chat", True, include_usage=False)))
    assert all(c.usage is None for c in chunks)  # the provider really sent no usage
    a = attrs(oai.only())
    assert a["llmcost.usage.estimated"] is True
    # counted locally: nothing like the scenario's 1200/300, but positive and at most one token per
    # character of the text it came from
    assert 0 < a["gen_ai.usage.input_tokens"] <= len(MESSAGES[0]["content"])
    assert 0 < a["gen_ai.usage.output_tokens"] <= len(TEXT)
    assert "gen_ai.usage.cache_read.input_tokens" not in a


async def test_async_chat_stream_with_usage_is_exact(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)
    stream = await aclient(fake).chat.completions.create(**openai_request("chat", True))
    async for _ in stream:
        pass
    a = attrs(oai.only())
    assert "llmcost.usage.estimated" not in a
    assert usage_of(oai.only()) == OPENAI_USAGE


@pytest.mark.parametrize("include_usage", [False, True])
def test_full_stream_identical_to_uninstrumented(fake: FakeProvider, oai: Otel, include_usage: bool) -> None:
    c = client(fake)
    with openai_paused(oai):
        fake.push(OPENAI_SCENARIO)
        bare = list(c.chat.completions.create(**openai_request("chat", True, include_usage)))
    fake.push(OPENAI_SCENARIO)
    seen = list(c.chat.completions.create(**openai_request("chat", True, include_usage)))
    assert chunk_contents(seen) == chunk_contents(bare)
    # 1 role chunk + 5 word chunks ("Hello ", "from ", "the ", "fake ", "provider.") + 1 stop chunk
    # (+ 1 usage chunk when asked for)
    assert len(seen) == 7 + include_usage
    oai.only()


def first_then_close(c: openai.OpenAI) -> list[Any]:
    stream = c.chat.completions.create(**openai_request("chat", True))
    got = [next(iter(stream))]
    stream.close()
    return got


def test_stream_closed_early_ends_one_span(fake: FakeProvider, oai: Otel) -> None:
    c = client(fake)
    with openai_paused(oai):
        fake.push(OPENAI_SCENARIO)
        bare = first_then_close(c)
    fake.push(OPENAI_SCENARIO)
    seen = first_then_close(c)
    assert chunk_contents(seen) == chunk_contents(bare)
    span = oai.only()
    assert span.end_time is not None
    assert span.status.status_code is not StatusCode.ERROR  # the caller chose to stop: not an error
    # usage never arrived (it is the last chunk): estimated, flagged
    assert attrs(span)["llmcost.usage.estimated"] is True
    gc.collect()
    assert len(oai.spans()) == 1  # closing and later collection do not end it twice


def test_stream_dropped_and_collected_ends_one_span(fake: FakeProvider, oai: Otel) -> None:
    c = client(fake)
    with openai_paused(oai):
        fake.push(OPENAI_SCENARIO)
        bare_stream = c.chat.completions.create(**openai_request("chat", True))
        bare = [next(iter(bare_stream))]
        del bare_stream
        gc.collect()
    fake.push(OPENAI_SCENARIO)
    stream = c.chat.completions.create(**openai_request("chat", True))
    seen = [next(iter(stream))]
    assert oai.spans() == []
    del stream
    gc.collect()
    assert chunk_contents(seen) == chunk_contents(bare)
    span = oai.only()
    assert span.end_time is not None
    assert attrs(span)["gen_ai.response.model"] == SNAPSHOT  # seen in the one chunk read


async def test_async_stream_closed_early_ends_one_span(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)
    stream = await aclient(fake).chat.completions.create(**openai_request("chat", True))
    first = await stream.__anext__()
    assert first.choices[0].delta.role == "assistant"
    await stream.close()
    span = oai.only()
    assert span.end_time is not None
    gc.collect()
    assert len(oai.spans()) == 1


async def test_async_stream_dropped_ends_one_span(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)
    stream = await aclient(fake).chat.completions.create(**openai_request("chat", True))
    await stream.__anext__()
    del stream
    gc.collect()
    await asyncio.sleep(0)
    assert oai.only().end_time is not None


def test_stream_context_manager_exit_ends_span(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)
    with client(fake).chat.completions.create(**openai_request("chat", True)) as stream:
        next(iter(stream))
    assert oai.only().end_time is not None


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_rate_limit_error_span_and_exception_unchanged(fake: FakeProvider, oai: Otel, stream: bool) -> None:
    c = client(fake)
    with openai_paused(oai):
        fake.push(Scenario(error_status=429))
        with pytest.raises(openai.RateLimitError) as bare:
            c.chat.completions.create(**openai_request("chat", stream))
    fake.push(Scenario(error_status=429))
    with pytest.raises(openai.RateLimitError) as seen:
        c.chat.completions.create(**openai_request("chat", stream))
    assert type(seen.value) is type(bare.value)
    assert seen.value.status_code == 429
    assert str(seen.value) == str(bare.value)
    assert seen.value.body == bare.value.body
    span = oai.only()
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a["error.type"] == "RateLimitError"
    assert a["gen_ai.provider.name"] == "openai"
    assert "llmcost.usage.estimated" not in a  # nothing was generated, nothing estimated


async def test_async_rate_limit_error(fake: FakeProvider, oai: Otel) -> None:
    fake.push(Scenario(error_status=429))
    with pytest.raises(openai.RateLimitError):
        await aclient(fake).responses.create(**openai_request("responses", False))
    span = oai.only()
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "RateLimitError"


def read_until_error(c: openai.OpenAI) -> tuple[list[Any], BaseException]:
    got: list[Any] = []
    with pytest.raises(openai.APIError) as caught:  # APIConnectionError is an APIError
        for chunk in c.chat.completions.create(**openai_request("chat", True)):
            got.append(chunk)
    return got, caught.value


def test_stream_cut_midway(fake: FakeProvider, oai: Otel) -> None:
    c = client(fake)
    with openai_paused(oai):
        fake.push(Scenario(cut_stream_after=2, model=SNAPSHOT))
        bare_chunks, bare_error = read_until_error(c)
    fake.push(Scenario(cut_stream_after=2, model=SNAPSHOT))
    chunks, error = read_until_error(c)
    assert type(error) is type(bare_error)  # the SDK's own exception reaches the caller
    assert chunk_contents(chunks) == chunk_contents(bare_chunks)
    assert len(chunks) == 2  # two SSE events were sent before the cut
    span = oai.only()
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a["error.type"] == type(error).__qualname__
    assert a["gen_ai.response.model"] == SNAPSHOT
    assert a["llmcost.usage.estimated"] is True  # the input was still processed: estimated, flagged


async def test_async_stream_cut_midway(fake: FakeProvider, oai: Otel) -> None:
    fake.push(Scenario(cut_stream_after=2))
    stream = await aclient(fake).chat.completions.create(**openai_request("chat", True))
    got = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            got.append(chunk)
    assert len(got) == 2
    span = oai.only()
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == type(caught.value).__qualname__


# --- attribution, provider names, content capture ------------------------------------------------


def test_attribution_on_openai_span(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)
    with otel_llmcost.attribute(team="marketing", feature="chat", user_id="u-17", session_path="/draft"):
        client(fake).chat.completions.create(model=MODEL, messages=MESSAGES)
    a = attrs(oai.only())
    assert (a["llmcost.team"], a["llmcost.feature"], a["user.id"], a["llmcost.session.path"]) == (
        "marketing", "chat", "u-17", "/draft",
    )  # fmt: skip


async def test_attribution_on_async_stream_span(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)

    @otel_llmcost.attribute(team="search", feature="rerank", user_id="u-2")
    async def work() -> None:
        stream = await aclient(fake).chat.completions.create(**openai_request("chat", True))
        async for _ in stream:
            pass

    await work()
    a = attrs(oai.only())
    assert (a["llmcost.team"], a["llmcost.feature"], a["user.id"]) == ("search", "rerank", "u-2")


def test_azure_provider_from_client(fake: FakeProvider, oai: Otel) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=fake.base_url, api_version="2024-10-21", api_key="k", max_retries=0
    )
    # Azure routes by deployment: POST /openai/deployments/{model}/chat/completions?api-version=...
    # The fake provider only speaks OpenAI's own paths, so it answers 404; the error span still
    # names the provider.
    with pytest.raises(openai.NotFoundError):
        azure.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert fake.requests[-1].path == f"/openai/deployments/{MODEL}/chat/completions"
    span = oai.only()
    a = attrs(span)
    assert a["gen_ai.provider.name"] == "azure.ai.openai"
    assert a["error.type"] == "NotFoundError"
    assert span.status.status_code is StatusCode.ERROR


class ToLoopback(httpx2.HTTPTransport):
    """Sends a request addressed to a public host to the fake provider instead (real HTTP)."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return super().handle_request(request)


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [("https://api.deepseek.com/v1", "deepseek"), ("https://api.openai.com/v1", "openai")],
)
def test_compatible_base_url_names_provider(
    fake: FakeProvider, oai: Otel, base_url: str, provider: str
) -> None:
    c = openai.OpenAI(
        base_url=base_url,
        api_key="k",
        max_retries=0,
        http_client=httpx2.Client(transport=ToLoopback(fake.port)),
    )
    fake.push(OPENAI_SCENARIO)
    c.chat.completions.create(model=MODEL, messages=MESSAGES)
    a = attrs(oai.only())
    assert a["gen_ai.provider.name"] == provider
    assert a["server.address"] == base_url.split("/")[2]
    assert usage_of(oai.only()) == OPENAI_USAGE


def test_no_content_by_default_and_captured_when_enabled(
    fake: FakeProvider, oai: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = client(fake)
    fake.push(OPENAI_SCENARIO)
    c.chat.completions.create(model=MODEL, messages=MESSAGES)
    default = attrs(oai.only())
    assert not any("messages" in k or "content" in k or "prompt" in k for k in default)
    assert not any(isinstance(v, str) and "haiku" in v for v in default.values())
    oai.exporter.clear()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    fake.push(OPENAI_SCENARIO)
    c.chat.completions.create(model=MODEL, messages=MESSAGES)
    captured = attrs(oai.only())
    assert "quarterly invoices" in captured["gen_ai.input.messages"]


def test_record_outcome_span(oai: Otel) -> None:
    with otel_llmcost.attribute(team="support", feature="helpdesk", user_id="u-5"):
        otel_llmcost.record_outcome("ticket_resolved", 2)
    span = oai.only()
    a = attrs(span)
    assert a["llmcost.outcome"] == "ticket_resolved"
    assert a["llmcost.outcome.count"] == 2
    assert (a["llmcost.team"], a["llmcost.feature"], a["user.id"]) == ("support", "helpdesk", "u-5")
    with pytest.raises(ValueError):
        otel_llmcost.record_outcome("nothing", 0)


def test_uninstrument_stops_spans(fake: FakeProvider, oai: Otel) -> None:
    c = client(fake)
    with openai_paused(oai):
        fake.push(OPENAI_SCENARIO)
        c.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert oai.spans() == []
    fake.push(OPENAI_SCENARIO)
    c.chat.completions.create(model=MODEL, messages=MESSAGES)
    oai.only()


# --- Anthropic ------------------------------------------------------------------------------------


def claude(fake: FakeProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)


def aclaude(fake: FakeProvider) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)


ANTHROPIC_CALLS = ["create", "create_stream", "stream"]


def call_claude(c: anthropic.Anthropic, how: str) -> str:
    kwargs: dict[str, Any] = {"model": CLAUDE, "max_tokens": 64, "messages": MESSAGES}
    if how == "create":
        return c.messages.create(**kwargs).content[0].text  # type: ignore[union-attr]
    if how == "create_stream":
        return "".join(
            e.delta.text for e in c.messages.create(**kwargs, stream=True) if e.type == "content_block_delta"
        )  # type: ignore[union-attr]
    with c.messages.stream(**kwargs) as stream:
        return stream.get_final_text()


async def acall_claude(c: anthropic.AsyncAnthropic, how: str) -> str:
    kwargs: dict[str, Any] = {"model": CLAUDE, "max_tokens": 64, "messages": MESSAGES}
    if how == "create":
        return (await c.messages.create(**kwargs)).content[0].text
    if how == "create_stream":
        parts = []
        async for e in await c.messages.create(**kwargs, stream=True):
            if e.type == "content_block_delta":
                parts.append(e.delta.text)
        return "".join(parts)
    async with c.messages.stream(**kwargs) as stream:
        return await stream.get_final_text()


def check_sdk_span(span: ReadableSpan) -> None:
    """The anthropic SDK's own span, stamped by our processor; ours stood aside."""
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "com.anthropic.sdk.python"
    assert span.kind is SpanKind.CLIENT
    a = attrs(span)
    assert (a["llmcost.team"], a["llmcost.feature"], a["user.id"]) == ("legal", "contracts", "u-9")
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.usage.input_tokens"] == 1900  # 500 + 1000 cache read + 400 cache creation
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert a["gen_ai.usage.output_tokens"] == 80


@pytest.mark.parametrize("how", ANTHROPIC_CALLS)
def test_anthropic_sdk_traces_itself_one_span(fake: FakeProvider, ant: Otel, how: str) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    with otel_llmcost.attribute(team="legal", feature="contracts", user_id="u-9"):
        assert call_claude(claude(fake), how) == TEXT
    check_sdk_span(ant.only())


@pytest.mark.parametrize("how", ANTHROPIC_CALLS)
async def test_anthropic_sdk_traces_itself_one_span_async(fake: FakeProvider, ant: Otel, how: str) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    with otel_llmcost.attribute(team="legal", feature="contracts", user_id="u-9"):
        assert await acall_claude(aclaude(fake), how) == TEXT
    check_sdk_span(ant.only())


@pytest.fixture
def ours_only(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    """The SDK's own tracing off (set before the client and before instrument()): our spans."""
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    originals = anthropic_originals()
    AnthropicInstrumentor().instrument(tracer_provider=otel.provider)
    yield otel
    AnthropicInstrumentor().uninstrument()
    assert all(now is before for now, before in zip(anthropic_originals(), originals, strict=True))


def check_our_anthropic_span(span: ReadableSpan) -> None:
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "otel_llmcost.instrumentation.anthropic"
    assert span.name == f"chat {CLAUDE}"
    assert span.kind is SpanKind.CLIENT
    a = attrs(span)
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == CLAUDE
    assert a["gen_ai.response.model"] == CLAUDE
    assert a["llmcost.team"] == "legal"
    assert usage_of(span) == ANTHROPIC_USAGE


@pytest.mark.parametrize("how", ANTHROPIC_CALLS)
def test_anthropic_ours_when_sdk_tracing_off(fake: FakeProvider, ours_only: Otel, how: str) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    with otel_llmcost.attribute(team="legal"):
        assert call_claude(claude(fake), how) == TEXT
    check_our_anthropic_span(ours_only.only())


@pytest.mark.parametrize("how", ANTHROPIC_CALLS)
async def test_anthropic_ours_when_sdk_tracing_off_async(
    fake: FakeProvider, ours_only: Otel, how: str
) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    with otel_llmcost.attribute(team="legal"):
        assert await acall_claude(aclaude(fake), how) == TEXT
    check_our_anthropic_span(ours_only.only())


def test_anthropic_error_when_sdk_tracing_off(fake: FakeProvider, ours_only: Otel) -> None:
    fake.push(Scenario(error_status=429))
    with pytest.raises(anthropic.RateLimitError):
        call_claude(claude(fake), "create")
    span = ours_only.only()
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "RateLimitError"


def test_anthropic_stream_closed_early_when_sdk_tracing_off(fake: FakeProvider, ours_only: Otel) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    stream = claude(fake).messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES, stream=True)
    first = next(iter(stream))
    assert first.type == "message_start"
    stream.close()
    span = ours_only.only()
    # message_start already carried the input side of the usage: exact, not estimated
    a = attrs(span)
    assert a["gen_ai.usage.input_tokens"] == 1900
    assert "llmcost.usage.estimated" not in a
    gc.collect()
    assert len(ours_only.spans()) == 1
