"""Rollups: aggregates kept in step with ``llm_calls``, so questions read totals, not calls.

Why: at ten million calls a month, scanning the calls per question takes tens of seconds, while
the number of distinct (time bucket, team, feature, model, ...) combinations grows with the
organisation, not with traffic. Every insert adds its *newly inserted* rows here in the same
transaction (a retried export adds nothing, exactly like the calls table), and a re-price
subtracts the old row and adds the new one, so a rollup always equals a recomputation from the
calls (the property tests check this on both backends).

Tables (which question reads which is in docs/reference.md, "Ledger tables"):

* ``llm_rollup_dims``: one id per combination of the money ``DIMENSIONS`` (a star schema: the
  time tables below stay narrow integer rows however many dimensions there are).
* ``llm_rollup_hourly`` / ``_daily`` / ``_monthly``: the ``MEASURES`` per UTC hour, day and
  calendar month and dimension id.
* ``llm_rollup_team_hourly`` / ``_daily`` / ``_monthly``: the same per team alone (migration 6).
* ``llm_rollup_users``: per calendar month, user, team and tier (top-N users, seats).
* ``llm_rollup_sessions``: per calendar month and session id: name, user, team, first start, last
  end and the measures (sessions, their summaries and outliers); its ``_cost`` index orders each
  month's sessions with calls by name and cost, so a month's percentiles are index walks.
* ``llm_rollup_session_teams``: the same per calendar month, team and session, over that team's
  calls only (migration 15): what a team's view of its sessions reads, so a session two teams
  share shows each team its own calls, never the other's.
* ``llm_rollup_session_names``: per calendar month and session name, the runs (sessions with
  calls) and their summed measures (migration 12): a month's summary reads a row per workflow
  type. A session's name is the greatest of its calls' names, so a call can move a session from
  one name to another: the writer reads the touched sessions' rows before adding to them.
* ``llm_rollup_steps``: per calendar month, session name, session path and team (cost per workflow
  step; by the calls' own team since migration 14, so a team's summary holds only its calls).
"""

from __future__ import annotations

import json
import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from llmcost_collector.ledger.entry import LedgerEntry
from llmcost_collector.ledger.usage import DIMENSIONS, MEASURES, MEASURES_V3
from llmcost_collector.model import UNPRICED
from llmcost_collector.periods import month_start_ns, next_month_ns

HOUR_NS = 3_600 * 10**9
_REQUESTS = MEASURES.index("requests")
# PostgreSQL: wait for any other transaction writing one of these sessions (sorted: no deadlock).
_PG_LOCK_SESSIONS = (
    "SELECT pg_advisory_xact_lock(k) FROM "
    "(SELECT DISTINCT hashtextextended(x, 727276) AS k FROM unnest(%s::text[]) AS x) AS keys ORDER BY k"
)
DAY_NS = 24 * HOUR_NS

DIMS_TABLE = "llm_rollup_dims"
TIME_TABLES = {"hour": "llm_rollup_hourly", "day": "llm_rollup_daily", "month": "llm_rollup_monthly"}
# The same sums by team alone (migration 6): what the spend gauges and per-team trends ask, in
# rows per team instead of rows per combination.
TEAM_TABLES = {
    "hour": "llm_rollup_team_hourly",
    "day": "llm_rollup_team_daily",
    "month": "llm_rollup_team_monthly",
}
USERS_TABLE = "llm_rollup_users"
SESSIONS_TABLE = "llm_rollup_sessions"
SESSION_TEAMS_TABLE = "llm_rollup_session_teams"
STEPS_TABLE = "llm_rollup_steps"
NAMES_TABLE = "llm_rollup_session_names"

_ADD_MEASURES = ", ".join(f"{m} = t.{m} + excluded.{m}" for m in MEASURES)

# SQL expressions computing each measure from one llm_calls row (the backfill and the tests'
# recomputation); ``measures()`` is the same in Python for the insert path.
_REQUEST = "CASE WHEN operation <> 'outcome' THEN 1 ELSE 0 END"
_CONSUMED = "CASE WHEN cache_hit = 0 THEN {} ELSE 0 END"  # a response-cache hit consumed no tokens
MEASURE_SQL = {
    "requests": _REQUEST,
    "errors": "CASE WHEN operation <> 'outcome' AND status = 'error' THEN 1 ELSE 0 END",
    "unpriced": f"CASE WHEN operation <> 'outcome' AND price_status = '{UNPRICED}' THEN 1 ELSE 0 END",
    "outcome_count": "outcome_count",
    "cache_hits": "cache_hit",
    "estimated": "usage_estimated",
    **{
        m: _CONSUMED.format(m)
        for m in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")
    },
    "output_tokens": _CONSUMED.format("output_tokens - reasoning_tokens"),
    **{m: _CONSUMED.format(m) for m in ("reasoning_tokens", "input_audio_tokens", "output_audio_tokens")},
    "list_nanos": "COALESCE(list_cost_nanos, 0)",
    "contracted_nanos": "COALESCE(contracted_cost_nanos, 0)",
    "chargeback_nanos": "COALESCE(chargeback_nanos, 0)",
    "savings_nanos": "savings_nanos",
    "cache_lookups": "cache_lookup",
    "prompt_cache_savings_nanos": "prompt_cache_savings_nanos",
}
DIMENSION_SQL = {
    d: ("CASE WHEN response_model <> '' THEN response_model ELSE request_model END" if d == "model" else d)
    for d in DIMENSIONS
}


