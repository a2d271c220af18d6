"""The ledger on SQL: one implementation for SQLite and PostgreSQL, differing only in a dialect.

* Idempotency: ``(trace_id, span_id)`` is the primary key; inserts are
  ``ON CONFLICT DO NOTHING RETURNING`` so each insert says which rows were new, which is what
  keeps metrics from counting a retried export twice, also with several replicas writing.
* Durability: ``insert`` returns only after its transaction committed (SQLite in WAL mode with
  ``synchronous=FULL``): the receivers acknowledge an export only after that.
* Money: integer nano-dollar columns, summed in SQL as integers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..model import UNPRICED, Cost
from .entry import COLUMNS, LedgerEntry

TABLE = "llm_calls"
INT_COLUMNS = frozenset(
    {
        "start_time_ns", "end_time_ns", "ingested_at_ns", "input_tokens", "cache_read_tokens",
        "cache_write_tokens", "cache_write_1h_tokens", "output_tokens", "reasoning_tokens",
        "input_audio_tokens", "output_audio_tokens", "usage_estimated", "cache_hit", "outcome_count",
        "list_cost_nanos", "contracted_cost_nanos", "chargeback_nanos", "savings_nanos", "repriced_at_ns",
    }
)  # fmt: skip
NULLABLE = frozenset({"list_cost_nanos", "contracted_cost_nanos", "chargeback_nanos", "repriced_at_ns"})
TOKEN_SUMS = {
    "input": "input_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "output": "output_tokens",
    "reasoning": "reasoning_tokens",
}
GROUPABLE = frozenset(
    {
        "team", "team_source", "feature", "use_case", "user_id", "user_tier", "session_id", "session_name",
        "session_path", "environment", "service_name", "provider", "operation", "request_model",
        "response_model", "status", "price_status", "price_id", "outcome", "model",
    }
)  # fmt: skip
# "model" groups by the billed model: the response model when the provider reported one.
MODEL_EXPR = "CASE WHEN response_model <> '' THEN response_model ELSE request_model END"


def _ddl() -> list[str]:
    cols = []
    for name in COLUMNS:
        kind = "BIGINT" if name in INT_COLUMNS else "TEXT"
        cols.append(f"{name} {kind}" + ("" if name in NULLABLE else " NOT NULL"))
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(cols)}, PRIMARY KEY (trace_id, span_id))",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_start ON {TABLE} (start_time_ns)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_team_start ON {TABLE} (team, start_time_ns)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_unpriced ON {TABLE} (start_time_ns) WHERE price_status = 'unpriced'",
    ]


# Versioned migrations: append, never edit a released one.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "llm_calls: one row per LLM call with attribution, tokens, cost layers, provenance", _ddl()),
]


@dataclass(slots=True)
class SpendRow:
    group: dict[str, str]
    requests: int
    unpriced: int
    tokens: dict[str, int]
    list_nanos: int | None
    contracted_nanos: int | None
    chargeback_nanos: int | None
    savings_nanos: int = 0


@dataclass
class Dialect:
    name: str
    placeholder: str
    max_params: int
    connect: Callable[[], Any]
    migration_lock: Callable[[Any], None] = lambda cur: None
    setup: list[str] = field(default_factory=list)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)  # PostgreSQL returns SUM(bigint) as Decimal


class SqlLedger:
    """Thread-safe: one writer connection, one reader connection, each behind a lock."""

    def __init__(self, dialect: Dialect, *, shared_connection: bool = False) -> None:
        self.dialect = dialect
        self._write_conn = dialect.connect()
        self._read_conn = self._write_conn if shared_connection else dialect.connect()
        self._write_lock = threading.Lock()
        self._read_lock = self._write_lock if shared_connection else threading.Lock()
        self._insert_sql: dict[int, str] = {}
        self._rows_per_statement = max(1, dialect.max_params // len(COLUMNS))
        self._plain_insert = (
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join([dialect.placeholder] * len(COLUMNS))}) "
            "ON CONFLICT (trace_id, span_id) DO NOTHING"
        )
        self.migrate()

    # --- schema -------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply missing migrations; safe to run from several replicas at once."""
        applied: list[int] = []
        with self._write_lock, self._transaction(self._write_conn, write=True) as cur:
            self.dialect.migration_lock(cur)
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at_ns BIGINT NOT NULL)"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for version, description, statements in MIGRATIONS:
                if version in done:
                    continue
                for statement in statements:
                    cur.execute(statement)
                cur.execute(
                    self._sql("INSERT INTO schema_migrations VALUES (?, ?, ?)"),
                    (version, description, time.time_ns()),
                )
                applied.append(version)
        return applied

    def schema_versions(self) -> list[int]:
        return [row[0] for row in self._read("SELECT version FROM schema_migrations ORDER BY version")]

    # --- writes -------------------------------------------------------------------------

    def insert(self, entries: Sequence[LedgerEntry]) -> list[bool]:
        """Insert in one committed transaction; per entry, True when it was new."""
        flags = [False] * len(entries)
        first_index: dict[tuple[str, str], int] = {}
        for index, entry in enumerate(entries):
            first_index.setdefault((entry.trace_id, entry.span_id), index)  # later copies stay False
        unique = [entries[i] for i in first_index.values()]
        with self._write_lock, self._transaction(self._write_conn, write=True) as cur:
            if self.dialect.name == "sqlite" and self._insert_all_new(cur, unique):
                for index in first_index.values():
                    flags[index] = True
                return flags
            step = self._rows_per_statement
            for start in range(0, len(unique), step):
                chunk = unique[start : start + step]
                params: list[object] = []
                for entry in chunk:
                    params.extend(entry.values())
                cur.execute(self._insert_statement(len(chunk)), params)
                for trace_id, span_id in cur.fetchall():
                    flags[first_index[(trace_id, span_id)]] = True
        return flags

    def _insert_all_new(self, cur: Any, unique: list[LedgerEntry]) -> bool:
        """SQLite fast path: a plain batched insert, kept only when no row was a duplicate.

        New rows are the common case (duplicates come from retries); ``executemany`` is about
        twice as fast as ``RETURNING``. If any row already existed, roll back to a savepoint and
        let the caller take the ``RETURNING`` path, which says exactly which rows were new.
        """
        before = self._write_conn.total_changes
        cur.execute("SAVEPOINT fast_insert")
        cur.executemany(self._plain_insert, [entry.values() for entry in unique])
        if self._write_conn.total_changes - before == len(unique):
            cur.execute("RELEASE fast_insert")
            return True
        cur.execute("ROLLBACK TO fast_insert")
        cur.execute("RELEASE fast_insert")
        return False

    def _insert_statement(self, rows: int) -> str:
        sql = self._insert_sql.get(rows)
        if sql is None:
            one = "(" + ", ".join([self.dialect.placeholder] * len(COLUMNS)) + ")"
            sql = (
                f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES {', '.join([one] * rows)} "
                "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
            )
            self._insert_sql[rows] = sql
        return sql

    def update_costs(self, updates: Sequence[tuple[str, str, Cost, int | None]]) -> int:
        """Re-price rows (``llmcost reprice``): new cost layers and provenance, stamped."""
        now = time.time_ns()
        sql = self._sql(
            f"UPDATE {TABLE} SET price_status = ?, list_cost_nanos = ?, contracted_cost_nanos = ?, "
            "chargeback_nanos = ?, price_source = ?, price_id = ?, price_effective_from = ?, "
            "unpriced_reason = ?, repriced_at_ns = ? WHERE trace_id = ? AND span_id = ?"
        )
        changed = 0
        with self._write_lock, self._transaction(self._write_conn, write=True) as cur:
            for trace_id, span_id, cost, chargeback in updates:
                cur.execute(
                    sql,
                    (cost.status, cost.list_nanos, cost.contracted_nanos, chargeback, cost.price_source,
                     cost.price_id, cost.price_effective_from, cost.reason, now, trace_id, span_id),
                )  # fmt: skip
                changed += cur.rowcount
        return changed

    # --- reads --------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._read(f"SELECT COUNT(*) FROM {TABLE}")[0][0])

    def spend(
        self,
        start_ns: int,
        end_ns: int,
        group_by: Sequence[str] = ("team",),
        filters: Mapping[str, str] | None = None,
    ) -> list[SpendRow]:
        """Totals per group for calls that started in [start_ns, end_ns)."""
        for name in (*group_by, *(filters or {})):
            if name not in GROUPABLE:
                raise ValueError(f"cannot group or filter by {name!r}")
        exprs = [MODEL_EXPR if g == "model" else g for g in group_by]
        where = ["start_time_ns >= ?", "start_time_ns < ?"]
        params: list[object] = [start_ns, end_ns]
        for name, value in (filters or {}).items():
            where.append(f"{MODEL_EXPR if name == 'model' else name} = ?")
            params.append(value)
        select = [f"{e} AS g{i}" for i, e in enumerate(exprs)]
        select += [
            "COUNT(*)",
            f"SUM(CASE WHEN price_status = '{UNPRICED}' THEN 1 ELSE 0 END)",
            *(f"SUM({column})" for column in TOKEN_SUMS.values()),
            "SUM(list_cost_nanos)",
            "SUM(contracted_cost_nanos)",
            "SUM(chargeback_nanos)",
            "SUM(savings_nanos)",
        ]
        sql = f"SELECT {', '.join(select)} FROM {TABLE} WHERE {' AND '.join(where)}"
        if exprs:
            sql += " GROUP BY " + ", ".join(f"g{i}" for i in range(len(exprs)))
        rows = []
        n = len(exprs)
        for record in self._read(sql, params):
            if not record[n]:
                continue  # aggregate over no rows
            token_values = record[n + 2 : n + 2 + len(TOKEN_SUMS)]
            rows.append(
                SpendRow(
                    group={g: record[i] for i, g in enumerate(group_by)},
                    requests=int(record[n]),
                    unpriced=int(record[n + 1] or 0),
                    tokens={k: int(v or 0) for k, v in zip(TOKEN_SUMS, token_values, strict=True)},
                    list_nanos=_int(record[-4]),
                    contracted_nanos=_int(record[-3]),
                    chargeback_nanos=_int(record[-2]),
                    savings_nanos=_int(record[-1]) or 0,
                )
            )
        return rows

    def unpriced(self, limit: int = 10_000) -> list[LedgerEntry]:
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE price_status = ? ORDER BY start_time_ns LIMIT ?"
        )
        return [LedgerEntry(*row) for row in self._read(sql, [UNPRICED, limit])]

    def entries(self, start_ns: int, end_ns: int) -> Iterator[LedgerEntry]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE start_time_ns >= ? AND start_time_ns < ?"
        for row in self._read(sql + " ORDER BY start_time_ns", [start_ns, end_ns]):
            yield LedgerEntry(*row)

    def properties(self, entry: LedgerEntry) -> dict[str, str]:
        return json.loads(entry.properties or "{}")

    def close(self) -> None:
        with self._write_lock:
            self._write_conn.close()
        if self._read_conn is not self._write_conn:
            with self._read_lock:
                self._read_conn.close()

    # --- plumbing -----------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.dialect.placeholder == "?" else sql.replace("?", self.dialect.placeholder)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._read_lock, self._transaction(self._read_conn) as cur:
            cur.execute(self._sql(sql), list(params))
            return cur.fetchall()

    @contextmanager
    def _transaction(self, conn: Any, write: bool = False) -> Iterator[Any]:
        cur = conn.cursor()
        try:
            if write and self.dialect.name == "sqlite":
                cur.execute("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlocks
            yield cur
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()


def sqlite_dialect(path: str, synchronous: str = "FULL") -> Dialect:
    """``synchronous=FULL`` (default): an acknowledged export survives power loss. ``NORMAL`` in WAL
    mode survives a crash of the collector but may lose the last commits on an OS crash."""
    if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so commit() ends our transaction.
    return Dialect(name="sqlite", placeholder="?", max_params=32766, connect=connect)


def postgres_dialect(url: str) -> Dialect:
    import psycopg

    def connect() -> Any:
        return psycopg.connect(url)

    def lock(cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(727274)")  # serialize replicas' migrations

    return Dialect(
        name="postgresql", placeholder="%s", max_params=65535, connect=connect, migration_lock=lock
    )
