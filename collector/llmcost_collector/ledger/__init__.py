"""The ledger: the source of truth for money (SQLite by default, PostgreSQL for several replicas)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from .entry import COLUMNS, LedgerEntry
from .sql import GROUPABLE, SpendRow, SqlLedger, postgres_dialect, sqlite_dialect

Ledger = SqlLedger


def open_ledger(url: str) -> SqlLedger:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:``, ``postgresql://...``.

    SQLite takes ``?synchronous=normal`` to trade power-loss durability for throughput.
    """
    if url.startswith("sqlite:///"):
        path, _, query = url[len("sqlite:///") :].partition("?")
        options = dict(parse_qsl(query))
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ValueError(f"unsupported SQLite ledger option(s): {', '.join(sorted(unknown))}")
        dialect = sqlite_dialect(path, options.get("synchronous", "FULL"))
        if path == ":memory:":
            return SqlLedger(dialect, shared_connection=True)
        return SqlLedger(dialect)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return SqlLedger(postgres_dialect(url.replace("postgresql+psycopg://", "postgresql://", 1)))
    raise ValueError(f"unsupported ledger URL {url!r}: use sqlite:///path.db or postgresql://...")


__all__ = ["COLUMNS", "GROUPABLE", "Ledger", "LedgerEntry", "SpendRow", "open_ledger"]
