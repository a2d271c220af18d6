"""Failed calls are billed as providers bill them, end to end.

Real ``openai`` and ``anthropic`` SDK calls against the fake provider, our instrumentors on an SDK
TracerProvider, the standard OTLP/HTTP exporter, a running collector, and the ledger row read back:

* a provider error answer (429, 529) reports no usage and consumed nothing: $0, an error row with
  its ``error.type``, counted in ``llmcost_requests_total{status="error"}``;
* a connection that never opened sent nothing: $0 too;
* a call abandoned after its request went out (a client timeout, a cancelled task, a stream that
  stalled or was cut mid-answer) was processed by the provider and is billed: the input is
  estimated from the request with the offline tokenizer, the output from what was received, the
  row is flagged ``usage_estimated`` and priced.

Dollars are exact: list prices per million tokens (genai-prices) are gpt-4o-mini $0.15 input /
$0.60 output and claude-haiku-4-5 $1 / $5, i.e. 150 / 600 and 1,000 / 5,000 nano-dollars a token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
from llmcost_collector.app import CollectorApp
from llmcost_collector.ledger import LedgerEntry
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import otel_llmcost
from otel_llmcost import AttributionSpanProcessor
from otel_llmcost.estimate import estimate_tokens
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor
from tests.integration.conftest import FAR_FUTURE, Collectors, metric

pytestmark = pytest.mark.integration

PROMPT = "Summarise the attached quarterly invoice dispute in three short sentences."
MESSAGES = [{"role": "user", "content": PROMPT}]
SYSTEM = "You are a terse billing assistant."
GPT, CLAUDE = "gpt-4o-mini", "claude-haiku-4-5"
TEXT = "alpha beta gamma delta epsilon zeta"
TIMEOUT = 0.3  # the client's; the fake provider waits 3 s (delay) or for ever (stall)


@dataclass
class Wire:
    app: CollectorApp
    fake: FakeProvider
    provider: TracerProvider

    def openai(self, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.fake.openai_base_url, api_key="t", max_retries=0, **options)

    def aopenai(self, **options: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.fake.openai_base_url, api_key="t", max_retries=0, **options)

    def claude(self, **options: Any) -> anthropic.Anthropic:
        # the SDK's own tracing off: our instrumentor's span is the call's one span
        return anthropic.Anthropic(
            base_url=self.fake.anthropic_base_url, api_key="t", max_retries=0, open_telemetry=False, **options
        )

    def traced_claude(self, **options: Any) -> anthropic.Anthropic:
        """A client with the anthropic SDK's own tracing (its default): the SDK's span is the one."""
        return anthropic.Anthropic(
            base_url=self.fake.anthropic_base_url, api_key="t", max_retries=0,
            open_telemetry={"tracer_provider": self.provider}, **options,
        )  # fmt: skip

    def row(self) -> LedgerEntry:
        """The ledger's one row (the exporter is synchronous and acknowledged after the commit)."""
        (entry,) = self.app.ledger.entries(0, FAR_FUTURE)
        return entry


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def wire(collector: Collectors, fake: FakeProvider) -> Iterator[Wire]:
    fake.reset()
    app = collector()
    provider = TracerProvider(resource=Resource.create({"service.name": "billing-bot"}))
    provider.add_span_processor(AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=app.urls()["otlp_http"])))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    AnthropicInstrumentor().instrument(tracer_provider=provider)
    try:
        with otel_llmcost.attribute(team="finance", feature="disputes"):
            yield Wire(app, fake, provider)
    finally:
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
        provider.shutdown()


def tokens(row: LedgerEntry) -> tuple[int, int, int, int]:
    return row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens


def billed(row: LedgerEntry) -> tuple[str, int | None, int | None, int]:
    return row.price_status, row.list_cost_nanos, row.contracted_cost_nanos, row.usage_estimated


def errors_counted(wire: Wire, provider: str, model: str) -> float:
    labels = {"team": "finance", "feature": "disputes", "environment": "", "provider": provider}
    return metric(wire.app, "llmcost_requests_total", **labels, model=model, status="error")


# --- the provider answered with an error: nothing consumed, $0, counted -------------------------


