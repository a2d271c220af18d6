"""Reserve-then-settle for hard budget limits: the guard's *reserve* mode, shared by replicas.

Before a provider call the guard asks for a reservation of the call's maximum cost. It is granted
only if, for every hard-limit budget in the call's scope, the ledger's spend this period plus the
reservations still outstanding plus this estimate stay within the amount. Check and insert are one
transaction holding the budget scope's lock (SQLite: ``BEGIN IMMEDIATE``, one writer for the whole
file; PostgreSQL: a transaction-scoped advisory lock per scope, taken in sorted order), so any
number of concurrent reservers, on any number of replicas, can never together overshoot.

Settling releases the hold without counting the call twice: the call's actual cost reaches the
ledger through its span, as always. A hold names the call's span (at reservation or settlement)
and counts only until that span is in the ledger (``llm_call_spans``), so a settlement still on
its way never doubles a call the ledger already has; settled, the hold shrinks to the actual
cost; a settlement without a span releases it at once. A call to a model without a price holds
the configured ceiling, and settled it keeps holding it to the end of the budget's period: the
ledger counts such a call as $0 until it is re-priced, so it is never free against a hard limit. A reservation never settled (a crashed process) stops counting at its expiry
and is counted once as a leak, by whichever replica marks it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmcost_collector.budget.status import budget_status, period_of
from llmcost_collector.config.budgets import Budget
from llmcost_collector.ledger import SqlLedger
from llmcost_collector.ledger.query import CostQuery, CostRow
from llmcost_collector.ledger.query import run as run_query
from llmcost_collector.ledger.schema import RESERVATIONS_TABLE, SPANS_TABLE, TABLE
from llmcost_collector.model import UNPRICED as PRICE_UNKNOWN  # a ledger row's price_status
from llmcost_collector.money import usd_to_nanos
from llmcost_collector.periods import epoch_ns

HELD, SETTLED, RELEASED, EXPIRED = "held", "settled", "released", "expired"
# A call to a model without a price, settled: the ledger counts it as $0 until it is re-priced, so
# its hold (the ceiling) keeps counting, span or not, until the end of the budget's period.
UNPRICED = "unpriced"
OUTCOMES = ("success", "error", "cancelled", "partial")
_SCOPE_LOCKS = (
    "SELECT pg_advisory_xact_lock(k) FROM "
    "(SELECT DISTINCT hashtextextended(x, 727276) AS k FROM unnest(%s::text[]) AS x) AS keys ORDER BY k"
)
_SWEEP_LOCK = "SELECT pg_try_advisory_xact_lock(727277)"  # one replica marks expiries at a time


@dataclass(frozen=True)
class CallScope:
    """Who a call is charged to, as the guard states it ("" = not set)."""

    team: str = ""
    environment: str = ""
    feature: str = ""
    user_tier: str = ""
    user_id: str = ""  # as the ledger stores it (after the privacy section's hashing)

    def value(self, column: str) -> str:
        return str(getattr(self, column))


@dataclass(frozen=True)
class Estimate:
    """A call's cost on both bases, integer nano-dollars; None when the model has no price."""

    contracted_nanos: int | None
    charged_nanos: int | None

    @property
    def priced(self) -> bool:
        return self.contracted_nanos is not None and self.charged_nanos is not None

    def on(self, basis: str) -> int:
        value = self.contracted_nanos if basis == "provider" else self.charged_nanos
        assert value is not None, "priced estimates only"
        return value

    @staticmethod
    def ceiling(nanos: int) -> Estimate:
        return Estimate(nanos, nanos)


@dataclass(frozen=True)
class Hold:
    budget: Budget
    scope_key: str
    user_id: str | None
    amount_nanos: int


@dataclass(frozen=True)
class Granted:
    reservation_id: str
    holds: tuple[Hold, ...]
    expires_at_ns: int


@dataclass(frozen=True)
class Refused:
    """Why a reservation was refused; ``reason`` is ``over_limit`` or ``unpriced``."""

    reason: str
    budget: Budget | None = None
    scope_key: str = ""
    limit_nanos: int = 0
    spent_nanos: int = 0
    reserved_nanos: int = 0
    estimate_nanos: int = 0


@dataclass(frozen=True)
class Settled:
    reservation_id: str
    state: str  # settled | released | expired (settled too late: already counted as a leak)
    held_nanos: int  # what is still held until the call's span reaches the ledger


class UnknownReservation(LookupError):
    pass


