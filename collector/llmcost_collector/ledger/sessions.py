"""Sessions (multi-step workflows) read from the per-session and per-step rollups, never the calls.

Which sessions a period holds: the ledger keeps one ``llm_rollup_sessions`` row per calendar
month and session id, so a question reads the rows of every month the period overlaps, merges a
session's months into one (a session running across midnight on the 31st is one session when
both months are read), and keeps the sessions whose first call started inside the period. A
session that crosses a month boundary is therefore split at it when only one of the months is
asked about, as an invoice line would be. Sessions with no LLM call (only ``record_outcome``
records) are not listed.

"Cost" is the contracted cost (what the organisation pays, as ``cost_usd`` in ``/api/v1/spend``);
list and chargeback sums travel alongside.

Percentiles are **nearest-rank** over the sessions' exact integer costs: the p-th percentile of n
sessions is the cost of the ``ceil(p * n / 100)``-th cheapest, so it is always the cost of a
real session and never an interpolated (or float) amount. Exact percentiles need every session
of the period once: a summary reads one narrow row per session (PostgreSQL aggregates them in
place with ``percentile_disc``, SQLite streams name and cost to a sort per type), never a call;
on SQLite a whole calendar month reads a row per name (``llm_rollup_session_names``) and walks
the ``llm_rollup_sessions_cost`` index, where each name's sessions are already in cost order, to
each rank. Its cost grows with the sessions of the period, not
with their calls.

Column names only ever come from the fixed sets below; every value travels as a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llmcost_collector.ledger.query import Filter, Read, tiles
from llmcost_collector.ledger.rollups import NAMES_TABLE, SESSION_TEAMS_TABLE, SESSIONS_TABLE, STEPS_TABLE
from llmcost_collector.ledger.usage import MEASURES
from llmcost_collector.periods import month_start_ns, next_month_ns

# What a session list may be filtered by: the columns the session rollup carries.
SESSION_FILTERS = ("session_id", "session_name", "user_id", "team")
# ``order_by`` names and the SQL they sort by (columns of the merged ``s`` relation below).
SESSION_ORDER = {
    "cost": "contracted_nanos",
    "steps": "requests",
    "duration": "last_end_ns - first_start_ns",
    "first_call": "first_start_ns",
    "last_call": "last_end_ns",
}
PERCENTILES = (50, 95)


@dataclass(frozen=True)
class SessionQuery:
    """Sessions whose first call started in ``[start_ns, end_ns)``, filtered and ordered."""

    start_ns: int
    end_ns: int
    filters: tuple[Filter, ...] = ()
    order_by: str = "cost"
    descending: bool = True
    limit: int = 100
    min_cost_nanos: int | None = None  # only sessions costing more than this

    def __post_init__(self) -> None:
        for f in self.filters:
            if f.column not in SESSION_FILTERS:
                raise ValueError(
                    f"cannot filter sessions by {f.column!r}: choose from {', '.join(SESSION_FILTERS)}"
                )
        if self.order_by not in SESSION_ORDER:
            raise ValueError(f"order_by must be one of {', '.join(SESSION_ORDER)}, not {self.order_by!r}")
        if self.limit < 1:
            raise ValueError("limit must be at least 1")


@dataclass
class Session:
    session_id: str
    session_name: str
    user_id: str
    team: str
    first_start_ns: int
    last_end_ns: int
    values: list[int] = field(default_factory=lambda: [0] * len(MEASURES))

    def __getitem__(self, measure: str) -> int:
        return self.values[MEASURES.index(measure)]

    @property
    def steps(self) -> int:
        """LLM calls in the session."""
        return self["requests"]

    @property
    def cost_nanos(self) -> int:
        return self["contracted_nanos"]

    @property
    def duration_ns(self) -> int:
        return self.last_end_ns - self.first_start_ns


@dataclass(frozen=True)
class SessionTypeSummary:
    """One workflow type (session name): how many runs and what a run costs."""

    session_name: str
    runs: int
    steps: int
    total_nanos: int
    max_nanos: int
    percentiles: dict[int, int]  # p -> nearest-rank cost, nano-dollars
    unpriced: int  # unpriced calls among the runs: their cost is missing from the totals


@dataclass(frozen=True)
class StepSummary:
    """One step (session path) of a workflow type."""

    session_name: str
    session_path: str
    calls: int
    cost_nanos: int
    unpriced: int


def _months(start_ns: int, end_ns: int) -> tuple[int, int]:
    """``[first, last]`` month starts that ``[start_ns, end_ns)`` overlaps."""
    return month_start_ns(start_ns), month_start_ns(max(start_ns, end_ns - 1))


def _condition(f: Filter, params: list[object]) -> str:
    params.extend(f.values)
    return f"{f.column} {'NOT IN' if f.negate else 'IN'} ({', '.join('?' * len(f.values))})"


def _merged(query: SessionQuery, params: list[object]) -> str:
    """SQL for the relation of the period's sessions, one row each with ``_SESSION_COLUMNS``.

    A period within one calendar month (the common case: a month, this week, today) reads that
    month's rows as they are, one per session; a longer one merges each session's months first.
    Filtered by team, a session is the calls of those teams only (``llm_rollup_session_teams``):
    a team never sees the cost, steps or times of another team's calls in a session they share.
    """
    if any(f.column == "team" for f in query.filters):
        return _merged_by_team(query, params)
    first, last = _months(query.start_ns, query.end_ns)
    where = [_condition(f, params) for f in query.filters]
    if query.min_cost_nanos is not None:
        params.append(query.min_cost_nanos)
        where.append("contracted_nanos > ?")
    if first == last:
        params[:0] = [first, query.start_ns, query.end_ns]
        rows = "month_ns = ? AND first_start_ns >= ? AND first_start_ns < ? AND requests > 0"
        return (
            f"SELECT {', '.join(_SESSION_COLUMNS)} FROM {SESSIONS_TABLE} WHERE {' AND '.join([rows, *where])}"
        )
    params[:0] = [first, last, query.start_ns, query.end_ns]
    sums = ", ".join(f"SUM({m}) AS {m}" for m in MEASURES)
    merged = (
        "SELECT session_id, MAX(session_name) AS session_name, MAX(user_id) AS user_id, MAX(team) AS team, "
        f"MIN(first_start_ns) AS first_start_ns, MAX(last_end_ns) AS last_end_ns, {sums} "
        f"FROM {SESSIONS_TABLE} WHERE month_ns >= ? AND month_ns <= ? GROUP BY session_id "
        "HAVING MIN(first_start_ns) >= ? AND MIN(first_start_ns) < ? AND SUM(requests) > 0"
    )
    if not where:
        return merged
    return f"SELECT * FROM ({merged}) m WHERE {' AND '.join(where)}"


def _merged_by_team(query: SessionQuery, params: list[object]) -> str:
    """The period's sessions over the calls of the filtered teams: their per-team parts (a range
    of the key per team and month) merged per session, then the other filters."""
    first, last = _months(query.start_ns, query.end_ns)
    teams = [f for f in query.filters if f.column == "team"]
    if first == last and len(teams) == 1 and len(teams[0].values) == 1 and not teams[0].negate:
        # One team within one month (a team's own question): its sessions are a range of the
        # key, one row each, read as they are.
        params += [first, teams[0].values[0], query.start_ns, query.end_ns]
        merged = (
            f"SELECT {', '.join(_SESSION_COLUMNS)} FROM {SESSION_TEAMS_TABLE} WHERE month_ns = ? AND team = ? "
            "AND first_start_ns >= ? AND first_start_ns < ? AND requests > 0"
        )
    else:
        params += [first, last]
        inner = ["month_ns >= ? AND month_ns <= ?", *(_condition(f, params) for f in teams)]
        params += [query.start_ns, query.end_ns]
        sums = ", ".join(f"SUM({m}) AS {m}" for m in MEASURES)
        merged = (
            "SELECT session_id, MAX(session_name) AS session_name, MAX(user_id) AS user_id, MAX(team) AS team, "
            f"MIN(first_start_ns) AS first_start_ns, MAX(last_end_ns) AS last_end_ns, {sums} "
            f"FROM {SESSION_TEAMS_TABLE} WHERE {' AND '.join(inner)} GROUP BY session_id "
            "HAVING MIN(first_start_ns) >= ? AND MIN(first_start_ns) < ? AND SUM(requests) > 0"
        )
    where = [_condition(f, params) for f in query.filters if f.column != "team"]
    if query.min_cost_nanos is not None:
        params.append(query.min_cost_nanos)
        where.append("contracted_nanos > ?")
    return f"SELECT * FROM ({merged}) m WHERE {' AND '.join(where)}" if where else merged


_SESSION_COLUMNS = (
    "session_id",
    "session_name",
    "user_id",
    "team",
    "first_start_ns",
    "last_end_ns",
    *MEASURES,
)


def _session(record: Sequence[object]) -> Session:
    head = record[:6]
    return Session(
        str(head[0]), str(head[1]), str(head[2]), str(head[3]), int(head[4]), int(head[5]),  # type: ignore[call-overload]
        [int(v or 0) for v in record[6:]],  # type: ignore[call-overload]
    )  # fmt: skip


def list_sessions(query: SessionQuery, read: Read) -> list[Session]:
    """The period's sessions in the requested order (ties by session id), at most ``limit``."""
    params: list[object] = []
    direction = "DESC" if query.descending else "ASC"
    sql = (
        f"SELECT {', '.join(_SESSION_COLUMNS)} FROM ({_merged(query, params)}) s "
        f"ORDER BY {SESSION_ORDER[query.order_by]} {direction}, session_id LIMIT ?"
    )
    params.append(query.limit)
    return [_session(r) for r in read(sql, params)]


