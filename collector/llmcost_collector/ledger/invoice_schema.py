"""Ledger migration version 5: the invoice lifecycle (closed periods, their snapshots, adjustments).

Written out literally like the other versions (``ledger.schema``), and kept apart because these
tables belong to invoicing, not to the call rows. A closed period is never updated: closing
inserts its rows once, and later corrections are rows of ``invoice_adjustments`` booked when a
following period closes.

* ``invoice_periods``: one row per closed month (``2025-01``), with the chargeback settings and
  prices it was computed under and its usage charges (the FOCUS grain), as JSON text.
* ``invoices``: each team's invoice of a closed period: its deterministic number, its totals in
  integer nano-dollars and the whole invoice document (JSON) as issued.
* ``invoice_adjustments``: credits and debits booked on a later period's invoice for a closed
  one (late spans, re-pricing, changed settings), referencing the original invoice number.
"""

from __future__ import annotations

V5 = [
    "CREATE TABLE IF NOT EXISTS invoice_periods (period TEXT PRIMARY KEY, closed_at_ns BIGINT NOT NULL, "
    "settings TEXT NOT NULL, prices TEXT NOT NULL, charges TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS invoices (period TEXT NOT NULL, team TEXT NOT NULL, number TEXT NOT NULL UNIQUE, "
    "charges_nanos BIGINT NOT NULL, total_nanos BIGINT NOT NULL, contracted_nanos BIGINT NOT NULL, "
    "tokens BIGINT NOT NULL, document TEXT NOT NULL, PRIMARY KEY (period, team))",
    "CREATE TABLE IF NOT EXISTS invoice_adjustments (period TEXT NOT NULL, team TEXT NOT NULL, "
    "ref_period TEXT NOT NULL, ref_number TEXT NOT NULL, reason TEXT NOT NULL, amount_nanos BIGINT NOT NULL, "
    "PRIMARY KEY (period, team, ref_number))",
]