class Reservations:
    """Reservations in the ledger database. ``budgets`` gives the budgets in force (hot reload);
    ``on_leak(budget, count)`` is told of reservations that expired unsettled."""

    def __init__(
        self,
        ledger: SqlLedger,
        budgets: Callable[[], Sequence[Budget]],
        clock: Callable[[], datetime],
        on_leak: Callable[[str, int], None] = lambda _budget, _count: None,
    ) -> None:
        self._ledger = ledger
        self._budgets = budgets
        self._clock = clock
        self._on_leak = on_leak
        self._postgres = ledger.dialect.name == "postgresql"

    def in_scope(self, scope: CallScope) -> list[tuple[Budget, str, str | None]]:
        """(budget, scope key, user id) of every hard-limit budget the call counts against.

        A per-user budget needs the call's user: a call without one is in no user's budget.
        """
        found: list[tuple[Budget, str, str | None]] = []
        for budget in self._budgets():
            if not budget.hard_limit:
                continue
            if any(scope.value(column) != value for column, value in budget.scope.filters().items()):
                continue
            if budget.per_user:
                if scope.user_id:
                    found.append((budget, f"{budget.name}/user/{scope.user_id}", scope.user_id))
            else:
                found.append((budget, budget.name, None))
        return found

    def reserve(
        self, scope: CallScope, estimate: Estimate, *, ceiling_nanos: int | None, ttl_ns: int,
        trace_id: str = "", span_id: str = "",
    ) -> Granted | Refused:  # fmt: skip
        """Hold ``estimate`` (or ``ceiling_nanos`` for an unpriced model; refused without one)
        against every hard-limit budget of ``scope``, or refuse it; one transaction.

        ``trace_id``/``span_id`` name the call's span: once it is in the ledger the ledger counts
        the call and the hold stops counting, even before the settlement arrives."""
        budgets = self.in_scope(scope)
        if budgets and not estimate.priced:
            if ceiling_nanos is None:
                budget, key, _ = budgets[0]
                return Refused("unpriced", budget, key, usd_to_nanos(budget.amount_usd))
            estimate = Estimate.ceiling(ceiling_nanos)
        now = self._clock()
        now_ns = epoch_ns(now)
        reservation_id = uuid.uuid4().hex
        expires = now_ns + ttl_ns
        with self._ledger.write_transaction() as execute:
            self._expire(execute, now_ns)
            if self._postgres and budgets:
                execute(_SCOPE_LOCKS, [sorted({key for _, key, _ in budgets})])
            holds = []
            for budget, key, user_id in budgets:
                amount = estimate.on(budget.basis)
                start, _ = period_of(budget, now)
                # Outstanding holds first, the ledger after: a span landing in between is then
                # counted twice (a refusal too early), never not at all.
                reserved = _outstanding(execute, key, epoch_ns(start), now_ns)
                spent = budget_status(
                    budget, _costs(execute, self._ledger.dialect.name), now, user_id=user_id
                )
                limit = usd_to_nanos(budget.amount_usd)
                if spent.spent_nanos + reserved + amount > limit:
                    return Refused("over_limit", budget, key, limit, spent.spent_nanos, reserved, amount)
                holds.append(Hold(budget, key, user_id, amount))
            for hold in holds:
                execute(
                    f"INSERT INTO {RESERVATIONS_TABLE} (reservation_id, scope_key, budget, amount_nanos, state, "
                    "created_at_ns, expires_at_ns, outcome, trace_id, span_id) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?)",
                    [
                        reservation_id,
                        hold.scope_key,
                        hold.budget.name,
                        hold.amount_nanos,
                        HELD,
                        now_ns,
                        expires,
                        trace_id,
                        span_id,
                    ],
                )
        return Granted(reservation_id, tuple(holds), expires)

    def settle(
        self,
        reservation_id: str,
        outcome: str,
        actual: Estimate | None,
        *,
        trace_id: str = "",
        span_id: str = "",
        hold_ns: int,
    ) -> Settled:
        """End a reservation: with the call's span and its priced usage, hold the actual cost
        until that span is in the ledger (for at most ``hold_ns``); otherwise release it."""
        now_ns = epoch_ns(self._clock())
        with self._ledger.write_transaction() as execute:
            rows = execute(
                f"SELECT scope_key, budget, amount_nanos, state, trace_id, span_id FROM {RESERVATIONS_TABLE} "
                "WHERE reservation_id = ? ORDER BY scope_key",  # rows locked in one order
                [reservation_id],
            ).fetchall()
            if not rows:
                raise UnknownReservation(reservation_id)
            if any(row[3] == EXPIRED for row in rows):
                return Settled(reservation_id, EXPIRED, 0)
            if not (trace_id and span_id):  # named when reserving, if at all
                trace_id, span_id = rows[0][4], rows[0][5]
            budgets = {b.name: b for b in self._budgets()}
            if actual is not None and not actual.priced:
                new_state = UNPRICED  # used, but the ledger cannot say for how much
            elif trace_id and span_id and actual is not None:
                new_state = SETTLED
            else:
                new_state = RELEASED
            held = 0
            for scope_key, name, amount, state, _, _ in rows:
                if state != HELD:
                    continue  # settled twice: the first settlement stands
                budget = budgets.get(name)
                expires = now_ns + hold_ns
                if new_state == UNPRICED:
                    new_amount = int(amount)
                    if budget is not None:
                        expires = max(expires, epoch_ns(period_of(budget, self._clock())[1]))
                elif new_state == SETTLED and actual is not None:
                    # never more than was reserved: the hold only ever shrinks
                    new_amount = min(int(amount), actual.on(budget.basis if budget else "charged"))
                else:
                    new_amount = 0
                held = max(held, new_amount)
                execute(
                    f"UPDATE {RESERVATIONS_TABLE} SET state = ?, amount_nanos = ?, outcome = ?, trace_id = ?, "
                    "span_id = ?, settled_at_ns = ?, expires_at_ns = ? "
                    "WHERE reservation_id = ? AND scope_key = ? AND state = ?",
                    [new_state, new_amount, outcome, trace_id, span_id, now_ns, expires, reservation_id,
                     scope_key, HELD],
                )  # fmt: skip
        return Settled(reservation_id, new_state, held)

    def expire(self) -> int:
        """Mark reservations past their expiry and never settled as expired (leaks); forget
        ended ones a day after their expiry. Returns the leaks marked now."""
        with self._ledger.write_transaction() as execute:
            return self._expire(execute, epoch_ns(self._clock()))

    def _expire(self, execute: Callable[..., Any], now_ns: int) -> int:
        if self._postgres and not execute(_SWEEP_LOCK, []).fetchone()[0]:
            return 0  # another replica is marking them right now
        # PostgreSQL: rows a settlement is updating right now are skipped (it ends them itself), so
        # marking never waits on, nor deadlocks with, a settlement. SQLite has one writer anyway.
        due = f"state = ? AND expires_at_ns <= ?{' FOR UPDATE SKIP LOCKED' if self._postgres else ''}"
        leaked = execute(
            f"UPDATE {RESERVATIONS_TABLE} SET state = ? WHERE state = ? AND (reservation_id, scope_key) IN "
            f"(SELECT reservation_id, scope_key FROM {RESERVATIONS_TABLE} WHERE {due}) RETURNING budget",
            [EXPIRED, HELD, HELD, now_ns],
        ).fetchall()
        execute(
            f"DELETE FROM {RESERVATIONS_TABLE} WHERE state <> ? AND expires_at_ns <= ?",
            [HELD, now_ns - 86_400 * 10**9],
        )
        counts: dict[str, int] = {}
        for (budget,) in leaked:
            counts[budget] = counts.get(budget, 0) + 1
        for budget, count in counts.items():
            self._on_leak(budget, count)
        return len(leaked)


