"""The ledger's schema as versioned migrations, written out literally.

A released migration is never edited: databases in the field already ran it. New columns,
indexes or tables (invoices, budgets, FOCUS views) arrive as new versions appended to the list.
The DDL is spelled out rather than derived from ``LedgerEntry`` so that adding a field to the
entry can never silently change what version 1 means.

Money and token columns are ``BIGINT`` (integer nano-dollars, integer tokens): sums are exact on
both backends and a column can never take a float's rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmcost_collector.ledger import rollups
from llmcost_collector.ledger.invoice_schema import V5

TABLE = "llm_calls"
SPANS_TABLE = "llm_call_spans"

# A migration step is a statement, or a function of (cursor, placeholder converter, progress)
# for work SQL alone cannot express step by step (a backfill that reports its progress).
Step = str | Callable[[Any, Callable[[str], str], Callable[[int, int], None] | None], None]

_V1_COLUMNS = (
    "trace_id TEXT NOT NULL, span_id TEXT NOT NULL, "
    "start_time_ns BIGINT NOT NULL, end_time_ns BIGINT NOT NULL, ingested_at_ns BIGINT NOT NULL, "
    "provider TEXT NOT NULL, operation TEXT NOT NULL, request_model TEXT NOT NULL, "
    "response_model TEXT NOT NULL, server_address TEXT NOT NULL, dialect TEXT NOT NULL, "
    "team TEXT NOT NULL, team_source TEXT NOT NULL, feature TEXT NOT NULL, use_case TEXT NOT NULL, "
    "user_id TEXT NOT NULL, user_tier TEXT NOT NULL, session_id TEXT NOT NULL, session_name TEXT NOT NULL, "
    "session_path TEXT NOT NULL, environment TEXT NOT NULL, service_name TEXT NOT NULL, "
    "properties TEXT NOT NULL, "
    "input_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL, "
    "cache_write_1h_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, "
    "input_audio_tokens BIGINT NOT NULL, output_audio_tokens BIGINT NOT NULL, usage_estimated BIGINT NOT NULL, "
    "status TEXT NOT NULL, error_type TEXT NOT NULL, cache_hit BIGINT NOT NULL, outcome TEXT NOT NULL, "
    "outcome_count BIGINT NOT NULL, "
    "price_status TEXT NOT NULL, list_cost_nanos BIGINT, contracted_cost_nanos BIGINT, chargeback_nanos BIGINT, "
    "savings_nanos BIGINT NOT NULL, currency TEXT NOT NULL, price_source TEXT NOT NULL, price_id TEXT NOT NULL, "
    "price_effective_from TEXT NOT NULL, unpriced_reason TEXT NOT NULL, repriced_at_ns BIGINT"
)

_V1: list[Step] = [
    # (trace_id, span_id) is the idempotency key: a retried export can never bill a call twice.
    f"CREATE TABLE IF NOT EXISTS {TABLE} ({_V1_COLUMNS}, PRIMARY KEY (trace_id, span_id))",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_start ON {TABLE} (start_time_ns)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_team_start ON {TABLE} (team, start_time_ns)",
    # Partial: costs nothing for priced rows, makes `llmcost reprice` find the few unpriced ones.
    f"CREATE INDEX IF NOT EXISTS {TABLE}_unpriced ON {TABLE} (start_time_ns) WHERE price_status = 'unpriced'",
]

# Version 2: a UTC start timestamp for people and BI tools writing period queries in SQL
# (``WHERE start_time >= '2026-01-01'``), derived from start_time_ns so it can never disagree.
# * PostgreSQL: a stored TIMESTAMPTZ (microseconds, truncated), indexed.
# * SQLite: exact text 'YYYY-MM-DD HH:MM:SS.nnnnnnnnn' (SQLite's own datetime format, so date
#   functions and string comparison with '2026-01-01' work), computed on read. It is not indexed:
#   an index on it costs about a fifth of insert throughput, and SQLite period queries have the
#   indexed integer: ``start_time_ns >= unixepoch('2026-01-01') * 1000000000``.
_V2_SQLITE: list[Step] = [
    f"ALTER TABLE {TABLE} ADD COLUMN start_time TEXT GENERATED ALWAYS AS "
    "(datetime(start_time_ns / 1000000000, 'unixepoch') || '.' || printf('%09d', start_time_ns % 1000000000)) "
    "VIRTUAL",
]
_V2_POSTGRES: list[Step] = [
    f"ALTER TABLE {TABLE} ADD COLUMN start_time TIMESTAMPTZ GENERATED ALWAYS AS "
    "(to_timestamp((start_time_ns / 1000)::double precision / 1000000)) STORED",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_start_time ON {TABLE} (start_time)",
]

# Version 4 (3 is the rollups'): every call span seen, and the llm_calls row that holds its money,
# so one provider call seen by several instrumentations is billed once (``ledger/dedupe.py``).
# Rows already in the ledger are their own spans.
_V4: list[Step] = [
    f"CREATE TABLE IF NOT EXISTS {SPANS_TABLE} (trace_id TEXT NOT NULL, span_id TEXT NOT NULL, "
    "parent_span_id TEXT NOT NULL, response_id TEXT NOT NULL, billed_trace_id TEXT NOT NULL, "
    "billed_span_id TEXT NOT NULL, ingested_at_ns BIGINT NOT NULL, PRIMARY KEY (trace_id, span_id))",
    f"CREATE INDEX IF NOT EXISTS {SPANS_TABLE}_parent ON {SPANS_TABLE} (trace_id, parent_span_id)",
    f"CREATE INDEX IF NOT EXISTS {SPANS_TABLE}_response ON {SPANS_TABLE} (response_id) WHERE response_id <> ''",
    f"CREATE INDEX IF NOT EXISTS {SPANS_TABLE}_billed ON {SPANS_TABLE} (billed_trace_id, billed_span_id)",
    f"INSERT INTO {SPANS_TABLE} SELECT trace_id, span_id, '', '', trace_id, span_id, ingested_at_ns "
    f"FROM {TABLE} WHERE outcome = ''",
]

# Version 8 (7 is reserved by other work): budget reservations, held by ``otel_llmcost.guard`` in
# reserve mode between the check before a provider call and its settlement (budget/reserve.py).
# In the ledger database so every collector replica sees the same reservations. One row per
# (reservation, budget scope): a call in scope of a team budget and the organisation's holds two.
# ``scope_key`` is the budget's name, with ``/user/<id>`` for a per-user budget.
RESERVATIONS_TABLE = "budget_reservations"
_V8: list[Step] = [
    f"CREATE TABLE IF NOT EXISTS {RESERVATIONS_TABLE} (reservation_id TEXT NOT NULL, scope_key TEXT NOT NULL, "
    "budget TEXT NOT NULL, amount_nanos BIGINT NOT NULL, state TEXT NOT NULL, created_at_ns BIGINT NOT NULL, "
    "expires_at_ns BIGINT NOT NULL, outcome TEXT NOT NULL, trace_id TEXT NOT NULL, span_id TEXT NOT NULL, "
    "settled_at_ns BIGINT, PRIMARY KEY (reservation_id, scope_key))",
    f"CREATE INDEX IF NOT EXISTS {RESERVATIONS_TABLE}_scope ON {RESERVATIONS_TABLE} (scope_key, expires_at_ns)",
    f"CREATE INDEX IF NOT EXISTS {RESERVATIONS_TABLE}_held ON {RESERVATIONS_TABLE} (expires_at_ns) "
    "WHERE state = 'held'",
]

# Version 9 (7 and 8 are reserved): whether a call looked in the response cache (so hit rate is
# hits / lookups) and what the provider's prompt cache saved it, in the calls and every rollup.
# Every hit was a lookup (misses were not recorded before); prompt-cache savings of older calls
# start at 0 (``llmcost reprice --from`` prices them). The rollups are rebuilt from the calls.
_V9_COLUMNS = ("cache_lookup", "prompt_cache_savings_nanos")


def _v9_columns(cur: Any, sql: Callable[[str], str], progress: Callable[[int, int], None] | None) -> None:
    """Add the columns the table lacks (a ledger whose rollups are being rebuilt already has them)."""
    cur.execute(f"SELECT * FROM {TABLE} WHERE 1 = 0")
    present = {column[0] for column in cur.description}
    for name in _V9_COLUMNS:
        if name not in present:
            cur.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} BIGINT NOT NULL DEFAULT 0")
    cur.execute(f"UPDATE {TABLE} SET cache_lookup = 1 WHERE cache_hit <> 0 AND cache_lookup = 0")


_V9: list[Step] = [_v9_columns, rollups.rebuild]

# Version 11: the call id otel_llmcost gives every span of one SDK call that another tracer
# traces, a second key beside the response id (a span may have either, both or neither).
_V11: list[Step] = [
    f"ALTER TABLE {SPANS_TABLE} ADD COLUMN call_id TEXT NOT NULL DEFAULT ''",
    f"CREATE INDEX IF NOT EXISTS {SPANS_TABLE}_call ON {SPANS_TABLE} (call_id) WHERE call_id <> ''",
]

SCHEMA_MIGRATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at_ns BIGINT NOT NULL)"
)


def migrations(dialect: str) -> list[tuple[int, str, list[Step]]]:
    """``(version, description, steps)`` in order, for ``sqlite`` or ``postgresql``."""
    return [
        (1, "llm_calls: one row per LLM call with attribution, tokens, cost layers, provenance", _V1),
        (2, "llm_calls.start_time: UTC start timestamp for period queries",
         _V2_SQLITE if dialect == "sqlite" else _V2_POSTGRES),
        # Version 3: rollups kept with every insert and re-price (ledger/rollups.py), built here
        # from the calls an existing ledger already holds.
        (3, "rollups: hourly, daily, monthly, per user, per session and per workflow step",
         [*rollups.ddl(dialect), rollups.backfill]),
        (4, "llm_call_spans: every call span seen and the row billed for it (one row per provider call)", _V4),
        (5, "invoice_periods, invoices, invoice_adjustments: closed periods, snapshots, adjustments", [*V5]),
        # Version 6: the same time rollups by team alone, so per-team questions (the spend gauges,
        # team trends) read a row per team, built from the version 3 rollups.
        (6, "rollups by team: hourly, daily, monthly", [*rollups.team_ddl(), rollups.team_backfill]),
        (8, "budget_reservations: reserve-then-settle holds of the budget guard, shared by replicas", _V8),
        (9, "response-cache lookups and prompt-cache savings: llm_calls columns and rollup measures", _V9),
        (10, "llm_rollup_sessions_cost: each month's sessions by name and cost, for percentiles",
         [rollups.SESSION_COST_INDEX]),
        (11, "llm_call_spans.call_id: spans of one SDK call by otel_llmcost's call id", _V11),
        # Version 12: per month and session name, its runs and their sums (a month's summary reads
        # a row per workflow type), built from the per-session rollup.
        (12, "llm_rollup_session_names: each month's runs and sums per session name", [rollups.names_build]),
        # Version 13: no question looks spans up by the row billed for them (the reservations'
        # join reads the span by its own key, then the row by its key); every insert kept it.
        (13, "llm_call_spans_billed dropped: an index no query reads", [f"DROP INDEX IF EXISTS {SPANS_TABLE}_billed"]),
        # Version 14: the steps rollup by the calls' team too, so a summary scoped to one team sums
        # only that team's steps; rebuilt from the calls.
        (14, "llm_rollup_steps by team: cost per workflow step and team", [rollups.steps_build]),
        # Version 15: each session's calls per team, so a team's view of a session another team
        # shares holds its own calls only; built from the calls.
        (15, "llm_rollup_session_teams: per month, team and session, that team's calls", [rollups.session_teams_build]),
    ]  # fmt: skip


LATEST_VERSION = 15
# Every version, in order; versions may have gaps (numbers reserved by work landing separately).
SCHEMA_VERSIONS = [version for version, _, _ in migrations("sqlite")]
