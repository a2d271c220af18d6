"""Admission before work: a byte budget shared by every export being read, decoded and billed.

The memory an export costs is its body (and, gzipped, its inflated body), the decoded spans and
the priced rows, all held until its ledger commit is acknowledged. Counting exports alone does
not bound that (64 exports of 16 MiB are 1 GiB of bodies before any decoding), so the receivers
check each export's bytes here *before* spending them: an HTTP body's ``Content-Length`` is
checked before a byte is read and its bytes are charged as they arrive (so an upload that
stalls holds only what it has sent, not what it announced), a gzip body is charged as it
inflates, a gRPC request from its encoded size before it is decoded. An export the budget cannot take is refused with a
retryable answer (HTTP 429, gRPC RESOURCE_EXHAUSTED), and its charge is returned when its answer
is sent.

An export alone in the budget is always admitted, whatever its size, so one export of the
largest allowed size never waits forever behind a budget smaller than itself; the bound on what
is in flight is therefore ``max(budget, one export)``, one export being at most its body cap and,
gzipped, the same cap again inflated.
"""

from __future__ import annotations

import threading


class BudgetExhausted(Exception):
    """The in-flight byte budget cannot take this export now; the client should retry."""

    retry_after = 1.0


class ByteBudget:
    """A counter of bytes charged by exports in flight, safe across the event loop and threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def fits(self, amount: int, held: int = 0) -> bool:
        """Whether ``amount`` more bytes would be admitted now (nothing is charged)."""
        return amount <= 0 or self._used <= held or self._used + amount <= self.limit

    def try_charge(self, amount: int, held: int = 0) -> bool:
        """Charge ``amount`` more bytes to a caller already holding ``held``: they fit, or nobody
        else holds any; False (nothing charged) otherwise."""
        if amount <= 0:
            return True
        with self._lock:
            if self._used > held and self._used + amount > self.limit:
                return False
            self._used += amount
            return True

    def release(self, amount: int) -> None:
        if amount <= 0:
            return
        with self._lock:
            self._used -= amount


class Charge:
    """One export's share of a budget: grows as its bytes arrive, returned whole by ``close``."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.amount = 0

    def add(self, amount: int) -> None:
        """Charge ``amount`` more bytes, or raise ``BudgetExhausted`` (nothing more is charged)."""
        if not self._budget.try_charge(amount, self.amount):
            raise BudgetExhausted()
        self.amount += max(0, amount)

    def close(self) -> None:
        self._budget.release(self.amount)
        self.amount = 0

    def __enter__(self) -> Charge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the memory bound these limits give ---------------------------------------------------------
# Measured by benchmarks/bench_memory.py (BENCHMARKS.md, "Memory per export"; CPython 3.11,
# protobuf upb, SQLite ledger), one export at a time into an idle ``llmcost serve``, peak RSS
# (VmHWM) over the idle RSS:
#   11.7 MB protobuf of SDK spans (30,000, ~390 B each):  16.4x the body (6.4 kB a span)
#    6.0 MB protobuf of the most compact billable spans (40,000, 150 B):  27.6x (4.1 kB a span)
#   13.2 MB OTLP/JSON (15,000 spans):  10.0x (8.8 kB a span)
# and a parsed 4 MB gRPC request held by grpcio: 3.5x its encoded size. Rounded up:
BASELINE_BYTES = 128 * 1024 * 1024  # idle `llmcost serve` after its first export: 90 MB measured
DECODE_EXPANSION = 32  # peak bytes per in-flight body byte, read to committed (all formats)
SPAN_BYTES = 10 * 1024  # one queued span: its decoded view, priced row and billed call
PARSED_MESSAGE_EXPANSION = 4  # a gRPC request parsed by grpcio before the budget is charged
CONNECTION_BYTES = 128 * 1024  # one open HTTP connection's buffers (uvicorn pauses past 64 kB)


def rss_bound_bytes(
    *,
    max_inflight_bytes: int,
    max_body_bytes: int,
    queue_capacity_spans: int,
    grpc_max_concurrent_rpcs: int,
    max_connections: int,
) -> int:
    """The collector's resident memory stays under this, whatever the mix of exports: what is in
    flight (the budget, or one export alone: its body and, gzipped, the same cap inflated) times
    the decode expansion, the gRPC requests grpcio holds parsed, the queue, the connections of
    the two HTTP ports, and the process itself. README "Bounded memory" gives it as a formula."""
    in_flight = max(max_inflight_bytes, 2 * max_body_bytes)
    return (
        BASELINE_BYTES
        + DECODE_EXPANSION * in_flight
        + PARSED_MESSAGE_EXPANSION * grpc_max_concurrent_rpcs * max_body_bytes
        + SPAN_BYTES * queue_capacity_spans
        + CONNECTION_BYTES * 2 * max_connections
    )
