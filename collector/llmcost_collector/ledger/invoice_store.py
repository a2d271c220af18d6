"""Closed periods in the ledger (tables of migration 5, ``ledger.invoice_schema``).

Closing a period writes its snapshot, every team's issued invoice and the adjustments booked on
it in one transaction, and only once: a second close of the same period fails with
``PeriodClosed`` and changes nothing. Nothing here ever updates or deletes a row, which is what
makes a closed period immutable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from llmcost_collector.ledger.sql import SqlLedger


class PeriodClosed(Exception):
    """The period is already closed: its invoices are final (corrections are adjustments)."""


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    period: str
    team: str
    number: str
    charges_nanos: int  # the period's own charges (without adjustments of earlier periods)
    total_nanos: int  # what the invoice billed, adjustments included
    contracted_nanos: int
    tokens: int
    document: str  # the invoice as issued, JSON


@dataclass(frozen=True, slots=True)
class Adjustment:
    period: str  # booked on this period's invoice
    team: str
    ref_period: str
    ref_number: str
    reason: str
    amount_nanos: int  # positive: a debit; negative: a credit


class InvoiceStore:
    """Reads and writes the invoice tables through the ledger's own connections and locks."""

    def __init__(self, ledger: SqlLedger) -> None:
        self.ledger = ledger

    def closed_periods(self) -> list[str]:
        return [row[0] for row in self.ledger._read("SELECT period FROM invoice_periods ORDER BY period")]

    def is_closed(self, period: str) -> bool:
        return bool(self.ledger._read("SELECT 1 FROM invoice_periods WHERE period = ?", [period]))

    def snapshot(self, period: str) -> tuple[str, str, str] | None:
        """(settings, prices, charges) of a closed period, each JSON: what it was computed under,
        and its usage charges at the grain of the FOCUS export."""
        rows = self.ledger._read(
            "SELECT settings, prices, charges FROM invoice_periods WHERE period = ?", [period]
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def invoices(self, period: str) -> list[IssuedInvoice]:
        rows = self.ledger._read(
            "SELECT period, team, number, charges_nanos, total_nanos, contracted_nanos, tokens, document "
            "FROM invoices WHERE period = ? ORDER BY team",
            [period],
        )
        return [
            IssuedInvoice(p, t, n, int(c), int(total), int(k), int(tok), d)
            for p, t, n, c, total, k, tok, d in rows
        ]

    def adjustments_for(self, ref_period: str) -> list[Adjustment]:
        """Adjustments already booked (on closed periods) for invoices of ``ref_period``."""
        rows = self.ledger._read(
            "SELECT period, team, ref_period, ref_number, reason, amount_nanos FROM invoice_adjustments "
            "WHERE ref_period = ? ORDER BY period, team",
            [ref_period],
        )
        return [Adjustment(p, t, rp, rn, reason, int(amount)) for p, t, rp, rn, reason, amount in rows]

    def close(
        self,
        period: str,
        settings: str,
        prices: str,
        charges: str,
        invoices: Sequence[IssuedInvoice],
        adjustments: Sequence[Adjustment],
    ) -> None:
        """Record ``period`` as closed with its invoices and the adjustments they carry, atomically."""
        ledger = self.ledger
        with ledger._write_lock, ledger._transaction(write=True) as cur:
            cur.execute(ledger._sql("SELECT 1 FROM invoice_periods WHERE period = ?"), [period])
            if cur.fetchall():
                raise PeriodClosed(f"period {period} is already closed")
            cur.execute(
                ledger._sql("INSERT INTO invoice_periods VALUES (?, ?, ?, ?, ?)"),
                [period, time.time_ns(), settings, prices, charges],
            )
            for invoice in invoices:
                cur.execute(
                    ledger._sql("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                    [
                        invoice.period,
                        invoice.team,
                        invoice.number,
                        invoice.charges_nanos,
                        invoice.total_nanos,
                        invoice.contracted_nanos,
                        invoice.tokens,
                        invoice.document,
                    ],
                )
            for adjustment in adjustments:
                cur.execute(
                    ledger._sql("INSERT INTO invoice_adjustments VALUES (?, ?, ?, ?, ?, ?)"),
                    [
                        adjustment.period,
                        adjustment.team,
                        adjustment.ref_period,
                        adjustment.ref_number,
                        adjustment.reason,
                        adjustment.amount_nanos,
                    ],
                )
