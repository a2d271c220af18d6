"""Attribution coverage as a gauge, computed at scrape time from the ledger.

``llmcost_attribution_coverage_ratio{period}`` is the share of the period-to-date provider
(contracted) cost whose team came from the span or an attribution rule rather than the default
team: the number every invoice also states. A period without priced spend has no sample
(never a made-up 0 or 1).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmcost_collector.model import TEAM_FROM_DEFAULT
from llmcost_collector.periods import epoch_ns, period_bounds

SourceSpend = Callable[[int, int], Sequence[tuple[str, int]]]  # (start_ns, end_ns) -> [(team_source, nanos)]


class AttributionCoverage(Collector):
    """The gauge above, cached for ``ttl`` seconds like the other ledger-derived gauges."""

    def __init__(
        self,
        spend_by_source: SourceSpend,
        ttl: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._spend = spend_by_source
        self._ttl = ttl
        self._clock = clock
        self._cached: tuple[float, list[tuple[str, float]]] | None = None
        self._lock = threading.Lock()

    def _ratios(self) -> list[tuple[str, float]]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._ttl:
                return self._cached[1]
            ratios = []
            # The whole period, as the spend gauges read it: one rollup tile, whatever the time.
            for period, (start, end) in period_bounds(self._clock()).items():
                spend = self._spend(epoch_ns(start), epoch_ns(end))
                total = sum(nanos for _, nanos in spend)
                covered = sum(nanos for source, nanos in spend if source != TEAM_FROM_DEFAULT)
                if total:
                    ratios.append((period, covered / total))
            self._cached = (time.monotonic(), ratios)
            return ratios

    def refresh(self) -> None:
        """Run the ledger query now if the cache is stale (called off the event loop)."""
        self._ratios()

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "llmcost_attribution_coverage_ratio",
            "Share of the period-to-date provider cost with a team from the span or a rule (not the default).",
            labels=("period",),
        )
        for period, ratio in self._ratios():
            gauge.add_metric((period,), ratio)
        return [gauge]
