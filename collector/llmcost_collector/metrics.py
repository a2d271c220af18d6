"""Prometheus metrics of the collector (names and labels fixed by CONTRACT.md).

Counters move only for rows the ledger newly inserted, so a retried export never inflates them.
Per batch, increments are first summed per label set and then applied once each: a batch of
512 calls from a handful of teams touches a handful of children, not 512 x 8.

Ledger-derived gauges (period-to-date spend, budgets) come from a custom ``Collector`` that asks
the ledger at scrape time: the ledger, not the process's memory, is the source of truth.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .labels import LabelCaps
from .model import NANOS_PER_USD, Cost, LlmCall

COST_LABELS = ("team", "feature", "environment", "provider", "model")
TOKEN_TYPES = ("input", "cache_read", "cache_write", "output", "reasoning")  # disjoint classes
SESSION_COST_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 100)


@dataclass(slots=True)
class BilledCall:
    """A newly ledgered call with the amounts the metrics need."""

    call: LlmCall
    cost: Cost
    chargeback_nanos: int | None
    savings_nanos: int = 0  # response-cache savings: what the call would have cost


class CostMetrics:
    """The contract's cost, token, request and outcome counters plus the session histogram."""

    def __init__(self, registry: CollectorRegistry, caps: LabelCaps) -> None:
        self.caps = caps
        self._capped: dict[tuple[str, ...], tuple[str, ...]] = {}  # raw label values -> exported ones
        self.cost = Counter(
            "llmcost_cost_usd", "Provider cost at contracted rates, USD.", COST_LABELS, registry=registry
        )
        self.chargeback = Counter(
            "llmcost_chargeback_usd",
            "Amount billed to teams (markups and fees included), USD.",
            ("team", "feature", "environment"),
            registry=registry,
        )
        self.tokens = Counter(
            "llmcost_tokens",
            "Tokens by disjoint class: input (uncached), cache_read, cache_write, "
            "output (excluding reasoning), reasoning.",
            (*COST_LABELS, "token_type"),
            registry=registry,
        )
        self.requests = Counter(
            "llmcost_requests", "LLM calls by outcome.", (*COST_LABELS, "status"), registry=registry
        )
        self.unpriced = Counter(
            "llmcost_unpriced_requests",
            "Calls whose model has no known price: stored, not priced, re-priceable later.",
            ("provider", "model"),
            registry=registry,
        )
        self.cache_hits = Counter(
            "llmcost_cache_hits", "Cache hits.", ("team", "feature", "kind"), registry=registry
        )
        self.cache_savings = Counter(
            "llmcost_cache_savings_usd",
            "What cache hits saved, USD.",
            ("team", "feature", "kind"),
            registry=registry,
        )
        self.outcomes = Counter(
            "llmcost_outcomes", "Business outcomes for value-based chargeback.", ("team", "outcome"),
            registry=registry,
        )  # fmt: skip
        self.session_cost = Histogram(
            "llmcost_session_cost_usd",
            "Total cost of a finished session (workflow), USD, by session name.",
            ("session_name",),
            buckets=SESSION_COST_BUCKETS,
            registry=registry,
        )

    def forget_label_values(self) -> None:
        """Drop the memo of capped label values, after the caps or allow-lists changed."""
        self._capped = {}

    def record(self, billed: Iterable[BilledCall]) -> None:
        """Add a batch of newly ledgered calls.

        Two passes: per call, integer sums go into one small list per raw label set (a batch has a
        handful of them); then, per label set, the labels are capped and each counter child is
        incremented once. Money stays integer nano-dollars until that last step.
        """
        sums: dict[tuple[str, ...], list[int]] = {}
        outcomes: dict[tuple[str, str], int] = defaultdict(int)
        for item in billed:
            call = item.call
            attribution = call.attribution
            usage = call.usage
            raw = (attribution.team, attribution.feature, attribution.environment, call.provider, call.model)
            row = sums.get(raw)
            if row is None:
                row = sums[raw] = [0] * _SUM_FIELDS
            row[_ERRORS if call.status == "error" else _OK] += 1
            row[_INPUT] += usage.input_tokens
            row[_CACHE_READ] += usage.cache_read_tokens
            row[_CACHE_WRITE] += usage.cache_write_tokens
            row[_OUTPUT] += usage.output_tokens - usage.reasoning_tokens
            row[_REASONING] += usage.reasoning_tokens
            contracted = item.cost.contracted_nanos
            if contracted is None:
                row[_UNPRICED] += 1
            else:
                row[_PRICED] += 1
                row[_COST] += contracted
            if item.chargeback_nanos is not None:
                row[_CHARGED] += 1
                row[_CHARGEBACK] += item.chargeback_nanos
            if call.cache_hit:
                row[_RESPONSE_HITS] += 1
                row[_SAVINGS] += item.savings_nanos
            elif usage.cache_read_tokens:
                row[_PROMPT_HITS] += 1
            if call.outcome:
                outcomes[(attribution.team, call.outcome)] += call.outcome_count or 1
        self._apply(sums, outcomes)

    def _labels(self, raw: tuple[str, ...]) -> tuple[str, ...]:
        key = self._capped.get(raw)
        if key is None:
            cap = self.caps.value
            key = tuple(cap(label, value) for label, value in zip(COST_LABELS, raw, strict=True))
            if len(self._capped) < 100_000:
                self._capped[raw] = key
        return key

    def _apply(self, sums: dict[tuple[str, ...], list[int]], outcomes: dict[tuple[str, str], int]) -> None:
        # Several raw label sets may share capped labels (``__other__``): merge before incrementing.
        merged: dict[tuple[str, ...], list[int]] = {}
        for raw, row in sums.items():
            key = self._labels(raw)
            held = merged.get(key)
            if held is None:
                merged[key] = row
            else:
                merged[key] = [a + b for a, b in zip(held, row, strict=True)]
        by_team_feature: dict[tuple[str, ...], list[int]] = {}
        for key, row in merged.items():
            team, feature, environment, provider, model = key
            for status, count in (("ok", row[_OK]), ("error", row[_ERRORS])):
                if count:
                    self.requests.labels(*key, status).inc(count)
            for kind, index in _TOKEN_FIELDS:
                if row[index]:
                    self.tokens.labels(*key, kind).inc(row[index])
            if row[_PRICED]:
                self.cost.labels(*key).inc(row[_COST] / NANOS_PER_USD)
            if row[_UNPRICED]:
                self.unpriced.labels(provider, model).inc(row[_UNPRICED])
            if row[_CHARGED]:
                self.chargeback.labels(team, feature, environment).inc(row[_CHARGEBACK] / NANOS_PER_USD)
            totals = by_team_feature.setdefault((team, feature), [0, 0, 0])
            totals[0] += row[_RESPONSE_HITS]
            totals[1] += row[_SAVINGS]
            totals[2] += row[_PROMPT_HITS]
        for (team, feature), (response_hits, savings, prompt_hits) in by_team_feature.items():
            if response_hits:
                self.cache_hits.labels(team, feature, "response").inc(response_hits)
            if savings:
                self.cache_savings.labels(team, feature, "response").inc(savings / NANOS_PER_USD)
            if prompt_hits:
                self.cache_hits.labels(team, feature, "prompt_cache").inc(prompt_hits)
        cap = self.caps.value
        for (team, outcome), count in outcomes.items():
            self.outcomes.labels(cap("team", team), cap("outcome", outcome)).inc(count)


