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
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request

from llmcost_collector.ledger.entry import INT64_MAX
from llmcost_collector.ledger.query import Filter
from llmcost_collector.money import format_usd, usd_to_nanos
from llmcost_collector.web.costs import BadQuery, filter_values, time_range

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


def period_range(request: Request, now: datetime | None = None) -> tuple[int, int]:
    """``[start_ns, end_ns)`` from ``period`` or ``from``/``to`` (default: this month), read as
    ``/api/v1/costs`` reads them, in UTC."""
    try:
        return time_range(dict(request.query_params), now or datetime.now(timezone.utc), ZoneInfo("UTC"))
    except BadQuery as exc:
        raise bad(str(exc)) from None


def filters(request: Request, columns: Iterable[str]) -> tuple[Filter, ...]:
    """``column=a,b`` and ``column!=a`` filters on the given columns."""
    out = []
    for column in columns:
        for key, negate in ((column, False), (column + "!", True)):
            raw = request.query_params.get(key)
            if raw is None:
                continue
            values = tuple(v for v in filter_values(raw) if v != "")
            if not values:
                raise bad(f"{key}: give at least one value")
            out.append(Filter(column, values, negate))
    return tuple(out)


def filter_names(columns: Iterable[str]) -> list[str]:
    return [name for column in columns for name in (column, column + "!")]


# The largest amount the ledger holds: int64 nano-dollars (about $9.2 billion).
MAX_USD = Decimal(INT64_MAX).scaleb(-9)


def usd_amount(name: str, value: str) -> int:
    """A non-negative decimal dollar amount (``0.45``) as nano-dollars, at most ``MAX_USD``."""
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise bad(f"{name}: {value!r} is not a decimal dollar amount (e.g. 0.45)") from None
    if not amount.is_finite() or amount < 0:
        raise bad(f"{name}: {value!r} must be a finite amount of at least 0")
    if amount > MAX_USD:
        raise bad(f"{name}: {value!r} is above {MAX_USD}, the largest amount the ledger holds")
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
