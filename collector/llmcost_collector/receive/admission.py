"""Admission before work: a byte budget shared by every export being read, decoded and billed.

The memory an export costs is its body (and, gzipped, its inflated body), the decoded spans and
the priced rows, all held until its ledger commit is acknowledged. Counting exports alone does
not bound that (64 exports of 16 MiB are 1 GiB of bodies before any decoding), so the receivers
charge each export's bytes here *before* spending them: an HTTP body from its ``Content-Length``
before a byte is read (a chunked one as it streams, a gzip one as it inflates), a gRPC request
from its encoded size before it is decoded. An export the budget cannot take is refused with a
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