def ddl(dialect: str, measures: tuple[str, ...] = MEASURES_V3) -> list[str]:
    """The rollup tables (migration 3, with the measures of its time)."""
    ident = (
        "INTEGER PRIMARY KEY" if dialect == "sqlite" else "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    )
    dims = ", ".join(f"{d} TEXT NOT NULL" for d in DIMENSIONS)
    return [
        f"CREATE TABLE {DIMS_TABLE} (dims_id {ident}, {dims}, UNIQUE ({', '.join(DIMENSIONS)}))",
        *_measure_tables_ddl(measures),
    ]


# Each month's sessions with calls, by name then cost, with what a summary adds up alongside: a
# whole month's summary reads only this index (counts, sums and maxima in one pass, each
# nearest-rank percentile an OFFSET into one name's range), never the table (migration 10).
SESSION_COST_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {SESSIONS_TABLE}_cost ON {SESSIONS_TABLE} "
    "(month_ns, session_name, contracted_nanos, requests, unpriced) WHERE requests > 0"
)


def _measure_tables_ddl(measures: tuple[str, ...], steps_by_team: bool = False) -> list[str]:
    """The measure tables; ``steps_by_team``: today's steps table (migration 14), else migration 3's."""
    cols = ", ".join(f"{m} BIGINT NOT NULL" for m in measures)
    statements = [
        f"CREATE TABLE {table} (start_ns BIGINT NOT NULL, dims_id BIGINT NOT NULL, {cols}, "
        "PRIMARY KEY (start_ns, dims_id))"
        for table in TIME_TABLES.values()
    ]
    statements += [
        f"CREATE TABLE {USERS_TABLE} (month_ns BIGINT NOT NULL, user_id TEXT NOT NULL, team TEXT NOT NULL, "
        f"user_tier TEXT NOT NULL, {cols}, PRIMARY KEY (month_ns, user_id, team, user_tier))",
        f"CREATE TABLE {SESSIONS_TABLE} (month_ns BIGINT NOT NULL, session_id TEXT NOT NULL, "
        "session_name TEXT NOT NULL, user_id TEXT NOT NULL, team TEXT NOT NULL, "
        f"first_start_ns BIGINT NOT NULL, last_end_ns BIGINT NOT NULL, {cols}, "
        "PRIMARY KEY (month_ns, session_id))",
        steps_ddl(measures) if steps_by_team else (
            f"CREATE TABLE {STEPS_TABLE} (month_ns BIGINT NOT NULL, session_name TEXT NOT NULL, "
            f"session_path TEXT NOT NULL, {cols}, PRIMARY KEY (month_ns, session_name, session_path))"
        ),
        SESSION_COST_INDEX,
    ]  # fmt: skip
    return statements


def steps_ddl(measures: tuple[str, ...] = MEASURES) -> str:
    """Per month, session name, session path and the call's team (migration 14)."""
    cols = ", ".join(f"{m} BIGINT NOT NULL" for m in measures)
    return (
        f"CREATE TABLE {STEPS_TABLE} (month_ns BIGINT NOT NULL, session_name TEXT NOT NULL, "
        f"session_path TEXT NOT NULL, team TEXT NOT NULL, {cols}, "
        "PRIMARY KEY (month_ns, session_name, session_path, team))"
    )


def steps_build(
    cur: Any, sql: Callable[[str], str], progress: Callable[[int, int], None] | None = None
) -> None:
    """(Re)build ``llm_rollup_steps`` by team from the calls (migration 14): before it, the steps
    of every team's sessions were summed together, so a team's summary could not leave out the
    others' steps."""
    cur.execute(f"DROP TABLE IF EXISTS {STEPS_TABLE}")
    cur.execute(steps_ddl())
    months = _months(cur)
    for done, (first, end) in enumerate(months):
        _backfill_steps(cur, sql, first, end, MEASURES, by_team=True)
        if progress:
            progress(done + 1, len(months))