# Per-label-set sums in ``CostMetrics.record`` (indexes into one list of integers).
(
    _OK, _ERRORS, _INPUT, _CACHE_READ, _CACHE_WRITE, _OUTPUT, _REASONING, _PRICED, _COST, _UNPRICED, _CHARGED,
    _CHARGEBACK, _RESPONSE_HITS, _SAVINGS, _PROMPT_HITS,
) = range(15)  # fmt: skip
_SUM_FIELDS = 15
_TOKEN_FIELDS = (
    ("input", _INPUT), ("cache_read", _CACHE_READ), ("cache_write", _CACHE_WRITE), ("output", _OUTPUT),
    ("reasoning", _REASONING),
)  # fmt: skip


class SessionCostTracker:
    """Sums cost per session and observes a session's total once it has gone idle.

    A session has no explicit end on the wire, so it is closed after ``idle_seconds`` without a
    call. Memory is bounded: past ``max_sessions`` open sessions the least recently active one is
    closed early (its total so far is observed), never silently dropped.
    """

    def __init__(
        self,
        histogram: Histogram,
        caps: LabelCaps,
        idle_seconds: float = 300.0,
        max_sessions: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._histogram = histogram
        self._caps = caps
        self._idle = idle_seconds
        self._max = max_sessions
        self._clock = clock
        self._open: OrderedDict[str, list] = OrderedDict()  # session_id -> [name, nanos, last_seen]
        self._lock = threading.Lock()

    def add(self, billed: Iterable[BilledCall]) -> None:
        now = self._clock()
        with self._lock:
            for item in billed:
                attribution = item.call.attribution
                if not attribution.session_id or item.cost.contracted_nanos is None:
                    continue
                entry = self._open.pop(attribution.session_id, None)
                if entry is None:
                    entry = [attribution.session_name, 0, now]
                entry[1] += item.cost.contracted_nanos
                entry[2] = now
                self._open[attribution.session_id] = entry
            while len(self._open) > self._max:
                _, entry = self._open.popitem(last=False)
                self._observe(entry)

    def sweep(self) -> int:
        """Close idle sessions; returns how many were observed."""
        deadline = self._clock() - self._idle
        closed = 0
        with self._lock:
            while self._open:
                session_id, entry = next(iter(self._open.items()))
                if entry[2] > deadline:
                    break
                del self._open[session_id]
                self._observe(entry)
                closed += 1
        return closed

    def _observe(self, entry: list) -> None:
        name = self._caps.value("session_name", entry[0] or "unnamed")
        self._histogram.labels(name).observe(entry[1] / NANOS_PER_USD)

    @property
    def open_sessions(self) -> int:
        return len(self._open)


SpendQuery = Callable[[int, int], Sequence[tuple[str, int]]]  # (start_ns, end_ns) -> [(team, nanos)]
BudgetLookup = Callable[[], Sequence[tuple[str, str, float]]]  # -> [(team, period, usd)]


def period_starts(now: datetime) -> dict[str, datetime]:
    """Start of the current UTC day and month: budgets are calendar periods, not rolling windows."""
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"daily": day, "monthly": day.replace(day=1)}


