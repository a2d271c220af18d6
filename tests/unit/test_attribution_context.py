"""otel_llmcost.attribute and AttributionSpanProcessor: scopes, propagation, defaults, stamping rules.

Real OpenTelemetry SDK throughout (TracerProvider + InMemorySpanExporter); spans are stamped by the
processor alone here (no instrumentor), so every assertion is about the attribution machinery.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import baggage, context, propagate
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_llmcost
from otel_llmcost import AttributionSpanProcessor, attribute, current_attribution
from otel_llmcost.context import env_defaults

GENAI = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
ATTRIBUTION_KEYS = (
    "llmcost.team",
    "llmcost.feature",
    "llmcost.use_case",
    "llmcost.user_tier",
    "user.id",
    "session.id",
    "llmcost.session.name",
    "llmcost.session.path",
    "deployment.environment.name",
)


class Traced:
    """A provider with only our processor plus an in-memory exporter."""

    def __init__(self, defaults: dict[str, str] | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(
            AttributionSpanProcessor(defaults={} if defaults is None else defaults)
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        # a scope name with no GenAI hint: only the gen_ai.* attributes make a span a GenAI span
        self.tracer = self.provider.get_tracer("tests.unit.plain")

    def llm_span(self, name: str = "chat gpt-4o", **extra: Any) -> ReadableSpan:
        self.tracer.start_span(name, attributes={**GENAI, **extra}).end()
        return self.exporter.get_finished_spans()[-1]

    def stamped(self, span: ReadableSpan) -> dict[str, Any]:
        attrs = dict(span.attributes or {})
        return {k: v for k, v in attrs.items() if k in ATTRIBUTION_KEYS or k.startswith("llmcost.property.")}


@pytest.fixture
def traced() -> Iterator[Traced]:
    t = Traced()
    yield t
    t.provider.shutdown()


@pytest.fixture(autouse=True)
def clean_context() -> Iterator[None]:
    """Every test starts and must end with no attribution in force (a leaked attach would show)."""
    assert current_attribution() == {}
    yield
    assert current_attribution() == {}


# --- context manager and decorator -----------------------------------------------------------


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


def test_every_keyword_maps_to_its_contract_name(traced: Traced) -> None:
    with attribute(
        team="t", feature="f", user_id="u", session_id="s", session_name="triage", session_path="/a",
        environment="staging", user_tier="premium", use_case="summaries",
    ):  # fmt: skip
        span = traced.llm_span()
    assert traced.stamped(span) == {
        "llmcost.team": "t",
        "llmcost.feature": "f",
        "user.id": "u",
        "session.id": "s",
        "llmcost.session.name": "triage",
        "llmcost.session.path": "/a",
        "deployment.environment.name": "staging",
        "llmcost.user_tier": "premium",
        "llmcost.use_case": "summaries",
    }


def test_context_manager_restores_on_exception(traced: Traced) -> None:
    with pytest.raises(RuntimeError), attribute(team="doomed"):
        raise RuntimeError("boom")
    assert current_attribution() == {}
    assert traced.stamped(traced.llm_span()) == {}


def test_decorator_on_sync_function(traced: Traced) -> None:
    @attribute(team="search", feature="rerank")
    def work(x: int) -> tuple[int, dict[str, str]]:
        return x * 2, current_attribution()

    value, seen = work(21)
    assert value == 42  # the function's own result is passed through
    assert seen == {"llmcost.team": "search", "llmcost.feature": "rerank"}
    assert work.__name__ == "work"  # functools.wraps
    assert current_attribution() == {}


async def test_decorator_on_async_function(traced: Traced) -> None:
    @attribute(team="support", user_id="u-7")
    async def work() -> ReadableSpan:
        await asyncio.sleep(0)
        return traced.llm_span()

    span = await work()
    assert traced.stamped(span) == {"llmcost.team": "support", "user.id": "u-7"}
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


# --- nesting ---------------------------------------------------------------------------------


def test_inner_scope_overrides_and_outer_values_remain(traced: Traced) -> None:
    with attribute(team="outer", feature="chat", user_id="u-1"):
        with attribute(team="inner", use_case="draft"):
            inner = traced.llm_span()
        back = traced.llm_span()
    assert traced.stamped(inner) == {
        "llmcost.team": "inner",  # overridden
        "llmcost.feature": "chat",  # inherited
        "user.id": "u-1",
        "llmcost.use_case": "draft",
    }
    assert traced.stamped(back) == {"llmcost.team": "outer", "llmcost.feature": "chat", "user.id": "u-1"}


def test_none_leaves_outer_value_in_force() -> None:
    with attribute(team="outer"), attribute(team=None, feature="x"):
        assert current_attribution() == {"llmcost.team": "outer", "llmcost.feature": "x"}


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


def test_session_path_three_levels_and_unwinding() -> None:
    with attribute(session_path="/a"):
        with attribute(session_path="/b"):
            with attribute(session_path="/c"):
                assert current_attribution()["llmcost.session.path"] == "/a/b/c"
            assert current_attribution()["llmcost.session.path"] == "/a/b"
        assert current_attribution()["llmcost.session.path"] == "/a"


def test_custom_properties_become_llmcost_property(traced: Traced) -> None:
    with attribute(team="t", api_key_id="key-9", experiment=3):
        span = traced.llm_span()
    assert traced.stamped(span) == {
        "llmcost.team": "t",
        "llmcost.property.api_key_id": "key-9",
        "llmcost.property.experiment": "3",  # stringified: baggage values are strings
    }


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
    with attribute(team="parent"):
        task = asyncio.create_task(asyncio.sleep(0, result=None))
        child = asyncio.create_task(_read_attribution())
    await task
    assert await child == {"llmcost.team": "parent"}


async def _read_attribution() -> dict[str, str]:
    await asyncio.sleep(0)
    return current_attribution()


def test_thread_without_copied_context_sees_nothing(traced: Traced) -> None:
    with attribute(team="web"), ThreadPoolExecutor(max_workers=1) as pool:
        plain = pool.submit(lambda: (current_attribution(), traced.llm_span())).result()
        carried = pool.submit(
            contextvars.copy_context().run, lambda: (current_attribution(), traced.llm_span())
        ).result()
    plain_seen, plain_span = plain
    carried_seen, carried_span = carried
    assert plain_seen == {}
    assert traced.stamped(plain_span) == {}
    assert carried_seen == {"llmcost.team": "web"}
    assert traced.stamped(carried_span) == {"llmcost.team": "web"}


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


def test_baggage_out_carries_attribution_in_header() -> None:
    carrier: dict[str, str] = {}
    with attribute(team="checkout", feature="cart", user_id="u-1", session_path="/buy"):
        propagate.inject(carrier)
    entries = dict(item.split("=", 1) for item in carrier["baggage"].split(","))
    # values are percent-encoded by the W3C propagator: "/" -> %2F
    assert entries == {
        "llmcost.team": "checkout",
        "llmcost.feature": "cart",
        "user.id": "u-1",
        "llmcost.session.path": "%2Fbuy",
    }
    outside: dict[str, str] = {}
    propagate.inject(outside)
    assert "baggage" not in outside


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
    assert traced.stamped(span) == {
        "llmcost.team": "search",
        "user.id": "u-99",
        "llmcost.session.path": "/query",
    }
    assert "other" not in (span.attributes or {})  # unrelated baggage is not stamped
    assert traced.stamped(nested) == {
        "llmcost.team": "local",
        "user.id": "u-99",
        "llmcost.session.path": "/query/rank",
    }


def test_round_trip_through_headers(traced: Traced) -> None:
    carrier: dict[str, str] = {}
    with attribute(team="upstream", feature="f", tenant="acme"):
        propagate.inject(carrier)
    token = context.attach(propagate.extract(carrier))
    try:
        span = traced.llm_span()
    finally:
        context.detach(token)
    assert traced.stamped(span) == {
        "llmcost.team": "upstream",
        "llmcost.feature": "f",
        "llmcost.property.tenant": "acme",
    }


# --- environment defaults ---------------------------------------------------------------------


def test_env_defaults_mapping() -> None:
    environ = {
        "OTEL_LLMCOST_TEAM": "platform",
        "OTEL_LLMCOST_FEATURE": "batch",
        "OTEL_LLMCOST_USE_CASE": "nightly",
        "OTEL_LLMCOST_USER_TIER": "internal",
        "OTEL_LLMCOST_ENVIRONMENT": "staging",
        "OTEL_LLMCOST_USER_ID": "not-a-default",  # user ids are never service-wide defaults
        "OTEL_LLMCOST_FEATURE_X": "ignored",
        "OTEL_LLMCOST_TEAM_EMPTY": "",
    }
    assert env_defaults(environ) == {
        "llmcost.team": "platform",
        "llmcost.feature": "batch",
        "llmcost.use_case": "nightly",
        "llmcost.user_tier": "internal",
        "deployment.environment.name": "staging",
    }
    assert env_defaults({"OTEL_LLMCOST_TEAM": ""}) == {}  # empty means unset


def test_processor_applies_defaults_where_context_has_none() -> None:
    t = Traced(
        defaults=env_defaults({"OTEL_LLMCOST_TEAM": "platform", "OTEL_LLMCOST_ENVIRONMENT": "staging"})
    )
    bare = t.llm_span()
    with attribute(team="override", user_id="u"):
        scoped = t.llm_span()
    assert t.stamped(bare) == {"llmcost.team": "platform", "deployment.environment.name": "staging"}
    assert t.stamped(scoped) == {
        "llmcost.team": "override",  # context wins over the default
        "user.id": "u",
        "deployment.environment.name": "staging",
    }


def test_processor_reads_environment_when_no_defaults_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LLMCOST_TEAM", "from-env")
    monkeypatch.setenv("OTEL_LLMCOST_FEATURE", "env-feature")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(AttributionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("x").start_span("chat m", attributes=GENAI).end()
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["llmcost.team"] == "from-env"
    assert span.attributes["llmcost.feature"] == "env-feature"


# --- what the processor touches ---------------------------------------------------------------


def test_non_genai_spans_are_untouched() -> None:
    t = Traced(defaults={"llmcost.team": "platform"})
    with attribute(team="t", user_id="u"):
        t.tracer.start_span("GET /health", attributes={"http.request.method": "GET"}).end()
        t.tracer.start_span("db query").end()
    http_span, db_span = t.exporter.get_finished_spans()
    assert dict(http_span.attributes or {}) == {"http.request.method": "GET"}
    assert dict(db_span.attributes or {}) == {}


@pytest.mark.parametrize(
    "scope",
    [
        "opentelemetry.instrumentation.openai_v2",
        "openinference.instrumentation.openai",
        "com.anthropic.sdk.python",
    ],
)
def test_genai_scope_alone_makes_a_genai_span(scope: str) -> None:
    """Some instrumentations start their span bare and add gen_ai.* later: the scope decides."""
    t = Traced()
    with attribute(team="t"):
        t.provider.get_tracer(scope).start_span("chat").end()
    (span,) = t.exporter.get_finished_spans()
    assert t.stamped(span) == {"llmcost.team": "t"}


@pytest.mark.parametrize("prefix_attr", ["gen_ai.system", "llm.model_name", "openinference.span.kind"])
def test_genai_attribute_prefixes_are_recognized(prefix_attr: str) -> None:
    t = Traced()
    with attribute(feature="f"):
        t.tracer.start_span("call", attributes={prefix_attr: "x"}).end()
    (span,) = t.exporter.get_finished_spans()
    assert t.stamped(span) == {"llmcost.feature": "f"}


def test_never_overwrites_an_attribute_the_instrumentation_set() -> None:
    t = Traced(defaults={"deployment.environment.name": "production"})
    with attribute(team="ctx-team", user_id="ctx-user", session_id="ctx-session"):
        span = t.llm_span(
            **{"llmcost.team": "explicit", "user.id": "explicit-user", "deployment.environment.name": "dev"}
        )
    assert t.stamped(span) == {
        "llmcost.team": "explicit",
        "user.id": "explicit-user",
        "deployment.environment.name": "dev",  # nor a default
        "session.id": "ctx-session",  # what was missing is still added
    }


def test_attribute_is_exported_from_package() -> None:
    assert otel_llmcost.attribute is attribute
    assert otel_llmcost.AttributionSpanProcessor is AttributionSpanProcessor


def test_baggage_entries_are_visible_to_other_libraries() -> None:
    with attribute(team="t", user_id="u"):
        assert baggage.get_baggage("llmcost.team") == "t"
        assert baggage.get_baggage("user.id") == "u"
    assert baggage.get_baggage("llmcost.team") is None