def team_ddl(measures: tuple[str, ...] = MEASURES_V3) -> list[str]:
    """The team-level time tables (migration 6, with the measures of its time)."""
    cols = ", ".join(f"{m} BIGINT NOT NULL" for m in measures)
    return [
        f"CREATE TABLE {table} (start_ns BIGINT NOT NULL, team TEXT NOT NULL, {cols}, "
        "PRIMARY KEY (start_ns, team))"
        for table in TEAM_TABLES.values()
    ]


def names_ddl() -> str:
    """Per month and session name: ``runs`` (its sessions with calls) and their summed measures."""
    cols = ", ".join(f"{m} BIGINT NOT NULL" for m in MEASURES)
    return (
        f"CREATE TABLE {NAMES_TABLE} (month_ns BIGINT NOT NULL, session_name TEXT NOT NULL, "
        f"runs BIGINT NOT NULL, {cols}, PRIMARY KEY (month_ns, session_name))"
    )


def names_build(
    cur: Any, sql: Callable[[str], str], progress: Callable[[int, int], None] | None = None
) -> None:
    """(Re)build ``llm_rollup_session_names`` from the per-session rollup (migration 12, and
    after every ``rebuild``): one ``GROUP BY`` over a row per session, never the calls."""
    cols = ", ".join(MEASURES)
    cur.execute(f"DROP TABLE IF EXISTS {NAMES_TABLE}")
    cur.execute(names_ddl())
    cur.execute(
        f"INSERT INTO {NAMES_TABLE} (month_ns, session_name, runs, {cols}) SELECT month_ns, session_name, "
        f"COUNT(*), {', '.join(f'SUM({m})' for m in MEASURES)} FROM {SESSIONS_TABLE} WHERE requests > 0 "
        "GROUP BY month_ns, session_name"
    )
    if progress:
        progress(1, 1)


def session_teams_ddl(measures: tuple[str, ...] = MEASURES) -> str:
    """Per month, team and session: the team's calls' name, user, first start, last end and sums.
    Keyed by team first, so one team's sessions of a month are one range of the key."""
    cols = ", ".join(f"{m} BIGINT NOT NULL" for m in measures)
    return (
        f"CREATE TABLE {SESSION_TEAMS_TABLE} (month_ns BIGINT NOT NULL, team TEXT NOT NULL, "
        "session_id TEXT NOT NULL, session_name TEXT NOT NULL, user_id TEXT NOT NULL, "
        f"first_start_ns BIGINT NOT NULL, last_end_ns BIGINT NOT NULL, {cols}, "
        "PRIMARY KEY (month_ns, team, session_id))"
    )


# One team's sessions of a month with calls, by name then cost (what a team's monthly summary
# reads, as SESSION_COST_INDEX for everyone's): counts, sums and nearest ranks from the index alone.
SESSION_TEAMS_COST_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {SESSION_TEAMS_TABLE}_cost ON {SESSION_TEAMS_TABLE} "
    "(month_ns, team, session_name, contracted_nanos, requests, unpriced) WHERE requests > 0"
)


def session_teams_build(
    cur: Any, sql: Callable[[str], str], progress: Callable[[int, int], None] | None = None
) -> None:
    """(Re)build ``llm_rollup_session_teams`` from the calls (migration 15, and in ``rebuild``)."""
    cur.execute(f"DROP TABLE IF EXISTS {SESSION_TEAMS_TABLE}")
    cur.execute(session_teams_ddl())
    cur.execute(SESSION_TEAMS_COST_INDEX)
    months = _months(cur)
    cols = ", ".join(MEASURES)
    sums = ", ".join(f"SUM({MEASURE_SQL[m]})" for m in MEASURES)
    for done, (first, end) in enumerate(months):
        cur.execute(
            sql(f"INSERT INTO {SESSION_TEAMS_TABLE} (month_ns, team, session_id, session_name, user_id, "
                f"first_start_ns, last_end_ns, {cols}) SELECT ?, team, session_id, MAX(session_name), MAX(user_id), "
                f"MIN(start_time_ns), MAX(end_time_ns), {sums} FROM llm_calls "
                "WHERE start_time_ns >= ? AND start_time_ns < ? AND session_id <> '' GROUP BY team, session_id"),
            (first, first, end),
        )  # fmt: skip
        if progress:
            progress(done + 1, len(months))


def rebuild(cur: Any, sql: Callable[[str], str], progress: Callable[[int, int], None] | None = None) -> None:
    """Every measure table dropped and built again from the calls with today's ``MEASURES``
    (migration 9 added measures): the same SQL backfills as migrations 3 and 6, so the rollups
    equal a recomputation from the calls, exactly, whatever measures earlier versions had."""
    for table in (*TIME_TABLES.values(), *TEAM_TABLES.values(), USERS_TABLE, SESSIONS_TABLE, STEPS_TABLE):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in (*_measure_tables_ddl(MEASURES, steps_by_team=True), *team_ddl(MEASURES)):
        cur.execute(statement)
    backfill(cur, sql, progress, MEASURES, steps_by_team=True)
    team_backfill(cur, sql, None, MEASURES)
    names_build(cur, sql)
    session_teams_build(cur, sql)


