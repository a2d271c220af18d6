"""Reconciliation: does what the ledger recorded add up to what the providers billed?

Each importer reads one provider's downloaded cost or usage report (no network) into ``BillRow``s;
``compare`` sets them against the ledger's daily rollups per day, provider and model; ``runs``
keeps the last run's capture ratio per provider for the ``llmcost_capture_ratio`` gauge; ``trueup``
spreads what the ledger missed over the teams that used the model, as labelled adjustment lines.
"""
