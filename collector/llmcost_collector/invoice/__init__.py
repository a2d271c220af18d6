"""Invoices and exports: the stage above the ledger and the chargeback engine.

``build`` assembles each team's monthly invoice from the ledger's usage lines with the
chargeback engine and handles closing and adjustments; ``document`` is the invoice as data;
``render`` prints it (Markdown, HTML, PDF, CSV, JSON); ``focus`` exports FOCUS 1.3 cost data.
"""
