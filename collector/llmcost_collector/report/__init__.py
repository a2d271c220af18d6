"""Spend reports like the seed's: the environment -> feature tree, top users, cache, sessions,
outcomes and unit economics per user tier, built from the ledger's rollups (``summary``) and
rendered as Markdown or JSON (``render``). ``llmcost report``, ``/api/v1/reports/summary`` and
``llmcost demo`` all print through this package.
"""
