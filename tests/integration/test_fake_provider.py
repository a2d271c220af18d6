"""The fake provider against the REAL `openai` and `anthropic` SDKs, sync and async.

Every endpoint x streaming mode must parse into the SDKs' typed objects with usage equal to the
scenario, token for token, because the instrumentation's tests and the benchmarks trust it.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import openai
import pytest
from llmcost_demo.fake_provider import FakeProvider, Scenario

try:  # the transport under the anthropic SDK (httpx2 in v2.x)
    import httpx2 as _transport
except ImportError:  # pragma: no cover
    import httpx as _transport  # type: ignore[no-redef]

pytestmark = pytest.mark.integration

RICH = Scenario(
    input_tokens=1234,
    output_tokens=567,
    cached_tokens=200,
    cache_creation_5m=30,
    cache_creation_1h=40,
    reasoning_tokens=111,
    text="The quick brown fox jumps",
)
MESSAGES: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean(provider: FakeProvider) -> None:
    provider.reset()


@pytest.fixture
def oai(provider: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def ant(provider: FakeProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=provider.anthropic_base_url, api_key="test", max_retries=0)


# --- every endpoint x stream mode x sync/async: usage exactly as the scenario says ----------------
# Each call returns (usage normalized to scenario field names, text seen by the SDK, response model).


def _openai_usage(u: Any) -> dict[str, int]:
    if hasattr(u, "prompt_tokens") and hasattr(u, "completion_tokens"):  # chat completions
        assert u.total_tokens == u.prompt_tokens + u.completion_tokens
        return {
            "input_tokens": u.prompt_tokens,
            "output_tokens": u.completion_tokens,
            "cached_tokens": u.prompt_tokens_details.cached_tokens,
            "reasoning_tokens": u.completion_tokens_details.reasoning_tokens,
        }
    assert u.total_tokens == u.input_tokens + u.output_tokens  # responses
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_tokens": u.input_tokens_details.cached_tokens,
        "reasoning_tokens": u.output_tokens_details.reasoning_tokens,
    }


def _anthropic_usage(u: Any) -> dict[str, int]:
    assert u.cache_creation_input_tokens == u.cache_creation.ephemeral_5m_input_tokens + (
        u.cache_creation.ephemeral_1h_input_tokens
    )
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_tokens": u.cache_read_input_tokens,
        "cache_creation_5m": u.cache_creation.ephemeral_5m_input_tokens,
        "cache_creation_1h": u.cache_creation.ephemeral_1h_input_tokens,
    }


def _chat_stream_result(chunks: list[Any]) -> tuple[dict[str, int], str, str]:
    *body, last = chunks
    assert last.choices == [] and all(c.usage is None for c in body)
    text = "".join(c.choices[0].delta.content or "" for c in body)
    return _openai_usage(last.usage), text, last.model


def _responses_stream_result(events: list[Any]) -> tuple[dict[str, int], str, str]:
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response
    assert done.output_text == text
    return _openai_usage(done.usage), text, done.model


def _messages_stream_result(events: list[Any]) -> tuple[dict[str, int], str, str]:
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    start, delta = events[0].message, events[-2]
    assert start.usage.output_tokens <= 1  # Anthropic: the final count arrives in message_delta
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    usage = _anthropic_usage(start.usage)
    usage["output_tokens"] = delta.usage.output_tokens
    assert delta.usage.input_tokens in (None, usage["input_tokens"])  # cumulative, never additive
    return usage, text, start.model


def sync_call(kind: str, oai: openai.OpenAI, ant: anthropic.Anthropic) -> tuple[dict[str, int], str, str]:
    if kind == "chat":
        r = oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        return _openai_usage(r.usage), r.choices[0].message.content or "", r.model
    if kind == "chat-stream":
        chunks = list(
            oai.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        return _chat_stream_result(chunks)
    if kind == "responses":
        resp = oai.responses.create(model="gpt-4o", input="hello")
        return _openai_usage(resp.usage), resp.output_text, resp.model
    if kind == "responses-stream":
        return _responses_stream_result(
            list(oai.responses.create(model="gpt-4o", input="hello", stream=True))
        )
    if kind == "responses-stream-helper":
        with oai.responses.stream(model="gpt-4o", input="hello") as stream:
            final = stream.get_final_response()
        return _openai_usage(final.usage), final.output_text, final.model
    if kind == "messages":
        m = ant.messages.create(model="claude-x", max_tokens=64, messages=MESSAGES)
        return _anthropic_usage(m.usage), m.content[0].text, m.model  # type: ignore[union-attr]
    if kind == "messages-stream":
        events = list(ant.messages.create(model="claude-x", max_tokens=64, messages=MESSAGES, stream=True))
        return _messages_stream_result(events)
    assert kind == "messages-stream-helper"
    with ant.messages.stream(model="claude-x", max_tokens=64, messages=MESSAGES) as mstream:
        text = "".join(mstream.text_stream)
        final_message = mstream.get_final_message()
    return _anthropic_usage(final_message.usage), text, final_message.model


async def async_call(kind: str, provider: FakeProvider) -> tuple[dict[str, int], str, str]:
    oai = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
    ant = anthropic.AsyncAnthropic(base_url=provider.anthropic_base_url, api_key="test", max_retries=0)
    if kind == "chat":
        r = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        return _openai_usage(r.usage), r.choices[0].message.content or "", r.model
    if kind == "chat-stream":
        stream = await oai.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        return _chat_stream_result([c async for c in stream])
    if kind == "responses":
        resp = await oai.responses.create(model="gpt-4o", input="hello")
        return _openai_usage(resp.usage), resp.output_text, resp.model
    if kind == "responses-stream":
        rstream = await oai.responses.create(model="gpt-4o", input="hello", stream=True)
        return _responses_stream_result([e async for e in rstream])
    if kind == "responses-stream-helper":
        async with oai.responses.stream(model="gpt-4o", input="hello") as helper:
            final = await helper.get_final_response()
        return _openai_usage(final.usage), final.output_text, final.model
    if kind == "messages":
        m = await ant.messages.create(model="claude-x", max_tokens=64, messages=MESSAGES)
        return _anthropic_usage(m.usage), m.content[0].text, m.model  # type: ignore[union-attr]
    if kind == "messages-stream":
        astream = await ant.messages.create(model="claude-x", max_tokens=64, messages=MESSAGES, stream=True)
        return _messages_stream_result([e async for e in astream])
    assert kind == "messages-stream-helper"
    async with ant.messages.stream(model="claude-x", max_tokens=64, messages=MESSAGES) as mstream:
        text = "".join([t async for t in mstream.text_stream])
        final_message = await mstream.get_final_message()
    return _anthropic_usage(final_message.usage), text, final_message.model


KINDS = [
    "chat",
    "chat-stream",
    "responses",
    "responses-stream",
    "responses-stream-helper",
    "messages",
    "messages-stream",
    "messages-stream-helper",
]


def _expected(kind: str, s: Scenario) -> dict[str, int]:
    common = {
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "cached_tokens": s.cached_tokens,
    }
    if kind.startswith("messages"):
        return {**common, "cache_creation_5m": s.cache_creation_5m, "cache_creation_1h": s.cache_creation_1h}
    return {**common, "reasoning_tokens": s.reasoning_tokens}


@pytest.mark.parametrize("kind", KINDS)
def test_sync_usage_matches_scenario(
    kind: str, provider: FakeProvider, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    provider.push(RICH)
    usage, text, model = sync_call(kind, oai, ant)
    assert usage == _expected(kind, RICH)
    assert text == RICH.text
    assert model == ("claude-x" if kind.startswith("messages") else "gpt-4o")
    [request] = provider.requests
    assert request.method == "POST" and request.scenario == RICH
    assert request.body is not None and request.body["model"] == model
    paths = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}
    assert request.path == paths[kind.split("-")[0]]


@pytest.mark.parametrize("kind", KINDS)
async def test_async_usage_matches_scenario(kind: str, provider: FakeProvider) -> None:
    scenario = Scenario(
        input_tokens=77, output_tokens=33, cached_tokens=5, cache_creation_1h=9, reasoning_tokens=4
    )
    provider.push(scenario)
    usage, text, _ = await async_call(kind, provider)
    assert usage == _expected(kind, scenario)
    assert text == scenario.text
    assert len(provider.requests) == 1


# --- chat streaming: usage chunk only when asked for ------------------------------------------------


def test_chat_stream_without_include_usage_has_no_usage(provider: FakeProvider, oai: openai.OpenAI) -> None:
    provider.push(RICH)
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert chunks and all(c.usage is None and len(c.choices) == 1 for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == RICH.text


def test_chat_stream_include_usage_false_has_no_usage(provider: FakeProvider, oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": False}
        )
    )
    assert all(c.usage is None and c.choices for c in chunks)


# --- embeddings ---------------------------------------------------------------------------------


def test_embeddings_base64_default_and_float(provider: FakeProvider, oai: openai.OpenAI) -> None:
    provider.push(Scenario(input_tokens=42), Scenario(input_tokens=7))
    default = oai.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    floats = oai.embeddings.create(
        model="text-embedding-3-small", input="a", encoding_format="float", dimensions=8
    )
    assert [r.body["encoding_format"] for r in provider.requests if r.body] == ["base64", "float"]
    assert [d.index for d in default.data] == [0, 1, 2] and len(default.data[0].embedding) == 1536
    assert math.isclose(math.fsum(x * x for x in default.data[0].embedding), 1.0, rel_tol=1e-5)
    assert (default.usage.prompt_tokens, default.usage.total_tokens) == (42, 42)
    assert len(floats.data) == 1 and len(floats.data[0].embedding) == 8
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens, floats.model) == (
        7,
        7,
        "text-embedding-3-small",
    )


async def test_embeddings_async(provider: FakeProvider) -> None:
    client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
    provider.push(Scenario(input_tokens=13))
    result = await client.embeddings.create(model="text-embedding-3-large", input=["x", "y"], dimensions=4)
    assert [len(d.embedding) for d in result.data] == [4, 4]
    assert result.usage.prompt_tokens == 13


# --- scenario selection ---------------------------------------------------------------------------


def test_push_is_fifo_then_header_then_default(provider: FakeProvider, oai: openai.OpenAI) -> None:
    provider.push(Scenario(input_tokens=1), Scenario(input_tokens=2), Scenario(input_tokens=3))
    header = {"x-fake-scenario": json.dumps({"input_tokens": 99, "model": "gpt-4o-2024-08-06"})}
    seen = []
    for _ in range(4):
        r = oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=header)
        assert r.usage is not None
        seen.append((r.usage.prompt_tokens, r.model))
    assert seen == [(1, "gpt-4o"), (2, "gpt-4o"), (3, "gpt-4o"), (99, "gpt-4o-2024-08-06")]
    r = oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert r.usage is not None and r.usage.prompt_tokens == Scenario().input_tokens
    assert [q.scenario.input_tokens for q in provider.requests] == [1, 2, 3, 99, 12]
    assert json.loads(provider.requests[3].headers["x-fake-scenario"])["input_tokens"] == 99


def test_header_scenario_with_anthropic_extra_headers(
    provider: FakeProvider, ant: anthropic.Anthropic
) -> None:
    header = {
        "x-fake-scenario": json.dumps({"input_tokens": 500, "cached_tokens": 4000, "cache_creation_5m": 10})
    }
    m = ant.messages.create(model="claude-x", max_tokens=8, messages=MESSAGES, extra_headers=header)
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens, m.usage.cache_creation_input_tokens) == (
        500,
        4000,
        10,
    )


def test_invalid_header_is_a_400(
    provider: FakeProvider, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.BadRequestError, match="unknown fields: bogus"):
        oai.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"x-fake-scenario": '{"bogus": 1}'}
        )
    with pytest.raises(anthropic.BadRequestError):
        ant.messages.create(
            model="m", max_tokens=8, messages=MESSAGES, extra_headers={"x-fake-scenario": "[1]"}
        )


def test_constructor_default_scenario() -> None:
    default = Scenario(input_tokens=321, output_tokens=0, text="", model="fixed-model")
    with FakeProvider(default=default) as fake:
        client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)
        m = client.messages.create(model="claude-x", max_tokens=8, messages=MESSAGES)
        assert (m.usage.input_tokens, m.usage.output_tokens, m.model, m.content[0].text) == (  # type: ignore[union-attr]
            321,
            0,
            "fixed-model",
            "",
        )
        assert fake.requests[0].scenario is default


# --- failures ------------------------------------------------------------------------------------


def test_openai_errors(provider: FakeProvider, oai: openai.OpenAI) -> None:
    provider.push(Scenario(error_status=429), Scenario(error_status=500))
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert limited.value.status_code == 429 and limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "1"
    assert isinstance(limited.value.body, dict) and set(limited.value.body) == {
        "message",
        "type",
        "param",
        "code",
    }
    with pytest.raises(openai.InternalServerError) as failed:
        oai.responses.create(model="m", input="x", stream=True)
    assert failed.value.status_code == 500 and failed.value.type == "server_error"


def test_anthropic_errors(provider: FakeProvider, ant: anthropic.Anthropic) -> None:
    provider.push(Scenario(error_status=429), Scenario(error_status=500), Scenario(error_status=529))
    with pytest.raises(anthropic.RateLimitError) as limited:
        ant.messages.create(model="m", max_tokens=8, messages=MESSAGES)
    assert limited.value.status_code == 429 and limited.value.response.headers["retry-after"] == "1"
    assert limited.value.body["type"] == "error"  # type: ignore[index]
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as failed:
        ant.messages.create(model="m", max_tokens=8, messages=MESSAGES, stream=True)
    assert failed.value.status_code == 500 and failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    with (
        pytest.raises(anthropic.OverloadedError) as overloaded,
        ant.messages.stream(model="m", max_tokens=8, messages=MESSAGES) as stream,
    ):
        stream.get_final_message()
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_cut_stream_raises_mid_iteration(
    provider: FakeProvider, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    provider.push(Scenario(cut_stream_after=2, text="one two three four"), Scenario(cut_stream_after=4))
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert len(received) == 2
    events: list[Any] = []
    with pytest.raises((anthropic.APIConnectionError, _transport.TransportError)):
        for event in ant.messages.create(model="m", max_tokens=8, messages=MESSAGES, stream=True):
            events.append(event)
    # message_start, content_block_start, (ping: skipped by the SDK), one text delta, then the drop
    assert [e.type for e in events] == ["message_start", "content_block_start", "content_block_delta"]
    # the client and server both recover: the next call on the same client works
    assert oai.chat.completions.create(model="m", messages=MESSAGES).usage is not None


async def test_cut_stream_async(provider: FakeProvider) -> None:
    client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
    provider.push(Scenario(cut_stream_after=5))
    stream = await client.responses.create(model="m", input="x", stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            received.append(event.type)
    assert len(received) == 5 and "response.completed" not in received


def test_stalled_stream_times_out_mid_iteration(
    provider: FakeProvider, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    provider.push(Scenario(stall_stream_after=3, text="one two three four"), Scenario(stall_stream_after=4))
    received: list[Any] = []
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        for chunk in oai.with_options(timeout=0.3).chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        ):
            received.append(chunk)
    assert len(received) == 3  # role chunk, "one ", "two ": then nothing until the client gave up
    events: list[Any] = []
    with pytest.raises((anthropic.APITimeoutError, _transport.TimeoutException)):
        stream = ant.with_options(timeout=0.3).messages.create(
            model="m", max_tokens=8, messages=MESSAGES, stream=True
        )
        for event in stream:
            events.append(event.type)
    # message_start, content_block_start, (ping: skipped by the SDK), one text delta, then silence
    assert events == ["message_start", "content_block_start", "content_block_delta"]
    assert time.monotonic() - started < 3
    assert oai.chat.completions.create(model="m", messages=MESSAGES).usage is not None


def test_delay_with_short_timeout_raises(
    provider: FakeProvider, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    provider.push(Scenario(delay_s=3), Scenario(delay_s=3))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.2).chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(anthropic.APITimeoutError):
        ant.with_options(timeout=0.2).messages.create(model="m", max_tokens=8, messages=MESSAGES)
    assert time.monotonic() - started < 2
    provider.push(Scenario(delay_s=0.05))
    assert oai.chat.completions.create(model="m", messages=MESSAGES).usage is not None


# --- HTTP behaviour -------------------------------------------------------------------------------


def test_keep_alive_content_length_and_chunked_sse(provider: FakeProvider) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", provider.port, timeout=5)
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES})
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    first = conn.getresponse()
    assert first.status == 200 and first.version == 11
    payload = first.read()
    assert int(first.headers["content-length"]) == len(payload) and first.headers["x-request-id"].startswith(
        "req_"
    )
    sock = conn.sock
    conn.request(
        "POST",
        "/v1/messages",
        json.dumps({"model": "c", "stream": True}),
        {"content-type": "application/json"},
    )
    second = conn.getresponse()
    assert conn.sock is sock  # same TCP connection: keep-alive
    assert second.headers["transfer-encoding"] == "chunked" and second.headers["content-type"].startswith(
        "text/event-stream"
    )
    frames = second.read().decode().split("\n\n")
    assert frames[0].startswith("event: message_start\ndata: ")
    conn.request("GET", "/v1/nope")
    missing = conn.getresponse()
    assert missing.status == 404 and "error" in json.loads(missing.read())
    conn.close()


def test_many_calls_through_one_client_from_threads(provider: FakeProvider, oai: openai.OpenAI) -> None:
    def call(n: int) -> int:
        r = oai.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"x-fake-scenario": json.dumps({"input_tokens": n})}
        )
        assert r.usage is not None
        return r.usage.prompt_tokens

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(call, range(1, 101))) == list(range(1, 101))
    assert sorted(r.scenario.input_tokens for r in provider.requests) == list(range(1, 101))


def test_stop_is_prompt_and_frees_the_port() -> None:
    fake = FakeProvider().start()
    port = fake.port
    idle = socket.create_connection(("127.0.0.1", port))  # an idle keep-alive connection
    fake.push(Scenario(delay_s=30))
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0, timeout=10)
    errors: list[BaseException] = []

    def slow_call() -> None:
        try:
            client.chat.completions.create(model="m", messages=MESSAGES)
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=slow_call)
    caller.start()
    deadline = time.monotonic() + 5
    while not fake.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    caller.join(5)
    assert isinstance(errors[0], openai.APIConnectionError)  # the in-flight call ends instead of hanging
    assert idle.recv(1) == b""  # the idle connection was closed by the server
    idle.close()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_process_mode_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmcost_demo.fake_provider", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"fake provider listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        client = openai.OpenAI(base_url=match.group(1) + "/v1", api_key="t", max_retries=0)
        r = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"x-fake-scenario": '{"input_tokens": 1000}'},
        )
        assert r.usage is not None and r.usage.prompt_tokens == 1000
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
