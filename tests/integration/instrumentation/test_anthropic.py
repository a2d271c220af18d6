"""Our Anthropic instrumentor through the real anthropic SDK and the fake: ``messages.create``
(streaming or not), ``messages.stream``, raw responses, errors, platform clients, content capture,
and standing aside for clients that trace themselves (the SDK's own spans, attributed by our
processor, so a call is never billed twice).

Anthropic reports ``input_tokens`` EXCLUDING cache reads and writes; our spans' input includes them
(OTel semantics), and cache writes keep their 5m/1h split.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import anthropic
import pytest
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_llmcost
from otel_llmcost.instrumentation.anthropic import provider_of

from .helpers import (
    ANTHROPIC_SCENARIO,
    ANTHROPIC_USAGE,
    CLAUDE,
    MESSAGES,
    TEXT,
    Otel,
    aclaude,
    attrs,
    claude,
    usage_of,
)

pytestmark = pytest.mark.integration

CALLS = [
    "create",
    "create_stream",
    "stream",
]  # messages.create, messages.create(stream=True), messages.stream
KWARGS: dict[str, Any] = {"model": CLAUDE, "max_tokens": 64, "messages": MESSAGES}


def check_sync_result(c: anthropic.Anthropic, how: str) -> str:
    """Make the call; check what the caller gets; return the text."""
    if how == "create":
        return c.messages.create(**KWARGS).content[0].text  # type: ignore[union-attr]
    if how == "create_stream":
        events = list(c.messages.create(**KWARGS, stream=True))
        assert events[-1].type == "message_stop"  # the caller sees every event
        return "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
    with c.messages.stream(**KWARGS) as stream:
        message = stream.get_final_message()
    assert message.usage.output_tokens == 80
    return message.content[0].text  # type: ignore[union-attr]


async def check_async_result(c: anthropic.AsyncAnthropic, how: str) -> str:
    if how == "create":
        return (await c.messages.create(**KWARGS)).content[0].text  # type: ignore[union-attr]
    if how == "create_stream":
        events = [e async for e in await c.messages.create(**KWARGS, stream=True)]
        assert events[-1].type == "message_stop"
        return "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
    async with c.messages.stream(**KWARGS) as stream:
        message = await stream.get_final_message()
    assert message.usage.output_tokens == 80
    return message.content[0].text  # type: ignore[union-attr]


def check_our_span(span: ReadableSpan) -> None:
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "otel_llmcost.instrumentation.anthropic"
    assert (span.name, span.kind) == (f"chat {CLAUDE}", SpanKind.CLIENT)
    a = attrs(span)
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == CLAUDE
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.response.model"] == CLAUDE
    assert a["gen_ai.response.id"].startswith("msg_")
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert (a["llmcost.team"], a["session.id"]) == ("legal", "s-1")
    assert usage_of(span) == ANTHROPIC_USAGE
    assert "gen_ai.input.messages" not in a


@pytest.mark.parametrize("how", CALLS)
def test_our_span_when_sdk_tracing_off(fake: FakeProvider, ours_only: Otel, how: str) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    with otel_llmcost.attribute(team="legal", session_id="s-1"):
        assert check_sync_result(claude(fake), how) == TEXT
    check_our_span(ours_only.only())


@pytest.mark.parametrize("how", CALLS)
async def test_our_span_when_sdk_tracing_off_async(fake: FakeProvider, ours_only: Otel, how: str) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    with otel_llmcost.attribute(team="legal", session_id="s-1"):
        assert await check_async_result(aclaude(fake), how) == TEXT
    check_our_span(ours_only.only())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True])
async def test_with_raw_response(fake: FakeProvider, ours_only: Otel, is_async: bool, stream: bool) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    c = aclaude(fake) if is_async else claude(fake)
    raw = c.messages.with_raw_response.create(**KWARGS, stream=stream)
    raw = await raw if is_async else raw
    parsed = raw.parse()
    parsed = await parsed if inspect.isawaitable(parsed) else parsed
    if stream:
        _ = [e async for e in parsed] if is_async else list(parsed)
    else:
        assert parsed.usage.input_tokens == 500  # the caller sees Anthropic's own accounting
    assert usage_of(ours_only.only()) == ANTHROPIC_USAGE


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("status", "error"), [(529, anthropic.InternalServerError), (429, anthropic.RateLimitError)]
)
async def test_error_span(
    fake: FakeProvider, ours_only: Otel, is_async: bool, status: int, error: type[Exception]
) -> None:
    fake.push(Scenario(error_status=status))
    with pytest.raises(error) as caught:
        result = (aclaude(fake) if is_async else claude(fake)).messages.create(**KWARGS)
        await result if is_async else result
    assert isinstance(caught.value, anthropic.APIStatusError)
    span = ours_only.only()
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == {529: "OverloadedError", 429: "RateLimitError"}[status]


def test_platform_clients_name_their_provider(ours_only: Otel) -> None:
    bedrock = anthropic.AnthropicBedrock(aws_region="us-east-1", aws_access_key="a", aws_secret_key="b")
    assert provider_of(bedrock) == "aws.bedrock"
    # Vertex shares the Messages resource: the call is instrumented. Nothing listens on port 9, so
    # the call fails, and the failed call still has its span, with the provider.
    vertex = anthropic.AnthropicVertex(
        region="us-east5", project_id="p", access_token="x", base_url="http://127.0.0.1:9/v1",
        max_retries=0,
    )  # fmt: skip
    with pytest.raises(anthropic.APIConnectionError):
        vertex.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=10, messages=MESSAGES)
    a = attrs(ours_only.only())
    assert (a["gen_ai.provider.name"], a["server.address"]) == ("gcp.vertex_ai", "127.0.0.1")
    assert a["error.type"] == "APIConnectionError"


def test_capture_content_is_opt_in(
    fake: FakeProvider, ours_only: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    claude(fake).messages.create(**KWARGS)
    assert "gen_ai.input.messages" not in attrs(ours_only.only())
    ours_only.exporter.clear()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    fake.push(ANTHROPIC_SCENARIO)
    claude(fake).messages.create(**KWARGS)
    assert json.loads(attrs(ours_only.only())["gen_ai.input.messages"]) == MESSAGES


# --- clients that trace themselves ----------------------------------------------------------------


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


@pytest.mark.parametrize("how", CALLS)
def test_sdk_traces_itself_one_span(fake: FakeProvider, ant: Otel, how: str) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    with otel_llmcost.attribute(team="legal", feature="contracts", user_id="u-9"):
        assert check_sync_result(claude(fake), how) == TEXT
    check_sdk_span(ant.only())


@pytest.mark.parametrize("how", CALLS)
async def test_sdk_traces_itself_one_span_async(fake: FakeProvider, ant: Otel, how: str) -> None:
    fake.push(ANTHROPIC_SCENARIO)
    with otel_llmcost.attribute(team="legal", feature="contracts", user_id="u-9"):
        assert await check_async_result(aclaude(fake), how) == TEXT
    check_sdk_span(ant.only())


def test_stand_aside_is_decided_per_client(fake: FakeProvider, ant: Otel) -> None:
    """A self-tracing client gets the SDK's span; one with its tracing off gets ours; one each."""
    with otel_llmcost.attribute(team="support"):
        for c in (claude(fake, open_telemetry=None), claude(fake, open_telemetry=False)):
            fake.push(ANTHROPIC_SCENARIO)
            c.messages.create(model=CLAUDE, max_tokens=10, messages=MESSAGES)
    native, ours = ant.spans()
    assert native.instrumentation_scope is not None and ours.instrumentation_scope is not None
    assert native.instrumentation_scope.name == "com.anthropic.sdk.python"
    assert ours.instrumentation_scope.name == "otel_llmcost.instrumentation.anthropic"
    for span in (native, ours):
        a = attrs(span)
        assert a["llmcost.team"] == "support"
        assert a["gen_ai.usage.input_tokens"] == 1900
