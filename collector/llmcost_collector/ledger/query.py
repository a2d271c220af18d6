"""Cost questions answered from the rollups, falling back to the calls only where they must.

A question is a time range, optional time buckets in an IANA time zone, group-by columns and
filters. ``tiles`` cuts each bucket into the coarsest UTC-aligned tiles the rollups hold (whole
months, then days, then hours) and leaves only the sub-hour edges to the calls table, whose
start-time index makes those cheap; questions by team alone read the team-level tables. A
group-by or filter the rollups do not carry (a custom property, a session path) reads the calls
table for the whole range; per-user questions read the per-user rollup when the range is whole
calendar months. Invoices read ``range_sums``: the dimension sums of a few whole-day ranges
(the monthly rollup for a whole month, else the daily one). Which question reads which table is
listed in docs/reference.md ("Ledger tables").

Column names only ever come from the fixed sets below; every value travels as a parameter.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

from llmcost_collector.ledger.rollups import (
    DAY_NS,
    DIMENSION_SQL,
    DIMS_TABLE,
    HOUR_NS,
    MEASURE_SQL,
    TEAM_TABLES,
    TIME_TABLES,
    USERS_TABLE,
)
from llmcost_collector.ledger.usage import DIMENSIONS, MEASURES
from llmcost_collector.periods import month_start_ns, next_month_ns

CALLS = "llm_calls"
# Columns of llm_calls that only the calls table can group or filter by.
CALL_COLUMNS = frozenset(
    {
        "user_id", "session_id", "session_name", "session_path", "operation", "request_model",
        "response_model", "server_address", "dialect", "error_type", "price_source", "price_id",
    }
)  # fmt: skip
COLUMNS = frozenset(DIMENSIONS) | CALL_COLUMNS
PROPERTY_PREFIX = "property."
BUCKETS = ("hour", "day", "week", "month")
REQUESTS = MEASURES.index("requests")
OUTCOMES = MEASURES.index("outcome_count")
Read = Callable[[str, Sequence[object]], list[tuple]]


@dataclass(frozen=True)
class Filter:
    """``column`` in ``values`` (or not in them when ``negate``)."""

    column: str
    values: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True)
class CostQuery:
    start_ns: int
    end_ns: int
    group_by: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    bucket: str | None = None
    tz: str = "UTC"
    # Keep only the ``limit`` groups with the largest (or, not ``descending``, smallest) sum of
    # the ``rank_by`` measures, ties by group; without buckets only. Top-N questions over
    # thousands of groups (users) are then answered in SQL instead of in Python.
    rank_by: tuple[str, ...] = ()
    descending: bool = True
    limit: int | None = None

    def __post_init__(self) -> None:
        for name in (*self.group_by, *(f.column for f in self.filters)):
            check_column(name)
        if self.bucket is not None and self.bucket not in BUCKETS:
            raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, not {self.bucket!r}")
        if self.limit is not None and (self.bucket is not None or not self.rank_by):
            raise ValueError("limit needs rank_by and no bucket")
        for name in self.rank_by:
            if name not in MEASURES:
                raise ValueError(f"cannot rank by {name!r}: not a measure")


@dataclass
class CostRow:
    """Sums of ``MEASURES`` for one group (and bucket start, when bucketed)."""

    group: dict[str, str]
    bucket: datetime | None = None
    values: list[int] = field(default_factory=lambda: [0] * len(MEASURES))

    def __getitem__(self, measure: str) -> int:
        return self.values[MEASURES.index(measure)]


def check_column(name: str) -> None:
    if name in COLUMNS:
        return
    if name.startswith(PROPERTY_PREFIX) and _valid_property(name[len(PROPERTY_PREFIX) :]):
        return
    raise ValueError(f"unknown column {name!r}: choose from {', '.join(sorted(COLUMNS))} or property.<name>")


# Besides letters and digits, what property names hold (``deploy.region``, ``k8s:ns``, ``a/b``).
_PROPERTY_PUNCTUATION = frozenset("_-.:/")


def _valid_property(key: str) -> bool:
    # A JSON object key spliced into SQL (quoted: a dot is part of the name, not a path step), so
    # never a quote, backslash or other character that could end or escape it.
    return bool(key) and len(key) <= 64 and all(c.isalnum() or c in _PROPERTY_PUNCTUATION for c in key)


def _buckets(query: CostQuery) -> list[tuple[int, datetime | None]]:
    """``(start_ns, label)`` per bucket: a bucket starts at its calendar start in the query's
    time zone, clipped to the range; its label is the calendar start (midnight, Monday, the 1st)."""
    if query.bucket is None:
        return [(query.start_ns, None)]
    zone = ZoneInfo(query.tz)
    start = datetime.fromtimestamp(query.start_ns // 10**9, timezone.utc).astimezone(zone)
    if query.bucket == "hour":  # as a real instant: 02:00 on the day clocks skip it is 02:30 (Lord Howe)
        first = start.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc).astimezone(zone)
    elif query.bucket == "day":
        first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    elif query.bucket == "week":
        first = (start - timedelta(days=start.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out: list[tuple[int, datetime | None]] = [(query.start_ns, first)]
    moment = first
    while True:
        moment = _next_bucket(moment, query.bucket, zone)
        ns = int(moment.timestamp()) * 10**9
        if ns >= query.end_ns:
            return out
        if ns > query.start_ns:
            out.append((ns, moment))


def _next_bucket(moment: datetime, bucket: str, zone: ZoneInfo) -> datetime:
    if bucket == "hour":
        return _next_hour(moment, zone)
    if bucket == "month":
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return moment.replace(year=year, month=month, day=1).replace(tzinfo=zone)
    days = 1 if bucket == "day" else 7
    local = moment.replace(tzinfo=None) + timedelta(days=days)  # calendar days, across DST
    return local.replace(tzinfo=zone)


_QUARTER_HOUR = timedelta(minutes=15)


def _next_hour(moment: datetime, zone: ZoneInfo) -> datetime:
    """The next local wall-clock hour's start after ``moment``, found in UTC (a repeated hour when
    clocks go back is a bucket of its own), or the offset change before it: where a change is not
    a whole hour (Lord Howe's half hour), the bucket after it starts at the change, so every
    later bucket still starts on the local hour. Offsets and their changes fall on quarter hours
    of UTC, so a change is found in at most four steps."""
    utc = moment.astimezone(timezone.utc)
    moment = utc.astimezone(zone)  # a wall time the clocks skipped (02:00 as they jump) made real
    offset = moment.utcoffset()
    on_the_hour = utc + timedelta(hours=1) - timedelta(minutes=moment.minute, seconds=moment.second)
    if on_the_hour.astimezone(zone).utcoffset() == offset:
        return on_the_hour.astimezone(zone)
    step = utc + _QUARTER_HOUR
    while step < on_the_hour and step.astimezone(zone).utcoffset() == offset:
        step += _QUARTER_HOUR
    return step.astimezone(zone)


def tiles(start: int, end: int) -> list[tuple[str, int, int]]:
    """Cover ``[start, end)`` with the fewest UTC-aligned tiles: ``(kind, lo, hi)`` where kind
    is month, day, hour (a rollup table) or calls (a sub-hour edge read from the calls)."""
    out: list[tuple[str, int, int]] = []
    t = start
    while t < end:
        if t % HOUR_NS:
            hi = min(end, t - t % HOUR_NS + HOUR_NS)
            out.append(("calls", t, hi))
        elif month_start_ns(t) == t and next_month_ns(t) <= end:
            hi = next_month_ns(t)
            out.append(("month", t, hi))
        elif t % DAY_NS == 0 and t + DAY_NS <= end:
            hi = t + DAY_NS
            out.append(("day", t, hi))
        elif t + HOUR_NS <= end:
            hi = t + HOUR_NS
            out.append(("hour", t, hi))
        else:
            hi = end
            out.append(("calls", t, hi))
        t = hi
    return _merge(out)


def _merge(parts: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    merged: list[tuple[str, int, int]] = []
    for kind, lo, hi in parts:
        if merged and merged[-1][0] == kind and merged[-1][2] == lo:
            merged[-1] = (kind, merged[-1][1], hi)
        else:
            merged.append((kind, lo, hi))
    return merged


def run(query: CostQuery, read: Read, dialect: str) -> list[CostRow]:
    """Answer ``query``: one ``CostRow`` per (bucket, group) with any call or outcome."""
    buckets = _buckets(query)
    edges = [ns for ns, _ in buckets]
    labels = [label for _, label in buckets]
    needs_calls = any(c not in DIMENSIONS for c in (*query.group_by, *(f.column for f in query.filters)))
    parts: list[tuple[str, int, int]] = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else query.end_ns
        parts.extend([("calls", lo, hi)] if needs_calls else tiles(lo, hi))
    users = _users_answer(query, edges, labels, read)
    if users is not None:
        return users
    rows: dict[tuple, CostRow] = {}
    by_kind: dict[str, list[tuple[int, int]]] = {}
    for kind, lo, hi in parts:
        by_kind.setdefault(kind, []).append((lo, hi))
    for kind, ranges in by_kind.items():
        # Rollup rows carry their own start; a calls range is labelled by its start, so calls
        # ranges of different buckets must stay apart.
        parts_of_kind = [(kind, lo, hi) for lo, hi in ranges]
        for chunk in _chunks(parts_of_kind if kind == "calls" else _merge(parts_of_kind), 200):
            sql, params = (_calls_sql if kind == "calls" else _rollup_sql)(query, kind, chunk, dialect)
            for record in read(sql, params):
                _accumulate(rows, query, edges, labels, record)
    return _ranked([row for row in rows.values() if row["requests"] or row["outcome_count"]], query)


def _ranked(rows: list[CostRow], query: CostQuery) -> list[CostRow]:
    if query.limit is None:
        return rows
    sign = -1 if query.descending else 1
    rows.sort(key=lambda r: (sign * sum(r[m] for m in query.rank_by), tuple(r.group.values())))
    return rows[: query.limit]


def _chunks(parts: list[tuple[str, int, int]], size: int) -> list[list[tuple[int, int]]]:
    ranges = [(lo, hi) for _, lo, hi in parts]
    return [ranges[i : i + size] for i in range(0, len(ranges), size)]


def _accumulate(
    rows: dict[tuple, CostRow],
    query: CostQuery,
    edges: list[int],
    labels: list[datetime | None],
    record: tuple,
) -> None:
    """Add one result record (bucket start, groups..., sums...) to its row."""
    start_ns = record[0]
    if start_ns is None:
        return  # an ungrouped sum over no rows
    width = len(query.group_by)
    groups = record[1 : 1 + width]
    values = list(map(int, record[1 + width :]))  # PostgreSQL sums bigints as Decimal
    index = bisect_right(edges, int(start_ns)) - 1
    key = (index, *groups)
    row = rows.get(key)
    if row is None:
        group = dict(zip(query.group_by, ("" if v is None else v for v in groups), strict=True))
        rows[key] = CostRow(group=group, bucket=labels[index], values=values)
    else:
        row.values = [a + b for a, b in zip(row.values, values, strict=True)]


def _where(query: CostQuery, column: Callable[[str], str], params: list[object]) -> list[str]:
    clauses = []
    for f in query.filters:
        params.extend(f.values)
        marks = ", ".join("?" * len(f.values))
        clauses.append(f"{column(f.column)} {'NOT IN' if f.negate else 'IN'} ({marks})")
    return clauses


def _ranges(column: str, ranges: list[tuple[int, int]], params: list[object]) -> str:
    for lo, hi in ranges:
        params.extend((lo, hi))
    return "(" + " OR ".join(f"({column} >= ? AND {column} < ?)" for _ in ranges) + ")"


def _rollup_sql(
    query: CostQuery, kind: str, ranges: list[tuple[int, int]], dialect: str
) -> tuple[str, list[object]]:
    """Sum one rollup table over ``ranges``: per stored bucket start (so that Python can place
    it in the query's buckets) and group; filters select dimension ids first."""
    params: list[object] = []
    table = TIME_TABLES[kind]
    sums = ", ".join(f"SUM(r.{m})" for m in MEASURES)
    time_filter = _ranges("r.start_ns", ranges, params)
    start = "r.start_ns" if query.bucket else "MIN(r.start_ns)"
    time_group = ["r.start_ns"] if query.bucket else []
    columns = {*query.group_by, *(f.column for f in query.filters)}
    if columns <= {"team"}:  # the team tables: a row per team, no dimension join
        where = [time_filter, *_where(query, lambda c: f"r.{c}", params)]
        groups = [f"r.{g}" for g in query.group_by]
        sql = (
            f"SELECT {start}{''.join(', ' + g for g in groups)}, {sums} FROM {TEAM_TABLES[kind]} r "
            f"WHERE {' AND '.join(where)}"
        )
        if time_group or groups:
            sql += " GROUP BY " + ", ".join([*time_group, *groups])
        return sql, params
    groups = [f"d.{g}" for g in query.group_by]
    where = [time_filter, *_where(query, lambda c: f"d.{c}", params)]
    sql = (
        f"SELECT {start}{''.join(', ' + g for g in groups)}, {sums} FROM {table} r "
        f"JOIN {DIMS_TABLE} d ON d.dims_id = r.dims_id WHERE {' AND '.join(where)}"
    )
    if set(query.group_by) == set(DIMENSIONS):
        # Every dimension: a group is a dimension id (the columns depend on it, its primary
        # key), so grouping by the integer spares sorting thirteen text columns.
        groups = ["d.dims_id"]
    if time_group or groups:
        sql += " GROUP BY " + ", ".join([*time_group, *groups])
    return sql, params


def _calls_sql(
    query: CostQuery, kind: str, ranges: list[tuple[int, int]], dialect: str
) -> tuple[str, list[object]]:
    """Sum the calls table over ``ranges`` (sub-hour edges, or any question the rollups cannot
    answer). Grouped per range start, so each range lands in its bucket."""
    params: list[object] = []

    def column(name: str) -> str:
        if name.startswith(PROPERTY_PREFIX):
            key = name[len(PROPERTY_PREFIX) :]
            if dialect == "sqlite":
                return f"COALESCE(json_extract(properties, '$.\"{key}\"'), '')"
            return f"COALESCE(properties::jsonb ->> '{key}', '')"
        return DIMENSION_SQL.get(name, name)

    cases = " ".join("WHEN start_time_ns >= ? AND start_time_ns < ? THEN ?" for _ in ranges)
    for lo, hi in ranges:
        params.extend((lo, hi, lo))
    start = f"CASE {cases} END"
    sums = ", ".join(f"SUM({MEASURE_SQL[m]})" for m in MEASURES)
    groups = [column(g) for g in query.group_by]
    where = [_ranges("start_time_ns", ranges, params), *_where(query, column, params)]
    sql = (
        f"SELECT {start} AS bucket_start{''.join(f', {g} AS g{i}' for i, g in enumerate(groups))}, {sums} "
        f"FROM {CALLS} WHERE {' AND '.join(where)} GROUP BY bucket_start"
        + "".join(f", g{i}" for i in range(len(groups)))
    )
    return sql, params


def _users_answer(
    query: CostQuery, edges: list[int], labels: list[datetime | None], read: Read
) -> list[CostRow] | None:
    """Per-user questions over whole calendar months read the per-user rollup; None otherwise."""
    allowed = {"user_id", "team", "user_tier"}
    columns = {*query.group_by, *(f.column for f in query.filters)}
    if "user_id" not in query.group_by or not columns <= allowed or query.bucket not in (None, "month"):
        return None
    if query.bucket == "month" and query.tz != "UTC":
        return None
    if any(kind != "month" for kind, _, _ in tiles(query.start_ns, query.end_ns)):
        return None
    params: list[object] = [query.start_ns, query.end_ns]
    where = ["month_ns >= ? AND month_ns < ?", *_where(query, lambda c: c, params)]
    start = "month_ns" if query.bucket else "MIN(month_ns)"
    sums = ", ".join(f"SUM({m})" for m in MEASURES)
    sql = (
        f"SELECT {start}, {', '.join(query.group_by)}, {sums} FROM {USERS_TABLE} WHERE {' AND '.join(where)} "
        f"GROUP BY {', '.join([*(['month_ns'] if query.bucket else []), *query.group_by])} "
        "HAVING SUM(requests) > 0 OR SUM(outcome_count) > 0"
    )
    rows: dict[tuple, CostRow] = {}
    if query.limit is not None:
        # Rank in the database summing only what ranks, then sum every measure for the winners:
        # the per-user table has a row per user, and summing all measures of each costs more
        # than the ranking itself.
        rank = " + ".join(f"SUM({m})" for m in query.rank_by)
        groups = ", ".join(query.group_by)
        ranking = (
            f"SELECT {groups} FROM {USERS_TABLE} WHERE {' AND '.join(where)} GROUP BY {groups} "
            "HAVING SUM(requests) > 0 OR SUM(outcome_count) > 0 "
            f"ORDER BY {rank} {'DESC' if query.descending else 'ASC'}, {groups} LIMIT ?"
        )
        winners = {tuple(r) for r in read(ranking, [*params, query.limit])}
        if not winners:
            return []
        users = sorted({w[query.group_by.index("user_id")] for w in winners})
        sql = sql.replace(" GROUP BY ", f" AND user_id IN ({', '.join('?' * len(users))}) GROUP BY ", 1)
        for record in read(sql, [*params, *users]):
            if tuple(record[1 : 1 + len(query.group_by)]) in winners:
                _accumulate(rows, query, edges, labels, record)
        return _ranked(list(rows.values()), query)
    for record in read(sql, params):
        _accumulate(rows, query, edges, labels, record)
    return _ranked(list(rows.values()), query)


def range_sums(read: Read, edges: Sequence[int]) -> list[tuple[int, tuple[str, ...], list[int]]]:
    """``(range start, DIMENSIONS values, MEASURES sums)`` per range ``[edges[i], edges[i + 1])``
    and dimension combination with any call or outcome; edges are UTC midnights, ascending.

    A range of whole calendar months reads the monthly rollup (a month without a boundary is its
    rows as stored, one per combination), any other range the daily one. Each table is read in
    one statement that sums per range and dimension id, so the thirteen dimension columns are
    joined once per result row, not once per rollup row.
    """
    if any(edge % DAY_NS for edge in edges) or any(lo >= hi for lo, hi in pairwise(edges)):
        raise ValueError("range edges must be ascending UTC midnights")
    by_kind: dict[str, list[tuple[int, int]]] = {}
    for lo, hi in pairwise(edges):
        whole_months = month_start_ns(lo) == lo and month_start_ns(hi) == hi
        by_kind.setdefault("month" if whole_months else "day", []).append((lo, hi))
    dims = ", ".join(f"d.{d}" for d in DIMENSIONS)
    out: list[tuple[int, tuple[str, ...], list[int]]] = []
    for kind, ranges in by_kind.items():
        params: list[object] = []
        if kind == "month" and all(next_month_ns(lo) == hi for lo, hi in ranges):
            # a month per range: the monthly rows are the sums already (one per dimension id)
            where = _ranges("r.start_ns", ranges, params)
            sql = (
                f"SELECT r.start_ns, {dims}, {', '.join(f'r.{m}' for m in MEASURES)} FROM {TIME_TABLES[kind]} r "
                f"JOIN {DIMS_TABLE} d ON d.dims_id = r.dims_id WHERE {where}"
            )
        else:
            cases = " ".join("WHEN r.start_ns >= ? AND r.start_ns < ? THEN ?" for _ in ranges)
            for lo, hi in ranges:
                params.extend((lo, hi, lo))
            where = _ranges("r.start_ns", ranges, params)
            inner = (
                f"SELECT CASE {cases} END AS range_start, r.dims_id, "
                + ", ".join(f"SUM(r.{m}) AS {m}" for m in MEASURES)
                + f" FROM {TIME_TABLES[kind]} r WHERE {where} GROUP BY range_start, r.dims_id"
            )
            sql = (
                f"SELECT x.range_start, {dims}, {', '.join(f'x.{m}' for m in MEASURES)} FROM ({inner}) x "
                f"JOIN {DIMS_TABLE} d ON d.dims_id = x.dims_id"
            )
        width = len(DIMENSIONS)
        for record in read(sql, params):
            values = list(map(int, record[1 + width :]))  # PostgreSQL sums bigints as Decimal
            if values[REQUESTS] or values[OUTCOMES]:
                out.append((int(record[0]), tuple(record[1 : 1 + width]), values))
    return out