class LedgerGauges(Collector):
    """``llmcost_spend_usd`` and ``llmcost_budget_usd`` computed at scrape time.

    Spend comes from the ledger (chargeback amounts, period-to-date), cached for ``ttl`` seconds
    so that several scrapers do not each run the aggregate query.
    """

    def __init__(
        self,
        spend: SpendQuery,
        budgets: BudgetLookup,
        caps: LabelCaps,
        ttl: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._spend = spend
        self._budgets = budgets
        self._caps = caps
        self._ttl = ttl
        self._clock = clock
        self._cached: tuple[float, list[tuple[str, str, float]]] | None = None
        self._lock = threading.Lock()

    def _spend_rows(self) -> list[tuple[str, str, float]]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._ttl:
                return self._cached[1]
            now = self._clock()
            end_ns = int(now.timestamp() * 1e9) + 1
            totals: dict[tuple[str, str], int] = defaultdict(int)
            for period, start in period_starts(now).items():
                for team, nanos in self._spend(int(start.timestamp()) * NANOS_PER_USD, end_ns):
                    totals[(self._caps.value("team", team), period)] += nanos
            rows = [(team, period, nanos / NANOS_PER_USD) for (team, period), nanos in totals.items()]
            self._cached = (time.monotonic(), rows)
            return rows

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def collect(self) -> Iterable[Metric]:
        spend = GaugeMetricFamily(
            "llmcost_spend_usd",
            "Period-to-date amount charged to the team (from the ledger), USD.",
            labels=("team", "period"),
        )
        for team, period, usd in self._spend_rows():
            spend.add_metric((team, period), usd)
        budget = GaugeMetricFamily(
            "llmcost_budget_usd", "Configured team budget for the period, USD.", labels=("team", "period")
        )
        for team, period, usd in self._budgets():
            budget.add_metric((team, period), usd)
        return [spend, budget]


class SelfMetrics:
    """The collector's own health: what it received, rejected, queued and how fast it commits."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.spans_received = Counter(
            "llmcost_collector_spans_received", "Spans received.", ("transport",), registry=registry
        )
        self.spans_skipped = Counter(
            "llmcost_collector_spans_skipped", "Received spans that are not LLM calls.", registry=registry
        )
        self.spans_rejected = Counter(
            "llmcost_collector_spans_rejected", "LLM spans rejected (partial success).", ("reason",),
            registry=registry,
        )  # fmt: skip
        self.spans_duplicate = Counter(
            "llmcost_collector_spans_duplicate",
            "LLM spans already in the ledger (retries).",
            registry=registry,
        )
        self.exports_refused = Counter(
            "llmcost_collector_exports_refused",
            "Whole exports refused (overload, size, decode, auth).",
            ("reason",),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "llmcost_collector_queue_depth_spans", "Spans waiting for the ledger writer.", registry=registry
        )
        self.commit_seconds = Histogram(
            "llmcost_collector_ledger_commit_seconds",
            "Ledger commit latency per group commit.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.config_reloads = Counter(
            "llmcost_collector_config_reloads", "Configuration reloads.", ("result",), registry=registry
        )
