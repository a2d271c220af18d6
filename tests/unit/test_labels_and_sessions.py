"""Bounded labels and the session-cost histogram."""

from __future__ import annotations

import pytest
from llmcost_collector.ledger import LedgerEntry, open_ledger
from llmcost_collector.metrics.cost import BilledCall, CostMetrics
from llmcost_collector.metrics.labels import OTHER, TRUNCATED, LabelCaps
from llmcost_collector.metrics.sessions import SessionCostTracker
from llmcost_collector.model import PRICED, Attribution, Cost, LlmCall, Usage
from prometheus_client import CollectorRegistry, generate_latest

from tests.unit.test_ledger import make_call


def test_cap_keeps_first_values_and_collapses_the_rest() -> None:
    caps = LabelCaps(caps={"team": 2})
    assert [caps.value("team", t) for t in ("a", "b", "c", "a", "d", "b")] == [
        "a",
        "b",
        OTHER,
        "a",
        OTHER,
        "b",
    ]
    assert caps.seen("team") == 2


def test_allow_list_wins_over_cap() -> None:
    caps = LabelCaps(caps={"model": 1}, allow={"model": ["gpt-4o", "o3"]})
    assert [caps.value("model", m) for m in ("o3", "gpt-4o", "mystery")] == ["o3", "gpt-4o", OTHER]


def test_a_long_value_is_cut_with_a_marker_and_counted() -> None:
    cut: list[str] = []
    caps = LabelCaps(max_length=16, on_truncated=cut.append)
    long = "checkout-" + "x" * 40_000
    assert caps.value("feature", long) == long[:15] + TRUNCATED
    assert caps.value("feature", "search") == "search"
    assert cut == ["feature"]
    # two long values that share their first characters are one series
    assert caps.value("feature", long + "y") == caps.value("feature", long)
    # an allow-list names values as written: a long allowed value is kept (cut), others collapse
    allowed = LabelCaps(max_length=16, allow={"team": [long]})
    assert [allowed.value("team", v) for v in (long, long + "y")] == [long[:15] + TRUNCATED, OTHER]


def call(session: str = "", cost: int | None = 1_000_000, **usage: int) -> BilledCall:
    llm = LlmCall(
        trace_id="0" * 32, span_id="1" * 16, start_time_ns=0, end_time_ns=0, provider="openai",
        operation="chat", request_model="gpt-4o", response_model="", usage=Usage(**usage),
        attribution=Attribution(team="t", feature="f", session_id=session, session_name="Doc"),
    )  # fmt: skip
    return BilledCall(llm, Cost(PRICED, cost, cost), cost)


def test_token_classes_are_disjoint_and_sum_per_label_set() -> None:
    registry = CollectorRegistry()
    metrics = CostMetrics(registry, LabelCaps())
    metrics.record([call(input_tokens=10, cache_read_tokens=5, output_tokens=7, reasoning_tokens=3)] * 2)
    labels = {"team": "t", "feature": "f", "environment": "", "provider": "openai", "model": "gpt-4o"}
    got = {
        kind: registry.get_sample_value("llmcost_tokens_total", {**labels, "token_type": kind})
        for kind in ("input", "cache_read", "output", "reasoning", "cache_write")
    }
    assert got == {"input": 20, "cache_read": 10, "output": 8, "reasoning": 6, "cache_write": None}
    assert registry.get_sample_value("llmcost_cost_usd_total", labels) == 0.002
    assert registry.get_sample_value("llmcost_requests_total", {**labels, "status": "ok"}) == 2
    assert (
        registry.get_sample_value(
            "llmcost_cache_hits_total", {"team": "t", "feature": "f", "kind": "prompt_cache"}
        )
        == 2
    )