def team_backfill(
    cur: Any,
    sql: Callable[[str], str],
    progress: Callable[[int, int], None] | None = None,
    measures: tuple[str, ...] = MEASURES_V3,
) -> None:
    """Build the team-level tables from the full time tables (migration 6): pure SQL, rollups only."""
    cols = ", ".join(measures)
    sums = ", ".join(f"SUM(r.{m})" for m in measures)
    for done, kind in enumerate(TIME_TABLES):
        cur.execute(
            f"INSERT INTO {TEAM_TABLES[kind]} (start_ns, team, {cols}) SELECT r.start_ns, d.team, {sums} "
            f"FROM {TIME_TABLES[kind]} r JOIN {DIMS_TABLE} d ON d.dims_id = r.dims_id GROUP BY r.start_ns, d.team"
        )
        if progress:
            progress(done + 1, len(TIME_TABLES))


def measures(e: LedgerEntry) -> tuple[int, ...]:
    """The ``MEASURES`` of one call, in order (the Python twin of ``MEASURE_SQL``). A response-cache
    hit carries its original usage, but consumed none of it: its token measures are 0."""
    request = 0 if e.operation == "outcome" else 1
    consumed = 0 if e.cache_hit else 1
    return (
        request,
        request if e.status == "error" else 0,
        request if e.price_status == UNPRICED else 0,
        e.outcome_count,
        e.cache_hit,
        e.usage_estimated,
        consumed * e.input_tokens,
        consumed * e.cache_read_tokens,
        consumed * e.cache_write_tokens,
        consumed * e.cache_write_1h_tokens,
        consumed * (e.output_tokens - e.reasoning_tokens),
        consumed * e.reasoning_tokens,
        consumed * e.input_audio_tokens,
        consumed * e.output_audio_tokens,
        e.list_cost_nanos or 0,
        e.contracted_cost_nanos or 0,
        e.chargeback_nanos or 0,
        e.savings_nanos,
        e.cache_lookup,
        e.prompt_cache_savings_nanos,
    )


def dimensions(e: LedgerEntry) -> tuple[str, ...]:
    """The ``DIMENSIONS`` of one call, in order."""
    return (
        e.team, e.team_source, e.feature, e.use_case, e.environment, e.service_name, e.provider,
        e.response_model or e.request_model, e.user_tier, e.status, e.price_status, e.outcome, e.currency,
    )  # fmt: skip


def _sum_parts(parts: dict[Any, list[tuple[int, ...]]]) -> dict[Any, list[int]]:
    """Per key, the column sums of its measure tuples (summed in C: ``map``, ``zip``, ``sum``)."""
    return {
        key: list(rows[0]) if len(rows) == 1 else list(map(sum, zip(*rows, strict=True)))
        for key, rows in parts.items()
    }


def _whole_sessions(parts: dict[tuple[int, str, str], list[Any]]) -> dict[tuple[int, str], list[Any]]:
    """Per (month, session): its teams' parts (name, user, first start, last end, sums) merged
    into [name, user, team, first start, last end, sums], the greatest name, user and team."""
    whole: dict[tuple[int, str], list[Any]] = {}
    for (month, session_id, team), (name, user, first, last, total) in parts.items():
        got = whole.get((month, session_id))
        if got is None:
            whole[(month, session_id)] = [name, user, team, first, last, list(total)]
            continue
        got[0], got[1], got[2] = max(got[0], name), max(got[1], user), max(got[2], team)
        got[3], got[4] = min(got[3], first), max(got[4], last)
        _add(got[5], total)
    return whole


def _in_key_order(rows: dict[Any, Any]) -> list[tuple[Any, Any]]:
    return sorted(rows.items(), key=operator.itemgetter(0))


def _add(total: list[int], values: list[int]) -> None:
    total[:] = map(operator.add, total, values)


