"""Peer instrumentations' spans beyond the matrix's call kinds (async, embeddings, errors, no
scope, nested scopes), each with our AttributionSpanProcessor, read back by the collector's
normalizer. The sync / stream / Responses / cache / reasoning cases, through a running collector,
are in ``test_matrix.py``.

Each test instruments a real ``openai`` client (against the loopback FakeProvider) with ONE
third-party instrumentor, never ours at the same time:

* ``opentelemetry-instrumentation-openai-v2`` (the official one; OTel GenAI attribute names);
* ``openinference-instrumentation-openai`` (``llm.token_count.*``, ``openinference.span.kind``).

Our processor stamps ``llmcost.team`` / ``llmcost.feature`` / ``user.id`` on their spans, and the
collector's normalizer turns each span into the canonical usage (uncached input = prompt - cached).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
from llmcost_collector.model import LlmCall, SpanView, Usage
from llmcost_collector.normalize.span import normalize_span
from llmcost_demo.fake_provider import FakeProvider, Scenario
from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInferenceInstrumentor
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as OpenLLMetryAnthropic
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OfficialInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_llmcost
from otel_llmcost import AttributionSpanProcessor

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"
MESSAGES = [{"role": "user", "content": "Classify this support ticket: my invoice is wrong."}]

# OpenAI's wire accounting: prompt_tokens 1200 INCLUDES the 200 cached; completion_tokens 300
# INCLUDES the 100 reasoning.
CACHED = Scenario(input_tokens=1200, cached_tokens=200, output_tokens=300, reasoning_tokens=100)
# canonical: uncached input = 1200 - 200 = 1000; cache read 200; output 300 of which reasoning 100
CACHED_USAGE = Usage(input_tokens=1000, cache_read_tokens=200, output_tokens=300, reasoning_tokens=100)
PLAIN = Scenario(input_tokens=1200, output_tokens=300)
PLAIN_USAGE = Usage(input_tokens=1200, output_tokens=300)
EMBED_USAGE = Usage(input_tokens=1200)  # embeddings: prompt_tokens only (1200), no cache, no output

SERVICE = "ticket-router"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@dataclass
class Captured:
    exporter: InMemorySpanExporter
    client: openai.OpenAI
    aclient: openai.AsyncOpenAI
    fake: FakeProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def calls(self) -> list[LlmCall]:
        """Every finished span through the collector's normalizer; non-LLM spans drop out."""
        out = [normalize_span(view(s)) for s in self.spans()]
        return [c for c in out if c is not None]

    def one_call(self) -> tuple[ReadableSpan, LlmCall]:
        spans = self.spans()
        assert len(spans) == 1, [(s.name, s.instrumentation_scope) for s in spans]
        call = normalize_span(view(spans[0]))
        assert call is not None, dict(spans[0].attributes or {})
        return spans[0], call


def plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def view(span: ReadableSpan) -> SpanView:
    """A SpanView exactly as the OTLP decoder would build it from this span."""
    ctx = span.context
    assert ctx is not None
    return SpanView(
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        name=span.name,
        start_time_ns=span.start_time or 0,
        end_time_ns=span.end_time or 0,
        attributes={k: plain(v) for k, v in (span.attributes or {}).items()},
        resource={k: plain(v) for k, v in span.resource.attributes.items()},
        status_code=span.status.status_code.value,  # UNSET 0, OK 1, ERROR 2: OTLP numbering
        status_message=span.status.description or "",
        scope_name=span.instrumentation_scope.name if span.instrumentation_scope else "",
    )


def capture(fake: FakeProvider, instrumentor: Any) -> Iterator[Captured]:
    fake.reset()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield Captured(
            exporter,
            openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0),
            openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0),
            fake,
        )
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


@pytest.fixture
def official(fake: FakeProvider) -> Iterator[Captured]:
    from openai.resources.chat.completions.completions import Completions

    original = vars(Completions)["create"]
    yield from capture(fake, OfficialInstrumentor())
    assert vars(Completions)["create"] is original


@pytest.fixture
def openinference(fake: FakeProvider) -> Iterator[Captured]:
    import openai as module

    original = module.OpenAI.request
    yield from capture(fake, OpenInferenceInstrumentor())
    assert module.OpenAI.request is original


def attribution(span: ReadableSpan) -> tuple[Any, Any, Any]:
    a = span.attributes or {}
    return a.get("llmcost.team"), a.get("llmcost.feature"), a.get("user.id")


def chat(c: Captured, scenario: Scenario, stream: bool = False) -> None:
    c.fake.push(scenario)
    if stream:
        chunks = c.client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    else:
        reply = c.client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert reply.usage is not None and reply.usage.prompt_tokens == scenario.input_tokens


# --- opentelemetry-instrumentation-openai-v2 ------------------------------------------------------


async def test_official_async_chat(official: Captured) -> None:
    official.fake.push(PLAIN)
    with otel_llmcost.attribute(team="async-team", feature="bot", user_id="u-1"):
        await official.aclient.chat.completions.create(model=MODEL, messages=MESSAGES)
    span, call = official.one_call()
    assert attribution(span) == ("async-team", "bot", "u-1")
    assert call.usage == PLAIN_USAGE


