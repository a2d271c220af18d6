"""The ledger on SQL: one implementation for SQLite and PostgreSQL, differing only in a dialect.

* Idempotency: ``(trace_id, span_id)`` is the primary key and inserts are
  ``ON CONFLICT DO NOTHING``; ``insert`` says per entry whether it was new, which is what keeps
  metrics from counting a retried export twice, also with several replicas writing at once.
* Durability: ``insert`` returns only after its transaction committed (SQLite: WAL with
  ``synchronous=FULL`` by default, one fsync per batch; PostgreSQL: a synchronous commit). The
  receivers acknowledge an export only after that, so client retries give exactly-once billing.
* Money: integer nano-dollar ``BIGINT`` columns, summed in SQL as integers, never floats.
* Threads: one writer connection and one reader connection, each behind its own lock, so the
  collector's writer thread and its HTTP threads can share one ``SqlLedger``. In WAL mode SQLite
  readers see the last committed state while a write is in progress; PostgreSQL is MVCC anyway.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from operator import attrgetter, itemgetter
from typing import Any

from llmcost_collector.ledger import dedupe
from llmcost_collector.ledger.dedupe import DUPLICATE, NEW, SPAN_COLUMNS, SpanLink
from llmcost_collector.ledger.entry import COLUMNS, INT_COLUMNS, LedgerEntry
from llmcost_collector.ledger.query import CostQuery, CostRow, Filter, range_sums, tiles
from llmcost_collector.ledger.query import run as run_query
from llmcost_collector.ledger.rollups import USERS_TABLE, RollupWriter
from llmcost_collector.ledger.schema import SCHEMA_MIGRATIONS_DDL, SPANS_TABLE, TABLE, migrations
from llmcost_collector.ledger.sessions import (
    Session,
    SessionQuery,
    SessionTypeSummary,
    StepSummary,
    list_sessions,
    outliers_above_p95,
    session_total,
    steps_from_rollup,
    summarize_steps,
    summarize_types,
)
from llmcost_collector.ledger.usage import DIMENSIONS, UsageLine
from llmcost_collector.model import UNPRICED, Cost

# Token classes as the API and the metrics name them: disjoint (output excludes reasoning).
TOKEN_SUMS = {
    "input": "input_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "output": "output_tokens",
    "reasoning": "reasoning_tokens",
}
# The only columns spend/top may group or filter by: names from here are the only text ever
# spliced into SQL (values always travel as parameters).
GROUPABLE = frozenset(
    {
        "team", "team_source", "feature", "use_case", "user_id", "user_tier", "session_id", "session_name",
        "session_path", "environment", "service_name", "provider", "operation", "request_model",
        "response_model", "server_address", "dialect", "status", "error_type", "price_status",
        "price_source", "price_id", "outcome", "currency", "model",
    }
)  # fmt: skip
# "model" is the billed model: the response model when the provider reported one.
MODEL_EXPR = "CASE WHEN response_model <> '' THEN response_model ELSE request_model END"
DAY_NS = 86_400 * 10**9
_EPOCH_DAY = date(1970, 1, 1)
MONEY_COLUMNS = ("list_cost_nanos", "contracted_cost_nanos", "chargeback_nanos", "savings_nanos")
_NO_LINK = SpanLink()
# Advisory locks on the traces and response ids of a batch, in sorted order (no deadlocks).
_PG_LOCK_KEYS = (
    "SELECT pg_advisory_xact_lock(k) FROM "
    "(SELECT DISTINCT hashtextextended(x, 727275) AS k FROM unnest(%s::text[]) AS x) AS keys ORDER BY k"
)


@dataclass(slots=True)
class SpendRow:
    """Totals of one group. Cost sums are ``None`` when every call in the group is unpriced."""

    group: dict[str, str]
    requests: int
    unpriced: int
    tokens: dict[str, int]  # keys of TOKEN_SUMS
    list_nanos: int | None
    contracted_nanos: int | None
    chargeback_nanos: int | None
    savings_nanos: int = 0


@dataclass
class Dialect:
    """What differs between backends: driver, placeholder, limits and a few statements."""

    name: str  # "sqlite" | "postgresql"
    placeholder: str
    max_params: int
    connect: Callable[[bool], Any]  # connect(read_only)
    begin_write: str | None = None  # SQLite: BEGIN IMMEDIATE (psycopg opens transactions itself)
    migration_lock: str | None = None
    is_broken: Callable[[Any], bool] = lambda conn: False
    column_types_sql: str = ""
    # Errors that mean "this data cannot be stored" (a value out of range, a NUL, a constraint),
    # as opposed to the database being unreachable or out of space.
    data_errors: tuple[type[BaseException], ...] = (OverflowError, UnicodeError)
    # Errors after which the same transaction, run again, can succeed: PostgreSQL aborting one of
    # two writers waiting on each other (rare: rollup rows are written in key order).
    retryable_errors: tuple[type[BaseException], ...] = ()


_WRITE_ATTEMPTS = 3


def _key(entry: LedgerEntry) -> tuple[str, str]:
    return (entry.trace_id, entry.span_id)


_KEY: Callable[[LedgerEntry], tuple[str, str]] = itemgetter(0, 1)  # (trace_id, span_id), at C speed
_LINE_ORDER = attrgetter("day", *DIMENSIONS)  # usage lines by day, then dimensions


def _int(value: Any) -> int | None:
    return None if value is None else int(value)  # PostgreSQL returns SUM(bigint) as Decimal


class SqlLedger:
    """The ledger. Thread-safe: call ``insert``/``update_costs`` from one writer thread and the
    read methods from any thread (each side is serialized by its own lock)."""

    def __init__(self, dialect: Dialect, *, shared_connection: bool = False, migrate: bool = True) -> None:
        self.dialect = dialect
        self._shared = shared_connection  # sqlite :memory: has one database per connection
        self._write_conn = dialect.connect(False)
        self._read_conn = self._write_conn if shared_connection else dialect.connect(True)
        self._write_lock = threading.Lock()
        self._read_lock = self._write_lock if shared_connection else threading.Lock()
        ph = dialect.placeholder
        self._row_sql = "(" + ", ".join([ph] * len(COLUMNS)) + ")"
        self._insert_head = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES "
        self._plain_insert = f"{self._insert_head}{self._row_sql} ON CONFLICT (trace_id, span_id) DO NOTHING"
        self._returning_sql: dict[int, str] = {}
        arrays = ", ".join(f"%b::{'bigint' if name in INT_COLUMNS else 'text'}[]" for name in COLUMNS)
        self._unnest_insert = (
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
        )
        self._rows_per_statement = max(1, min(1000, dialect.max_params // len(COLUMNS)))
        self._span_insert = (
            f"INSERT INTO {SPANS_TABLE} ({', '.join(SPAN_COLUMNS)}) VALUES ({', '.join([ph] * len(SPAN_COLUMNS))}) "
            "ON CONFLICT (trace_id, span_id) DO NOTHING"
        )
        self._rewrite_sql = self._sql(
            f"UPDATE {TABLE} SET {', '.join(f'{name} = ?' for name in COLUMNS[2:])} WHERE trace_id = ? AND span_id = ?"
        )
        self._rollups = RollupWriter(dialect.name, self._sql)
        if migrate:
            self.migrate()

    # --- schema -------------------------------------------------------------------------

    def migrate(self, progress: Callable[[int, int], None] | None = None) -> list[int]:
        """Apply missing migrations in one transaction; returns the versions applied now.

        ``progress(done, total)`` is called by steps that build data (the rollup backfills) as
        they go, for a progress bar on a large existing ledger (``llmcost migrate``).

        Idempotent, and safe when several replicas start at once: PostgreSQL takes a
        transaction-scoped advisory lock first, SQLite's ``BEGIN IMMEDIATE`` takes the file's write
        lock, so a second starter waits, then finds everything applied.
        """
        applied: list[int] = []
        with self._write_lock, self._transaction(write=True) as cur:
            if self.dialect.migration_lock:
                cur.execute(self.dialect.migration_lock)
            cur.execute(SCHEMA_MIGRATIONS_DDL)
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for version, description, statements in migrations(self.dialect.name):
                if version in done:
                    continue
                for step in statements:
                    if callable(step):
                        step(cur, self._sql, progress)
                    else:
                        cur.execute(step)
                cur.execute(
                    self._sql("INSERT INTO schema_migrations VALUES (?, ?, ?)"),
                    (version, description, time.time_ns()),
                )
                applied.append(version)
        return applied

    def pending_migrations(self) -> list[tuple[int, str]]:
        """``(version, description)`` of the migrations this ledger has not run yet."""
        try:
            done = set(self.schema_versions())
        except Exception:  # a new database: not even the migrations table yet
            done = set()
        return [(v, d) for v, d, _ in migrations(self.dialect.name) if v not in done]

    def schema_versions(self) -> list[int]:
        return [row[0] for row in self._read("SELECT version FROM schema_migrations ORDER BY version")]

    def column_types(self) -> dict[str, str]:
        """Declared SQL type of every ledger column, upper case (``BIGINT``, ``TEXT``, ...)."""
        return {name: str(kind).upper() for name, kind in self._read(self.dialect.column_types_sql)}

    # --- writes -------------------------------------------------------------------------

    def insert(
        self, entries: Sequence[LedgerEntry], links: Sequence[SpanLink | None] | None = None
    ) -> list[bool]:
        """Insert in one transaction, committed before returning; per entry, True when it was new.

        ``links`` (one per entry, None for outcome records) let spans of one provider call
        collapse into one row (``ledger/dedupe.py``); without them each entry is its own call.
        A call already in the ledger, repeated earlier in the same batch, or held by another span
        of the same call gets False, so the caller updates metrics for new rows only. The rollups take exactly
        the new rows, and follow a rewritten row, in the same transaction.
        """
        return [outcome == NEW for outcome in self.record(entries, links)]

    def record(
        self,
        entries: Sequence[LedgerEntry],
        links: Sequence[SpanLink | None] | None = None,
        merge: dedupe.Merge | None = None,
    ) -> list[str]:
        """Like ``insert``, but per entry its outcome: ``NEW``, ``DUPLICATE`` or ``SUPPRESSED``.

        ``merge`` builds a row from one span's usage and another's attribution (``dedupe.plan``).
        """
        if not entries:
            return []
        if links is None:
            links = [_NO_LINK] * len(entries)
        now = time.time_ns()
        with self._write_lock:
            for attempt in range(_WRITE_ATTEMPTS):
                try:
                    with self._transaction(write=True) as cur:
                        outcomes = self._record(cur, entries, links, merge, now)
                except self.dialect.retryable_errors:
                    self._rollups.rolled_back()
                    if attempt + 1 == _WRITE_ATTEMPTS:
                        raise
                    continue  # nothing of it was written: the whole transaction runs again
                except BaseException:
                    self._rollups.rolled_back()
                    raise
                self._rollups.committed()
                return outcomes
        raise AssertionError("unreachable")

    def _record(
        self,
        cur: Any,
        entries: Sequence[LedgerEntry],
        links: Sequence[SpanLink | None],
        merge: dedupe.Merge | None,
        now: int,
    ) -> list[str]:
        """One ``record`` inside its transaction: plan (dedupe), insert, index, rewrite, rollups."""
        if self.dialect.name == "postgresql":
            keys = dedupe.lock_keys(entries, links)
            if keys:  # concurrent replicas writing spans of one call wait for each other
                cur.execute(_PG_LOCK_KEYS, [keys])

        def fetch(sql: str, params: Sequence[object]) -> list[tuple]:
            cur.execute(self._sql(sql), list(params))
            return cur.fetchall()

        plan = dedupe.plan(fetch, entries, links, now, merge)
        outcomes = plan.outcomes
        rows = [plan.replaced.get(i, entry) for i, entry in enumerate(entries)]
        fresh = [entry for entry, outcome in zip(rows, outcomes, strict=True) if outcome == NEW]
        if fresh and not (self.dialect.name == "sqlite" and self._insert_all_new(cur, fresh)):
            inserted = set(self._insert_returning(cur, fresh))
            for index, entry in enumerate(entries):  # a row that predates the span index
                if outcomes[index] == NEW and _key(entry) not in inserted:
                    outcomes[index] = DUPLICATE
            fresh = [entry for entry in fresh if _key(entry) in inserted]
        self._rollups.apply(cur, fresh)
        if plan.span_rows:
            cur.executemany(self._span_insert, plan.span_rows)
        if plan.rewrites:
            self._rewrite_rows(cur, [old for old, _ in plan.rewrites], [new for _, new in plan.rewrites])
        return outcomes

    def _rewrite_rows(
        self, cur: Any, old_entries: Sequence[LedgerEntry], new_entries: Sequence[LedgerEntry]
    ) -> None:
        """Replace existing rows' accounts, inside the insert transaction; the one place a row's
        usage or cost changes at ingest (a later span of the same call with a finer split won).

        ``new_entries[i]`` keeps ``old_entries[i]``'s key and times (``dedupe._take_over``), so
        the row stays in its period; the rollups move from the old account to the new one here.
        """
        for old, new in zip(old_entries, new_entries, strict=True):
            cur.execute(self._rewrite_sql, [*new[2:], old.trace_id, old.span_id])
        self._rollups.apply(cur, new_entries, removed=old_entries)

    def _insert_all_new(self, cur: Any, unique: Sequence[LedgerEntry]) -> bool:
        """SQLite fast path: one ``executemany``, kept only when every row was new.

        New rows are the common case (duplicates come from retries), and ``executemany`` costs
        about half of ``RETURNING``. If any row already existed, roll back to the savepoint and let
        the caller take the ``RETURNING`` path, which says exactly which rows were new.
        """
        before = self._write_conn.total_changes
        cur.execute("SAVEPOINT fast_insert")
        cur.executemany(self._plain_insert, unique)  # an entry is its row tuple
        all_new = self._write_conn.total_changes - before == len(unique)
        if not all_new:
            cur.execute("ROLLBACK TO fast_insert")
        cur.execute("RELEASE fast_insert")
        return all_new

    def _insert_returning(self, cur: Any, unique: Sequence[LedgerEntry]) -> list[tuple[str, str]]:
        """``INSERT ... ON CONFLICT DO NOTHING RETURNING``: the keys actually inserted.

        Rows go in key order, so concurrent writers with overlapping batches lock keys in the
        same order and wait for each other instead of deadlocking.
        """
        ordered = sorted(unique, key=_key)
        rows = ordered
        if self.dialect.name == "postgresql":
            # One statement per batch whatever its size: one array parameter per column.
            cur.execute(self._unnest_insert, [list(column) for column in zip(*rows, strict=True)])
            return [(trace_id, span_id) for trace_id, span_id in cur.fetchall()]
        inserted: list[tuple[str, str]] = []
        step = self._rows_per_statement
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            cur.execute(self._returning_statement(len(chunk)), [value for row in chunk for value in row])
            inserted.extend((trace_id, span_id) for trace_id, span_id in cur.fetchall())
        return inserted

    def _returning_statement(self, rows: int) -> str:
        sql = self._returning_sql.get(rows)
        if sql is None:
            sql = (
                f"{self._insert_head}{', '.join([self._row_sql] * rows)} "
                "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
            )
            self._returning_sql[rows] = sql
        return sql

    def update_costs(self, updates: Sequence[tuple[str, str, Cost, int | None, int, int]]) -> int:
        """Re-price rows (``llmcost reprice``): new cost layers, cache savings (response, prompt)
        and provenance, stamped with ``repriced_at_ns``; the rollups move from the old row to the new one in the same
        transaction. Returns the number of rows changed."""
        now = time.time_ns()
        select = self._sql(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE trace_id = ? AND span_id = ?")
        sql = self._sql(
            f"UPDATE {TABLE} SET price_status = ?, list_cost_nanos = ?, contracted_cost_nanos = ?, "
            "chargeback_nanos = ?, price_source = ?, price_id = ?, price_effective_from = ?, "
            "unpriced_reason = ?, repriced_at_ns = ?, savings_nanos = ?, prompt_cache_savings_nanos = ? "
            "WHERE trace_id = ? AND span_id = ?"
        )
        old: list[LedgerEntry] = []
        new: list[LedgerEntry] = []
        with self._write_lock:
            try:
                with self._transaction(write=True) as cur:
                    for trace_id, span_id, cost, chargeback, savings, prompt_savings in updates:
                        cur.execute(select, (trace_id, span_id))
                        row = cur.fetchone()
                        if row is None:
                            continue
                        before = LedgerEntry(*row)
                        after = before._replace(
                            price_status=cost.status, list_cost_nanos=cost.list_nanos,
                            contracted_cost_nanos=cost.contracted_nanos, chargeback_nanos=chargeback,
                            price_source=cost.price_source, price_id=cost.price_id,
                            price_effective_from=cost.price_effective_from, unpriced_reason=cost.reason,
                            repriced_at_ns=now, savings_nanos=savings, prompt_cache_savings_nanos=prompt_savings,
                        )  # fmt: skip
                        cur.execute(
                            sql,
                            (cost.status, cost.list_nanos, cost.contracted_nanos, chargeback, cost.price_source,
                             cost.price_id, cost.price_effective_from, cost.reason, now, savings, prompt_savings,
                             trace_id, span_id),
                        )  # fmt: skip
                        old.append(before)
                        new.append(after)
                    self._rollups.apply(cur, new, removed=old)
            except BaseException:
                self._rollups.rolled_back()
                raise
            self._rollups.committed()
        return len(new)

    @contextmanager
    def write_transaction(self) -> Iterator[Callable[[str, Sequence[object]], Any]]:
        """One write transaction for work outside the ingest path (budget reservations): yields
        ``execute(sql, params)`` (``?`` placeholders) returning the cursor, committed on success.

        SQLite takes the database's write lock up front (``BEGIN IMMEDIATE``), so transactions of
        every process on the file run one at a time; PostgreSQL callers take their own locks.
        It shares the writer connection and its lock with ``insert``.
        """
        with self._write_lock, self._transaction(write=True) as cur:

            def execute(sql: str, params: Sequence[object] = ()) -> Any:
                cur.execute(self._sql(sql), list(params))
                return cur

            yield execute

    # --- reads --------------------------------------------------------------------------

    def count(self) -> int:
        """Rows in the ledger (a full count: for tests and tools, not for health checks)."""
        return int(self._read(f"SELECT COUNT(*) FROM {TABLE}")[0][0])

    def refuses_data(self, exc: BaseException) -> bool:
        """True when ``exc`` from a write says the rows themselves are unstorable (permanent)."""
        return isinstance(exc, self.dialect.data_errors)

    def ping(self) -> None:
        """Raise if the database cannot be read; cheap at any ledger size (for ``/readyz``)."""
        self._read(f"SELECT 1 FROM {TABLE} LIMIT 1")

    def costs(self, query: CostQuery) -> list[CostRow]:
        """Answer a cost question from the rollups (see ``ledger/query.py`` for which table)."""
        return run_query(query, self._read, self.dialect.name)

    def spend(
        self,
        start_ns: int,
        end_ns: int,
        group_by: Sequence[str] = ("team",),
        filters: Mapping[str, str] | None = None,
    ) -> list[SpendRow]:
        """Totals per group for calls that started in ``[start_ns, end_ns)``, ordered by group.

        ``group_by`` and the ``filters`` keys must be in ``GROUPABLE`` (ValueError otherwise).
        """
        rows = self._spend_rows(start_ns, end_ns, group_by, filters)
        return sorted(rows, key=lambda r: tuple(r.group.values()))

    def top(
        self,
        column: str,
        start_ns: int,
        end_ns: int,
        limit: int = 10,
        filters: Mapping[str, str] | None = None,
    ) -> list[SpendRow]:
        """The ``limit`` values of ``column`` charged most in ``[start_ns, end_ns)``: by
        chargeback (contracted cost where no chargeback), then requests, then value."""
        rows = self._spend_rows(start_ns, end_ns, (column,), filters)
        rows.sort(
            key=lambda r: (-(r.chargeback_nanos or r.contracted_nanos or 0), -r.requests, r.group[column])
        )
        return rows[:limit]

    def _spend_rows(
        self, start_ns: int, end_ns: int, group_by: Sequence[str], filters: Mapping[str, str] | None
    ) -> list[SpendRow]:
        filters = filters or {}
        for name in (*group_by, *filters):
            if name not in GROUPABLE:
                raise ValueError(
                    f"cannot group or filter by {name!r}; choose from {', '.join(sorted(GROUPABLE))}"
                )
        query = CostQuery(
            int(start_ns), int(end_ns), tuple(group_by),
            tuple(Filter(name, (str(value),)) for name, value in filters.items()),
        )  # fmt: skip
        out = []
        for row in self.costs(query):
            if not row["requests"]:
                continue  # outcome records only: not requests
            all_unpriced = row["unpriced"] == row["requests"]
            out.append(
                SpendRow(
                    group=row.group,
                    requests=row["requests"],
                    unpriced=row["unpriced"],
                    tokens={name: row[measure] for name, measure in TOKEN_SUMS.items()},
                    list_nanos=None if all_unpriced else row["list_nanos"],
                    contracted_nanos=None if all_unpriced else row["contracted_nanos"],
                    chargeback_nanos=None if all_unpriced else row["chargeback_nanos"],
                    savings_nanos=row["savings_nanos"],
                )
            )
        return out

    def usage_lines(self, start_ns: int, end_ns: int) -> list[UsageLine]:
        """Daily usage lines for calls that started in ``[start_ns, end_ns)`` (UTC days), ordered
        by day then dimensions: what invoices and exports read."""
        query = CostQuery(int(start_ns), int(end_ns), DIMENSIONS, bucket="day")
        rows = self.costs(query)
        rows.sort(key=lambda row: (row.bucket, *row.group.values()))  # groups are in DIMENSIONS order
        lines = []
        for row in rows:
            assert row.bucket is not None  # bucketed by day
            # positional, in declaration order: the day, DIMENSIONS, MEASURES
            lines.append(UsageLine(row.bucket.date(), *row.group.values(), *row.values))  # type: ignore[arg-type]
        return lines

    def usage_ranges(self, start_ns: int, end_ns: int, boundaries: Sequence[int] = ()) -> list[UsageLine]:
        """Usage lines per range of whole UTC days: ``[start_ns, end_ns)`` cut at ``boundaries``
        (UTC midnights inside it), each line the sum of the daily lines of one range and one
        combination of ``DIMENSIONS``, its ``day`` the range's first day; ordered like
        ``usage_lines``. Invoices read these: a month without boundaries is the monthly rollup,
        one line per combination, however many calls and days it holds."""
        inside = sorted({int(b) for b in boundaries if int(start_ns) < int(b) < int(end_ns)})
        lines = [
            UsageLine(_EPOCH_DAY + timedelta(days=start // DAY_NS), *dims, *values)  # type: ignore[arg-type]
            for start, dims, values in range_sums(self._read, [int(start_ns), *inside, int(end_ns)])
        ]
        lines.sort(key=_LINE_ORDER)
        return lines

    def active_users(self, start_ns: int, end_ns: int) -> dict[str, int]:
        """Distinct non-empty user ids per team among calls in ``[start_ns, end_ns)`` (seats):
        from the per-user rollup for whole calendar months, else from the calls."""
        if all(kind == "month" for kind, _, _ in tiles(int(start_ns), int(end_ns))):
            sql = (
                f"SELECT team, COUNT(DISTINCT user_id) FROM {USERS_TABLE} WHERE month_ns >= ? AND month_ns < ? "
                "AND requests > 0 GROUP BY team ORDER BY team"
            )
        else:
            sql = (
                f"SELECT team, COUNT(DISTINCT user_id) FROM {TABLE} WHERE start_time_ns >= ? AND start_time_ns < ? "
                "AND user_id <> '' AND operation <> 'outcome' GROUP BY team ORDER BY team"
            )
        return {team: int(n) for team, n in self._read(sql, [int(start_ns), int(end_ns)])}

    # Sessions: thin calls into ledger/sessions.py, which reads the session and step rollups.

    def sessions(self, query: SessionQuery) -> list[Session]:
        """The sessions whose first call started in the query's period."""
        return list_sessions(query, self._read)

    def session_summary(self, query: SessionQuery) -> list[SessionTypeSummary]:
        """Runs, nearest-rank p50/p95 and max cost per session name."""
        return summarize_types(query, self._read, self.dialect.name)

    def session_outliers(self, query: SessionQuery) -> list[tuple[Session, int]]:
        """Sessions above the p95 of their own type, each with that p95."""
        return outliers_above_p95(query, self._read, self.dialect.name)

    def session_steps(self, query: SessionQuery) -> list[StepSummary]:
        """Calls and cost per session name and path: from ``llm_rollup_steps`` for whole months
        filtered by name and team, else from the calls of the range with every filter applied to
        each call (the steps rollup has no finer time than a month, nor users or sessions)."""
        if steps_from_rollup(query):
            return summarize_steps(query, self._read)
        rows = self.costs(
            CostQuery(query.start_ns, query.end_ns, ("session_name", "session_path"),
                      (Filter("session_id", ("",), negate=True), *query.filters))
        )  # fmt: skip
        steps = [
            StepSummary(r.group["session_name"], r.group["session_path"], r["requests"],
                        r["contracted_nanos"], r["unpriced"])
            for r in rows if r["requests"]
        ]  # fmt: skip
        return sorted(steps, key=lambda s: (s.session_name, s.session_path))

    def session_total(
        self, session_id: str, first_start_ns: int, last_start_ns: int
    ) -> tuple[int, int, int, str] | None:
        """(contracted nanos, unpriced calls, last end ns, name) of one session a replica saw calls
        of between the two instants: primary-key lookups (what the session histogram observes)."""
        return session_total(session_id, first_start_ns, last_start_ns, self._read)

    def unpriced(self, limit: int = 10_000) -> list[LedgerEntry]:
        """The oldest unpriced calls, to re-price once their model has a price."""
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE price_status = ? ORDER BY start_time_ns LIMIT ?"
        )
        return [LedgerEntry(*row) for row in self._read(sql, [UNPRICED, int(limit)])]

    def entries(self, start_ns: int, end_ns: int) -> Iterator[LedgerEntry]:
        """Every call that started in ``[start_ns, end_ns)``, oldest first (for exports)."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE start_time_ns >= ? AND start_time_ns < ?"
        for row in self._read(sql + " ORDER BY start_time_ns, trace_id, span_id", [start_ns, end_ns]):
            yield LedgerEntry(*row)

    def close(self) -> None:
        with self._write_lock:
            self._write_conn.close()
        if not self._shared:
            with self._read_lock:
                self._read_conn.close()

    # --- plumbing -----------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.dialect.placeholder == "?" else sql.replace("?", self.dialect.placeholder)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._read_lock, self._transaction(write=False) as cur:
            cur.execute(self._sql(sql), list(params))
            return cur.fetchall()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Any]:
        """A cursor in a transaction that commits on success and rolls back on any error.

        A PostgreSQL connection the server dropped is replaced first, so the ledger recovers on
        its own after a database restart (the failed export itself is retried by its client).
        """
        if self.dialect.is_broken(self._write_conn if write else self._read_conn):
            self._reconnect(write)
        conn = self._write_conn if write else self._read_conn
        cur = conn.cursor()
        try:
            if write and self.dialect.begin_write:
                cur.execute(self.dialect.begin_write)  # SQLite: take the write lock up front
            yield cur
            conn.commit()
        except BaseException:
            if not self.dialect.is_broken(conn):
                conn.rollback()
            raise
        finally:
            cur.close()

    def _reconnect(self, write: bool) -> None:
        old = self._write_conn if write else self._read_conn
        try:
            old.close()
        except Exception:
            pass
        if write:
            self._write_conn = self.dialect.connect(False)
        else:
            self._read_conn = self.dialect.connect(True)


def _switch_to_wal(conn: sqlite3.Connection, timeout: float = 30.0) -> None:
    """Enable WAL, retrying: while another connection (a replica starting at the same time) holds
    a lock, SQLite answers "database is locked" at once instead of waiting out busy_timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def sqlite_dialect(path: str, synchronous: str = "FULL") -> Dialect:
    """``synchronous=FULL`` (default): an acknowledged export survives power loss; each batch costs
    one WAL fsync, amortized over the batch. ``NORMAL`` survives a crash of the collector but may
    lose the last commits on an OS crash or power loss."""
    if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")

    def connect(read_only: bool) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so commit() ends our transaction.
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        _switch_to_wal(conn)  # persistent; readers never block the writer
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute("PRAGMA cache_size=-32768")  # 32 MiB: the key index stays in memory longer
        if read_only and path != ":memory:":
            conn.execute("PRAGMA query_only=ON")
        return conn

    return Dialect(
        name="sqlite",
        placeholder="?",
        max_params=32766,
        connect=connect,
        begin_write="BEGIN IMMEDIATE",
        column_types_sql=f"SELECT name, type FROM pragma_table_xinfo('{TABLE}')",
        data_errors=(OverflowError, UnicodeError, sqlite3.DataError, sqlite3.IntegrityError),
    )


def postgres_dialect(url: str) -> Dialect:
    import psycopg

    def connect(read_only: bool) -> Any:
        # Readers autocommit: a plain SELECT needs no transaction and never idles in one.
        return psycopg.connect(url, autocommit=read_only, application_name="llmcost-collector")

    return Dialect(
        name="postgresql",
        placeholder="%s",
        max_params=65535,
        connect=connect,
        migration_lock="SELECT pg_advisory_xact_lock(727274)",  # serialize replicas' migrations
        is_broken=lambda conn: bool(conn.closed or conn.broken),
        column_types_sql=(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_name = '{TABLE}' AND table_schema = current_schema()"
        ),
        data_errors=(OverflowError, UnicodeError, psycopg.DataError, psycopg.IntegrityError),
        retryable_errors=(psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure),
    )