def _rank(p: int, n: int) -> int:
    """The nearest rank of the p-th percentile of ``n`` values: ``ceil(p * n / 100)``, at least 1."""
    return max(1, -(-p * n // 100))


def _nearest_rank(costs: list[int], p: int) -> int:
    """The cost of rank ``ceil(p * n / 100)`` among ``costs`` sorted ascending."""
    return costs[_rank(p, len(costs)) - 1]


def summarize_types(query: SessionQuery, read: Read, dialect: str) -> list[SessionTypeSummary]:
    """Runs, steps, total, nearest-rank percentiles and max per session name, costliest total first.

    PostgreSQL computes everything in one aggregate pass: ``percentile_disc(p)`` is the first cost
    whose cumulative share reaches p, which is the nearest rank. SQLite has no ordered-set
    aggregate (and its window functions cost about five times a plain read): a whole calendar month
    unfiltered (the monthly report's question) is answered from the per-name rollup and the
    sessions' cost index without reading a session row, and one team's whole month from its range
    of the per-team sessions' cost index; any other period streams each session's name and cost
    once and the ranks are taken from a sort per type in Python.
    """
    month = _whole_month(query)
    if month is not None and dialect == "sqlite":
        rows = _month_summaries(month, read)
    elif (team_month := _whole_month_of_one_team(query)) is not None and dialect == "sqlite":
        rows = _month_summaries(team_month[0], read, team_month[1])
    else:
        rows = _summaries(query, read, dialect)
    out = [
        SessionTypeSummary(
            name, runs, steps, total, largest, dict(zip(PERCENTILES, pct, strict=True)), unpriced
        )
        for name, runs, steps, total, largest, unpriced, pct in rows
    ]
    return sorted(out, key=lambda t: (-t.total_nanos, t.session_name))


_Summary = tuple[str, int, int, int, int, int, list[int]]


def _whole_month(query: SessionQuery) -> int | None:
    """The month's start when ``query`` asks for exactly one calendar month, unfiltered."""
    start = month_start_ns(query.start_ns)
    if query.filters or query.min_cost_nanos is not None:
        return None
    return start if query.start_ns == start and query.end_ns == next_month_ns(start) else None


def _whole_month_of_one_team(query: SessionQuery) -> tuple[int, str] | None:
    """(month start, team) when ``query`` asks for exactly one calendar month of one team."""
    if len(query.filters) != 1:
        return None
    only = query.filters[0]
    if only.column != "team" or only.negate or len(only.values) != 1:
        return None
    start = month_start_ns(query.start_ns)
    if query.min_cost_nanos is not None or (query.start_ns, query.end_ns) != (start, next_month_ns(start)):
        return None
    return start, only.values[0]


def _month_summaries(month: int, read: Read, team: str | None = None) -> list[_Summary]:
    """A whole month without reading a session: runs and sums per name from
    ``llm_rollup_session_names``, then the maximum and each percentile one ``OFFSET`` into the
    name's range of the ``llm_rollup_sessions_cost`` index, which is in cost order (SQLite walks
    the index to the rank from the nearer end: no row is fetched or sorted). For one ``team``,
    the same from its range of the ``llm_rollup_session_teams_cost`` index (the counts and sums
    too: one pass over the index range, no row fetched)."""
    rows = []
    if team is None:
        key: list[object] = [month]
        head = (
            f"SELECT session_name, runs, requests, contracted_nanos, unpriced FROM {NAMES_TABLE} "
            "WHERE month_ns = ? AND runs > 0"
        )
        at_rank = (
            f"SELECT contracted_nanos FROM {SESSIONS_TABLE} WHERE month_ns = ? AND session_name = ? "
            "AND requests > 0 ORDER BY contracted_nanos {} LIMIT 1 OFFSET ?"
        )
    else:
        key = [month, team]
        head = (
            "SELECT session_name, COUNT(*), SUM(requests), SUM(contracted_nanos), SUM(unpriced) "
            f"FROM {SESSION_TEAMS_TABLE} WHERE month_ns = ? AND team = ? AND requests > 0 GROUP BY session_name"
        )
        at_rank = (
            f"SELECT contracted_nanos FROM {SESSION_TEAMS_TABLE} WHERE month_ns = ? AND team = ? "
            "AND session_name = ? AND requests > 0 ORDER BY contracted_nanos {} LIMIT 1 OFFSET ?"
        )
    for name, runs, steps, total, unpriced in read(head, key):
        ranked = {}
        for k in {runs, *(_rank(p, runs) for p in PERCENTILES)}:  # rank n is the maximum
            ascending = k <= runs - k  # rank k from the top is n - k + 1
            sql = at_rank.format("ASC" if ascending else "DESC")
            ranked[k] = int(read(sql, [*key, name, k - 1 if ascending else runs - k])[0][0])
        pct = [ranked[_rank(p, runs)] for p in PERCENTILES]
        rows.append((str(name), int(runs), int(steps), int(total), ranked[runs], int(unpriced), pct))
    return rows


def _summaries(query: SessionQuery, read: Read, dialect: str) -> list[_Summary]:
    params: list[object] = []
    relation = _merged(query, params)
    if dialect == "postgresql":
        pcts = ", ".join(
            f"percentile_disc({p / 100}) WITHIN GROUP (ORDER BY contracted_nanos)" for p in PERCENTILES
        )
        sql = (
            "SELECT session_name, COUNT(*), SUM(requests), SUM(contracted_nanos), MAX(contracted_nanos), "
            f"SUM(unpriced), {pcts} FROM ({relation}) s GROUP BY session_name"
        )
        rows = [
            (str(name), int(runs), int(steps), int(total), int(largest), int(unpriced), [int(v) for v in pct])
            for name, runs, steps, total, largest, unpriced, *pct in read(sql, params)
        ]
    else:
        costs: dict[str, list[int]] = {}
        counts: dict[str, list[int]] = {}
        for name, requests, cost, unpriced in read(
            f"SELECT session_name, requests, contracted_nanos, unpriced FROM ({relation}) s", params
        ):
            costs.setdefault(name, []).append(cost)
            tally = counts.setdefault(name, [0, 0])
            tally[0] += requests
            tally[1] += unpriced
        rows = []
        for name, values in costs.items():
            values.sort()
            pct = [_nearest_rank(values, p) for p in PERCENTILES]
            rows.append(
                (str(name), len(values), counts[name][0], sum(values), values[-1], counts[name][1], pct)
            )
    return rows


def outliers_above_p95(query: SessionQuery, read: Read, dialect: str) -> list[tuple[Session, int]]:
    """Sessions costing more than the p95 of their own type in the period, with that p95,
    costliest first (at most ``query.limit``): the summary's p95 per type, then one ordered read
    of the sessions above their type's threshold."""
    thresholds = {t.session_name: t.percentiles[95] for t in summarize_types(query, read, dialect)}
    out: list[tuple[Session, int]] = []
    names = sorted(thresholds)
    for i in range(0, len(names), 500):  # bounded statement size, whatever the number of types
        chunk = names[i : i + 500]
        params: list[object] = []
        relation = _merged(query, params)
        params += chunk
        for name in chunk:
            params += (name, thresholds[name])
        params.append(query.limit)
        cases = " ".join("WHEN ? THEN ?" for _ in chunk)
        sql = (
            f"SELECT {', '.join(_SESSION_COLUMNS)} FROM ({relation}) s WHERE session_name IN "
            f"({', '.join('?' * len(chunk))}) AND contracted_nanos > CASE session_name {cases} END "
            "ORDER BY contracted_nanos DESC, session_id LIMIT ?"
        )
        out += [(session, thresholds[session.session_name]) for session in map(_session, read(sql, params))]
    out.sort(key=lambda found: (-found[0].cost_nanos, found[0].session_id))
    return out[: query.limit]


# The filters ``llm_rollup_steps`` can apply (its key columns); others read the calls.
STEP_ROLLUP_FILTERS = ("session_name", "team")


def steps_from_rollup(query: SessionQuery) -> bool:
    """Whether ``summarize_steps`` can answer: whole calendar months, filtered by name and team only."""
    return whole_months(query.start_ns, query.end_ns) and all(
        f.column in STEP_ROLLUP_FILTERS for f in query.filters
    )


def summarize_steps(query: SessionQuery, read: Read) -> list[StepSummary]:
    """Calls and cost per (session name, session path) from ``llm_rollup_steps``, for whole
    calendar months filtered by session name and team only (``SqlLedger.session_steps`` answers
    the rest from the calls).

    Steps are counted by when each call started (not by its session's first call) and by each
    call's own team, so a team's steps are its calls' steps: another team's step in a shared
    session is never summed into them.
    """
    if not steps_from_rollup(query):
        raise ValueError("llm_rollup_steps holds calendar months by session name and team")
    params: list[object] = [query.start_ns, query.end_ns]
    where = ["month_ns >= ? AND month_ns < ?", *(_condition(f, params) for f in query.filters)]
    sql = (
        f"SELECT session_name, session_path, SUM(requests), SUM(contracted_nanos), SUM(unpriced) "
        f"FROM {STEPS_TABLE} WHERE {' AND '.join(where)} GROUP BY session_name, session_path "
        "HAVING SUM(requests) > 0"
    )
    rows = [
        StepSummary(str(name), str(path), int(n), int(cost), int(unpriced))
        for name, path, n, cost, unpriced in read(sql, params)
    ]
    return sorted(rows, key=lambda s: (s.session_name, s.session_path))


def whole_months(start_ns: int, end_ns: int) -> bool:
    return all(kind == "month" for kind, _, _ in tiles(start_ns, end_ns))


def session_total(
    session_id: str, first_start_ns: int, last_start_ns: int, read: Read
) -> tuple[int, int, int, str] | None:
    """(contracted nanos, unpriced calls, last call end ns, name) of one session of which a
    replica saw calls between the two instants: one primary-key lookup per calendar month, from
    the month before the first to the month after the last, so the calls another replica (or this
    one before a restart) took across a month boundary count too. None when it has no row."""
    months = [month_start_ns(month_start_ns(first_start_ns) - 1)]
    while months[-1] <= month_start_ns(last_start_ns):
        months.append(next_month_ns(months[-1]))
    sql = (
        f"SELECT SUM(contracted_nanos), SUM(unpriced), MAX(last_end_ns), MAX(session_name) FROM {SESSIONS_TABLE} "
        f"WHERE month_ns IN ({', '.join('?' * len(months))}) AND session_id = ?"
    )
    rows = read(sql, [*months, session_id])
    if not rows or rows[0][2] is None:
        return None
    cost, unpriced, last_end, name = rows[0]
    return int(cost), int(unpriced), int(last_end), str(name)
