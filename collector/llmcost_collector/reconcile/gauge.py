"""``llmcost_capture_ratio{provider}``: the last reconcile run's ledger / bill, at scrape time.

Read from the ledger database (``runs``) so that every replica shows the same value and a
collector restarted after the run still shows it. The ratio is a float only here, at the edge to
Prometheus, for the ``LLMCostCaptureGap`` alert; the run's amounts stay integers in the table.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmcost_collector.ledger import SqlLedger
from llmcost_collector.reconcile.runs import CaptureRun, ensure_table, last_runs


class CaptureGauge(Collector):
    def __init__(self, ledger: SqlLedger) -> None:
        self._ledger = ledger
        self._ready = False
        self._lock = threading.Lock()

    def runs(self) -> list[CaptureRun]:
        with self._lock:
            if not self._ready:
                ensure_table(self._ledger)
                self._ready = True
        return last_runs(self._ledger)

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "llmcost_capture_ratio",
            "Ledger / provider bill of the last `llmcost reconcile` run (dollars, else tokens); 1 = all captured.",
            labels=("provider",),
        )
        for run in self.runs():
            gauge.add_metric((run.provider,), float(run.capture))
        return [gauge]
