"""The true-up and commitment amounts of a reconcile run, kept for the invoices.

``llmcost reconcile --true-up`` and ``--commitment`` run where the bill files are, not where the
invoices are made, so their per-team amounts travel through the ledger database like the capture
ratio (``reconcile_capture``): one row per (period, team, provider, model) true-up and per
(period, team, commitment) fee, integer nano-dollars. A run replaces the period's rows of the
kinds it computed, so re-running a reconciliation never adds to what the invoices bill. The
table is created on first use (``CREATE TABLE IF NOT EXISTS``), not by a ledger migration: it
holds no call data. It sits with the ledger because both the reconciliation (which writes it)
and the invoices (which read it) use it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from llmcost_collector.ledger.sql import SqlLedger

TABLE = "reconcile_lines"
TRUE_UP = "true_up"
COMMITMENT = "commitment"
DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (period TEXT NOT NULL, kind TEXT NOT NULL, team TEXT NOT NULL, "
    "provider TEXT NOT NULL, model TEXT NOT NULL, name TEXT NOT NULL, amount_nanos BIGINT NOT NULL, "
    "recorded_at BIGINT NOT NULL, PRIMARY KEY (period, kind, team, provider, model, name))"
)


@dataclass(frozen=True, slots=True, order=True)
class ReconciledLine:
    period: str  # YYYY-MM
    kind: str  # TRUE_UP or COMMITMENT
    team: str
    provider: str
    model: str  # "" for a bill line without a model, or a commitment on every model
    name: str  # the commitment's name; "" for a true-up
    amount_nanos: int  # positive: a debit; negative: a credit


def ensure_table(ledger: SqlLedger) -> None:
    with ledger.write_transaction() as execute:
        execute(DDL, ())


def replace(
    ledger: SqlLedger,
    period: str,
    kinds: Sequence[str],
    lines: Sequence[ReconciledLine],
    now: float | None = None,
) -> None:
    """Replace ``period``'s rows of each of ``kinds`` with ``lines`` (of those kinds), in one transaction."""
    recorded = int(time.time() if now is None else now)
    ensure_table(ledger)
    with ledger.write_transaction() as execute:
        for kind in kinds:
            execute(f"DELETE FROM {TABLE} WHERE period = ? AND kind = ?", (period, kind))
        merged: dict[tuple[str, str, str, str, str], int] = {}
        for line in lines:
            if line.period != period or line.kind not in kinds:
                raise ValueError(f"{line} is not a {'/'.join(kinds)} line of {period}")
            key = (line.kind, line.team, line.provider, line.model, line.name)
            merged[key] = merged.get(key, 0) + line.amount_nanos
        for (kind, team, provider, model, name), amount in sorted(merged.items()):
            if amount:
                execute(
                    f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (period, kind, team, provider, model, name, amount, recorded),
                )


def lines_of(ledger: SqlLedger, period: str, ensure: bool = True) -> list[ReconciledLine]:
    """``period``'s recorded lines, by kind, team, provider, model and name (``ensure=False``
    when the caller has already made sure the table exists)."""
    if ensure:
        ensure_table(ledger)
    rows = ledger._read(
        f"SELECT period, kind, team, provider, model, name, amount_nanos FROM {TABLE} WHERE period = ?",
        [period],
    )
    # sorted here, not by ORDER BY: the same order on both backends whatever PostgreSQL's collation
    return sorted(ReconciledLine(p, k, t, pr, m, n, int(a)) for p, k, t, pr, m, n, a in rows)
