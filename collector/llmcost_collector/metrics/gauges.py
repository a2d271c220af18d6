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

from llmcost_collector.metrics.labels import LabelCaps
from llmcost_collector.money import nanos_to_float_usd
from llmcost_collector.periods import epoch_ns, period_bounds

SpendQuery = Callable[[int, int], Sequence[tuple[str, int]]]  # (start_ns, end_ns) -> [(team, nanos)]
BudgetLookup = Callable[[], Sequence[tuple[str, str, float]]]  # -> [(team, period, usd)]


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
            totals: dict[tuple[str, str], int] = defaultdict(int)
            for period, (start, end) in period_bounds(now).items():
                for team, nanos in self._spend(epoch_ns(start), epoch_ns(end)):
                    totals[(self._caps.value("team", team), period)] += nanos
            rows = [(team, period, nanos_to_float_usd(nanos)) for (team, period), nanos in totals.items()]
            self._cached = (time.monotonic(), rows)
            return rows

    def refresh(self) -> None:
        """Run the ledger query now if the cache is stale (the web port calls it off the event loop)."""
        self._spend_rows()

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
