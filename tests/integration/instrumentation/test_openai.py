"""Our OpenAI instrumentor: every method, sync and async, streaming or not, raw or parsed, errors,
provider names, attribution and content capture, through the real openai SDK and the fake."""

from __future__ import annotations

import inspect
import json
from typing import Any

import httpx2
import openai
import pytest
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_llmcost
from otel_llmcost.instrumentation.openai import provider_of

from .helpers import (
    EMBED_MODEL,
    EMBEDDINGS_USAGE,
    MESSAGES,
    MODEL,
    OPENAI_SCENARIO,
    OPENAI_USAGE,
    SNAPSHOT,
    TEXT,
    Otel,
    aclient,
    attrs,
    client,
    openai_paused,
    openai_request,
    resource,
    usage_of,
)

pytestmark = pytest.mark.integration

CASES = [("chat", False), ("chat", True), ("responses", False), ("responses", True), ("embeddings", False)]


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
    # exact: also no llmcost.usage.estimated when the provider reported usage
    assert usage_of(span) == (EMBEDDINGS_USAGE if op == "embeddings" else OPENAI_USAGE)
    assert "gen_ai.input.messages" not in a  # no content by default


def check_result(op: str, stream: bool, result: Any) -> None:
    """What the caller gets is what the SDK gives: the last stream item, or the parsed object."""
    if stream:
        assert result, "the stream yielded nothing"
        if op == "chat":
            assert result[-1].usage.prompt_tokens == 1200  # the caller still sees the usage chunk
        else:
            assert result[-1].type == "response.completed"
    elif op == "embeddings":
        assert len(result.data) == 2
        assert result.model == SNAPSHOT
    else:
        assert result.model == SNAPSHOT
        if op == "chat":
            assert result.usage.prompt_tokens == 1200


@pytest.mark.parametrize("raw", [False, True], ids=["parsed", "raw"])
@pytest.mark.parametrize(("op", "stream"), CASES)
def test_sync_call(fake: FakeProvider, oai: Otel, op: str, stream: bool, raw: bool) -> None:
    fake.push(OPENAI_SCENARIO)
    methods = resource(client(fake), op)
    result = (methods.with_raw_response if raw else methods).create(**openai_request(op, stream))
    if raw:
        assert result.http_response.status_code == 200
        assert oai.spans() == [] or not stream  # a raw stream is not read until parsed
        result = result.parse()
    if stream:
        assert oai.spans() == []  # the span stays open while the caller reads the stream
        result = list(result)
    check_result(op, stream, result)
    check_openai_span(oai.only(), op)


@pytest.mark.parametrize("raw", [False, True], ids=["parsed", "raw"])
@pytest.mark.parametrize(("op", "stream"), CASES)
async def test_async_call(fake: FakeProvider, oai: Otel, op: str, stream: bool, raw: bool) -> None:
    fake.push(OPENAI_SCENARIO)
    methods = resource(aclient(fake), op)
    result = await (methods.with_raw_response if raw else methods).create(**openai_request(op, stream))
    if raw:
        assert result.http_response.status_code == 200
        assert oai.spans() == [] or not stream  # a raw stream is not read until parsed
        result = result.parse()  # legacy raw responses parse synchronously, even on the async client
        if inspect.isawaitable(result):
            result = await result
    if stream:
        assert oai.spans() == []
        result = [item async for item in result]
    check_result(op, stream, result)
    check_openai_span(oai.only(), op)


def test_chat_span_has_response_id_and_attribution(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)
    with otel_llmcost.attribute(
        team="marketing", feature="chat", user_id="u-17", session_id="s-1", session_path="/draft"
    ):
        result = client(fake).chat.completions.create(model=MODEL, messages=MESSAGES)
    a = attrs(oai.only())
    assert a["gen_ai.response.id"] == result.id
    assert a["gen_ai.response.model"] == result.model
    assert (a["llmcost.team"], a["llmcost.feature"], a["user.id"], a["session.id"]) == (
        "marketing", "chat", "u-17", "s-1",
    )  # fmt: skip
    assert a["llmcost.session.path"] == "/draft"


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


def test_uninstrument_stops_spans(fake: FakeProvider, oai: Otel) -> None:
    c = client(fake)
    with openai_paused(oai):
        fake.push(OPENAI_SCENARIO)
        c.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert oai.spans() == []
    fake.push(OPENAI_SCENARIO)
    c.chat.completions.create(model=MODEL, messages=MESSAGES)
    oai.only()


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


# --- provider names -----------------------------------------------------------------------------


def test_provider_name_from_client_and_base_url(oai: Otel) -> None:
    assert provider_of(openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="x")) == "openrouter"
    assert (
        provider_of(openai.OpenAI(base_url="https://myco.openai.azure.com/openai", api_key="x"))
        == "azure.ai.openai"
    )
    azure = openai.AzureOpenAI(
        azure_endpoint="https://myco.openai.azure.com", api_version="2024-10-21", api_key="x"
    )
    assert provider_of(azure) == "azure.ai.openai"
    # Nothing listens on port 9: the call fails, and the failed call still gets a span.
    unreachable = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0, timeout=1)
    with pytest.raises(openai.APIConnectionError):
        unreachable.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert attrs(oai.only())["gen_ai.provider.name"] == "openai"


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


# --- content capture ----------------------------------------------------------------------------


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
    assert json.loads(attrs(oai.only())["gen_ai.input.messages"]) == MESSAGES


def test_stands_aside_where_another_instrumentation_wraps_the_method(fake: FakeProvider, otel: Otel) -> None:
    """Another instrumentation wrapped ``Completions.create`` first (wrapt, as openai-v2 and
    OpenLLMetry do): ours traces the other methods only; around that one it adds only what the
    other tracer's span cannot know (no span of its own: the matrix in tests/peers shows what it
    adds to a timed-out call), and its uninstrument() leaves the other's wrapper in place."""
    import wrapt
    from openai.resources.chat.completions.completions import Completions
    from opentelemetry.instrumentation.utils import unwrap

    from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

    seen: list[str] = []

    def other(wrapped: Any, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        seen.append(kwargs["model"])
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(Completions, "create", other)
    theirs = vars(Completions)["create"]
    try:
        OpenAIInstrumentor().instrument(tracer_provider=otel.provider)
        try:
            assert vars(Completions)["create"].__wrapped__ is theirs  # beside it, not instead
            fake.push(OPENAI_SCENARIO)
            client(fake).chat.completions.create(**openai_request("chat", stream=False))
            fake.push(OPENAI_SCENARIO)
            client(fake).responses.create(**openai_request("responses", stream=False))
        finally:
            OpenAIInstrumentor().uninstrument()
        assert vars(Completions)["create"] is theirs
        assert seen == [MODEL]
        assert [s.name for s in otel.spans()] == [f"chat {MODEL}"]  # the responses call only
    finally:
        unwrap(Completions, "create")
