"""Each budget's period-to-date spend, read from the ledger's rollups through ``CostQuery``.

One question per budget: the period is a whole calendar unit in the budget's time zone, so the
query is the period's tiles (a month row, day rows, hour rows and at most the sub-hour edges of
a time zone with a half-hour offset): the work is bounded by the number of rollup combinations,
not by the number of calls. Per-user budgets group by user from the per-user rollup (UTC
months) and keep only the users at or over the amount (at most ``user_limit`` of them, the
largest spenders): the status of a user who is not over is never a list of every user.

The ledger is the only source: nothing is held in memory, so a restart, a second replica or a
re-price shows the same numbers at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from llmcost_collector.config.budgets import Budget
from llmcost_collector.ledger.query import CostQuery, CostRow, Filter
from llmcost_collector.money import format_usd, usd_to_nanos
from llmcost_collector.periods import epoch_ns, named_period

MEASURE = {"charged": "chargeback_nanos", "provider": "contracted_nanos"}
_PRESET = {"daily": "today", "weekly": "this_week", "monthly": "this_month"}
Costs = Callable[[CostQuery], Sequence[CostRow]]


@dataclass(frozen=True)
class UserSpend:
    user_id: str
    spent_nanos: int


@dataclass(frozen=True)
class BudgetStatus:
    """A budget over its current period; for a per-user budget, ``spent_nanos`` is the largest
    single user's spend and ``users_over`` the users at or over the amount."""

    budget: Budget
    start: datetime
    end: datetime
    now: datetime
    spent_nanos: int
    users_over: tuple[UserSpend, ...] = field(default=())
    users_truncated: bool = False

    @property
    def amount_nanos(self) -> int:
        return usd_to_nanos(self.budget.amount_usd)

    @property
    def ratio(self) -> Decimal | None:
        """Spend / amount (1 = 100 %); None for a zero amount."""
        amount = self.amount_nanos
        return None if amount == 0 else Decimal(self.spent_nanos) / Decimal(amount)

    @property
    def forecast_nanos(self) -> int:
        """Spend extrapolated linearly from the period start to its end."""
        elapsed = epoch_ns(self.now) - epoch_ns(self.start)
        length = epoch_ns(self.end) - epoch_ns(self.start)
        if elapsed <= 0:
            return self.spent_nanos
        return self.spent_nanos * length // min(elapsed, length)

    @property
    def crossed(self) -> int | None:
        """The highest threshold (percent) reached, if any."""
        amount = self.amount_nanos
        reached = [t for t in self.budget.thresholds if self.spent_nanos * 100 >= amount * t]
        return reached[-1] if reached else None

    @property
    def exceeded(self) -> bool:
        """Spent (the whole amount, or any spend against a zero amount)."""
        if self.budget.per_user:
            return bool(self.users_over)
        amount = self.amount_nanos
        return self.spent_nanos >= amount if amount else self.spent_nanos > 0

    @property
    def state(self) -> str:
        """``exceeded`` (at or over 100 %), ``at_risk`` (the forecast is over), else ``ok``."""
        if self.exceeded:
            return "exceeded"
        return "at_risk" if self.forecast_nanos > self.amount_nanos else "ok"


def period_of(budget: Budget, now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` of the budget's calendar period holding ``now``, in its time zone."""
    return named_period(_PRESET[budget.period], now, ZoneInfo(budget.timezone))


def budget_status(
    budget: Budget, costs: Costs, now: datetime, *, user_id: str | None = None, user_limit: int = 1000
) -> BudgetStatus:
    """The budget's spend this period; for a per-user budget with ``user_id``, that user's."""
    start, end = period_of(budget, now)
    measure = MEASURE[budget.basis]
    filters = tuple(Filter(column, (value,)) for column, value in budget.scope.filters().items())
    start_ns, end_ns = epoch_ns(start), epoch_ns(end)
    if not budget.per_user:
        rows = costs(CostQuery(start_ns, end_ns, filters=filters, tz=budget.timezone))
        return BudgetStatus(budget, start, end, now, sum(row[measure] for row in rows))
    if user_id is not None:
        filters = (*filters, Filter("user_id", (user_id,)))
    rows = costs(
        CostQuery(
            start_ns, end_ns, ("user_id",), filters, tz=budget.timezone, rank_by=(measure,), limit=user_limit
        )
    )
    spends = sorted(
        (UserSpend(row.group["user_id"], row[measure]) for row in rows if row.group["user_id"]),
        key=lambda u: (-u.spent_nanos, u.user_id),
    )
    amount = usd_to_nanos(budget.amount_usd)
    over = tuple(u for u in spends if u.spent_nanos >= amount and (amount or u.spent_nanos))
    top = spends[0].spent_nanos if spends else 0
    return BudgetStatus(budget, start, end, now, top, over, users_truncated=len(over) == user_limit)


def status_json(status: BudgetStatus) -> dict[str, object]:
    """One budget's status as the status API and ``llmcost budgets --format json`` give it:
    money as exact decimal-dollar strings, percent to two decimals."""
    b = status.budget
    ratio = status.ratio
    body: dict[str, object] = {
        "budget": b.name,
        "scope": b.scope.describe(),
        "scope_filters": b.scope.filters(),
        "per_user": b.per_user,
        "period": b.period,
        "basis": b.basis,
        "timezone": b.timezone,
        "from": status.start.isoformat(),
        "to": status.end.isoformat(),
        "amount_usd": format_usd(status.amount_nanos),
        "spent_usd": format_usd(status.spent_nanos),
        "percent": None if ratio is None else f"{ratio * 100:.2f}",
        "forecast_usd": format_usd(status.forecast_nanos),
        "thresholds": list(b.thresholds),
        "crossed": status.crossed,
        "state": status.state,
        "hard_limit": b.hard_limit,
    }
    if b.per_user:
        body["users_over"] = [
            {"user_id": u.user_id, "spent_usd": format_usd(u.spent_nanos)} for u in status.users_over
        ]
        body["users_truncated"] = status.users_truncated
    return body
