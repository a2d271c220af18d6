"""The ledger: the source of truth for money (SQLite by default, PostgreSQL for several replicas)."""

from __future__ import annotations

from .entry import COLUMNS, LedgerEntry
from .sql import GROUPABLE, SpendRow, SqlLedger, postgres_dialect, sqlite_dialect

Ledger = SqlLedger


def open_ledger(url: str) -> SqlLedger:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:``, ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path == ":memory:":
            return SqlLedger(sqlite_dialect(":memory:"), shared_connection=True)
        return SqlLedger(sqlite_dialect(path))
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return SqlLedger(postgres_dialect(url.replace("postgresql+psycopg://", "postgresql://", 1)))
    raise ValueError(f"unsupported ledger URL {url!r}: use sqlite:///path.db or postgresql://...")


__all__ = ["COLUMNS", "GROUPABLE", "Ledger", "LedgerEntry", "SpendRow", "open_ledger"]
