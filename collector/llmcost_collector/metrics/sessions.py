"""The ``llmcost_session_cost_usd`` histogram: a session's total cost, observed once it is idle."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from prometheus_client import Histogram

from llmcost_collector.metrics.cost import BilledCall
from llmcost_collector.metrics.labels import LabelCaps
from llmcost_collector.money import nanos_to_float_usd


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
        self._histogram.labels(name).observe(nanos_to_float_usd(entry[1]))

    @property
    def open_sessions(self) -> int:
        return len(self._open)
