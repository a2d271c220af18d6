"""Ledger-derived gauges, computed at scrape time: the ledger, not process memory, is the truth.

A period-to-date total reads the period's tile of the rollups (this month's monthly rows, today's
daily rows), which hold every committed call of the period: the work is the number of
(team, feature, model, ...) combinations, not the number of calls, so a scrape costs the same
at a thousand calls and at a hundred million. The rollups are read rather than totals kept in
memory because several replicas write one ledger: each replica's gauges then show the whole
ledger, not its own share.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmcost_collector.budget import BudgetStatus
from llmcost_collector.config.budgets import severity
from llmcost_collector.metrics.labels import LabelCaps
from llmcost_collector.money import nanos_to_float_usd
from llmcost_collector.periods import epoch_ns, period_bounds

SpendQuery = Callable[[int, int], Sequence[tuple[str, int]]]  # (start_ns, end_ns) -> [(team, nanos)]
BudgetLookup = Callable[[datetime], Sequence[BudgetStatus]]  # now -> every budget's status
BUDGET_LABELS = ("budget", "scope", "team", "period", "basis")


class LedgerGauges(Collector):
    """``llmcost_spend_usd`` (per team) and the budget gauges computed at scrape time.

    Spend comes from the ledger (period-to-date), cached for ``ttl`` seconds so that several
    scrapers do not each run the aggregate queries. Per-user budgets have no series: a user id
    is never a label.
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
        self._cached: tuple[float, list[tuple[str, str, float]], list[BudgetStatus]] | None = None
        self._lock = threading.Lock()

    def _rows(self) -> tuple[list[tuple[str, str, float]], list[BudgetStatus]]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._ttl:
                return self._cached[1], self._cached[2]
            now = self._clock()
            totals: dict[tuple[str, str], int] = defaultdict(int)
            for period, (start, end) in period_bounds(now).items():
                for team, nanos in self._spend(epoch_ns(start), epoch_ns(end)):
                    totals[(self._caps.value("team", team), period)] += nanos
            rows = [(team, period, nanos_to_float_usd(nanos)) for (team, period), nanos in totals.items()]
            statuses = [s for s in self._budgets(now) if not s.budget.per_user]
            self._cached = (time.monotonic(), rows, statuses)
            return rows, statuses

    def refresh(self) -> None:
        """Run the ledger query now if the cache is stale (the web port calls it off the event loop)."""
        self._rows()

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def collect(self) -> Iterable[Metric]:
        rows, statuses = self._rows()
        spend = GaugeMetricFamily(
            "llmcost_spend_usd",
            "Period-to-date amount charged to the team (from the ledger), USD.",
            labels=("team", "period"),
        )
        for team, period, usd in rows:
            spend.add_metric((team, period), usd)
        budget = GaugeMetricFamily(
            "llmcost_budget_usd", "Configured budget for the period, USD.", labels=BUDGET_LABELS
        )
        used = GaugeMetricFamily(
            "llmcost_budget_spend_usd",
            "Period-to-date spend in the budget's scope and basis (from the ledger), USD.",
            labels=BUDGET_LABELS,
        )
        thresholds = GaugeMetricFamily(
            "llmcost_budget_threshold_ratio",
            "A configured alert threshold of the budget, as a share of it (0.8 = 80 %).",
            labels=(*BUDGET_LABELS, "threshold", "severity"),
        )
        end = GaugeMetricFamily(
            "llmcost_budget_period_end_timestamp_seconds",
            "When the budget's current calendar period ends (Unix time).",
            labels=BUDGET_LABELS,
        )
        for status in statuses:
            b = status.budget
            key = (b.name, b.scope.describe(), b.scope.team or "", b.period, b.basis)
            budget.add_metric(key, float(b.amount_usd))
            used.add_metric(key, nanos_to_float_usd(status.spent_nanos))
            end.add_metric(key, status.end.timestamp())
            for threshold in b.thresholds:
                thresholds.add_metric((*key, str(threshold), severity(threshold)), threshold / 100)
        return [spend, budget, used, thresholds, end]
