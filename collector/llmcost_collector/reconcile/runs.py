"""The last reconcile run's capture ratio per provider, kept in the ledger database.

``llmcost reconcile`` runs wherever the bill files are (a laptop, a monthly job), not inside
the collector, so the result travels through the one store both share: a small table in the
ledger database, one row per provider, replaced by each run that bills that provider. Every
collector replica's ``llmcost_capture_ratio`` gauge then reads the same rows. The table is
created on first use (``CREATE TABLE IF NOT EXISTS``) rather than by a ledger migration: it is
reconciliation's own, holds no call data, and can be dropped at any time without loss.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from llmcost_collector.ledger import SqlLedger
from llmcost_collector.ledger import reconcile_lines as recorded
from llmcost_collector.reconcile.commitments import Commitment, CommitmentShare, team_totals
from llmcost_collector.reconcile.compare import Reconciliation
from llmcost_collector.reconcile.trueup import TrueUpLine

TABLE = "reconcile_capture"
DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (provider TEXT PRIMARY KEY, period TEXT NOT NULL, "
    "capture TEXT NOT NULL, basis TEXT NOT NULL, bill BIGINT NOT NULL, ledger BIGINT NOT NULL, "
    "recorded_at BIGINT NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class CaptureRun:
    provider: str
    period: str
    capture: Decimal  # ledger / bill
    basis: str  # "usd" (nano-dollars compared) or "tokens"
    bill: int  # nano-dollars or tokens, per basis
    ledger: int
    recorded_at: int  # Unix seconds


def ensure_table(ledger: SqlLedger) -> None:
    with ledger.write_transaction() as execute:
        execute(DDL, ())


def record_run(ledger: SqlLedger, result: Reconciliation, now: float | None = None) -> list[CaptureRun]:
    """Replace the stored ratio of every provider ``result`` has a capture ratio for."""
    recorded = int(time.time() if now is None else now)
    runs = []
    for total in result.totals:
        if total.cost_capture is not None:
            runs.append(CaptureRun(total.provider, result.period, total.cost_capture, "usd",
                                   total.bill_nanos, total.ledger_nanos, recorded))  # fmt: skip
        elif total.token_capture is not None:
            runs.append(CaptureRun(total.provider, result.period, total.token_capture, "tokens",
                                   total.bill_tokens, total.ledger_tokens, recorded))  # fmt: skip
    ensure_table(ledger)
    with ledger.write_transaction() as execute:
        for run in runs:
            execute(f"DELETE FROM {TABLE} WHERE provider = ?", (run.provider,))
            execute(
                f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run.provider,
                    run.period,
                    str(run.capture),
                    run.basis,
                    run.bill,
                    run.ledger,
                    run.recorded_at,
                ),
            )
    return runs


def last_runs(ledger: SqlLedger) -> list[CaptureRun]:
    rows: Iterable[tuple] = ledger._read(
        f"SELECT provider, period, capture, basis, bill, ledger, recorded_at FROM {TABLE} ORDER BY provider"
    )
    return [
        CaptureRun(p, period, Decimal(c), b, int(bill), int(led), int(at))
        for p, period, c, b, bill, led, at in rows
    ]


def record_lines(
    ledger: SqlLedger, period: str, true_ups: list[TrueUpLine] | None,
    amortized: list[tuple[Commitment, list[CommitmentShare]]] | None, now: float | None = None,
) -> list[recorded.ReconciledLine]:  # fmt: skip
    """Store the run's true-up (when ``true_ups`` is not None) and commitment lines (when
    ``amortized`` is not None) of ``period`` for its invoices, replacing that kind's earlier
    record of the period: a re-run replaces, never adds."""
    kinds, lines = [], []
    if true_ups is not None:
        kinds.append(recorded.TRUE_UP)
        lines += [
            recorded.ReconciledLine(period, recorded.TRUE_UP, t.team, t.provider, t.model, "", t.amount_nanos)
            for t in true_ups
        ]
    if amortized is not None:
        kinds.append(recorded.COMMITMENT)
        for commitment, shares in amortized:
            lines += [
                recorded.ReconciledLine(period, recorded.COMMITMENT, team, commitment.provider,
                                        commitment.model, name, nanos)
                for (name, team), nanos in team_totals(shares).items()
            ]  # fmt: skip
    if kinds:
        recorded.replace(ledger, period, kinds, lines, now)
    return lines
