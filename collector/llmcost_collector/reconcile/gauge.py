"""``llmcost_capture_ratio{provider}``: the last reconcile run's ledger / bill, at scrape time.

Read from the ledger database (``runs``) so that every replica shows the same value and a
collector restarted after the run still shows it. Like the other ledger-derived gauges, the read
is cached for ``ttl`` seconds and done by ``refresh`` (which the web port calls on a worker
thread before each scrape), so the event loop never waits on the database. The ratio is a float
only here, at the edge to Prometheus, for the ``LLMCostCaptureGap`` alert; the run's amounts
stay integers in the table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmcost_collector.ledger import SqlLedger
from llmcost_collector.reconcile.runs import CaptureRun, ensure_table, last_runs


class CaptureGauge(Collector):
    def __init__(self, ledger: SqlLedger, ttl: float = 5.0) -> None:
        self._ledger = ledger
        self._ttl = ttl
        self._ready = False
        self._cached: tuple[float, list[CaptureRun]] | None = None
        self._lock = threading.Lock()

    def runs(self) -> list[CaptureRun]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._ttl:
                return self._cached[1]
            if not self._ready:
                ensure_table(self._ledger)
                self._ready = True
            runs = last_runs(self._ledger)
            self._cached = (time.monotonic(), runs)
            return runs

    def refresh(self) -> None:
        """Read the table now if the cache is stale (the web port calls it off the event loop)."""
        self.runs()

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "llmcost_capture_ratio",
            "Ledger / provider bill of the last `llmcost reconcile` run (dollars, else tokens); 1 = all captured.",
            labels=("provider",),
        )
        for run in self.runs():
            gauge.add_metric((run.provider,), float(run.capture))
        return [gauge]