class RollupWriter:
    """Adds calls to (and removes them from) the rollups inside the caller's write transaction.

    Keeps the dimension ids it has seen committed in memory, so the hot path does no lookup for
    a known combination; ids created in a transaction are only remembered once it committed
    (``committed()``), so a rolled-back transaction can never leave a dangling id in the cache.
    """

    def __init__(self, dialect: str, sql: Callable[[str], str]) -> None:
        self._dialect = dialect
        self._ids: dict[tuple[str, ...], int] = {}
        self._pending: dict[tuple[str, ...], int] = {}
        self._months: dict[int, int] = {}  # day start -> month start
        cols = ", ".join(MEASURES)
        marks = ", ".join("?" * len(MEASURES))
        self._time_upsert = {
            table: sql(
                f"INSERT INTO {table} AS t (start_ns, dims_id, {cols}) VALUES (?, ?, {marks}) "
                f"ON CONFLICT (start_ns, dims_id) DO UPDATE SET {_ADD_MEASURES}"
            )
            for table in TIME_TABLES.values()
        }
        self._team_upsert = {
            table: sql(
                f"INSERT INTO {table} AS t (start_ns, team, {cols}) VALUES (?, ?, {marks}) "
                f"ON CONFLICT (start_ns, team) DO UPDATE SET {_ADD_MEASURES}"
            )
            for table in TEAM_TABLES.values()
        }
        self._user_upsert = sql(
            f"INSERT INTO {USERS_TABLE} AS t (month_ns, user_id, team, user_tier, {cols}) "
            f"VALUES (?, ?, ?, ?, {marks}) ON CONFLICT (month_ns, user_id, team, user_tier) "
            f"DO UPDATE SET {_ADD_MEASURES}"
        )
        least, greatest = ("MIN", "MAX") if dialect == "sqlite" else ("LEAST", "GREATEST")
        self._session_upsert = sql(
            f"INSERT INTO {SESSIONS_TABLE} AS t (month_ns, session_id, session_name, user_id, team, "
            f"first_start_ns, last_end_ns, {cols}) VALUES (?, ?, ?, ?, ?, ?, ?, {marks}) "
            "ON CONFLICT (month_ns, session_id) DO UPDATE SET "
            f"session_name = {greatest}(t.session_name, excluded.session_name), "
            f"user_id = {greatest}(t.user_id, excluded.user_id), team = {greatest}(t.team, excluded.team), "
            f"first_start_ns = {least}(t.first_start_ns, excluded.first_start_ns), "
            f"last_end_ns = {greatest}(t.last_end_ns, excluded.last_end_ns), {_ADD_MEASURES}"
        )
        self._session_team_upsert = sql(
            f"INSERT INTO {SESSION_TEAMS_TABLE} AS t (month_ns, team, session_id, session_name, user_id, "
            f"first_start_ns, last_end_ns, {cols}) VALUES (?, ?, ?, ?, ?, ?, ?, {marks}) "
            "ON CONFLICT (month_ns, team, session_id) DO UPDATE SET "
            f"session_name = {greatest}(t.session_name, excluded.session_name), "
            f"user_id = {greatest}(t.user_id, excluded.user_id), "
            f"first_start_ns = {least}(t.first_start_ns, excluded.first_start_ns), "
            f"last_end_ns = {greatest}(t.last_end_ns, excluded.last_end_ns), {_ADD_MEASURES}"
        )
        self._step_upsert = sql(
            f"INSERT INTO {STEPS_TABLE} AS t (month_ns, session_name, session_path, team, {cols}) "
            f"VALUES (?, ?, ?, ?, {marks}) ON CONFLICT (month_ns, session_name, session_path, team) "
            f"DO UPDATE SET {_ADD_MEASURES}"
        )
        empty = " AND ".join(f"{m} = 0" for m in MEASURES)
        self._delete_empty = {
            table: sql(f"DELETE FROM {table} WHERE {' AND '.join(f'{k} = ?' for k in key)} AND {empty}")
            for table, key in (
                *((t, ("start_ns", "dims_id")) for t in TIME_TABLES.values()),
                *((t, ("start_ns", "team")) for t in TEAM_TABLES.values()),
                (USERS_TABLE, ("month_ns", "user_id", "team", "user_tier")),
                (SESSIONS_TABLE, ("month_ns", "session_id")),
                (SESSION_TEAMS_TABLE, ("month_ns", "team", "session_id")),
                (STEPS_TABLE, ("month_ns", "session_name", "session_path", "team")),
            )
        }
        self._names_upsert = sql(
            f"INSERT INTO {NAMES_TABLE} AS t (month_ns, session_name, runs, {cols}) "
            f"VALUES (?, ?, ?, {marks}) ON CONFLICT (month_ns, session_name) "
            f"DO UPDATE SET runs = t.runs + excluded.runs, {_ADD_MEASURES}"
        )
        self._names_delete_empty = sql(
            f"DELETE FROM {NAMES_TABLE} WHERE month_ns = ? AND session_name = ? AND runs = 0"
        )
        # The touched sessions' rows as they are before this batch: one statement per month, the
        # ids as one parameter (a JSON array on SQLite, an array on PostgreSQL).
        ids = "(SELECT value FROM json_each(?))" if dialect == "sqlite" else "(SELECT unnest(?::text[]))"
        self._sessions_read = sql(
            f"SELECT session_id, session_name, {cols} FROM {SESSIONS_TABLE} "
            f"WHERE month_ns = ? AND session_id IN {ids}"
        )
        dims = ", ".join(DIMENSIONS)
        self._dims_insert = sql(
            f"INSERT INTO {DIMS_TABLE} ({dims}) VALUES ({', '.join('?' * len(DIMENSIONS))}) "
            f"ON CONFLICT ({dims}) DO NOTHING"
        )
        self._dims_select = sql(
            f"SELECT dims_id FROM {DIMS_TABLE} WHERE " + " AND ".join(f"{d} = ?" for d in DIMENSIONS)
        )

    def apply(self, cur: Any, added: Sequence[LedgerEntry], removed: Sequence[LedgerEntry] = ()) -> None:
        """Add ``added`` and subtract ``removed`` from every rollup, in ``cur``'s transaction.

        The per-call work stays a few dictionary lookups whatever the number of measures: sums
        are taken column by column in C (``zip`` and ``sum``, ``map`` and ``add``).
        """
        # An hour and combination, a session or a step holds several of a batch's calls: their
        # tuples are collected and summed once, column by column in C. A user mostly holds one:
        # a second call is added in place.
        hourly_parts: dict[tuple[int, tuple[str, ...]], list[tuple[int, ...]]] = defaultdict(list)
        session_parts: dict[tuple[int, str, str], list[tuple[int, ...]]] = defaultdict(list)
        step_parts: dict[tuple[int, str, str, str], list[tuple[int, ...]]] = defaultdict(list)
        users: dict[tuple[int, str, str, str], tuple[int, ...]] = {}
        meta: dict[tuple[int, str, str], list[Any]] = {}  # per team's part: name, user, first, last end
        add = operator.add
        for sign, entries in ((1, added), (-1, removed)):
            for e in entries:
                values = measures(e) if sign > 0 else tuple(-v for v in measures(e))
                start = e.start_time_ns
                hour = start - start % HOUR_NS
                hourly_parts[(hour, dimensions(e))].append(values)
                user_id, session_id = e.user_id, e.session_id
                if not (user_id or session_id):
                    continue
                month = self._month(hour)
                if user_id:
                    ukey = (month, user_id, e.team, e.user_tier)
                    got = users.get(ukey)
                    users[ukey] = values if got is None else tuple(map(add, got, values))
                if session_id:
                    skey = (month, session_id, e.team)
                    session_parts[skey].append(values)
                    step_parts[(month, e.session_name, e.session_path, e.team)].append(values)
                    m = meta.get(skey)
                    if m is None:
                        meta[skey] = [e.session_name, user_id, start, e.end_time_ns]
                        continue
                    # the greatest name and user: the same whatever the arrival order
                    if e.session_name > m[0]:
                        m[0] = e.session_name
                    if user_id > m[1]:
                        m[1] = user_id
                    if start < m[2]:
                        m[2] = start
                    if e.end_time_ns > m[3]:
                        m[3] = e.end_time_ns
        hourly = _sum_parts(hourly_parts)
        steps = _sum_parts(step_parts)
        team_sessions = {key: [*meta[key], total] for key, total in _sum_parts(session_parts).items()}
        sessions = _whole_sessions(team_sessions)
        if not hourly:
            return
        # PostgreSQL keeps a row written by a transaction locked until it commits: rows are
        # written in key order (and the tables in one order), so two replicas writing the same
        # rows wait for each other instead of deadlocking. SQLite has one writer at a time.
        ordered = _in_key_order if self._dialect == "postgresql" else dict.items
        ids = self._dims_ids(cur, {dims for _, dims in hourly})
        # Per table kind, (start, key) -> sums: the full tables keyed by dimension id, the team
        # tables by team (the first dimension).
        full: dict[str, dict[tuple[int, Any], list[int]]] = {kind: {} for kind in TIME_TABLES}
        team: dict[str, dict[tuple[int, Any], list[int]]] = {kind: {} for kind in TIME_TABLES}
        for (hour, dims), total in hourly.items():
            starts = {"hour": hour, "day": hour - hour % DAY_NS, "month": self._month(hour)}
            for kind, start in starts.items():
                for table, key in ((full[kind], (start, ids[dims])), (team[kind], (start, dims[0]))):
                    bucket = table.get(key)
                    if bucket is None:
                        table[key] = list(total)
                    else:
                        _add(bucket, total)
        for kind in TIME_TABLES:
            cur.executemany(self._time_upsert[TIME_TABLES[kind]], [(*k, *v) for k, v in ordered(full[kind])])
            cur.executemany(self._team_upsert[TEAM_TABLES[kind]], [(*k, *v) for k, v in ordered(team[kind])])
        if users:
            cur.executemany(self._user_upsert, [(*k, *v) for k, v in ordered(users)])
        if sessions:
            names = self._name_moves(cur, sessions)
            cur.executemany(self._session_upsert, [(*k, *s[:5], *s[5]) for k, s in ordered(sessions)])
            cur.executemany(
                self._session_team_upsert,
                [(month, team, sid, *s[:4], *s[4]) for (month, sid, team), s in ordered(team_sessions)],
            )
            cur.executemany(self._step_upsert, [(*k, *v) for k, v in ordered(steps)])
            cur.executemany(self._names_upsert, [(*k, *v) for k, v in ordered(names)])
            emptied = [key for key, (runs, *_) in names.items() if runs < 0]
            if emptied:  # a name that lost its last run (to a renamed session or a re-price)
                cur.executemany(self._names_delete_empty, emptied)
        if removed:  # a row whose calls all moved elsewhere (a re-price) is dropped, not kept at zero
            for name, keys in (
                *((TIME_TABLES[kind], list(full[kind])) for kind in TIME_TABLES),
                *((TEAM_TABLES[kind], list(team[kind])) for kind in TIME_TABLES),
                (USERS_TABLE, list(users)),
                (SESSIONS_TABLE, list(sessions)),
                (SESSION_TEAMS_TABLE, [(month, team, sid) for month, sid, team in team_sessions]),
                (STEPS_TABLE, list(steps)),
            ):
                if keys:
                    cur.executemany(self._delete_empty[name], keys)

    def _name_moves(
        self, cur: Any, sessions: dict[tuple[int, str], list[Any]]
    ) -> dict[tuple[int, str], list[int]]:
        """Per (month, session name), what this batch changes in ``llm_rollup_session_names``:
        each touched session's contribution before it (its row, read in this transaction) out,
        the one after it in. A session contributes one run and its measures while it has calls.

        On PostgreSQL the touched sessions are locked first (transaction advisory locks, in one
        sorted statement), so a replica writing the same session waits and then reads its row
        as committed: two writers never both count a session as new.
        """
        by_month: dict[int, list[str]] = defaultdict(list)
        for month, session_id in sessions:
            by_month[month].append(session_id)
        if self._dialect == "postgresql":
            cur.execute(
                _PG_LOCK_SESSIONS,
                [sorted(f"session {month} {sid}" for month, ids in by_month.items() for sid in ids)],
            )
        before: dict[tuple[int, str], tuple[str, list[int]]] = {}
        for month, ids in by_month.items():
            cur.execute(self._sessions_read, (month, json.dumps(ids) if self._dialect == "sqlite" else ids))
            for session_id, name, *values in cur.fetchall():
                before[(month, session_id)] = (name, values)
        moves: dict[tuple[int, str], list[int]] = {}

        def move(key: tuple[int, str], runs: int, values: Sequence[int]) -> None:
            total = moves.get(key)
            if total is None:
                moves[key] = [runs, *values]
            else:
                total[0] += runs
                for i, value in enumerate(values, 1):
                    total[i] += value

        for key, (name, *_, delta) in sessions.items():
            old = before.get(key)
            if old is None:
                if delta[_REQUESTS] > 0:
                    move((key[0], name), 1, delta)
                continue
            old_name, old_values = old
            new_name = max(old_name, name)
            new_values = [a + b for a, b in zip(old_values, delta, strict=True)]
            had, has = old_values[_REQUESTS] > 0, new_values[_REQUESTS] > 0
            if had and has and new_name == old_name:  # the common case: more of the same run
                move((key[0], new_name), 0, delta)
                continue
            if had:
                move((key[0], old_name), -1, [-v for v in old_values])
            if has:
                move((key[0], new_name), 1, new_values)
        return moves

    def committed(self) -> None:
        """The caller's transaction committed: remember the dimension ids it created."""
        self._ids.update(self._pending)
        self._pending.clear()

    def rolled_back(self) -> None:
        self._pending.clear()

    def _month(self, hour: int) -> int:
        day = hour - hour % DAY_NS
        month = self._months.get(day)
        if month is None:
            month = self._months[day] = month_start_ns(day)
        return month

    def _dims_ids(self, cur: Any, combos: set[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
        known = self._ids
        out = {}
        for dims in sorted(combos) if self._dialect == "postgresql" else combos:
            dims_id = known.get(dims) or self._pending.get(dims)
            if dims_id is None:
                # Another replica may create the same combination at the same moment: the unique
                # constraint keeps one row, and the select reads whichever id won.
                cur.execute(self._dims_insert, dims)
                cur.execute(self._dims_select, dims)
                dims_id = self._pending[dims] = int(cur.fetchone()[0])
            out[dims] = dims_id
        return out


def backfill(
    cur: Any,
    sql: Callable[[str], str],
    progress: Callable[[int, int], None] | None = None,
    measures: tuple[str, ...] = MEASURES_V3,
    steps_by_team: bool = False,
) -> None:
    """Build every rollup from the calls already in the ledger (migration 3), a month at a time.

    Pure SQL (``GROUP BY`` over ``llm_calls``), so an existing ledger of millions of rows is
    rolled up by the database, not row by row in Python. ``progress(done, total)`` counts months.
    ``measures``: those of migration 3 by default (later columns did not exist yet), all of them
    in ``rebuild`` (which builds today's steps table: ``steps_by_team``).
    """
    months = _months(cur)
    dims_cols = ", ".join(DIMENSIONS)
    dims_exprs = ", ".join(DIMENSION_SQL[d] for d in DIMENSIONS)
    sums = ", ".join(f"SUM({MEASURE_SQL[m]})" for m in measures)
    cols = ", ".join(measures)
    join = " AND ".join(f"d.{d} = x.{d}" for d in DIMENSIONS)
    window = "start_time_ns >= ? AND start_time_ns < ?"
    for done, (first, end) in enumerate(months):
        cur.execute(
            sql(f"INSERT INTO {DIMS_TABLE} ({dims_cols}) SELECT DISTINCT {dims_exprs} FROM llm_calls "
                f"WHERE {window} ON CONFLICT ({dims_cols}) DO NOTHING"),
            (first, end),
        )  # fmt: skip
        for size, table in ((HOUR_NS, TIME_TABLES["hour"]), (DAY_NS, TIME_TABLES["day"])):
            # Sum the calls per bucket and dimensions first, then look the few groups up.
            bucket = f"start_time_ns / {size} * {size}"  # integer division: the bucket start
            named = ", ".join(f"{DIMENSION_SQL[d]} AS {d}" for d in DIMENSIONS)
            inner = (
                f"SELECT {bucket} AS bucket, {named}, "
                + ", ".join(f"SUM({MEASURE_SQL[m]}) AS {m}" for m in measures)
                + f" FROM llm_calls WHERE start_time_ns >= ? AND start_time_ns < ? GROUP BY bucket, {dims_cols}"
            )
            cur.execute(
                sql(f"INSERT INTO {table} (start_ns, dims_id, {cols}) SELECT x.bucket, d.dims_id, "
                    f"{', '.join(f'x.{m}' for m in measures)} FROM ({inner}) x JOIN {DIMS_TABLE} d ON {join}"),
                (first, end),
            )  # fmt: skip
        cur.execute(
            sql(f"INSERT INTO {TIME_TABLES['month']} (start_ns, dims_id, {cols}) SELECT ?, dims_id, "
                f"{', '.join(f'SUM({m})' for m in measures)} FROM {TIME_TABLES['day']} "
                "WHERE start_ns >= ? AND start_ns < ? GROUP BY dims_id"),
            (first, first, end),
        )  # fmt: skip
        cur.execute(
            sql(f"INSERT INTO {USERS_TABLE} (month_ns, user_id, team, user_tier, {cols}) "
                f"SELECT ?, user_id, team, user_tier, {sums} FROM llm_calls WHERE {window} AND user_id <> '' "
                "GROUP BY user_id, team, user_tier"),
            (first, first, end),
        )  # fmt: skip
        cur.execute(
            sql(f"INSERT INTO {SESSIONS_TABLE} (month_ns, session_id, session_name, user_id, team, "
                f"first_start_ns, last_end_ns, {cols}) SELECT ?, session_id, MAX(session_name), MAX(user_id), "
                f"MAX(team), MIN(start_time_ns), MAX(end_time_ns), {sums} FROM llm_calls "
                f"WHERE {window} AND session_id <> '' GROUP BY session_id"),
            (first, first, end),
        )  # fmt: skip
        _backfill_steps(cur, sql, first, end, measures, steps_by_team)
        if progress:
            progress(done + 1, len(months))


def _months(cur: Any) -> list[tuple[int, int]]:
    """(start, end) of every calendar month from the ledger's first call to its last."""
    cur.execute("SELECT MIN(start_time_ns), MAX(start_time_ns) FROM llm_calls")
    low, high = cur.fetchone()
    months: list[tuple[int, int]] = []
    if low is None:
        return months
    start = month_start_ns(int(low))
    while start <= int(high):
        months.append((start, next_month_ns(start)))
        start = months[-1][1]
    return months


def _backfill_steps(
    cur: Any, sql: Callable[[str], str], first: int, end: int, measures: tuple[str, ...], by_team: bool
) -> None:
    keys = "session_name, session_path, team" if by_team else "session_name, session_path"
    sums = ", ".join(f"SUM({MEASURE_SQL[m]})" for m in measures)
    cur.execute(
        sql(f"INSERT INTO {STEPS_TABLE} (month_ns, {keys}, {', '.join(measures)}) SELECT ?, {keys}, {sums} "
            f"FROM llm_calls WHERE start_time_ns >= ? AND start_time_ns < ? AND session_id <> '' GROUP BY {keys}"),
        (first, first, end),
    )  # fmt: skip
