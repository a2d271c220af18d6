"""otel_llmcost's attribution API and span processor: scopes, nesting, tasks, threads, baggage."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import baggage, context, propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_llmcost
from otel_llmcost import current_attribution
from otel_llmcost.context import env_defaults


@pytest.fixture
def traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(otel_llmcost.AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def genai_span(provider: TracerProvider, scope: str = "test", **attributes: str) -> None:
    attrs = {"gen_ai.operation.name": "chat", **attributes}
    with provider.get_tracer(scope).start_as_current_span("chat m", attributes=attrs):
        pass


def test_every_keyword_maps_to_its_contract_name() -> None:
    with otel_llmcost.attribute(
        team="t", feature="f", user_id="u", session_id="s", session_name="n", session_path="/p",
        environment="staging", user_tier="premium", use_case="triage", tenant="acme", region=3,
    ):  # fmt: skip
        assert current_attribution() == {
            "llmcost.team": "t", "llmcost.feature": "f", "user.id": "u", "session.id": "s",
            "llmcost.session.name": "n", "llmcost.session.path": "/p",
            "deployment.environment.name": "staging", "llmcost.user_tier": "premium",
            "llmcost.use_case": "triage", "llmcost.property.tenant": "acme", "llmcost.property.region": "3",
        }  # fmt: skip


def test_nesting_overrides_and_session_paths_compose() -> None:
    with otel_llmcost.attribute(team="search", feature="answers", session_path="/analyze", tenant="acme"):
        with otel_llmcost.attribute(feature="rerank", session_path="/extract", team=None):
            inner = current_attribution()
            with otel_llmcost.attribute(session_path="score"):
                innermost = current_attribution()["llmcost.session.path"]
        outer = current_attribution()
    assert inner == {
        "llmcost.team": "search",
        "llmcost.feature": "rerank",
        "llmcost.session.path": "/analyze/extract",
        "llmcost.property.tenant": "acme",
    }
    assert innermost == "/analyze/extract/score"
    assert outer["llmcost.feature"] == "answers" and outer["llmcost.session.path"] == "/analyze"
    assert current_attribution() == {}


def test_decorator_on_functions_coroutines_and_generators() -> None:
    @otel_llmcost.attribute(team="support")
    def sync_work() -> dict[str, str]:
        return current_attribution()

    @otel_llmcost.attribute(team="billing", user_id="u-9")
    async def async_work() -> dict[str, str]:
        await asyncio.sleep(0)
        return current_attribution()

    @otel_llmcost.attribute(feature="gen")
    def generator() -> Iterator[str]:
        yield current_attribution()["llmcost.feature"]
        yield current_attribution()["llmcost.feature"]

    @otel_llmcost.attribute(feature="agen")
    async def agenerator() -> AsyncIterator[str]:
        for _ in range(2):
            await asyncio.sleep(0)
            yield current_attribution()["llmcost.feature"]

    async def consume() -> list[str]:
        seen = []
        async for value in agenerator():
            seen.append(value)
            seen.append(current_attribution().get("llmcost.feature", "-"))  # the caller is outside
        return seen

    assert sync_work() == {"llmcost.team": "support"}
    assert asyncio.run(async_work()) == {"llmcost.team": "billing", "user.id": "u-9"}
    seen = []
    for value in generator():
        seen += [value, current_attribution().get("llmcost.feature", "-")]
    assert seen == ["gen", "-", "gen", "-"]
    assert asyncio.run(consume()) == ["agen", "-", "agen", "-"]
    assert sync_work() == {"llmcost.team": "support"}  # a decorator is reusable
    assert current_attribution() == {}


def test_concurrent_tasks_do_not_see_each_other() -> None:
    async def worker(team: str) -> str:
        with otel_llmcost.attribute(team=team):
            await asyncio.sleep(0.005)
            return current_attribution()["llmcost.team"]

    async def main() -> list[str]:
        with otel_llmcost.attribute(feature="batch"):
            return list(await asyncio.gather(*(worker(f"team-{n}") for n in range(5))))

    assert asyncio.run(main()) == [f"team-{n}" for n in range(5)]


def test_threads_get_attribution_only_when_the_context_is_carried() -> None:
    seen: dict[str, dict[str, str]] = {}
    with otel_llmcost.attribute(team="platform"):
        plain = threading.Thread(target=lambda: seen.setdefault("plain", current_attribution()))
        ctx = contextvars.copy_context()
        carried = threading.Thread(target=lambda: seen.setdefault("carried", ctx.run(current_attribution)))
        plain.start(), carried.start()
        plain.join(), carried.join()
        otel_ctx = context.get_current()
        with ThreadPoolExecutor(2) as pool:
            seen["pool"] = pool.submit(contextvars.copy_context().run, current_attribution).result()

            def with_otel_context() -> dict[str, str]:
                token = context.attach(otel_ctx)
                try:
                    return current_attribution()
                finally:
                    context.detach(token)

            seen["attached"] = pool.submit(with_otel_context).result()
    assert seen == {
        "plain": {},
        "carried": {"llmcost.team": "platform"},
        "pool": {"llmcost.team": "platform"},
        "attached": {"llmcost.team": "platform"},
    }


def test_values_are_baggage_and_go_out_with_propagate_inject() -> None:
    headers: dict[str, str] = {}
    with otel_llmcost.attribute(team="checkout", user_id="u 1", session_path="/a"):
        assert baggage.get_baggage("llmcost.team") == "checkout"
        propagate.inject(headers)
    assert sorted(pair.split("=", 1)[0] for pair in headers["baggage"].split(",")) == [
        "llmcost.session.path", "llmcost.team", "user.id",
    ]  # fmt: skip
    # What a downstream service reads back from the header (values are percent-encoded on the wire).
    assert current_attribution(propagate.extract(headers)) == {
        "llmcost.team": "checkout", "user.id": "u 1", "llmcost.session.path": "/a",
    }  # fmt: skip


def test_incoming_baggage_is_honoured(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = traced
    headers = {"baggage": "llmcost.team=checkout,user.id=u-1,llmcost.session.path=%2Forder,unrelated=x"}
    token = context.attach(propagate.extract(headers))
    try:
        with otel_llmcost.attribute(session_path="/refund"):  # a local scope nests under the caller's
            genai_span(provider)
    finally:
        context.detach(token)
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "llmcost.team": "checkout",
        "user.id": "u-1",
        "llmcost.session.path": "/order/refund",
    }


def test_env_defaults_fill_what_the_context_leaves_open(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "OTEL_LLMCOST_TEAM": "platform", "OTEL_LLMCOST_FEATURE": "search", "OTEL_LLMCOST_USE_CASE": "rag",
        "OTEL_LLMCOST_USER_TIER": "free", "OTEL_LLMCOST_ENVIRONMENT": "staging",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert env_defaults() == {
        "llmcost.team": "platform", "llmcost.feature": "search", "llmcost.use_case": "rag",
        "llmcost.user_tier": "free", "deployment.environment.name": "staging",
    }  # fmt: skip
    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(otel_llmcost.AttributionSpanProcessor())  # reads the environment
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with otel_llmcost.attribute(feature="chat"):
        genai_span(provider)
    attrs = exporter.get_finished_spans()[0].attributes or {}
    assert (attrs["llmcost.team"], attrs["llmcost.feature"], attrs["deployment.environment.name"]) == (
        "platform", "chat", "staging",
    )  # fmt: skip


def test_processor_stamps_genai_spans_only_and_never_overwrites(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    tracer = provider.get_tracer("app")
    with otel_llmcost.attribute(team="search", feature="chat"):
        genai_span(provider)  # gen_ai.* attribute at start
        with tracer.start_as_current_span("GET /orders"):  # not a GenAI span: untouched
            pass
        with tracer.start_as_current_span(
            "chat x", attributes={"gen_ai.system": "openai", "llmcost.team": "own"}
        ):
            pass
        with tracer.start_as_current_span("llm", attributes={"llm.model_name": "m"}):  # OpenInference
            pass
        # Bare at start, but from a GenAI instrumentation scope (attributes come later).
        with provider.get_tracer("opentelemetry.instrumentation.anthropic").start_as_current_span("x"):
            pass
    llm, http, own, oi, scoped = exporter.get_finished_spans()
    assert (llm.attributes or {})["llmcost.team"] == "search"
    assert dict(http.attributes or {}) == {}
    assert (own.attributes or {})["llmcost.team"] == "own" and (own.attributes or {})[
        "llmcost.feature"
    ] == "chat"
    assert (oi.attributes or {})["llmcost.feature"] == "chat"
    assert dict(scoped.attributes or {}) == {"llmcost.team": "search", "llmcost.feature": "chat"}


def test_record_outcome_is_its_own_attributed_span(
    traced: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace

    provider, exporter = traced
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    with otel_llmcost.attribute(team="support", feature="triage", session_id="s-1"):
        otel_llmcost.record_outcome("ticket_resolved", 2, channel="email")
    with pytest.raises(ValueError):
        otel_llmcost.record_outcome("ticket_resolved", 0)
    (span,) = exporter.get_finished_spans()
    assert span.name == "outcome ticket_resolved"
    assert dict(span.attributes or {}) == {
        "llmcost.outcome": "ticket_resolved", "llmcost.outcome.count": 2, "llmcost.property.channel": "email",
        "llmcost.team": "support", "llmcost.feature": "triage", "session.id": "s-1",
    }  # fmt: skip
