"""The ledger: the source of truth for money (SQLite by default, PostgreSQL for several replicas).

``open_ledger(url)`` returns a ``Ledger`` with the same interface and schema on both backends.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from llmcost_collector.ledger.dedupe import DUPLICATE, NEW, SUPPRESSED, SpanLink
from llmcost_collector.ledger.entry import COLUMNS, LedgerEntry
from llmcost_collector.ledger.schema import LATEST_VERSION, SCHEMA_VERSIONS, SPANS_TABLE, TABLE
from llmcost_collector.ledger.sql import (
    GROUPABLE,
    TOKEN_SUMS,
    SpendRow,
    SqlLedger,
    postgres_dialect,
    sqlite_dialect,
)
from llmcost_collector.ledger.usage import DIMENSIONS, MEASURES, UsageLine

Ledger = SqlLedger

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def open_ledger(url: str, *, migrate: bool = True) -> SqlLedger:
    """Open (creating and migrating as needed) the ledger at ``url``.

    ``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:`` (one process,
    tests) or ``postgresql://user@host:port/db`` (psycopg 3; several replicas may share it).
    SQLite takes ``?synchronous=normal`` to trade power-loss durability for throughput.
    ``migrate=False`` opens without migrating (``llmcost migrate`` migrates with a progress bar).
    """
    if url.startswith(SQLITE_PREFIX):
        path, _, query = url[len(SQLITE_PREFIX) :].partition("?")
        options = dict(parse_qsl(query))
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ValueError(f"unsupported SQLite ledger option(s): {', '.join(sorted(unknown))}")
        if not path:
            raise ValueError(f"SQLite ledger URL {url!r} has no path: use sqlite:///ledger.db")
        dialect = sqlite_dialect(path, options.get("synchronous", "FULL"))
        if path == ":memory:":
            return SqlLedger(dialect, shared_connection=True, migrate=migrate)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqlLedger(dialect, migrate=migrate)
    if url.startswith(POSTGRES_PREFIXES):
        return SqlLedger(
            postgres_dialect(url.replace("postgresql+psycopg://", "postgresql://", 1)), migrate=migrate
        )
    raise ValueError(f"unsupported ledger URL {url!r}: use sqlite:///path.db or postgresql://...")


__all__ = [
    "COLUMNS",
    "DIMENSIONS",
    "DUPLICATE",
    "GROUPABLE",
    "LATEST_VERSION",
    "MEASURES",
    "NEW",
    "SCHEMA_VERSIONS",
    "SPANS_TABLE",
    "SUPPRESSED",
    "TABLE",
    "TOKEN_SUMS",
    "Ledger",
    "LedgerEntry",
    "SpanLink",
    "SpendRow",
    "SqlLedger",
    "UsageLine",
    "open_ledger",
]
