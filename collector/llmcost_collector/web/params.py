"""Query-string parsing the sessions and reports routes share: strict, and every error names its
parameter (answered 400 by ``make_web_app``'s handler for ``HTTPException``).

Periods: ``period`` (a preset from ``periods.PRESETS`` or a month ``YYYY-MM``) or ``from``/``to``
(ISO 8601; a date or a time, UTC unless it says otherwise; ``to`` exclusive), never both; the
default is this calendar month. Filters: ``column=a,b`` (any of the values) and ``column!=a``
(none of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from fastapi import HTTPException, Request

from llmcost_collector.ledger.query import Filter
from llmcost_collector.money import format_usd, usd_to_nanos
from llmcost_collector.periods import epoch_ns, named_period

PERIOD_PARAMS = ("period", "from", "to")


def bad(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)


def check_known(request: Request, allowed: Iterable[str]) -> None:
    """400 naming every query parameter the route does not take (never silently ignored)."""
    allowed = set(allowed)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise bad(f"unknown parameter {', '.join(unknown)}; this path takes {', '.join(sorted(allowed))}")
    repeated = sorted({k for k in request.query_params if len(request.query_params.getlist(k)) > 1})
    if repeated:
        raise bad(f"parameter {', '.join(repeated)} given more than once: use one value list a,b")


def _moment(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad(
            f"{name}: invalid time {value!r}: use ISO 8601, e.g. 2026-11-01 or 2026-11-01T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def period_range(request: Request, now: datetime | None = None) -> tuple[int, int]:
    """``[start_ns, end_ns)`` from ``period`` or ``from``/``to`` (default: this month)."""
    now = now or datetime.now(timezone.utc)
    q = request.query_params
    period, start, end = q.get("period"), q.get("from"), q.get("to")
    if period is not None:
        if start is not None or end is not None:
            raise bad("period: give either period or from/to, not both")
        try:
            first, following = named_period(period, now)
        except ValueError as exc:
            raise bad(f"period: {exc}") from None
        return epoch_ns(first), epoch_ns(following)
    first, following = named_period("this_month", now)
    start_ns = epoch_ns(_moment("from", start)) if start else epoch_ns(first)
    end_ns = epoch_ns(_moment("to", end)) if end else epoch_ns(following)
    if end_ns <= start_ns:
        raise bad(f"to: must be after from ({end} is not after {start or first.isoformat()})")
    return start_ns, end_ns


def filters(request: Request, columns: Iterable[str]) -> tuple[Filter, ...]:
    """``column=a,b`` and ``column!=a`` filters on the given columns."""
    out = []
    for column in columns:
        for key, negate in ((column, False), (column + "!", True)):
            raw = request.query_params.get(key)
            if raw is None:
                continue
            values = tuple(v for v in raw.split(",") if v != "")
            if not values:
                raise bad(f"{key}: give at least one value")
            out.append(Filter(column, values, negate))
    return tuple(out)


def filter_names(columns: Iterable[str]) -> list[str]:
    return [name for column in columns for name in (column, column + "!")]


def usd_amount(name: str, value: str) -> int:
    """A non-negative decimal dollar amount (``0.45``) as nano-dollars."""
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise bad(f"{name}: {value!r} is not a decimal dollar amount (e.g. 0.45)") from None
    if not amount.is_finite() or amount < 0:
        raise bad(f"{name}: {value!r} must be a finite amount of at least 0")
    return usd_to_nanos(amount)


def iso(ns: int) -> str:
    """UTC instant of integer nanoseconds (to the microsecond)."""
    return (
        datetime.fromtimestamp(ns // 10**9, timezone.utc).replace(microsecond=ns % 10**9 // 1000).isoformat()
    )


def seconds(ns: int) -> str:
    """Exact seconds as a decimal string."""
    return format(Decimal(ns).scaleb(-9), "f")


def usd(nanos: int) -> str:
    return format_usd(nanos)
