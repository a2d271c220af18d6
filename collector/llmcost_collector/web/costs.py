"""``GET /api/v1/costs`` and ``llmcost query``: one parser, one answer, two front ends.

Both take the same flat parameters (a query string, or the command's options turned into one),
so a question asked at the command line and over HTTP gets the same rows and the same errors.
Every parameter is checked: an unknown name or a malformed value is an error that names it,
never a silently ignored filter. Money leaves as exact decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llmcost_collector.ledger import SqlLedger
from llmcost_collector.ledger.query import (
    BUCKETS,
    COLUMNS,
    PROPERTY_PREFIX,
    CostQuery,
    CostRow,
    Filter,
    check_column,
)
from llmcost_collector.money import format_usd
from llmcost_collector.periods import PRESETS, epoch_ns, named_period

# What a row can be ordered by, and the measure (or measures) each name sums.
ORDER_FIELDS = {
    "charged": ("chargeback_nanos",),
    "contracted_cost": ("contracted_nanos",),
    "list_cost": ("list_nanos",),
    "savings": ("savings_nanos",),
    "prompt_cache_savings": ("prompt_cache_savings_nanos",),
    "requests": ("requests",),
    "errors": ("errors",),
    "tokens": (
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
    ),
}
TOKEN_CLASSES = {
    "input": "input_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "output": "output_tokens",
    "reasoning": "reasoning_tokens",
}
PARAMETERS = ("group_by", "bucket", "tz", "period", "from", "to", "order_by", "limit")
OTHERS = "__others__"
MAX_LIMIT = 10_000
# Time buckets one answer may hold: a year of hours, 27 years of days. Each bucket is its own
# read of the rollups, so a request for centuries of hours would hold a worker for many seconds.
MAX_BUCKETS = 10_000
# A bucket's usual length (DST makes a day 23 or 25 hours; a month is counted at 30 days):
# the range over it estimates the number of buckets to within a few.
_BUCKET_NS = {"hour": 3_600 * 10**9, "day": 86_400 * 10**9, "week": 7 * 86_400 * 10**9,
              "month": 30 * 86_400 * 10**9}  # fmt: skip


class BadQuery(ValueError):
    """A parameter the API refuses; the message names it."""


def filter_values(raw: str) -> tuple[str, ...]:
    """A filter's values, ``a,b``: a comma inside a value is written ``\\,`` and a backslash
    ``\\\\``, so any name (a team called ``a,b``) can be asked for."""
    values: list[str] = []
    current: list[str] = []
    chars = iter(raw)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return tuple(values)


@dataclass(frozen=True)
class CostsRequest:
    query: CostQuery
    order_by: str
    descending: bool
    limit: int | None


def parse(params: Mapping[str, str], now: datetime | None = None) -> CostsRequest:
    """Check and convert the flat parameters; ``BadQuery`` names the first one refused."""
    now = now or datetime.now(timezone.utc)
    tz_name = params.get("tz", "UTC")
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadQuery(f"tz: unknown time zone {tz_name!r}; use an IANA name such as Europe/Berlin") from None
    start_ns, end_ns = time_range(params, now, zone)
    group_by = tuple(g for g in params.get("group_by", "team").split(",") if g)
    for name in group_by:
        _column(name, "group_by")
    if len(set(group_by)) < len(group_by):
        repeated = next(name for name in group_by if group_by.count(name) > 1)
        raise BadQuery(f"group_by: {repeated!r} is named twice")
    bucket = params.get("bucket") or None
    if bucket is not None and bucket not in BUCKETS:
        raise BadQuery(f"bucket: must be one of {', '.join(BUCKETS)}, not {bucket!r}")
    buckets = 0 if bucket is None else (end_ns - start_ns) // _BUCKET_NS[bucket]
    if buckets > MAX_BUCKETS:
        raise BadQuery(
            f"bucket: about {buckets:,} {bucket}s in the range, more than {MAX_BUCKETS:,}; "
            "choose a coarser bucket or a shorter range"
        )
    filters = []
    for key, raw in params.items():
        if key in PARAMETERS:
            continue
        negate = key.endswith("!")
        column = key[:-1] if negate else key
        _column(column, key, unknown_kind="parameter")
        values = filter_values(raw)
        filters.append(Filter(column, values, negate))
    order = params.get("order_by", "-charged")
    descending = order.startswith("-")
    order_by = order.lstrip("-")
    if order_by not in ORDER_FIELDS and order_by not in group_by:
        choices = ", ".join([*ORDER_FIELDS, *group_by])
        raise BadQuery(f"order_by: {order_by!r} is not a measure or a group_by column; choose from {choices}")
    limit = None
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise BadQuery(f"limit: {params['limit']!r} is not a whole number") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadQuery(f"limit: must be between 1 and {MAX_LIMIT}, not {limit}")
    query = CostQuery(start_ns, end_ns, group_by, tuple(filters), bucket=bucket, tz=tz_name)
    return CostsRequest(query, order_by, descending, limit)


def _column(name: str, parameter: str, unknown_kind: str = "column") -> None:
    try:
        check_column(name)
    except ValueError:
        if unknown_kind == "parameter":
            raise BadQuery(
                f"unknown parameter {parameter!r}: parameters are {', '.join(PARAMETERS)}; filters are a "
                f"column ({', '.join(sorted(COLUMNS))}) or {PROPERTY_PREFIX}<name>, '!' after the name negates"
            ) from None
        raise BadQuery(
            f"{parameter}: cannot group by {name!r}; choose from {', '.join(sorted(COLUMNS))} or {PROPERTY_PREFIX}<name>"
        ) from None


def time_range(params: Mapping[str, str], now: datetime, zone: ZoneInfo) -> tuple[int, int]:
    """``[start, end)`` in epoch ns from ``period`` or ``from``/``to`` (default: this month), the
    one reading of a time range for every route and ``llmcost query``."""
    preset = params.get("period")
    if preset is not None and ("from" in params or "to" in params):
        raise BadQuery("period: give either period or from/to, not both")
    local = now.astimezone(zone)
    if preset is not None or ("from" not in params and "to" not in params):
        # A preset is the whole calendar period (this month, not this month until now): the
        # ledger holds nothing later anyway, and a whole period is one rollup tile.
        start, end = _preset(preset or "this_month", local)
        return epoch_ns(start), epoch_ns(end)
    start_ns = (
        _moment(params["from"], "from", zone)
        if "from" in params
        else epoch_ns(_preset("this_month", local)[0])
    )
    end_ns = _moment(params["to"], "to", zone) if "to" in params else epoch_ns(now) + 1
    if end_ns <= start_ns:
        raise BadQuery("to: must be after from")
    return start_ns, end_ns


def _preset(name: str, local: datetime) -> tuple[datetime, datetime]:
    assert local.tzinfo is not None
    try:
        return named_period(name, local, local.tzinfo)
    except ValueError:
        raise BadQuery(
            f"period: must be one of {', '.join(PRESETS)} or a month YYYY-MM, not {name!r}"
        ) from None


def _moment(value: str, name: str, zone: ZoneInfo) -> int:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(
            f"{name}: {value!r} is not ISO 8601, e.g. 2026-11-01 or 2026-11-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)  # a date or a local time means the query's time zone
    if not datetime(1970, 1, 1, tzinfo=timezone.utc) <= moment < datetime(2262, 1, 1, tzinfo=timezone.utc):
        raise BadQuery(f"{name}: {value!r} is outside 1970-2261")
    return epoch_ns(moment)


def answer(ledger: SqlLedger, request: CostsRequest) -> dict[str, Any]:
    """The rows of ``request``, ordered and limited (the rest folded into one others row per bucket)."""
    query = request.query
    if request.limit is not None and query.bucket is None and request.order_by in ORDER_FIELDS:
        return _top(ledger, request)
    rows = ledger.costs(query)
    keep = _kept_groups(rows, request)
    out_rows: dict[tuple, CostRow] = {}
    for row in rows:
        group = tuple(row.group.values())
        if keep is not None and group not in keep:
            group = (OTHERS,) * len(query.group_by)
        # By instant, not by the local label: when clocks go back, 02:00+02:00 and 02:00+01:00
        # are two hours that Python's datetimes of one time zone compare (and hash) as equal.
        key = (None if row.bucket is None else row.bucket.timestamp(), group)
        merged = out_rows.get(key)
        if merged is None:
            out_rows[key] = CostRow(
                dict(zip(query.group_by, group, strict=True)), row.bucket, list(row.values)
            )
        else:
            merged.values = [a + b for a, b in zip(merged.values, row.values, strict=True)]
    ordered = sorted(out_rows.values(), key=lambda r: _sort_key(r, request))
    totals = CostRow({}, None)
    for row in rows:
        totals.values = [a + b for a, b in zip(totals.values, row.values, strict=True)]
    return _body(request, [_row(r, query) for r in ordered], totals)


def _body(request: CostsRequest, rows: list[dict[str, Any]], totals: CostRow) -> dict[str, Any]:
    query = request.query
    return {
        "from": _iso(query.start_ns, query.tz),
        "to": _iso(query.end_ns, query.tz),
        "tz": query.tz,
        "bucket": query.bucket,
        "group_by": list(query.group_by),
        "filters": [
            {"column": f.column, "values": list(f.values), "negate": f.negate} for f in query.filters
        ],
        "order_by": ("-" if request.descending else "") + request.order_by,
        "limit": request.limit,
        "rows": rows,
        "totals": _measures(totals),
    }


def _top(ledger: SqlLedger, request: CostsRequest) -> dict[str, Any]:
    """Top N by a measure without buckets: the ledger ranks (in SQL where it can), and the
    others row is the ungrouped total minus the top rows, so thousands of groups (users) are
    never materialized here."""
    query = request.query
    ranked = replace(
        query, rank_by=ORDER_FIELDS[request.order_by], descending=request.descending, limit=request.limit
    )
    top = ledger.costs(ranked)
    total = CostRow({}, None)
    for row in ledger.costs(replace(query, group_by=())):
        total.values = [a + b for a, b in zip(total.values, row.values, strict=True)]
    rest = list(total.values)
    for row in top:
        rest = [a - b for a, b in zip(rest, row.values, strict=True)]
    rows = [_row(r, query) for r in top]
    if any(rest):
        rows.append(_row(CostRow(dict.fromkeys(query.group_by, OTHERS), None, rest), query))
    return _body(request, rows, total)


def _kept_groups(rows: list[CostRow], request: CostsRequest) -> set[tuple] | None:
    """The ``limit`` groups ranked first over the whole range; None when nothing is folded."""
    if request.limit is None:
        return None
    totals: dict[tuple, CostRow] = {}
    for row in rows:
        key = tuple(row.group.values())
        total = totals.get(key)
        if total is None:
            totals[key] = CostRow(dict(row.group), None, list(row.values))
        else:
            total.values = [a + b for a, b in zip(total.values, row.values, strict=True)]
    if len(totals) <= request.limit:
        return None
    ranked = sorted(totals.values(), key=lambda r: _sort_key(r, request, with_bucket=False))
    return {tuple(r.group.values()) for r in ranked[: request.limit]}


def _sort_key(row: CostRow, request: CostsRequest, with_bucket: bool = True) -> tuple:
    others = any(v == OTHERS for v in row.group.values())
    bucket = row.bucket.timestamp() if (with_bucket and row.bucket is not None) else 0
    if request.order_by in ORDER_FIELDS:
        value: Any = sum(row[m] for m in ORDER_FIELDS[request.order_by])
        primary = -value if request.descending else value
    else:
        primary = row.group[request.order_by]
    groups = tuple(row.group.values())
    if request.descending and request.order_by not in ORDER_FIELDS:
        return (bucket, others, _Reversed(primary), groups)
    return (bucket, others, primary, groups)


class _Reversed:
    """Orders strings descending inside a sort key."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value


