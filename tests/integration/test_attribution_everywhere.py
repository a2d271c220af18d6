"""Attribution: context, nesting, tasks, threads, baggage; stamped on third-party GenAI spans too.

The third-party instrumentations (official openai-v2, OpenInference) instrument a real OpenAI
client against the fake provider; their spans then go through the collector's normalizer, so this
also proves the collector reads their dialects without double counting cached tokens.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from llmcost_collector.model import SpanView
from llmcost_collector.normalize.span import normalize_span
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry import baggage, context, propagate
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_llmcost
from otel_llmcost.context import current_attribution, env_defaults

pytestmark = pytest.mark.integration


@pytest.fixture
def traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(otel_llmcost.AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def genai_span(provider: TracerProvider, name: str = "chat m") -> None:
    with provider.get_tracer("test").start_as_current_span(
        name, attributes={"gen_ai.operation.name": "chat"}
    ):
        pass


def test_nesting_overrides_and_session_paths_compose() -> None:
    with otel_llmcost.attribute(team="search", feature="answers", session_path="/analyze", tenant="acme"):
        with otel_llmcost.attribute(feature="rerank", session_path="/extract"):
            inner = current_attribution()
        outer = current_attribution()
    assert inner == {
        "llmcost.team": "search",
        "llmcost.feature": "rerank",
        "llmcost.session.path": "/analyze/extract",
        "llmcost.property.tenant": "acme",
    }
    assert outer["llmcost.feature"] == "answers" and outer["llmcost.session.path"] == "/analyze"
    assert current_attribution() == {}


def test_decorator_on_sync_and_async_functions() -> None:
    @otel_llmcost.attribute(team="support")
    def sync_work() -> dict[str, str]:
        return current_attribution()

    @otel_llmcost.attribute(team="billing", user_id="u-9")
    async def async_work() -> dict[str, str]:
        await asyncio.sleep(0)
        return current_attribution()

    assert sync_work() == {"llmcost.team": "support"}
    assert asyncio.run(async_work()) == {"llmcost.team": "billing", "user.id": "u-9"}
    assert current_attribution() == {}


def test_concurrent_tasks_do_not_see_each_other() -> None:
    async def worker(team: str) -> str:
        with otel_llmcost.attribute(team=team):
            await asyncio.sleep(0.01)
            return current_attribution()["llmcost.team"]

    async def main() -> list[str]:
        return list(await asyncio.gather(*(worker(f"team-{n}") for n in range(5))))

    assert asyncio.run(main()) == [f"team-{n}" for n in range(5)]


def test_threads_need_the_context_carried() -> None:
    seen: dict[str, dict[str, str]] = {}
    with otel_llmcost.attribute(team="platform"):
        plain = threading.Thread(target=lambda: seen.setdefault("plain", current_attribution()))
        ctx = contextvars.copy_context()
        carried = threading.Thread(target=lambda: seen.setdefault("carried", ctx.run(current_attribution)))
        plain.start(), carried.start()
        plain.join(), carried.join()
    assert seen == {"plain": {}, "carried": {"llmcost.team": "platform"}}


def test_baggage_goes_out_and_incoming_baggage_is_honoured(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    headers: dict[str, str] = {}
    with otel_llmcost.attribute(team="checkout", user_id="u-1"):
        propagate.inject(headers)
    assert "llmcost.team=checkout" in headers["baggage"] and "user.id=u-1" in headers["baggage"]
    # The downstream service extracts the same headers: its GenAI spans are charged to checkout.
    provider, exporter = traced
    token = context.attach(propagate.extract(headers))
    try:
        genai_span(provider)
    finally:
        context.detach(token)
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["llmcost.team"] == "checkout"


def test_processor_defaults_and_boundaries(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    defaults = env_defaults({"OTEL_LLMCOST_TEAM": "platform", "OTEL_LLMCOST_ENVIRONMENT": "staging"})
    provider.add_span_processor(otel_llmcost.AttributionSpanProcessor(defaults=defaults))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with otel_llmcost.attribute(feature="chat"):
        genai_span(provider)
        with tracer.start_as_current_span("GET /orders"):  # not a GenAI span: untouched
            pass
        with tracer.start_as_current_span(
            "chat x", attributes={"gen_ai.system": "openai", "llmcost.team": "own"}
        ):
            pass
    llm, http, own = exporter.get_finished_spans()
    assert {k: v for k, v in (llm.attributes or {}).items() if k != "gen_ai.operation.name"} == {
        "llmcost.feature": "chat", "llmcost.team": "platform", "deployment.environment.name": "staging",
    }  # fmt: skip
    assert dict(http.attributes or {}) == {}
    assert (own.attributes or {})["llmcost.team"] == "own"  # never overwrites what a span set itself


def to_view(span: ReadableSpan) -> SpanView:
    assert span.context is not None
    return SpanView(
        trace_id=f"{span.context.trace_id:032x}",
        span_id=f"{span.context.span_id:016x}",
        name=span.name,
        start_time_ns=span.start_time or 0,
        end_time_ns=span.end_time or 0,
        attributes=dict(span.attributes or {}),
        resource=dict(span.resource.attributes),
        status_code=span.status.status_code.value,
    )


def _official() -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openinference() -> Any:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.mark.parametrize("make_instrumentor", [_official, _openinference], ids=["openai-v2", "openinference"])
def test_third_party_spans_are_attributed_and_normalized(
    make_instrumentor: Any, fake: FakeProvider, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    instrumentor = make_instrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        fake.push(Scenario(input_tokens=1000, cached_tokens=400, output_tokens=250))
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)
        with otel_llmcost.attribute(team="marketing", feature="chat", user_id="u-7"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        instrumentor.uninstrument()
    llm_spans = [s for s in exporter.get_finished_spans() if normalize_span(to_view(s)) is not None]
    assert len(llm_spans) == 1, [s.name for s in exporter.get_finished_spans()]
    attrs = llm_spans[0].attributes or {}
    assert (attrs["llmcost.team"], attrs["llmcost.feature"], attrs["user.id"]) == ("marketing", "chat", "u-7")
    call = normalize_span(to_view(llm_spans[0]))
    assert call is not None
    assert call.model.startswith("gpt-4o-mini")
    assert call.attribution.team == "marketing"
    assert call.usage.output_tokens == 250
    # Cached tokens are part of the reported prompt: uncached = 1000 - 400, when the dialect
    # reports cache reads; never more than the prompt.
    assert call.usage.input_tokens + call.usage.cache_read_tokens == 1000
    assert call.usage.cache_read_tokens in (0, 400)


def test_baggage_api_is_the_storage() -> None:
    with otel_llmcost.attribute(team="x"):
        assert baggage.get_baggage("llmcost.team") == "x"