def test_openai_error_answer_is_zero_dollars_and_counted(wire: Wire) -> None:
    wire.fake.push(Scenario(error_status=429))
    with pytest.raises(openai.RateLimitError):
        wire.openai().chat.completions.create(model=GPT, messages=MESSAGES)
    row = wire.row()
    assert (row.status, row.error_type, row.team) == ("error", "RateLimitError", "finance")
    assert tokens(row) == (0, 0, 0, 0)
    assert billed(row) == ("priced", 0, 0, 0)  # priced at $0, not unpriced: the model is known
    assert errors_counted(wire, "openai", GPT) == 1


def test_anthropic_error_answer_is_zero_dollars_and_counted(wire: Wire) -> None:
    wire.fake.push(Scenario(error_status=529))
    with pytest.raises(anthropic.InternalServerError):
        wire.claude().messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)
    row = wire.row()
    assert (row.status, row.error_type) == ("error", "OverloadedError")
    assert (tokens(row), billed(row)) == ((0, 0, 0, 0), ("priced", 0, 0, 0))
    assert errors_counted(wire, "anthropic", CLAUDE) == 1


def test_a_connection_that_never_opened_is_zero_dollars(wire: Wire) -> None:
    nowhere = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="t", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        nowhere.chat.completions.create(model=GPT, messages=MESSAGES)
    row = wire.row()
    assert (row.status, row.error_type) == ("error", "APIConnectionError")
    assert (tokens(row), billed(row)) == ((0, 0, 0, 0), ("priced", 0, 0, 0))


# --- abandoned after sending: the prompt was consumed, estimated and priced ---------------------


def test_openai_client_timeout_bills_the_estimated_prompt(wire: Wire) -> None:
    wire.fake.push(Scenario(delay_s=3))
    with pytest.raises(openai.APITimeoutError):
        wire.openai(timeout=TIMEOUT).chat.completions.create(model=GPT, messages=MESSAGES)
    row = wire.row()
    prompt = estimate_tokens(PROMPT)
    assert (row.status, row.error_type) == ("error", "APITimeoutError")
    assert tokens(row) == (prompt, 0, 0, 0)  # nothing was received: no output
    assert billed(row) == ("priced", prompt * 150, prompt * 150, 1)
    assert errors_counted(wire, "openai", GPT) == 1


def test_anthropic_client_timeout_bills_the_estimated_prompt_and_system(wire: Wire) -> None:
    wire.fake.push(Scenario(delay_s=3))
    with pytest.raises(anthropic.APITimeoutError):
        wire.claude(timeout=TIMEOUT).messages.create(
            model=CLAUDE, max_tokens=64, system=SYSTEM, messages=MESSAGES
        )
    row = wire.row()
    prompt = estimate_tokens(f"{SYSTEM}\n{PROMPT}")
    assert (row.status, row.error_type, tokens(row)) == ("error", "APITimeoutError", (prompt, 0, 0, 0))
    assert billed(row) == ("priced", prompt * 1_000, prompt * 1_000, 1)


def test_a_cancelled_async_call_bills_the_estimated_prompt(wire: Wire) -> None:
    wire.fake.push(Scenario(delay_s=3))

    async def call_and_give_up() -> None:
        request = wire.aopenai().chat.completions.create(model=GPT, messages=MESSAGES)
        await asyncio.wait_for(request, TIMEOUT)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(call_and_give_up())
    row = wire.row()
    prompt = estimate_tokens(PROMPT)
    assert (row.status, row.error_type) == ("error", "CancelledError")
    assert (tokens(row), billed(row)) == ((prompt, 0, 0, 0), ("priced", prompt * 150, prompt * 150, 1))


def test_openai_stream_that_stalls_bills_the_prompt_and_the_output_received(wire: Wire) -> None:
    wire.fake.push(Scenario(stall_stream_after=4, text=TEXT))
    received: list[str] = []
    stream = wire.openai(timeout=TIMEOUT).chat.completions.create(model=GPT, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APITimeoutError):
        for chunk in stream:
            received.extend(choice.delta.content or "" for choice in chunk.choices)
    assert "".join(received) == "alpha beta gamma "  # role chunk + three words, then silence
    row = wire.row()
    prompt, output = estimate_tokens(PROMPT), estimate_tokens("alpha beta gamma ")
    assert (row.status, row.error_type, tokens(row)) == ("error", "APITimeoutError", (prompt, 0, 0, output))
    cost = prompt * 150 + output * 600
    assert billed(row) == ("priced", cost, cost, 1)


