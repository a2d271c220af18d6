"""``otel_llmcost.attribute``: scopes, decorators, nesting, isolation between tasks and threads,
and W3C Baggage in and out. Spans are stamped by the processor alone (no instrumentor)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import baggage, context, propagate
from opentelemetry.sdk.trace import ReadableSpan

import otel_llmcost
from otel_llmcost import AttributionSpanProcessor, attribute, current_attribution

from .helpers import GENAI, Traced

# --- context manager and keywords ----------------------------------------------------------------


def test_context_manager_sets_and_restores(traced: Traced) -> None:
    with attribute(team="marketing", feature="chat", user_id="u-42", session_id="s-1", environment="prod"):
        inside = traced.llm_span()
        assert current_attribution()["llmcost.team"] == "marketing"
    after = traced.llm_span()
    assert traced.stamped(inside) == {
        "llmcost.team": "marketing",
        "llmcost.feature": "chat",
        "user.id": "u-42",
        "session.id": "s-1",
        "deployment.environment.name": "prod",
    }
    assert traced.stamped(after) == {}


def test_every_keyword_and_property_maps_to_its_contract_name(traced: Traced) -> None:
    expected = {
        "llmcost.team": "t",
        "llmcost.feature": "f",
        "user.id": "u",
        "session.id": "s",
        "llmcost.session.name": "triage",
        "llmcost.session.path": "/a",
        "deployment.environment.name": "staging",
        "llmcost.user_tier": "premium",
        "llmcost.use_case": "summaries",
        "llmcost.property.api_key_id": "key-9",
        "llmcost.property.experiment": "3",  # stringified: baggage values are strings
    }
    with attribute(
        team="t", feature="f", user_id="u", session_id="s", session_name="triage", session_path="/a",
        environment="staging", user_tier="premium", use_case="summaries", api_key_id="key-9", experiment=3,
    ):  # fmt: skip
        assert current_attribution() == expected
        span = traced.llm_span()
    assert traced.stamped(span) == expected


def test_context_manager_restores_on_exception(traced: Traced) -> None:
    with pytest.raises(RuntimeError), attribute(team="doomed"):
        raise RuntimeError("boom")
    assert current_attribution() == {}
    assert traced.stamped(traced.llm_span()) == {}


def test_attribute_is_exported_from_package() -> None:
    assert otel_llmcost.attribute is attribute
    assert otel_llmcost.AttributionSpanProcessor is AttributionSpanProcessor
    assert otel_llmcost.current_attribution is current_attribution


# --- decorators -------------------------------------------------------------------------------


def test_decorator_on_sync_function() -> None:
    @attribute(team="search", feature="rerank")
    def work(x: int) -> tuple[int, dict[str, str]]:
        return x * 2, current_attribution()

    value, seen = work(21)
    assert value == 42  # the function's own result is passed through
    assert seen == {"llmcost.team": "search", "llmcost.feature": "rerank"}
    assert work.__name__ == "work"  # functools.wraps
    assert current_attribution() == {}
    assert work(1) == (2, seen)  # a decorator is reusable


async def test_decorator_on_async_function(traced: Traced) -> None:
    @attribute(team="support", user_id="u-7")
    async def work() -> tuple[ReadableSpan, dict[str, str]]:
        await asyncio.sleep(0)
        return traced.llm_span(), current_attribution()

    span, seen = await work()
    assert traced.stamped(span) == seen == {"llmcost.team": "support", "user.id": "u-7"}
    assert asyncio.iscoroutinefunction(work)
    assert current_attribution() == {}


async def test_one_decorated_coroutine_running_concurrently_with_different_outer_scopes() -> None:
    """The decorator's scope is entered per call, so overlapping calls don't share detach tokens."""

    @attribute(feature="summarize")
    async def work(delay: float) -> dict[str, str]:
        await asyncio.sleep(delay)
        return current_attribution()

    async def as_team(team: str, delay: float) -> dict[str, str]:
        with attribute(team=team):
            return await work(delay)

    first, second = await asyncio.gather(as_team("a", 0.02), as_team("b", 0.0))
    assert first == {"llmcost.team": "a", "llmcost.feature": "summarize"}
    assert second == {"llmcost.team": "b", "llmcost.feature": "summarize"}


def test_decorator_on_generator_scopes_each_resumption() -> None:
    @attribute(team="gen")
    def produce() -> Iterator[str]:
        for _ in range(2):
            yield current_attribution().get("llmcost.team", "")

    gen = produce()
    assert next(gen) == "gen"
    assert current_attribution() == {}  # not leaked to the consumer between items
    with attribute(team="consumer"):
        assert next(gen) == "gen"  # the generator's own scope is inner, so it wins
    assert list(gen) == []


async def test_decorator_on_async_generator_scopes_each_resumption() -> None:
    @attribute(feature="agen")
    async def produce() -> AsyncIterator[str]:
        for _ in range(2):
            await asyncio.sleep(0)
            yield current_attribution()["llmcost.feature"]

    seen = []
    async for value in produce():
        seen += [value, current_attribution().get("llmcost.feature", "-")]  # the caller is outside
    assert seen == ["agen", "-", "agen", "-"]


# --- nesting ---------------------------------------------------------------------------------


def test_inner_scope_overrides_and_outer_values_remain(traced: Traced) -> None:
    with attribute(team="outer", feature="chat", user_id="u-1", tenant="acme"):
        with attribute(team="inner", use_case="draft"):
            inner = traced.llm_span()
        with attribute(team=None, feature="rerank"):  # None leaves the outer value in force
            kept = current_attribution()
        back = traced.llm_span()
    assert traced.stamped(inner) == {
        "llmcost.team": "inner",  # overridden
        "llmcost.feature": "chat",  # inherited
        "user.id": "u-1",
        "llmcost.use_case": "draft",
        "llmcost.property.tenant": "acme",  # properties are inherited too
    }
    assert kept == {
        "llmcost.team": "outer",
        "llmcost.feature": "rerank",
        "user.id": "u-1",
        "llmcost.property.tenant": "acme",
    }
    assert traced.stamped(back) == {
        "llmcost.team": "outer",
        "llmcost.feature": "chat",
        "user.id": "u-1",
        "llmcost.property.tenant": "acme",
    }


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("/analyze", "/extract", "/analyze/extract"),
        ("/analyze", "extract", "/analyze/extract"),  # relative appends too
        ("/analyze", "/analyze/extract", "/analyze/extract"),  # already under the outer path: kept
        ("/analyze/", "/extract", "/analyze/extract"),  # no double slash
    ],
)
def test_session_paths_compose(traced: Traced, outer: str, inner: str, expected: str) -> None:
    with attribute(session_path=outer), attribute(session_path=inner):
        span = traced.llm_span()
    assert traced.stamped(span)["llmcost.session.path"] == expected


def test_session_path_many_levels_and_unwinding() -> None:
    with attribute(session_path="/a"):
        with attribute(session_path="/b"):
            with attribute(session_path="/c"):
                assert current_attribution()["llmcost.session.path"] == "/a/b/c"
                with attribute(session_path="d"):  # relative, several levels down
                    assert current_attribution()["llmcost.session.path"] == "/a/b/c/d"
            assert current_attribution()["llmcost.session.path"] == "/a/b"
        assert current_attribution()["llmcost.session.path"] == "/a"


# --- isolation: asyncio tasks and threads -----------------------------------------------------


async def test_concurrent_asyncio_tasks_are_isolated(traced: Traced) -> None:
    both_inside = asyncio.Event()
    entered = 0

    async def call(team: str) -> ReadableSpan:
        nonlocal entered
        with attribute(team=team, feature=f"f-{team}"):
            entered += 1
            if entered == 2:
                both_inside.set()
            await both_inside.wait()  # both scopes are open at the same time here
            return traced.llm_span(name=f"chat {team}")

    span_a, span_b = await asyncio.gather(call("alpha"), call("beta"))
    assert traced.stamped(span_a) == {"llmcost.team": "alpha", "llmcost.feature": "f-alpha"}
    assert traced.stamped(span_b) == {"llmcost.team": "beta", "llmcost.feature": "f-beta"}


async def test_task_inherits_scope_of_its_creator() -> None:
    async def read_attribution() -> dict[str, str]:
        await asyncio.sleep(0)
        return current_attribution()

    with attribute(team="parent"):
        child = asyncio.create_task(read_attribution())
    assert await child == {"llmcost.team": "parent"}


def test_threads_see_attribution_only_when_the_context_is_carried(traced: Traced) -> None:
    def observe() -> tuple[dict[str, str], dict[str, Any]]:
        return current_attribution(), traced.stamped(traced.llm_span())

    seen: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}
    with attribute(team="platform"):
        plain = threading.Thread(target=lambda: seen.setdefault("thread", observe()))
        ctx = contextvars.copy_context()
        carried = threading.Thread(target=lambda: seen.setdefault("thread, context copied", ctx.run(observe)))
        plain.start(), carried.start()
        plain.join(), carried.join()
        otel_ctx = context.get_current()

        def with_otel_context() -> tuple[dict[str, str], dict[str, Any]]:
            token = context.attach(otel_ctx)
            try:
                return observe()
            finally:
                context.detach(token)

        with ThreadPoolExecutor(max_workers=1) as pool:
            seen["pool"] = pool.submit(observe).result()
            seen["pool, context copied"] = pool.submit(contextvars.copy_context().run, observe).result()
            seen["pool, OTel context attached"] = pool.submit(with_otel_context).result()
    nothing = ({}, {})
    platform = ({"llmcost.team": "platform"}, {"llmcost.team": "platform"})
    assert seen == {
        "thread": nothing,
        "thread, context copied": platform,
        "pool": nothing,
        "pool, context copied": platform,
        "pool, OTel context attached": platform,
    }


def test_threads_with_their_own_scopes_do_not_interfere(traced: Traced) -> None:
    barrier = threading.Barrier(2)
    results: dict[str, dict[str, Any]] = {}

    def worker(team: str) -> None:
        with attribute(team=team):
            barrier.wait(timeout=5)  # both scopes are open at once
            results[team] = traced.stamped(traced.llm_span())

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert results == {"x": {"llmcost.team": "x"}, "y": {"llmcost.team": "y"}}


# --- W3C Baggage ------------------------------------------------------------------------------


def test_baggage_entries_are_visible_to_other_libraries() -> None:
    with attribute(team="t", user_id="u"):
        assert baggage.get_baggage("llmcost.team") == "t"
        assert baggage.get_baggage("user.id") == "u"
    assert baggage.get_baggage("llmcost.team") is None


def test_baggage_out_and_round_trip_through_headers(traced: Traced) -> None:
    carrier: dict[str, str] = {}
    with attribute(team="checkout", feature="cart", user_id="u 1", session_path="/buy", tenant="acme"):
        propagate.inject(carrier)
    entries = dict(item.split("=", 1) for item in carrier["baggage"].split(","))
    # values are URL-encoded by the W3C propagator: "/" -> %2F, " " -> +
    assert entries == {
        "llmcost.team": "checkout",
        "llmcost.feature": "cart",
        "user.id": "u+1",
        "llmcost.session.path": "%2Fbuy",
        "llmcost.property.tenant": "acme",
    }
    outside: dict[str, str] = {}
    propagate.inject(outside)
    assert "baggage" not in outside
    # What a downstream service reads back from the header, and charges its own GenAI spans to.
    decoded = {
        "llmcost.team": "checkout",
        "llmcost.feature": "cart",
        "user.id": "u 1",
        "llmcost.session.path": "/buy",
        "llmcost.property.tenant": "acme",
    }
    incoming = propagate.extract(carrier)
    assert current_attribution(incoming) == decoded
    token = context.attach(incoming)
    try:
        span = traced.llm_span()
    finally:
        context.detach(token)
    assert traced.stamped(span) == decoded


def test_baggage_in_is_stamped_by_processor(traced: Traced) -> None:
    incoming = {"baggage": "llmcost.team=search,user.id=u-99,llmcost.session.path=%2Fquery,other=x"}
    token = context.attach(propagate.extract(incoming))
    try:
        span = traced.llm_span()
        # a local scope nested inside the incoming one overrides and composes as usual
        with attribute(team="local", session_path="/rank"):
            nested = traced.llm_span()
    finally:
        context.detach(token)
    # exactly: unrelated baggage ("other") is not stamped, nothing else is added
    assert dict(span.attributes or {}) == {
        **GENAI,
        "llmcost.team": "search",
        "user.id": "u-99",
        "llmcost.session.path": "/query",
    }
    assert traced.stamped(nested) == {
        "llmcost.team": "local",
        "user.id": "u-99",
        "llmcost.session.path": "/query/rank",
    }