def _row(row: CostRow, query: CostQuery) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if query.bucket is not None and row.bucket is not None:
        out["bucket"] = row.bucket.isoformat()
    out.update(row.group)
    out["others"] = any(v == OTHERS for v in row.group.values())
    out.update(_measures(row))
    return out


def _measures(row: CostRow) -> dict[str, Any]:
    return {
        "requests": row["requests"],
        "errors": row["errors"],
        "unpriced_requests": row["unpriced"],
        "outcomes": row["outcome_count"],
        "cache_lookups": row["cache_lookups"],
        "cache_hits": row["cache_hits"],
        "cache_hit_rate": _ratio(row["cache_hits"], row["cache_lookups"]),
        "tokens": {name: row[measure] for name, measure in TOKEN_CLASSES.items()},
        "list_cost_usd": format_usd(row["list_nanos"]),
        "contracted_cost_usd": format_usd(row["contracted_nanos"]),
        "charged_usd": format_usd(row["chargeback_nanos"]),
        "savings_usd": format_usd(row["savings_nanos"]),
        "prompt_cache_savings_usd": format_usd(row["prompt_cache_savings_nanos"]),
    }


def _ratio(part: int, whole: int) -> str | None:
    """``part / whole`` as an exact 6-place decimal string (half to even); None of no lookups."""
    if not whole:
        return None
    return format((Decimal(part) / whole).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN), "f")


def _iso(ns: int, tz: str) -> str:
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).astimezone(ZoneInfo(tz)).isoformat()