def test_openai_stream_cut_by_the_network_bills_what_was_consumed(wire: Wire) -> None:
    wire.fake.push(Scenario(cut_stream_after=3, text=TEXT))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in wire.openai().chat.completions.create(model=GPT, messages=MESSAGES, stream=True):
            received.extend(choice.delta.content or "" for choice in chunk.choices)
    row = wire.row()
    prompt, output = estimate_tokens(PROMPT), estimate_tokens("".join(received))
    assert output > 0 and tokens(row) == (prompt, 0, 0, output)
    cost = prompt * 150 + output * 600
    assert (row.error_type, billed(row)) == ("APIConnectionError", ("priced", cost, cost, 1))


@pytest.mark.parametrize("helper", [False, True], ids=["create-stream", "stream-helper"])
def test_anthropic_stream_that_stalls_keeps_the_reported_input_and_estimates_the_output(
    wire: Wire, helper: bool
) -> None:
    # Anthropic's message_start reports the input exactly (and 1 output token so far); the final
    # output count would come in message_delta, which never arrives.
    wire.fake.push(Scenario(input_tokens=900, cached_tokens=100, stall_stream_after=6, text=TEXT))
    received: list[str] = []
    client = wire.claude(timeout=TIMEOUT)
    request: dict[str, Any] = {"model": CLAUDE, "max_tokens": 64, "messages": MESSAGES}
    with pytest.raises(Exception) as stalled:  # this SDK surfaces the transport's own timeout mid-stream
        if helper:
            with client.messages.stream(**request) as stream:
                received.extend(stream.text_stream)
        else:
            for event in client.messages.create(**request, stream=True):
                if event.type == "content_block_delta":
                    received.append(event.delta.text)
    assert "timed out" in str(stalled.value).lower() or "timeout" in type(stalled.value).__name__.lower()
    assert "".join(received) == "alpha beta gamma "
    row = wire.row()
    output = estimate_tokens("alpha beta gamma ")
    assert (row.status, tokens(row)) == ("error", (900, 100, 0, output))
    cost = 900 * 1_000 + 100 * 100 + output * 5_000  # cache reads are $0.10 per million: 100 nano-$
    assert billed(row) == ("priced", cost, cost, 1)


# --- the anthropic SDK's own spans: the same rules ------------------------------------------------


def test_sdk_traced_anthropic_error_answer_is_zero_dollars(wire: Wire) -> None:
    wire.fake.push(Scenario(error_status=529))
    with pytest.raises(anthropic.InternalServerError):
        wire.traced_claude().messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)
    row = wire.row()
    assert (row.status, row.error_type, row.team) == (
        "error",
        "overloaded_error",
        "finance",
    )  # the SDK's name
    assert (tokens(row), billed(row)) == ((0, 0, 0, 0), ("priced", 0, 0, 0))


def test_sdk_traced_anthropic_timeout_bills_the_estimated_prompt(wire: Wire) -> None:
    wire.fake.push(Scenario(delay_s=3))
    with pytest.raises(anthropic.APITimeoutError):
        wire.traced_claude(timeout=TIMEOUT).messages.create(
            model=CLAUDE, max_tokens=64, system=SYSTEM, messages=MESSAGES
        )
    row = wire.row()
    prompt = estimate_tokens(f"{SYSTEM}\n{PROMPT}")
    assert (row.status, row.error_type, tokens(row)) == ("error", "client_timeout_error", (prompt, 0, 0, 0))
    assert billed(row) == ("priced", prompt * 1_000, prompt * 1_000, 1)


def test_sdk_traced_anthropic_call_that_succeeds_is_not_estimated(wire: Wire) -> None:
    wire.fake.push(Scenario(input_tokens=40, output_tokens=9))
    wire.traced_claude().messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)
    row = wire.row()
    assert (row.status, tokens(row)) == ("ok", (40, 0, 0, 9))
    assert billed(row) == ("priced", 40 * 1_000 + 9 * 5_000, 40 * 1_000 + 9 * 5_000, 0)