def test_official_embeddings(official: Captured) -> None:
    official.fake.push(CACHED)
    with otel_llmcost.attribute(team="search", feature="index", user_id="u-2"):
        official.client.embeddings.create(model=EMBED_MODEL, input="invoice dispute")
    span, call = official.one_call()
    assert attribution(span) == ("search", "index", "u-2")
    assert call.usage == EMBED_USAGE
    assert (call.operation, call.request_model) == ("embeddings", EMBED_MODEL)
    assert call.attribution.team == "search"


def test_official_error_span_is_attributed(official: Captured) -> None:
    official.fake.push(Scenario(error_status=429))
    with otel_llmcost.attribute(team="support"), pytest.raises(openai.RateLimitError):
        official.client.chat.completions.create(model=MODEL, messages=MESSAGES)
    span, call = official.one_call()
    assert attribution(span)[0] == "support"
    assert call.status == "error"
    assert call.attribution.team == "support"
    assert call.usage == Usage()


def test_official_without_scope_gets_nothing(official: Captured) -> None:
    chat(official, PLAIN)
    span, call = official.one_call()
    assert attribution(span) == (None, None, None)
    assert call.attribution.team == ""  # left for the collector's rules / unattributed


# --- openinference-instrumentation-openai -----------------------------------------------------------


async def test_openinference_async_chat(openinference: Captured) -> None:
    openinference.fake.push(CACHED)
    with otel_llmcost.attribute(team="async-fin", user_id="u-3"):
        await openinference.aclient.chat.completions.create(model=MODEL, messages=MESSAGES)
    span, call = openinference.one_call()
    assert attribution(span)[0] == "async-fin"
    assert call.usage == CACHED_USAGE


def test_openinference_embeddings(openinference: Captured) -> None:
    """OpenInference EMBEDDING spans name the model in embedding.model_name, not llm.model_name."""
    openinference.fake.push(CACHED)
    with otel_llmcost.attribute(team="search", feature="index"):
        openinference.client.embeddings.create(model=EMBED_MODEL, input="invoice dispute")
    span, call = openinference.one_call()
    assert attribution(span)[:2] == ("search", "index")
    assert call.usage == EMBED_USAGE
    assert call.request_model == EMBED_MODEL
    assert call.attribution.team == "search"


def test_nested_scopes_and_properties_reach_third_party_spans(openinference: Captured) -> None:
    with (
        otel_llmcost.attribute(team="outer", session_path="/ticket", tenant="acme"),
        otel_llmcost.attribute(team="inner", session_path="/classify"),  # entered inside the outer one
    ):
        chat(openinference, CACHED)
    span, call = openinference.one_call()
    assert attribution(span)[0] == "inner"
    assert call.attribution.team == "inner"
    assert call.attribution.session_path == "/ticket/classify"
    assert call.attribution.properties == {"tenant": "acme"}


# --- OpenLLMetry's Anthropic instrumentation alone (the SDK's own tracing off) ---------------------

# Anthropic wire usage: input_tokens 8000 (uncached only), cache read 5000, cache writes 1000 + 500
ANTHROPIC_SCENARIO = Scenario(input_tokens=8000, cached_tokens=5000, cache_creation_5m=1000, cache_creation_1h=500,
                              output_tokens=300)  # fmt: skip
CLAUDE = "claude-haiku-4-5"


@pytest.mark.parametrize("stream", [False, True])
def test_openllmetry_anthropic_instrumentation(fake: FakeProvider, stream: bool) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenLLMetryAnthropic()
    instrumentor.instrument(tracer_provider=provider)
    try:
        fake.push(ANTHROPIC_SCENARIO)
        client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0,
                                     open_telemetry=False)  # fmt: skip
        response = client.messages.create(
            model=CLAUDE, max_tokens=400, messages=[{"role": "user", "content": "Summarise."}], stream=stream
        )
        if stream:
            list(response)
    finally:
        instrumentor.uninstrument()
    (call,) = [c for c in (normalize_span(view(x)) for x in exporter.get_finished_spans()) if c is not None]
    attributes = exporter.get_finished_spans()[0].attributes or {}
    assert attributes["gen_ai.usage.input_tokens"] == 14500  # OpenLLMetry folds cache into input too
    # 0.62 spells everything in the current OTel names (no llm.request.type), so it reads as OTel
    assert call.dialect == "otel" and attributes["gen_ai.usage.cache_creation.input_tokens"] == 1500
    # OpenLLMetry does not report the 5m/1h split: every write is billed at the 5m rate. Streaming,
    # 0.62.4 adds message_delta's cumulative output count to message_start's 1: it emits 301.
    emitted = 301 if stream else 300
    assert attributes["gen_ai.usage.output_tokens"] == emitted
    assert call.usage == Usage(input_tokens=8000, cache_read_tokens=5000, cache_write_tokens=1500,
                               output_tokens=emitted)  # fmt: skip
