"""The ``llmcost_session_cost_usd`` histogram: a session's total cost, observed once it is idle.

What is observed is the **ledger's** total for the session (``llm_rollup_sessions``, read when the
session goes idle), not a sum kept in memory, so the histogram agrees with
``/api/v1/sessions``:

* after a restart, a session that continues is observed with all its calls, also those
  ingested before the restart (a sum in memory would only have the calls since);
* with several replicas behind a load balancer, each replica sees some of a session's calls;
  only the replica that ingested the session's last call (its end is the ledger's last end)
  observes it, so summing the replicas' histograms counts every session once, at its full cost
  (the ledger's months around the calls a replica saw are read, so a session across a month
  boundary is whole; two replicas whose last calls end at the same nanosecond both observe it);
* under the ledger's name for it (the greatest of its calls' names, as the API shows it);
* a session with an unpriced call is not observed: its total would be too low, never
  silently so (the API lists it with its ``unpriced_requests``).

Without a ledger lookup (a tracker built alone), or when the ledger keeps no session id
(``privacy: {session_id: drop}``), the tracker falls back to the sum of the calls it saw.
A session has no explicit end on the wire, so it is closed after ``idle_seconds`` without a
call; one that resumes later is observed again with its new total. Memory is bounded: past
``max_sessions`` open sessions the least recently active one is closed early.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import Histogram

from llmcost_collector.metrics.cost import BilledCall
from llmcost_collector.metrics.labels import LabelCaps
from llmcost_collector.money import nanos_to_float_usd

log = logging.getLogger(__name__)

# (ledger session id, first call start ns, last call start ns) -> (contracted nanos, unpriced
# calls, last call end ns, name) from the ledger, or None when it holds no such session.
SessionTotal = Callable[[str, int, int], "tuple[int, int, int, str] | None"]


@dataclass(slots=True)
class _Open:
    name: str
    ledger_id: str  # the id the ledger keeps (hashed or dropped by the privacy settings)
    first_start_ns: int
    last_start_ns: int
    last_end_ns: int
    nanos: int
    unpriced: int
    last_seen: float


class SessionCostTracker:
    def __init__(
        self,
        histogram: Histogram,
        caps: LabelCaps,
        idle_seconds: float = 300.0,
        max_sessions: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        session_total: SessionTotal | None = None,
    ) -> None:
        self._histogram = histogram
        self._caps = caps
        self._idle = idle_seconds
        self._max = max_sessions
        self._clock = clock
        self._session_total = session_total
        self._open: OrderedDict[str, _Open] = OrderedDict()  # by the session id as sent
        self._lock = threading.Lock()

    def add(self, billed: Iterable[BilledCall], ledger_ids: Sequence[str] | None = None) -> None:
        """Newly ledgered calls; ``ledger_ids[i]`` is the session id the ledger stored for call i."""
        now = self._clock()
        closed = []
        with self._lock:
            for i, item in enumerate(billed):
                call = item.call
                session_id = call.attribution.session_id
                if not session_id:
                    continue
                entry = self._open.pop(session_id, None)
                if entry is None:
                    ledger_id = session_id if ledger_ids is None else ledger_ids[i]
                    entry = _Open(call.attribution.session_name, ledger_id, call.start_time_ns,
                                  call.start_time_ns, call.end_time_ns, 0, 0, now)  # fmt: skip
                entry.name = max(entry.name, call.attribution.session_name)  # the ledger's rule
                entry.first_start_ns = min(entry.first_start_ns, call.start_time_ns)
                entry.last_start_ns = max(entry.last_start_ns, call.start_time_ns)
                entry.last_end_ns = max(entry.last_end_ns, call.end_time_ns)
                if item.cost.contracted_nanos is None:
                    entry.unpriced += 1
                else:
                    entry.nanos += item.cost.contracted_nanos
                entry.last_seen = now
                self._open[session_id] = entry
            while len(self._open) > self._max:
                closed.append(self._open.popitem(last=False)[1])
        for entry in closed:
            self._observe(entry)

    def sweep(self) -> int:
        """Close idle sessions; returns how many were closed (observed or left to another replica)."""
        deadline = self._clock() - self._idle
        closed = []
        with self._lock:
            while self._open:
                session_id, entry = next(iter(self._open.items()))
                if entry.last_seen > deadline:
                    break
                del self._open[session_id]
                closed.append(entry)
        for entry in closed:  # ledger reads outside the lock: ingest never waits for them
            self._observe(entry)
        return len(closed)

    def _observe(self, entry: _Open) -> None:
        nanos, unpriced, name = entry.nanos, entry.unpriced, entry.name
        if self._session_total is not None and entry.ledger_id:
            try:
                found = self._session_total(entry.ledger_id, entry.first_start_ns, entry.last_start_ns)
            except Exception:  # the ledger is unreachable: skip this one rather than guess its total
                log.warning("session total unavailable from the ledger; not observed", exc_info=True)
                return
            if found is not None:
                nanos, unpriced, last_end_ns, name = found
                if last_end_ns > entry.last_end_ns:
                    return  # a later call went to another replica: that one observes the session
        if unpriced:
            return
        label = self._caps.value("session_name", name or "unnamed")
        self._histogram.labels(label).observe(nanos_to_float_usd(nanos))

    @property
    def open_sessions(self) -> int:
        return len(self._open)