def test_unpriced_calls_count_but_add_no_cost() -> None:
    registry = CollectorRegistry()
    CostMetrics(registry, LabelCaps()).record([call(cost=None, input_tokens=3)])
    assert (
        registry.get_sample_value(
            "llmcost_unpriced_requests_total", {"provider": "openai", "model": "gpt-4o"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "llmcost_cost_usd_total",
            {"team": "t", "feature": "f", "environment": "", "provider": "openai", "model": "gpt-4o"},
        )
        is None
    )


def test_session_total_is_observed_once_idle() -> None:
    registry = CollectorRegistry()
    metrics = CostMetrics(registry, LabelCaps())
    now = [100.0]
    tracker = SessionCostTracker(metrics.session_cost, LabelCaps(), idle_seconds=60, clock=lambda: now[0])
    tracker.add([call("s1", 2_000_000), call("s1", 3_000_000), call("s2", 1_000_000), call("", 9)])
    assert tracker.sweep() == 0
    now[0] += 61
    assert tracker.sweep() == 2
    assert registry.get_sample_value("llmcost_session_cost_usd_count", {"session_name": "Doc"}) == 2
    assert registry.get_sample_value("llmcost_session_cost_usd_sum", {"session_name": "Doc"}) == 0.006


def test_session_tracker_memory_is_bounded() -> None:
    registry = CollectorRegistry()
    metrics = CostMetrics(registry, LabelCaps())
    tracker = SessionCostTracker(metrics.session_cost, LabelCaps(), max_sessions=3)
    tracker.add([call(f"s{n}") for n in range(5)])
    assert tracker.open_sessions == 3
    assert registry.get_sample_value("llmcost_session_cost_usd_count", {"session_name": "Doc"}) == 2


def test_a_session_with_an_unpriced_call_is_not_observed_too_low() -> None:
    registry = CollectorRegistry()
    metrics = CostMetrics(registry, LabelCaps())
    tracker = SessionCostTracker(metrics.session_cost, LabelCaps(), idle_seconds=0)
    tracker.add([call("s1", 2_000_000), call("s1", None)])
    assert tracker.sweep() == 1
    assert registry.get_sample_value("llmcost_session_cost_usd_count", {"session_name": "Doc"}) is None


@pytest.mark.parametrize("across_months", [False, True])
def test_the_replica_with_the_last_call_observes_the_ledgers_total(across_months: bool) -> None:
    """Two replicas share a ledger; each saw one call of session s1 (named "Doc", then "Batch":
    the ledger's name is the greatest), in one month or either side of a month boundary. The
    histogram observes the ledger's total once, under the ledger's name, on the replica whose
    call ended last."""
    ledger = open_ledger("sqlite:///:memory:")
    cost = Cost(PRICED, 2_000_000, 2_000_000)
    dec = 1_796_083_200 * 10**9  # 2026-12-01T00:00:00Z
    starts = (dec - 10**9, dec + 10**9) if across_months else (None, None)
    first = make_call(1, session_id="s1", session_name="Doc", start_ns=starts[0])
    second = make_call(2, session_id="s1", session_name="Batch", start_ns=starts[1])  # ends later
    ledger.insert([LedgerEntry.from_call(c, cost, None, 0) for c in (first, second)])
    registries = [CollectorRegistry(), CollectorRegistry()]
    trackers = [
        SessionCostTracker(CostMetrics(r, LabelCaps()).session_cost, LabelCaps(), idle_seconds=0,
                           session_total=ledger.session_total)
        for r in registries
    ]  # fmt: skip
    for tracker, seen in zip(trackers, (first, second), strict=True):
        tracker.add([BilledCall(seen, cost, None)], ["s1"])
        assert tracker.sweep() == 1
    doc = {"session_name": "Doc"}
    assert registries[0].get_sample_value("llmcost_session_cost_usd_count", doc) is None
    assert registries[1].get_sample_value("llmcost_session_cost_usd_count", doc) == 1
    assert registries[1].get_sample_value("llmcost_session_cost_usd_sum", doc) == 0.004
    ledger.close()


def test_an_unreachable_ledger_skips_the_observation_and_keeps_the_sweeper_alive() -> None:
    ledger = open_ledger("sqlite:///:memory:")
    ledger.close()  # every read now fails
    registry = CollectorRegistry()
    tracker = SessionCostTracker(
        CostMetrics(registry, LabelCaps()).session_cost,
        LabelCaps(),
        idle_seconds=0,
        session_total=ledger.session_total,
    )
    tracker.add([call("s1", 2_000_000)])
    assert tracker.sweep() == 1
    assert registry.get_sample_value("llmcost_session_cost_usd_count", {"session_name": "Doc"}) is None


def test_reconfigured_caps_keep_admitted_values_and_apply_to_new_ones() -> None:
    caps = LabelCaps(caps={"team": 5})
    assert [caps.value("team", t) for t in ("a", "b")] == ["a", "b"]
    caps.reconfigure(caps={"team": 2})
    assert [caps.value("team", t) for t in ("a", "b", "c")] == ["a", "b", OTHER]
    caps.reconfigure(allow={"team": ["a", "z"]})
    assert [caps.value("team", t) for t in ("a", "b", "z")] == ["a", OTHER, "z"]


def test_metrics_follow_a_new_allow_list_after_forgetting_the_memo() -> None:
    registry = CollectorRegistry()
    caps = LabelCaps()
    metrics = CostMetrics(registry, caps)
    metrics.record([call()])
    caps.reconfigure(allow={"team": ["finance"]})
    metrics.forget_label_values()
    metrics.record([call()])
    labels = {"feature": "f", "environment": "", "provider": "openai", "model": "gpt-4o", "status": "ok"}
    assert registry.get_sample_value("llmcost_requests_total", {**labels, "team": "t"}) == 1
    assert registry.get_sample_value("llmcost_requests_total", {**labels, "team": OTHER}) == 1


def billed(team: str, *, feature: str = "f", status: str = "ok", cost: int | None = 1_000_000, cache_hit: bool = False,
           cache_lookup: bool = False, savings: int = 0, prompt_savings: int = 0, outcome: str = "",
           outcome_count: int = 0, **usage: int) -> BilledCall:  # fmt: skip
    # An outcome record is what normalize_span makes of record_outcome(): no provider, no model.
    llm = LlmCall(
        trace_id="0" * 32, span_id="1" * 16, start_time_ns=0, end_time_ns=0,
        provider="" if outcome else "openai", operation="outcome" if outcome else "chat",
        request_model="" if outcome else "gpt-4o", response_model="", usage=Usage(**usage),
        attribution=Attribution(team=team, feature=feature), status=status, cache_hit=cache_hit,
        cache_lookup=cache_lookup or cache_hit, outcome=outcome, outcome_count=outcome_count,
    )  # fmt: skip
    return BilledCall(
        llm,
        Cost(PRICED, cost, cost) if cost is not None else Cost.unpriced("?"),
        cost,
        savings,
        prompt_savings,
    )


def test_one_batch_of_mixed_calls_moves_every_counter_once_per_label_set() -> None:
    registry = CollectorRegistry()
    metrics = CostMetrics(registry, LabelCaps(caps={"team": 1}))
    metrics.record(
        [
            billed("t", input_tokens=10, cache_read_tokens=5, prompt_savings=250_000_000),
            billed("t", input_tokens=10, cache_read_tokens=5, prompt_savings=250_000_000, cache_lookup=True),
            billed("t", status="error", cost=None, input_tokens=7),
            # a response-cache hit: its original usage is carried, never counted as consumed
            billed("t", cost=0, cache_hit=True, savings=3_000_000, input_tokens=10, output_tokens=4),
            billed("t", cost=0, outcome="ticket_resolved", outcome_count=3),
            billed("u", cost=500_000_000, output_tokens=9),  # over the team cap: __other__
            billed("v", cost=500_000_000, output_tokens=1),  # also __other__, merged with u
        ]
    )
    base = {"feature": "f", "environment": "", "provider": "openai", "model": "gpt-4o"}
    t, other = {**base, "team": "t"}, {**base, "team": "__other__"}

    def value(name: str, labels: dict[str, str]) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("llmcost_requests_total", {**t, "status": "ok"}) == 3
    assert value("llmcost_requests_total", {**t, "status": "error"}) == 1
    assert value("llmcost_requests_total", {**other, "status": "ok"}) == 2
    assert value("llmcost_cost_usd_total", t) == 0.002
    assert value("llmcost_cost_usd_total", other) == 1.0
    assert (
        value("llmcost_chargeback_usd_total", {"team": "__other__", "feature": "f", "environment": ""}) == 1.0
    )
    assert value("llmcost_tokens_total", {**t, "token_type": "input"}) == 27
    assert value("llmcost_tokens_total", {**t, "token_type": "output"}) is None
    assert value("llmcost_tokens_total", {**t, "token_type": "cache_read"}) == 10
    assert value("llmcost_tokens_total", {**other, "token_type": "output"}) == 10
    assert value("llmcost_unpriced_requests_total", {"provider": "openai", "model": "gpt-4o"}) == 1
    hits = {"team": "t", "feature": "f"}
    assert value("llmcost_cache_hits_total", {**hits, "kind": "prompt_cache"}) == 2
    assert value("llmcost_cache_hits_total", {**hits, "kind": "response"}) == 1
    assert value("llmcost_cache_savings_usd_total", {**hits, "kind": "response"}) == 0.003
    assert value("llmcost_cache_savings_usd_total", {**hits, "kind": "prompt_cache"}) == 0.5
    assert value("llmcost_cache_lookups_total", hits) == 2  # the miss and the hit
    assert value("llmcost_outcomes_total", {"team": "t", "outcome": "ticket_resolved"}) == 3


def test_an_outcome_record_is_not_a_request() -> None:
    """record_outcome() spans count as outcomes only: no request, token or cost series (model "")."""
    registry = CollectorRegistry()
    CostMetrics(registry, LabelCaps()).record([billed("t", cost=0, outcome="ticket_resolved")])
    names = {sample.name for metric in registry.collect() for sample in metric.samples}
    assert "llmcost_outcomes_total" in names
    assert not names & {"llmcost_requests_total", "llmcost_tokens_total", "llmcost_cost_usd_total"}
    assert (
        registry.get_sample_value("llmcost_outcomes_total", {"team": "t", "outcome": "ticket_resolved"}) == 1
    )


def test_label_sets_past_the_budget_share_one_series_and_the_scrape_stops_growing() -> None:
    """Every label under its cap, yet teams x features x models keeps making new sets: past
    ``max_label_sets`` they are all counted in the all-__other__ series, so the exposition is as
    large after ten times the sets, and no dollar or request is lost from the totals."""
    registry = CollectorRegistry()
    collapsed: list[int] = []
    metrics = CostMetrics(registry, LabelCaps(), max_label_sets=50, on_collapsed=lambda: collapsed.append(1))

    def batch(teams: range) -> list[BilledCall]:
        calls = []
        for team in teams:
            for feature in range(10):
                calls.append(
                    billed(f"team-{team}", feature=f"feature-{feature}", cost=1_000_000, input_tokens=3)
                )
        return calls

    def samples(name: str) -> list[float]:
        return [s.value for m in registry.collect() for s in m.samples if s.name == name]

    metrics.record(batch(range(10)))  # 100 sets: 50 kept, the rest collapsed
    size_at_100 = len(generate_latest(registry))
    metrics.record(batch(range(10, 100)))  # 900 more, every label still under its cap of 100
    assert len(samples("llmcost_cost_usd_total")) == 51
    assert len(samples("llmcost_tokens_total")) == 51  # one token type in these calls
    assert len(generate_latest(registry)) <= size_at_100 * 1.01  # only the counts' digits grew
    assert sum(samples("llmcost_requests_total")) == 1_000
    assert round(sum(samples("llmcost_cost_usd_total")), 6) == 1.0
    assert len(collapsed) == 950
    all_other = dict.fromkeys(("team", "feature", "environment", "provider", "model"), OTHER)
    assert registry.get_sample_value("llmcost_requests_total", {**all_other, "status": "ok"}) == 950
