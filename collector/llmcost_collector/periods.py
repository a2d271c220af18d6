"""Calendar periods: budgets and period-to-date spend are calendar days and months, not rolling windows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo


def period_starts(now: datetime) -> dict[str, datetime]:
    """Start of the current UTC day and month: budgets are calendar periods, not rolling windows."""
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"daily": day, "monthly": day.replace(day=1)}


def period_bounds(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    """``(start, end)`` of the current UTC day and month: the whole period, so that a
    period-to-date total is one rollup tile, whatever the time of day."""
    starts = period_starts(now)
    day, month = starts["daily"], starts["monthly"]
    return {"daily": (day, day + timedelta(days=1)), "monthly": (month, _next_month(month))}


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def month_start_ns(ns: int) -> int:
    """Start (epoch ns) of the UTC calendar month holding the instant ``ns``."""
    moment = datetime.fromtimestamp(ns // 10**9, timezone.utc)
    return epoch_ns(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0))


def next_month_ns(ns: int) -> int:
    """Start (epoch ns) of the UTC calendar month after the one holding ``ns``."""
    first = datetime.fromtimestamp(month_start_ns(ns) // 10**9, timezone.utc)
    return epoch_ns(_next_month(first))


def epoch_ns(moment: datetime) -> int:
    """Exact nanoseconds since the epoch (``timestamp() * 1e9`` goes through a float and drifts)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


# Named periods, as the query API, sessions and reports take them (``period=this_month``):
# whole calendar units in UTC, so that a month is always a whole month of the ledger's rollups.
PRESETS = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month")


def _next_month(first: datetime) -> datetime:
    return (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )


def named_period(name: str, now: datetime, zone: tzinfo = timezone.utc) -> tuple[datetime, datetime]:
    """``[start, end)`` of a preset (``today``, ``yesterday``, ``this_week`` and ``last_week``
    from Monday, ``this_month``, ``last_month``) or of a calendar month written ``YYYY-MM``, as
    calendar units in ``zone`` (UTC by default); ValueError for anything else."""
    local = now.astimezone(zone)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), zone)

    today = local.date()
    month = midnight(today.replace(day=1))
    if name in ("today", "yesterday"):
        day = today - timedelta(days=1 if name == "yesterday" else 0)
        return midnight(day), midnight(day + timedelta(days=1))
    if name in ("this_week", "last_week"):
        monday = today - timedelta(days=today.weekday() + (7 if name == "last_week" else 0))
        return midnight(monday), midnight(monday + timedelta(days=7))
    if name == "this_month":
        return month, _next_month(month)
    if name == "last_month":
        return midnight((today.replace(day=1) - timedelta(days=1)).replace(day=1)), month
    try:
        first = datetime.strptime(name, "%Y-%m").replace(tzinfo=zone)
    except ValueError:
        raise ValueError(f"unknown period {name!r}: use {', '.join(PRESETS)} or a month as YYYY-MM") from None
    return first, _next_month(first)