def _outstanding(execute: Callable[..., Any], scope_key: str, period_start_ns: int, now_ns: int) -> int:
    """Nanos held against one scope this period, not expired: holds and settled calls whose span
    is not in the ledger yet at a price (once it is, the ledger counts the call; a span that landed
    unpriced counts $0 there, so its hold keeps counting until the settlement makes it an unpriced
    hold), and unpriced calls."""
    row = execute(
        f"SELECT COALESCE(SUM(r.amount_nanos), 0) FROM {RESERVATIONS_TABLE} r "
        "WHERE r.scope_key = ? AND r.expires_at_ns > ? AND r.created_at_ns >= ? AND (r.state = ? OR "
        f"(r.state IN (?, ?) AND NOT EXISTS (SELECT 1 FROM {SPANS_TABLE} s JOIN {TABLE} c "
        "ON c.trace_id = s.billed_trace_id AND c.span_id = s.billed_span_id "
        "WHERE s.trace_id = r.trace_id AND s.span_id = r.span_id AND c.price_status <> ?)))",
        [scope_key, now_ns, period_start_ns, UNPRICED, HELD, SETTLED, PRICE_UNKNOWN],
    ).fetchone()
    return int(row[0])


def _costs(execute: Callable[..., Any], dialect: str) -> Callable[[CostQuery], list[CostRow]]:
    """The ledger's cost question answered inside the reservation's own transaction."""

    def read(sql: str, params: Sequence[object]) -> list[tuple]:
        return list(execute(sql, params).fetchall())

    return lambda query: run_query(query, read, dialect)


__all__ = [
    "OUTCOMES",
    "CallScope",
    "Estimate",
    "Granted",
    "Hold",
    "Refused",
    "Reservations",
    "Settled",
    "UnknownReservation",
]
