"""One ledger contract, two backends: a SQLite file and a real PostgreSQL 15 server.

Every test below runs against ``sqlite:///{tmp}/l.db`` and against a fresh database on a
throwaway PostgreSQL cluster (tests/pg.py). Expected sums are worked out by hand in comments.
The last tests run the whole collector on PostgreSQL with the official OTLP/HTTP exporter.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmcost_collector.app import CollectorApp
from llmcost_collector.config.schema import load_config
from llmcost_collector.ledger import (
    DIMENSIONS,
    DUPLICATE,
    MEASURES,
    NEW,
    SCHEMA_VERSIONS,
    SUPPRESSED,
    LedgerEntry,
    SpanLink,
    SqlLedger,
    open_ledger,
)
from llmcost_collector.ledger.query import CostQuery, Filter
from llmcost_collector.ledger.rollups import TEAM_TABLES, TIME_TABLES
from llmcost_collector.ledger.sessions import SessionQuery
from llmcost_collector.model import PRICED, Attribution, Cost, LlmCall, Usage
from llmcost_collector.report.render import dollars, to_json, to_markdown
from llmcost_collector.report.summary import build_report
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.conftest import Collectors, export
from tests.pg import pg_cluster, pg_url, postgres_url  # noqa: F401  (fixtures)
from tests.unit.test_ledger import make_call, make_entry

pytestmark = pytest.mark.integration

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
HOUR = 3_600 * 10**9
DAY = 24 * HOUR
MONEY = ("list_cost_nanos", "contracted_cost_nanos", "chargeback_nanos", "savings_nanos")


def entry(
    n: int,
    *,
    team: str = "search",
    feature: str = "chat",
    contracted: int | None = 1_000,
    start_ns: int | None = None,
    request_model: str = "gpt-4o",
    response_model: str = "",
    environment: str = "production",
) -> LedgerEntry:
    """Call ``n`` (ids derived from n). Priced: list = contracted + 100, chargeback = contracted * 3 // 2.
    ``contracted=None``: unpriced (all money columns NULL)."""
    start = T0 + n * 1_000 if start_ns is None else start_ns
    call = LlmCall(
        trace_id=f"{n:032x}",
        span_id=f"{n + 7:016x}",
        start_time_ns=start,
        end_time_ns=start + 500_000_000,
        provider="openai",
        operation="chat",
        request_model=request_model,
        response_model=response_model,
        usage=Usage(input_tokens=10, cache_read_tokens=2, output_tokens=5, reasoning_tokens=1),
        attribution=Attribution(team=team, feature=feature, environment=environment, user_id=f"u{n}"),
    )
    if contracted is None:
        return LedgerEntry.from_call(call, Cost.unpriced("unknown model"), None, T0)
    cost = Cost(PRICED, contracted + 100, contracted, "genai-prices", "openai/gpt-4o", "2024-08-06")
    return LedgerEntry.from_call(call, cost, contracted * 3 // 2, T0)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[SqlLedger]:
    opened = open_ledger(ledger_url)
    yield opened
    opened.close()


def raw_query(url: str, sql: str) -> list[tuple]:
    """Run ``sql`` on the ledger's database with the plain driver, bypassing ``SqlLedger``."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as pg:
        return pg.execute(sql).fetchall()


def raw_execute(url: str, sql: str) -> None:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(sql)


def run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # reported by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


# --- exactly-once -----------------------------------------------------------------------------


def test_duplicate_batch_is_all_false_and_in_batch_duplicates_count_once(ledger: SqlLedger) -> None:
    batch = [entry(1), entry(2), entry(3)]
    assert ledger.insert(batch) == [True, True, True]
    assert ledger.insert(batch) == [False, False, False]  # the export retried as a whole
    # Inside one batch only the first occurrence of a key is new; 3 already exists.
    assert ledger.insert([entry(4), entry(4), entry(3), entry(5), entry(4)]) == [
        True,
        False,
        False,
        True,
        False,
    ]
    assert ledger.insert([]) == []
    assert ledger.count() == 5
    (total,) = ledger.spend(T0, T0 + DAY, group_by=())
    assert (total.requests, total.contracted_nanos) == (5, 5 * 1_000)


def test_a_different_span_in_the_same_trace_is_a_new_row(ledger: SqlLedger) -> None:
    first = entry(1)
    sibling = entry(1)._replace(span_id="00000000000000ff")  # same trace id, another span: another call
    assert ledger.insert([first, sibling]) == [True, True]
    assert ledger.count() == 2


# --- one row per provider call (ledger/dedupe.py) ------------------------------------------------

TRACE = "ab" * 16


def span(span_id: int, *, cache_read: int = 0, write_1h: int = 0, contracted: int = 1_000) -> LedgerEntry:
    """A span of the call in TRACE; ``cache_read`` / ``write_1h`` make its token split finer."""
    usage = Usage(input_tokens=1_000 - cache_read, cache_read_tokens=cache_read, cache_write_tokens=write_1h,
                  cache_write_1h_tokens=write_1h, output_tokens=50)  # fmt: skip
    call = LlmCall(trace_id=TRACE, span_id=f"{span_id:016x}", start_time_ns=T0 + span_id, end_time_ns=T0 + 10**9,
                   provider="anthropic", operation="chat", request_model="claude-haiku-4-5", response_model="",
                   usage=usage, attribution=Attribution(team="search"))  # fmt: skip
    cost = Cost(PRICED, contracted, contracted, "genai-prices", "anthropic/claude-haiku-4-5", "2025-10-01")
    return LedgerEntry.from_call(call, cost, contracted, T0 + span_id)


def spans_of(url: str) -> list[tuple]:
    return raw_query(url, "SELECT span_id, billed_span_id FROM llm_call_spans ORDER BY span_id")


def test_a_wrapper_span_and_the_span_it_wraps_are_one_row_in_either_order(
    ledger: SqlLedger, ledger_url: str
) -> None:
    child, parent = span(2), span(1)  # the SDK's own span (2) inside a wrapper's span (1)
    assert ledger.record([child], [SpanLink(parent_span_id=f"{1:016x}")]) == [NEW]
    assert ledger.record([parent], [SpanLink(parent_span_id="")]) == [SUPPRESSED]  # a later export
    assert ledger.count() == 1
    assert spans_of(ledger_url) == [(f"{1:016x}", f"{2:016x}"), (f"{2:016x}", f"{2:016x}")]  # provenance kept
    # A retried export of either span bills nothing new.
    assert ledger.record([parent, child], [SpanLink(), SpanLink(parent_span_id=f"{1:016x}")]) == [
        DUPLICATE,
        DUPLICATE,
    ]
    (total,) = ledger.spend(T0, T0 + DAY, group_by=())
    assert (total.requests, total.contracted_nanos) == (1, 1_000)


def test_spans_with_one_response_id_are_one_row_across_traces(ledger: SqlLedger) -> None:
    elsewhere = span(9)._replace(trace_id="cd" * 16)  # LiteLLM's span, started in another thread's trace
    links = [SpanLink(response_id="msg_01"), SpanLink(response_id="msg_01")]
    assert ledger.record([span(1), elsewhere], links) == [NEW, SUPPRESSED]
    assert ledger.record([span(3)], [SpanLink(response_id="msg_02")]) == [NEW]  # another call
    assert ledger.count() == 2


def test_an_estimate_beats_a_span_without_any_tokens(ledger: SqlLedger) -> None:
    """A call abandoned before any answer: a peer's span has no tokens at all, ours has the
    prompt's offline estimate; in either order the row bills the estimate."""
    none = span(1)._replace(input_tokens=0, output_tokens=0, list_cost_nanos=0, contracted_cost_nanos=0)
    estimate = span(2)._replace(usage_estimated=1, input_tokens=7, output_tokens=0, contracted_cost_nanos=7)
    call = SpanLink(call_id="c0ffee")
    assert ledger.record([none], [call]) == [NEW]
    assert ledger.record([estimate], [call]) == [SUPPRESSED]  # rewrites the row with the estimate
    (row,) = ledger.entries(T0, T0 + DAY)
    assert (row.input_tokens, row.usage_estimated, row.contracted_cost_nanos) == (7, 1, 7)
    other = span(3)._replace(trace_id="cd" * 16, input_tokens=0, output_tokens=0, contracted_cost_nanos=0)
    assert ledger.record([other], [call]) == [SUPPRESSED]  # a later span without tokens changes nothing
    (again,) = ledger.entries(T0, T0 + DAY)
    assert again.contracted_cost_nanos == 7


def test_a_call_id_links_spans_whichever_keys_each_has(ledger: SqlLedger) -> None:
    """Spans of one call in three traces: the SDK's own (response id and call id), a peer's with
    the call id only (OpenInference's Anthropic stream, outputs hidden), LiteLLM's with the
    response id only. Exported one by one in either order around the SDK's span, or together,
    one row with the SDK's finer split; another call id is another call. (Two rows billed apart
    before the span that links them arrives stay two: ledger/dedupe.py, "Not merged".)"""
    orders = ((("peer",), ("sdk",), ("litellm",)), (("sdk",), ("litellm",), ("peer",)),
              (("litellm", "peer", "sdk"),))  # fmt: skip
    for n, order in enumerate(orders):
        spans = {
            "sdk": (span(10 * n + 1, cache_read=400, write_1h=100)._replace(trace_id=f"{n:02x}" * 16),
                    SpanLink(response_id=f"msg_{n}", call_id=f"c{n}")),
            "peer": (span(10 * n + 2)._replace(trace_id=f"{n + 16:02x}" * 16), SpanLink(call_id=f"c{n}")),
            "litellm": (span(10 * n + 3)._replace(trace_id=f"{n + 32:02x}" * 16), SpanLink(response_id=f"msg_{n}")),
        }  # fmt: skip
        outcomes = [
            o
            for batch in order
            for o in ledger.record([spans[k][0] for k in batch], [spans[k][1] for k in batch])
        ]
        assert outcomes.count(NEW) == 1, (order, outcomes)
    rows = list(ledger.entries(T0, T0 + DAY))
    assert len(rows) == len(orders) and {row.cache_read_tokens for row in rows} == {400}
    assert ledger.record([span(99)], [SpanLink(call_id="another")]) == [NEW]


def test_sibling_calls_under_one_parent_span_stay_two_rows(ledger: SqlLedger) -> None:
    """Two calls under one request span (not an LLM span, so never in the ledger) are two calls."""
    handler = f"{99:016x}"
    assert ledger.record([span(1), span(2)], [SpanLink(handler), SpanLink(handler)]) == [NEW, NEW]
    assert ledger.record([span(3)], [SpanLink(handler)]) == [NEW]
    assert ledger.count() == 3


def test_the_finer_token_split_wins_in_one_batch(ledger: SqlLedger, ledger_url: str) -> None:
    coarse, fine = span(1, contracted=1_000), span(2, cache_read=400, write_1h=100, contracted=700)
    assert ledger.record([coarse, fine], [SpanLink(), SpanLink(f"{1:016x}")]) == [SUPPRESSED, NEW]
    (row,) = ledger.entries(T0, T0 + DAY)
    assert (row.span_id, row.cache_read_tokens, row.contracted_cost_nanos) == (f"{2:016x}", 400, 700)
    assert spans_of(ledger_url) == [(f"{1:016x}", f"{2:016x}"), (f"{2:016x}", f"{2:016x}")]


def test_a_later_span_with_a_finer_split_rewrites_the_row_in_place(ledger: SqlLedger) -> None:
    coarse = span(1, contracted=1_000)
    assert ledger.record([coarse], [SpanLink(response_id="msg_01")]) == [NEW]
    fine = span(2, cache_read=400, write_1h=100, contracted=700)
    assert ledger.record([fine], [SpanLink(f"{1:016x}", "msg_01")]) == [SUPPRESSED]
    (row,) = ledger.entries(T0, T0 + DAY)
    # The row keeps its key and start time (its period), and takes the finer account.
    assert (row.span_id, row.start_time_ns) == (coarse.span_id, coarse.start_time_ns)
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_1h_tokens) == (600, 400, 100)
    assert row.contracted_cost_nanos == 700
    # A coarser span arriving later changes nothing.
    assert ledger.record([span(3)], [SpanLink(response_id="msg_01")]) == [SUPPRESSED]
    (again,) = ledger.entries(T0, T0 + DAY)
    assert again.contracted_cost_nanos == 700


def test_without_a_merge_the_attributed_span_wins_over_a_finer_unattributed_one(ledger: SqlLedger) -> None:
    fine_unattributed = span(2, cache_read=400, contracted=700)._replace(
        team="unattributed", team_source="default"
    )
    assert ledger.record([fine_unattributed, span(1)], [SpanLink(f"{1:016x}"), SpanLink()]) == [
        SUPPRESSED,
        NEW,
    ]
    (row,) = ledger.entries(T0, T0 + DAY)
    assert (row.team, row.contracted_cost_nanos) == ("search", 1_000)


def test_a_merge_bills_one_spans_usage_to_the_others_team(ledger: SqlLedger) -> None:
    def merge(usage: LedgerEntry, attributed: LedgerEntry) -> LedgerEntry:
        return usage._replace(team=attributed.team, team_source=attributed.team_source)

    fine_unattributed = span(2, cache_read=400, contracted=700)._replace(
        team="unattributed", team_source="default"
    )
    assert ledger.record([fine_unattributed], [SpanLink(f"{1:016x}")]) == [NEW]
    assert ledger.record([span(1)], [SpanLink()], merge) == [SUPPRESSED]  # the wrapper's span, later
    (row,) = ledger.entries(T0, T0 + DAY)
    assert (row.span_id, row.team, row.cache_read_tokens, row.contracted_cost_nanos) == (
        f"{2:016x}", "search", 400, 700,
    )  # fmt: skip


def test_a_rewritten_row_moves_its_rollups_with_it(ledger_url: str) -> None:
    """_rewrite_rows adjusts the rollups in the same transaction: after a later, finer span
    rewrote a row, the rollups equal the ones rebuilt from the calls alone (migrations 3 and 9)."""
    ledger = open_ledger(ledger_url)
    try:
        ledger.record([span(1, contracted=1_000)], [SpanLink(response_id="msg_01")])
        fine = span(2, cache_read=400, write_1h=100, contracted=700)
        assert ledger.record([fine], [SpanLink(f"{1:016x}", "msg_01")]) == [SUPPRESSED]
        incremental = rollup_tables(ledger_url)
    finally:
        ledger.close()
    for table in ("llm_rollup_hourly", "llm_rollup_daily", "llm_rollup_monthly", "llm_rollup_users",
                  "llm_rollup_sessions", "llm_rollup_steps", "llm_rollup_dims"):  # fmt: skip
        raw_execute(ledger_url, f"DROP TABLE {table}")
    raw_execute(ledger_url, "DELETE FROM schema_migrations WHERE version IN (3, 9)")
    open_ledger(ledger_url).close()
    assert rollup_tables(ledger_url) == incremental
    assert any(700 in row for row in incremental["hour"])  # the rewritten cost, not the first one


def test_concurrent_writers_bill_the_spans_of_one_call_once(ledger_url: str) -> None:
    """Two replicas each receive one span of the same call at the same moment."""
    writers = [open_ledger(ledger_url), open_ledger(ledger_url)]
    try:
        for round_ in range(20):
            trace = f"{round_ + 1:032x}"
            parent, child = span(1)._replace(trace_id=trace), span(2)._replace(trace_id=trace)
            errors = run_threads([
                lambda p=parent: writers[0].record([p], [SpanLink()]),
                lambda p=parent, c=child: writers[1].record([c], [SpanLink(p.span_id)]),
            ])  # fmt: skip
            assert errors == []
        assert writers[0].count() == 20
    finally:
        for writer in writers:
            writer.close()


def test_concurrent_writers_of_one_session_count_one_run(ledger_url: str) -> None:
    """Two replicas each receive calls of the same two sessions at the same moment (in opposite
    orders, the second one's under the greater name; teams apart, so the sessions' rows are all
    the two transactions share): the per-name rollup counts each session
    once, under its final name, as a recomputation from the sessions does."""
    writers = [open_ledger(ledger_url), open_ledger(ledger_url)]
    try:
        for round_ in range(20):
            sessions = (f"a{round_}", f"b{round_}")
            batches = [
                [entry(100 * round_ + 10 * w + i, team=("search", "support")[w], contracted=10)._replace(
                    session_id=sid, session_name="Triage" if w else "Doc", session_path="/s")
                 for i, sid in enumerate(sessions if w == 0 else sessions[::-1])]
                for w in (0, 1)
            ]  # fmt: skip
            errors = run_threads([lambda w=w, b=batches: writers[w].insert(b[w]) for w in (0, 1)])
            assert errors == []
    finally:
        for writer in writers:
            writer.close()
    assert raw_query(ledger_url, "SELECT session_name, runs, requests, contracted_nanos FROM "
                     "llm_rollup_session_names") == [("Triage", 40, 80, 800)]  # fmt: skip


def test_concurrent_writers_of_the_same_rollup_rows_never_deadlock(ledger_url: str) -> None:
    """Two replicas' batches touch the same rollup rows (40 teams, each with its feature and
    user, in one hour) listed in opposite orders: every rollup statement writes its rows in key
    order, so one writer waits for the other instead of both waiting on each other (PostgreSQL
    aborts one of two writers that do, and its export fails)."""
    writers = [open_ledger(ledger_url), open_ledger(ledger_url)]
    try:
        for round_ in range(10):
            teams = [f"team-{t:02d}" for t in range(40)]
            batches = [
                [entry(1000 * round_ + 100 * w + i, team=team, feature=f"f-{team}", contracted=10)._replace(
                    user_id=f"u-{team}") for i, team in enumerate(teams if w == 0 else teams[::-1])]
                for w in (0, 1)
            ]  # fmt: skip
            errors = run_threads([lambda w=w, b=batches: writers[w].insert(b[w]) for w in (0, 1)])
            assert errors == []
        assert writers[0].count() == 800
    finally:
        for writer in writers:
            writer.close()


def test_a_transaction_postgresql_aborts_as_deadlocked_is_run_again(pg_url: str) -> None:  # noqa: F811
    """PostgreSQL aborting a write as one of two deadlocked (SQLSTATE 40P01, raised here by a
    trigger on the first insert only: a sequence survives the rollback) costs the export
    nothing: the ledger runs the whole transaction again, once, and the call is billed once."""
    ledger = open_ledger(pg_url)
    try:
        raw_execute(pg_url, "CREATE SEQUENCE first_insert")
        raw_execute(pg_url, "CREATE FUNCTION abort_once() RETURNS trigger AS $$ BEGIN "
                    "IF nextval('first_insert') = 1 THEN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; "
                    "END IF; RETURN NEW; END $$ LANGUAGE plpgsql")  # fmt: skip
        raw_execute(
            pg_url,
            "CREATE TRIGGER abort_once BEFORE INSERT ON llm_calls FOR EACH ROW EXECUTE FUNCTION abort_once()",
        )
        assert ledger.insert([entry(1, contracted=10)]) == [True]
        assert ledger.count() == 1
        assert raw_query(pg_url, "SELECT requests, contracted_nanos FROM llm_rollup_team_monthly") == [
            (1, 10)
        ]
    finally:
        ledger.close()


# --- queries ----------------------------------------------------------------------------------


def test_spend_groups_and_filters_are_exact_nanos(ledger: SqlLedger) -> None:
    ledger.insert(
        [
            entry(1, team="search", feature="chat", contracted=1_234_567_890),
            entry(2, team="search", feature="chat", contracted=2),
            entry(3, team="search", feature="rank", contracted=400_000_000_000),
            entry(4, team="support", feature="chat", contracted=10),
            entry(5, team="support", feature="chat", contracted=None),  # unpriced
            entry(6, team="support", feature="triage", contracted=20, environment="staging"),
            entry(7, team="search", feature="chat", contracted=999, start_ns=T0 + DAY),  # next day
            entry(8, team="search", feature="chat", contracted=888, start_ns=T0 - 1),  # before
        ]
    )
    by_team = {r.group["team"]: r for r in ledger.spend(T0, T0 + DAY)}
    assert sorted(by_team) == ["search", "support"]
    search, support = by_team["search"], by_team["support"]
    # search: 1_234_567_890 + 2 + 400_000_000_000 = 401_234_567_892 contracted
    assert (search.requests, search.unpriced, search.contracted_nanos) == (3, 0, 401_234_567_892)
    # list = contracted + 100 each: 401_234_567_892 + 300
    assert search.list_nanos == 401_234_568_192
    # chargeback = contracted * 3 / 2: 1_851_851_835 + 3 + 600_000_000_000 = 601_851_851_838
    assert search.chargeback_nanos == 601_851_851_838
    # tokens per call: input 10, cache_read 2, output 5, reasoning 1 (x3 calls)
    assert search.tokens == {"input": 30, "cache_read": 6, "cache_write": 0, "output": 12, "reasoning": 3}
    # support: 10 + 20 = 30 contracted; the unpriced call counts as a request, not as zero money
    assert (support.requests, support.unpriced, support.contracted_nanos) == (3, 1, 30)
    assert (support.list_nanos, support.chargeback_nanos) == (230, 45)  # 110 + 120; 15 + 30

    rows = ledger.spend(T0, T0 + DAY, group_by=("team", "feature"))
    assert [(r.group["team"], r.group["feature"], r.requests, r.contracted_nanos) for r in rows] == [
        ("search", "chat", 2, 1_234_567_892),
        ("search", "rank", 1, 400_000_000_000),
        ("support", "chat", 2, 10),
        ("support", "triage", 1, 20),
    ]  # ordered by group

    (chat,) = ledger.spend(T0, T0 + DAY, group_by=("team",), filters={"team": "support", "feature": "chat"})
    assert (chat.requests, chat.unpriced, chat.contracted_nanos) == (2, 1, 10)
    (staging,) = ledger.spend(T0, T0 + DAY, group_by=(), filters={"environment": "staging"})
    assert staging.contracted_nanos == 20
    (unpriced,) = ledger.spend(T0, T0 + DAY, group_by=(), filters={"price_status": "unpriced"})
    assert (unpriced.requests, unpriced.contracted_nanos, unpriced.chargeback_nanos) == (1, None, None)

    # [start, end): entry 8 at T0 - 1 is in the day before, entry 7 at T0 + DAY in the next one.
    (all_time,) = ledger.spend(0, T0 + 2 * DAY, group_by=())
    assert (all_time.requests, all_time.contracted_nanos) == (8, 401_234_567_892 + 30 + 999 + 888)
    (next_day,) = ledger.spend(T0 + DAY, T0 + 2 * DAY, group_by=())
    assert (next_day.requests, next_day.contracted_nanos) == (1, 999)
    assert ledger.spend(T0 + 2 * DAY, T0 + 3 * DAY) == []
    with pytest.raises(ValueError):
        ledger.spend(T0, T0 + DAY, group_by=("contracted_cost_nanos; DROP TABLE llm_calls",))


def test_model_grouping_uses_the_response_model_when_present(ledger: SqlLedger) -> None:
    ledger.insert(
        [
            entry(1, request_model="gpt-4o", response_model="gpt-4o-2024-08-06", contracted=100),
            entry(2, request_model="gpt-4o", response_model="", contracted=200),
            entry(3, request_model="gpt-4o", response_model="gpt-4o-2024-08-06", contracted=400),
            entry(4, request_model="gpt-4o-mini", response_model="gpt-4o", contracted=800),
        ]
    )
    rows = {
        r.group["model"]: (r.requests, r.contracted_nanos) for r in ledger.spend(T0, T0 + DAY, ("model",))
    }
    # billed model: 1, 3 -> the dated snapshot; 2 (no response model) and 4 (response says gpt-4o) -> gpt-4o
    assert rows == {"gpt-4o": (2, 200 + 800), "gpt-4o-2024-08-06": (2, 100 + 400)}
    (mini,) = ledger.spend(T0, T0 + DAY, ("request_model",), filters={"request_model": "gpt-4o-mini"})
    assert (mini.requests, mini.contracted_nanos) == (1, 800)
    (by_model,) = ledger.spend(T0, T0 + DAY, group_by=(), filters={"model": "gpt-4o"})
    assert by_model.contracted_nanos == 1_000


def test_unpriced_rows_are_repriced_by_update_costs(ledger: SqlLedger) -> None:
    ledger.insert(
        [
            entry(1, contracted=None, request_model="new-model"),
            entry(2, contracted=500),
            entry(3, contracted=None, request_model="new-model", start_ns=T0 - 10),
        ]
    )
    pending = ledger.unpriced()
    assert [e.trace_id for e in pending] == [f"{3:032x}", f"{1:032x}"]  # oldest first
    assert all(e.list_cost_nanos is None and e.contracted_cost_nanos is None for e in pending)
    assert pending[0].to_call().model == "new-model"
    (before,) = ledger.spend(T0 - DAY, T0 + DAY, group_by=())
    assert (before.unpriced, before.contracted_nanos) == (2, 500)

    updates = [(e.trace_id, e.span_id, Cost(PRICED, 77, 70, "price-book", "price-book:new", "2026-01-01"), 84,
                0, 0) for e in pending]  # fmt: skip
    missing = ("f" * 32, "f" * 16, Cost(PRICED, 1, 1), 1, 0, 0)  # not in the ledger: changes nothing
    assert ledger.update_costs([*updates, missing]) == 2
    assert ledger.unpriced() == []
    (after,) = ledger.spend(T0 - DAY, T0 + DAY, group_by=())
    # contracted 500 + 70 + 70 = 640; list 600 + 77 + 77 = 754; chargeback 750 + 84 + 84 = 918
    assert (after.unpriced, after.contracted_nanos, after.list_nanos, after.chargeback_nanos) == (
        0,
        640,
        754,
        918,
    )
    rows = {e.trace_id: e for e in ledger.entries(T0 - DAY, T0 + DAY)}
    repriced = rows[f"{1:032x}"]
    assert (repriced.price_status, repriced.price_id, repriced.price_source) == (
        "priced",
        "price-book:new",
        "price-book",
    )
    assert repriced.repriced_at_ns and repriced.repriced_at_ns > T0
    assert rows[f"{2:032x}"].repriced_at_ns is None


def test_usage_lines_sum_a_day_per_money_dimensions_with_disjoint_token_classes(ledger: SqlLedger) -> None:
    outcome = entry(9)._replace(operation="outcome", request_model="", outcome="ticket_resolved", outcome_count=3,
                                input_tokens=0, cache_read_tokens=0, output_tokens=0, reasoning_tokens=0,
                                list_cost_nanos=0, contracted_cost_nanos=0, chargeback_nanos=0)  # fmt: skip
    ledger.insert(
        [
            entry(1, contracted=1_000),
            entry(2, contracted=2_000),
            entry(3, contracted=None),  # unpriced: 0 in the sums, 1 in `unpriced`
            entry(4, contracted=500, start_ns=T0 + DAY + 5),  # the next UTC day
            entry(5, contracted=700, team="support")._replace(status="error", error_type="Timeout"),
            outcome,
        ]
    )
    lines = ledger.usage_lines(T0, T0 + 2 * DAY)
    by_key = {
        (line.day.isoformat(), line.team, line.status, line.price_status, line.outcome): line
        for line in lines
    }
    assert sorted(by_key) == [
        ("2026-01-01", "search", "ok", "priced", ""),
        ("2026-01-01", "search", "ok", "priced", "ticket_resolved"),
        ("2026-01-01", "search", "ok", "unpriced", ""),
        ("2026-01-01", "support", "error", "priced", ""),
        ("2026-01-02", "search", "ok", "priced", ""),
    ]
    day1 = by_key[("2026-01-01", "search", "ok", "priced", "")]
    # two calls: contracted 1000 + 2000, list +100 each, chargeback 1500 + 3000
    assert (day1.requests, day1.contracted_nanos, day1.list_nanos, day1.chargeback_nanos) == (
        2,
        3000,
        3200,
        4500,
    )
    # per call: input 10 uncached, cache_read 2, output 5 of which reasoning 1 -> output 4 excluding reasoning
    assert (day1.input_tokens, day1.cache_read_tokens, day1.output_tokens, day1.reasoning_tokens) == (
        20,
        4,
        8,
        2,
    )
    assert (day1.total_input_tokens, day1.total_output_tokens) == (24, 10)
    unpriced = by_key[("2026-01-01", "search", "ok", "unpriced", "")]
    assert (unpriced.requests, unpriced.unpriced, unpriced.contracted_nanos) == (1, 1, 0)
    failed = by_key[("2026-01-01", "support", "error", "priced", "")]
    assert (failed.requests, failed.errors, failed.contracted_nanos) == (1, 1, 700)
    record = by_key[("2026-01-01", "search", "ok", "priced", "ticket_resolved")]
    assert (record.requests, record.outcome_count) == (0, 3)
    # search: u1, u2, u3 (u4 is the next day, u9 only recorded an outcome); support: u5
    assert ledger.active_users(T0, T0 + DAY) == {"search": 3, "support": 1}
    assert ledger.usage_lines(T0 + DAY, T0 + 2 * DAY) == [
        by_key[("2026-01-02", "search", "ok", "priced", "")]
    ]


def test_top_ranks_by_charge_then_requests(ledger: SqlLedger) -> None:
    entries = [make_entry(n, nanos=10, user_id="light") for n in range(1, 4)]  # 3 calls, 60 chargeback
    entries += [make_entry(n, nanos=100, user_id="heavy") for n in range(4, 6)]  # 2 calls, 400
    entries += [make_entry(n, nanos=30, user_id="tie") for n in range(6, 7)]  # 1 call, 60
    entries += [make_entry(7, nanos=None, user_id="unpriced")]
    ledger.insert(entries)
    top = ledger.top("user_id", T0, T0 + DAY, limit=3)
    assert [(r.group["user_id"], r.chargeback_nanos, r.requests) for r in top] == [
        ("heavy", 400, 2), ("light", 60, 3), ("tie", 60, 1),
    ]  # fmt: skip
    assert [r.group["user_id"] for r in ledger.top("user_id", T0, T0 + DAY, limit=10)][-1] == "unpriced"
    assert ledger.top("team", T0, T0 + DAY, limit=5, filters={"user_id": "tie"})[0].requests == 1


# --- sessions and the report ------------------------------------------------------------------

FEB = T0 + 31 * DAY  # 2026-02-01T00:00:00Z
MAR = FEB + 28 * DAY
HALF_HOUR = HOUR // 2


def row(
    n: int, nanos: int, start_ns: int, *, savings: int = 0, prompt_savings: int = 0, **attribution: object
) -> LedgerEntry:
    """Call ``n`` costing exactly ``nanos`` (list and contracted; chargeback twice that); the
    call lasts 1 ms (``make_call``)."""
    call = make_call(n, start_ns=start_ns, **attribution)
    return LedgerEntry.from_call(
        call, Cost(PRICED, nanos, nanos, "book", "p", "2024"), 2 * nanos, T0, savings, prompt_savings
    )


def workflows() -> list[LedgerEntry]:
    """20 "Doc" runs: run k starts at T0 + k h, /analyze costs 600k and /analyze/extract (1 s
    later) 400k nanos; 3 "Chat" runs of one step at 5, 7 and 7 nanos (T0 + i h + 30 min); one
    "Span" run of 50 + 70 nanos across midnight at the end of January."""
    rows = []
    for k in range(1, 21):
        doc = {"session_id": f"d{k:02d}", "session_name": "Doc", "user_id": f"u{k % 2}", "team": "support"}
        rows.append(row(100 + 2 * k, 600 * k, T0 + k * HOUR, session_path="/analyze", **doc))
        rows.append(row(101 + 2 * k, 400 * k, T0 + k * HOUR + 10**9, session_path="/analyze/extract", **doc))
    for i, nanos in enumerate((5, 7, 7)):
        chat = {"session_id": f"c{i}", "session_name": "Chat", "session_path": "/chat"}
        rows.append(row(200 + i, nanos, T0 + i * HOUR + HALF_HOUR, **chat))
    span = {"session_id": "s1", "session_name": "Span", "session_path": "/x"}
    rows += [row(300, 50, FEB - 60 * 10**9, **span), row(301, 70, FEB + 60 * 10**9, **span)]
    return rows


def test_sessions_list_steps_cost_duration_and_order(ledger: SqlLedger) -> None:
    ledger.insert(workflows())
    top = ledger.sessions(SessionQuery(T0, FEB, limit=3))
    assert [(s.session_id, s.steps, s.cost_nanos) for s in top] == [
        ("d20", 2, 20_000), ("d19", 2, 19_000), ("d18", 2, 18_000),
    ]  # fmt: skip
    d20 = top[0]
    assert (d20.session_name, d20.user_id, d20.team, d20["chargeback_nanos"]) == (
        "Doc",
        "u0",
        "support",
        40_000,
    )
    assert (d20.first_start_ns, d20.duration_ns) == (T0 + 20 * HOUR, 10**9 + 1_000_000)  # 1 s + the 1 ms call
    cheapest = ledger.sessions(SessionQuery(T0, FEB, descending=False, limit=4))
    assert [s.session_id for s in cheapest] == ["c0", "c1", "c2", "s1"]  # 5, 7, 7 (tie by id), 50
    first = ledger.sessions(SessionQuery(T0, FEB, order_by="first_call", descending=False, limit=3))
    assert [s.session_id for s in first] == ["c0", "d01", "c1"]  # 0:30, 1:00, 1:30
    assert [s.session_id for s in ledger.sessions(SessionQuery(T0, FEB, order_by="steps", limit=1))] == [
        "d01"
    ]
    picked = SessionQuery(
        T0, FEB, (Filter("session_name", ("Chat", "Span")), Filter("session_id", ("c0",), negate=True))
    )
    assert sorted(s.session_id for s in ledger.sessions(picked)) == ["c1", "c2", "s1"]


def test_session_summary_nearest_rank_percentiles_and_steps(ledger: SqlLedger) -> None:
    ledger.insert(workflows())
    doc, span, chat = ledger.session_summary(SessionQuery(T0, FEB))  # by total: 210k, 50, 19
    # Doc: 20 runs of 1000k nanos each k = 1..20: total 1000 * 210; nearest rank p50 = the
    # ceil(0.5 * 20) = 10th cheapest, p95 = the ceil(0.95 * 20) = 19th.
    assert (doc.session_name, doc.runs, doc.steps, doc.total_nanos) == ("Doc", 20, 40, 210_000)
    assert (doc.percentiles, doc.max_nanos) == ({50: 10_000, 95: 19_000}, 20_000)
    # Chat: 5, 7, 7: p50 = 2nd (7), p95 = 3rd (7)
    assert (chat.runs, chat.total_nanos, chat.percentiles, chat.max_nanos) == (3, 19, {50: 7, 95: 7}, 7)
    assert (span.runs, span.total_nanos) == (1, 50)  # January's half only: split at the month
    steps = {
        (s.session_name, s.session_path): (s.calls, s.cost_nanos)
        for s in ledger.session_steps(SessionQuery(T0, FEB))
    }
    assert steps == {
        ("Doc", "/analyze"): (20, 600 * 210), ("Doc", "/analyze/extract"): (20, 400 * 210),
        ("Chat", "/chat"): (3, 19), ("Span", "/x"): (1, 50),
    }  # fmt: skip
    # Part of a month (the first day) reads the steps from the calls: Doc runs 1..23 h -> k <= 20
    day = {
        (s.session_name, s.session_path): s.calls
        for s in ledger.session_steps(SessionQuery(T0, T0 + 2 * HOUR))
    }
    assert day == {("Doc", "/analyze"): 1, ("Doc", "/analyze/extract"): 1, ("Chat", "/chat"): 2}


def test_a_session_two_teams_share_is_each_teams_own_calls_and_migrations_14_15_split_older_ones(
    ledger_url: str,
) -> None:
    """One "Doc" session shared by two teams (search /analyze 10, support /analyze 5 and
    /extract 7): filtered by team, its steps, cost, calls and times are that team's calls only,
    for a whole month (the rollups) and part of one; a user filter reads the steps from the calls.
    A ledger from before migrations 14 and 15 (steps summed over teams, no per-team sessions)
    gets the same rollups from its calls."""
    doc = {"session_id": "d", "session_name": "Doc"}
    rows = [row(1, 10, T0 + HOUR, team="search", session_path="/analyze", user_id="u1", **doc),
            row(2, 5, T0 + 2 * HOUR, team="support", session_path="/analyze", user_id="u2", **doc),
            row(3, 7, T0 + 3 * HOUR, team="support", session_path="/extract", user_id="u2", **doc)]  # fmt: skip
    ledger = open_ledger(ledger_url)
    try:
        ledger.insert(rows)

        def steps(end: int, *filters: Filter) -> dict[tuple[str, str], tuple[int, int]]:
            found = ledger.session_steps(SessionQuery(T0, end, filters))
            return {(s.session_name, s.session_path): (s.calls, s.cost_nanos) for s in found}

        def sessions(end: int, *filters: Filter) -> list[tuple[str, int, int, int, str]]:
            found = ledger.sessions(SessionQuery(T0, end, filters))
            return [(s.session_id, s.steps, s.cost_nanos, s.first_start_ns, s.team) for s in found]

        search, others = Filter("team", ("search",)), Filter("team", ("search",), negate=True)
        both = Filter("team", ("search", "support"))
        for end in (FEB, T0 + DAY):
            assert steps(end, search) == {("Doc", "/analyze"): (1, 10)}, end
            assert steps(end, search, others) == {}, end
            assert steps(end, others) == {("Doc", "/analyze"): (1, 5), ("Doc", "/extract"): (1, 7)}, end
            assert steps(end, Filter("user_id", ("u1",))) == {("Doc", "/analyze"): (1, 10)}, end
            assert steps(end) == {("Doc", "/analyze"): (2, 15), ("Doc", "/extract"): (1, 7)}, end
            assert sessions(end, search) == [("d", 1, 10, T0 + HOUR, "search")], end
            assert sessions(end, others) == [("d", 2, 12, T0 + 2 * HOUR, "support")], end
            assert sessions(end) == sessions(end, both) == [("d", 3, 22, T0 + HOUR, "support")], end
            (summary,) = ledger.session_summary(SessionQuery(T0, end, (others,)))
            assert (summary.runs, summary.steps, summary.total_nanos, summary.max_nanos) == (1, 2, 12, 12), (
                end
            )
            # one team's whole month: on SQLite from its range of the per-team cost index
            (summary,) = ledger.session_summary(SessionQuery(T0, end, (search,)))
            assert (summary.runs, summary.steps, summary.total_nanos, summary.percentiles) == (
                1, 1, 10, {50: 10, 95: 10},
            ), end  # fmt: skip
            assert [
                s.cost_nanos for s in ledger.sessions(SessionQuery(T0, end, (search,), min_cost_nanos=9))
            ] == [10]
            assert ledger.sessions(SessionQuery(T0, end, (search,), min_cost_nanos=10)) == [], end
        incremental = rollup_tables(ledger_url)
    finally:
        ledger.close()
    raw_execute(ledger_url, "DROP TABLE llm_rollup_steps")
    raw_execute(ledger_url, "DROP TABLE llm_rollup_session_teams")
    raw_execute(ledger_url, "CREATE TABLE llm_rollup_steps AS SELECT 0 AS month_ns")  # any older shape
    raw_execute(ledger_url, "DELETE FROM schema_migrations WHERE version IN (14, 15)")
    open_ledger(ledger_url).close()
    assert rollup_tables(ledger_url) == incremental
    assert [r[1:4] for r in incremental["llm_rollup_steps"]] == [
        ("Doc", "/analyze", "search"), ("Doc", "/analyze", "support"), ("Doc", "/extract", "support"),
    ]  # fmt: skip


def test_a_whole_months_summary_equals_the_one_computed_from_its_sessions(ledger: SqlLedger) -> None:
    """300 random sessions of four names (costs drawn from a few values, so percentiles fall on
    ties; unpriced calls; runs crossing into February; a step now and then under another name, so
    a later batch can move a session to the greater name; each call one of two teams), inserted
    shuffled in batches: the month's summary (on SQLite read from the per-name rollup and the
    sessions' cost index), and each team's (from its range of the per-team cost index), equals
    runs, steps, total, max, nearest-rank p50 and p95 and unpriced counted by hand from the
    month's session list, everyone's or that team's."""
    rng = random.Random(11)
    rows, n = [], 0
    for k in range(300):
        name = rng.choice(("Doc", "Chat", "Triage", "Eval"))
        start = T0 + rng.randrange(31 * DAY - HOUR) if k % 25 else FEB - 2 * 10**9  # some cross into Feb
        for step in range(rng.randint(1, 4)):
            n += 1
            named = name if rng.random() < 0.9 else rng.choice(("Doc", "Chat", "Triage", "Eval"))
            at, attrs = (
                start + step * 10**9,
                {"session_id": f"s{k}", "session_name": named, "session_path": f"/{step}",
                 "team": rng.choice(("search", "support"))},
            )  # fmt: skip
            if rng.random() < 0.05:
                rows.append(
                    LedgerEntry.from_call(make_call(n, start_ns=at, **attrs), Cost.unpriced("?"), None, T0)
                )
            else:
                rows.append(row(n, rng.choice((10, 20, 30, 50)) * 1000, at, **attrs))
    rng.shuffle(rows)
    for i in range(0, len(rows), 37):
        ledger.insert(rows[i : i + 37])
    for filters in ((), (Filter("team", ("search",)),), (Filter("team", ("support",)),)):
        month = SessionQuery(T0, FEB, filters, limit=10_000)
        by_name: dict[str, list] = {}
        for session in ledger.sessions(month):
            by_name.setdefault(session.session_name, []).append(session)
        expected = {}
        for name, sessions in by_name.items():
            costs = sorted(s.cost_nanos for s in sessions)
            rank = {p: costs[max(1, -(-p * len(costs) // 100)) - 1] for p in (50, 95)}
            expected[name] = (len(costs), sum(s.steps for s in sessions), sum(costs), costs[-1], rank,
                              sum(s["unpriced"] for s in sessions))  # fmt: skip
        got = {
            t.session_name: (t.runs, t.steps, t.total_nanos, t.max_nanos, t.percentiles, t.unpriced)
            for t in ledger.session_summary(month)
        }
        assert got == expected and len(got) == 4, filters


def test_a_session_across_months_is_one_when_both_are_read(ledger: SqlLedger) -> None:
    ledger.insert(workflows())
    (both,) = ledger.sessions(SessionQuery(T0, MAR, (Filter("session_name", ("Span",)),)))
    assert (both.steps, both.cost_nanos, both.first_start_ns) == (2, 120, FEB - 60 * 10**9)
    (february,) = ledger.sessions(SessionQuery(FEB, MAR))
    assert (february.session_id, february.cost_nanos) == ("s1", 70)


def test_session_outliers_above_their_types_p95_or_an_amount(ledger: SqlLedger) -> None:
    ledger.insert(workflows())
    # Doc's p95 is 19k: only d20 (20k) is above; Chat's p95 is its max, Span has one run.
    assert [(s.session_id, p95) for s, p95 in ledger.session_outliers(SessionQuery(T0, FEB))] == [
        ("d20", 19_000)
    ]
    above = ledger.sessions(SessionQuery(T0, FEB, min_cost_nanos=16_000, limit=10))
    assert [s.session_id for s in above] == ["d20", "d19", "d18", "d17"]  # strictly above 16k


def test_session_total_is_the_ledgers_sum_over_its_months(ledger: SqlLedger) -> None:
    ledger.insert([*workflows(), make_entry(400, nanos=None, start_ns=T0 + 3 * HOUR + 5, session_id="d03")])
    whole = (120, 0, FEB + 60 * 10**9 + 1_000_000, "Span")
    assert ledger.session_total("s1", FEB - 60 * 10**9, FEB + 60 * 10**9) == whole
    # a replica that saw only one side of the month boundary still reads the whole session
    assert ledger.session_total("s1", FEB + 60 * 10**9, FEB + 60 * 10**9) == whole
    assert ledger.session_total("s1", FEB - 60 * 10**9, FEB - 60 * 10**9) == whole
    # d03: 1800 + 1200 nanos and one unpriced call (which adds no cost, but is counted)
    assert ledger.session_total("d03", T0 + 3 * HOUR, T0 + 3 * HOUR) == (
        3_000,
        1,
        T0 + 3 * HOUR + 10**9 + 1_000_000,
        "Doc",
    )
    assert ledger.session_total("nope", T0, T0) is None


USD = 10**9


def report_ledger() -> list[LedgerEntry]:
    """January 2026, contracted cost (all team search unless said):

    production / chat: user-789 (premium) 2 x $20 in session s3 (Chat), plus a response-cache
    hit ($0, saved $5); user-123 (free) 3 x $10 in session s2 (Chat).
    production / document-analysis (team support): user-456 (premium) 1 x $27 in s1 (Document Analysis).
    development / chat: user-123 (free) 1 x $3.
    An outcome record: ticket_resolved x 4 by user-123 (free), team search, feature chat.
    Every call has 100 uncached input, 20 cache-read and 4 cache-write tokens (make_call).
    """
    prod = {"environment": "production", "feature": "chat"}
    p789 = {**prod, "user_id": "user-789", "user_tier": "premium", "session_id": "s3", "session_name": "Chat"}
    f123 = {**prod, "user_id": "user-123", "user_tier": "free", "session_id": "s2", "session_name": "Chat"}
    doc = {"environment": "production", "feature": "document-analysis", "team": "support", "user_id": "user-456",
           "user_tier": "premium", "session_id": "s1", "session_name": "Document Analysis"}  # fmt: skip
    dev = {"environment": "development", "feature": "chat", "user_id": "user-123", "user_tier": "free"}
    return [
        row(1, 20 * USD, T0 + HOUR, cache_lookup=True, **p789),  # a response-cache miss
        row(2, 20 * USD, T0 + 2 * HOUR, prompt_savings=3 * USD // 2, **p789),
        row(3, 0, T0 + 3 * HOUR, savings=5 * USD, cache_hit=True, cache_lookup=True, **p789),
        *(row(4 + i, 10 * USD, T0 + (4 + i) * HOUR, **f123) for i in range(3)),
        row(7, 27 * USD, T0 + DAY, **doc),
        row(8, 3 * USD, T0 + 2 * DAY, **dev),
        row(9, 0, T0 + 3 * DAY, operation="outcome", outcome="ticket_resolved", outcome_count=4, usage=Usage(),
            **{**prod, "user_id": "user-123", "user_tier": "free"}),
    ]  # fmt: skip


def test_report_of_a_fixed_month_by_hand(ledger: SqlLedger) -> None:
    ledger.insert(report_ledger())
    report = build_report(ledger, T0, FEB, label="2026-01", top=2)
    data = to_json(report)
    assert data["total"] == {
        "requests": 8, "errors": 0, "unpriced_requests": 0, "cost_usd": "100.000000000",
        "list_cost_usd": "100.000000000", "chargeback_usd": "200.000000000",
    }  # fmt: skip
    production, development = data["environments"]
    # 97 / 100; chat 70 / 97 = 0.7216494...; document-analysis 27 / 97 = 0.2783505...
    assert (production["environment"], production["cost_usd"], production["share"]) == (
        "production",
        "97.000000000",
        "0.970000",
    )
    assert [(f["feature"], f["share"]) for f in production["features"]] == [
        ("chat", "0.721649"),
        ("document-analysis", "0.278351"),
    ]
    assert (development["cost_usd"], development["share"], development["features"][0]["share"]) == (
        "3.000000000",
        "0.030000",
        "1.000000",
    )
    assert data["top_users"] == [
        {"user_id": "user-789", "user_tier": "premium", "requests": 3, "unpriced_requests": 0, "cost_usd": "40.000000000",
         "cache_lookups": 2, "cache_hits": 1, "cache_hit_rate": "0.500000", "savings_usd": "5.000000000"},
        {"user_id": "user-123", "user_tier": "free", "requests": 4, "unpriced_requests": 0, "cost_usd": "33.000000000",
         "cache_lookups": 0, "cache_hits": 0, "cache_hit_rate": None, "savings_usd": "0.000000000"},
    ]  # fmt: skip
    # 1 hit in 2 lookups; the hit consumed no tokens: 7 x 20 cache-read of 7 x 124 input tokens
    assert data["cache"] == {"requests": 8, "lookups": 2, "hits": 1, "hit_rate": "0.500000",
                             "savings_usd": "5.000000000", "prompt_cache_read_share": "0.161290",
                             "prompt_cache_savings_usd": "1.500000000"}  # fmt: skip
    assert data["sessions"] == [
        {
            "session_name": "Chat",
            "runs": 2,
            "unpriced_requests": 0,
            "total_usd": "70.000000000",
            "average_usd": "35.000000000",
        },
        {
            "session_name": "Document Analysis",
            "runs": 1,
            "unpriced_requests": 0,
            "total_usd": "27.000000000",
            "average_usd": "27.000000000",
        },
    ]
    # ticket_resolved was recorded by (search, chat): its calls cost 40 + 30 + 3 = $73, / 4 = $18.25
    assert data["outcomes"] == [
        {
            "outcome": "ticket_resolved",
            "count": 4,
            "unpriced_requests": 0,
            "cost_usd": "73.000000000",
            "cost_per_outcome_usd": "18.250000000",
        }
    ]
    premium, free = data["user_tiers"]
    assert premium == {"user_tier": "premium", "users": 2, "requests": 4, "outcomes": 0, "unpriced_requests": 0,
                       "cost_usd": "67.000000000",
                       "cost_per_user_usd": "33.500000000", "cost_per_request_usd": "16.750000000",
                       "cost_per_outcome_usd": None}  # fmt: skip
    assert (free["users"], free["requests"], free["outcomes"], free["cost_per_outcome_usd"]) == (
        1,
        4,
        4,
        "8.250000000",
    )
    text = to_markdown(report)
    assert text.startswith("# LLM spend 2026-01: 2026-01-01 00:00 to 2026-02-01 00:00 UTC\n")
    tree = text.split("```\n")[1]
    assert tree.splitlines() == [
        "Total costs: $100.00 (8 calls, 0 errors, 0 unpriced)",
        "├── production: $97.00 (97%)",
        "│   ├── chat: $70.00 (72%)",
        "│   └── document-analysis: $27.00 (28%)",
        "└── development: $3.00 (3%)",
        "    └── chat: $3.00 (100%)",
    ]
    assert "1. user-789: $40.00 (premium tier), 3 calls, cache hit rate 50%, savings $5.00" in text
    assert "- Hit rate: 50% of 2 response-cache lookups answered from the cache" in text
    assert "- Savings: $5.00" in text
    assert "of input tokens read from the provider's cache, saving $1.50" in text
    assert "| Chat | 2 | $35.00 | $70.00 |" in text
    assert "| ticket_resolved | 4 | $73.00 | $18.25 |" in text

    # An unpriced call of user-789 (production chat, session s3): every line that holds it says so
    unpriced = make_call(10, start_ns=T0 + 10 * HOUR, environment="production", feature="chat",
                         user_id="user-789", user_tier="premium", session_id="s3", session_name="Chat")  # fmt: skip
    ledger.insert([LedgerEntry.from_call(unpriced, Cost.unpriced("unknown model"), None, T0)])
    report = build_report(ledger, T0, FEB, label="2026-01", top=2)
    data = to_json(report)
    production = data["environments"][0]
    assert (production["unpriced_requests"], production["features"][0]["unpriced_requests"]) == (1, 1)
    assert [u["unpriced_requests"] for u in data["top_users"]] == [1, 0]
    assert [s["unpriced_requests"] for s in data["sessions"]] == [1, 0]
    assert data["outcomes"][0]["unpriced_requests"] == 1  # a call of (search, chat), the outcome's scope
    assert [t["unpriced_requests"] for t in data["user_tiers"]] == [1, 0]
    text = to_markdown(report)
    assert "├── production: $97.00 (97%), 1 unpriced" in text
    assert "1. user-789: $40.00 + 1 unpriced (premium tier), 4 calls," in text
    assert "| Chat | 2 | $35.00 | $70.00 + 1 unpriced |" in text
    assert "| premium | 2 | 5 | $67.00 + 1 unpriced |" in text
    # a user seen without a tier and with one is shown with the tier it had
    ledger.insert(
        [
            row(11 + i, 50 * USD, T0 + (11 + i) * HOUR, user_id="user-x", user_tier=tier)
            for i, tier in enumerate(("", "pro"))
        ]
    )
    assert to_json(build_report(ledger, T0, FEB, top=1))["top_users"][0]["user_tier"] == "pro"
    assert (dollars(-5_000), dollars(-60_000)) == ("$0.00", "-$0.0001")  # a tiny refund is not -$0.00


# --- rollups ----------------------------------------------------------------------------------

ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata")  # whole-hour and half-hour offsets from UTC


def pool_entry(n: int, draw: Callable[[st.SearchStrategy[Any]], Any]) -> LedgerEntry:
    """Call ``n`` with drawn attribution, time (two days either side of a month boundary, at any
    second), price and kind (an outcome record one time in eight)."""
    start = T0 + draw(st.integers(-2 * DAY, 2 * DAY - 1)) // 10**9 * 10**9
    made = entry(
        n,
        team=draw(st.sampled_from(["search", "support", "ads"])),
        feature=draw(st.sampled_from(["chat", "triage"])),
        contracted=draw(st.one_of(st.none(), st.integers(0, 10**12))),
        start_ns=start,
        request_model=draw(st.sampled_from(["gpt-4o", "gpt-4o-mini"])),
    )
    made = made._replace(
        user_id=draw(st.sampled_from(["", "u1", "u2"])),
        session_id=draw(st.sampled_from(["", "s1", "s2"])),
        session_name=draw(st.sampled_from(["triage-run", "triage-run", "review"])),  # renames a session
        output_tokens=draw(st.integers(0, 10**6)),
        reasoning_tokens=0,
        status=draw(st.sampled_from(["ok", "ok", "error"])),
        cache_hit=draw(st.sampled_from([0, 0, 1])),
        cache_lookup=draw(st.integers(0, 1)),
        prompt_cache_savings_nanos=draw(st.integers(0, 10**9)),
    )
    if made.cache_hit:
        made = made._replace(cache_lookup=1, savings_nanos=draw(st.integers(0, 10**9)))
    if draw(st.integers(0, 7)) == 0:
        made = made._replace(
            operation="outcome", request_model="", outcome="ticket_resolved", outcome_count=2
        )
    return made


def expected_costs(rows: list[LedgerEntry], query: CostQuery) -> dict[tuple, tuple[int, ...]]:
    """The question answered from the calls alone, with the calendar in zoneinfo: per (bucket
    label, team, model), (requests, unpriced, outcomes, output excluding reasoning, contracted, chargeback,
    response-cache lookups and savings, prompt-cache savings)."""
    zone = ZoneInfo(query.tz)
    out: dict[tuple, list[int]] = {}
    for row in rows:
        if not query.start_ns <= row.start_time_ns < query.end_ns:
            continue
        local = datetime.fromtimestamp(row.start_time_ns // 10**9, timezone.utc).astimezone(zone)
        label = datetime.combine(local.date(), datetime.min.time(), zone).isoformat()
        request = row.operation != "outcome"
        key = (label, row.team, row.response_model or row.request_model)
        sums = out.setdefault(key, [0] * 9)
        for i, value in enumerate(
            (request, request and row.price_status == "unpriced", row.outcome_count,
             0 if row.cache_hit else row.output_tokens - row.reasoning_tokens,  # a hit consumed none
             row.contracted_cost_nanos or 0, row.chargeback_nanos or 0, row.cache_lookup, row.savings_nanos, row.prompt_cache_savings_nanos)
        ):  # fmt: skip
            sums[i] += int(value)
    return {key: tuple(v) for key, v in out.items()}


CHECKED = ("requests", "unpriced", "outcome_count", "output_tokens", "contracted_nanos", "chargeback_nanos",
           "cache_lookups", "savings_nanos", "prompt_cache_savings_nanos")  # fmt: skip


def answered(ledger: SqlLedger, query: CostQuery) -> dict[tuple, tuple[int, ...]]:
    """The question from the rollups: per (bucket label, *group values), the CHECKED measures."""
    return {
        (row.bucket.isoformat() if row.bucket else "", *row.group.values()): tuple(row[m] for m in CHECKED)
        for row in ledger.costs(query)
    }


def by_team(costs: dict[tuple, tuple[int, ...]]) -> dict[tuple, tuple[int, ...]]:
    """(bucket, team, model) sums collapsed to (bucket, team)."""
    out: dict[tuple, tuple[int, ...]] = {}
    for (label, team, _), values in costs.items():
        before = out.get((label, team), (0,) * len(values))
        out[(label, team)] = tuple(a + b for a, b in zip(before, values, strict=True))
    return out


def rollup_tables(url: str) -> dict[str, list[tuple]]:
    """Every rollup row with its dimension id replaced by the dimensions (ids differ by history)."""
    dims = ", ".join(DIMENSIONS)
    tables = {
        kind: raw_query(url, f"SELECT r.*, {dims} FROM {table} r JOIN llm_rollup_dims d USING (dims_id)")
        for kind, table in TIME_TABLES.items()
    }
    for table in (*TEAM_TABLES.values(), "llm_rollup_users", "llm_rollup_sessions", "llm_rollup_steps",
                  "llm_rollup_session_names", "llm_rollup_session_teams"):  # fmt: skip
        tables[table] = raw_query(url, f"SELECT * FROM {table}")
    return {
        kind: sorted(
            tuple(v for i, v in enumerate(row) if not (kind in TIME_TABLES and i == 1)) for row in rows
        )
        for kind, rows in tables.items()
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rollups_equal_a_recomputation_from_the_calls(
    data: st.DataObject,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Random ingest with retries, in-batch duplicates and re-prices, on both backends: every
    question answered from the rollups equals the same question answered from the calls, and a
    ledger migrated from calls alone (the backfill) holds exactly the same rollups."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('rollups') / 'l.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").create_database()
    pool = [pool_entry(n, data.draw) for n in range(12)]
    ledger = open_ledger(url)
    try:
        for _ in range(data.draw(st.integers(1, 4))):
            ledger.insert([pool[i] for i in data.draw(st.lists(st.integers(0, 11), max_size=10))])
        repriced = data.draw(st.lists(st.integers(0, 11), max_size=4, unique=True))
        ledger.update_costs(
            [(pool[i].trace_id, pool[i].span_id, Cost(PRICED, 90 + i, 80 + i, "price-book", "p"), 100 + i,
              i, 2 * i) for i in repriced]
        )  # fmt: skip
        rows = list(ledger.entries(0, T0 + 10 * DAY))
        lo = T0 + data.draw(st.integers(-2 * DAY, 2 * DAY)) // 10**9 * 10**9
        hi = lo + data.draw(st.integers(1, 4 * DAY)) // 10**9 * 10**9 + 10**9
        query = CostQuery(lo, hi, ("team", "model"), bucket="day", tz=data.draw(st.sampled_from(ZONES)))
        assert answered(ledger, query) == expected_costs(rows, query)
        # by team alone: answered from the team-level rollups
        assert answered(ledger, replace(query, group_by=("team",))) == by_team(expected_costs(rows, query))
        incremental = rollup_tables(url)
    finally:
        ledger.close()
    # Rebuild the rollups from the calls alone, as migrations 3, 6 and 9 do on an existing ledger.
    for table in (*TIME_TABLES.values(), *TEAM_TABLES.values(), "llm_rollup_users", "llm_rollup_sessions",
                  "llm_rollup_steps", "llm_rollup_dims"):  # fmt: skip
        raw_execute(url, f"DROP TABLE {table}")
    raw_execute(url, "DELETE FROM schema_migrations WHERE version IN (3, 6, 9)")
    reopened = open_ledger(url)
    try:
        assert rollup_tables(url) == incremental
        assert answered(reopened, query) == expected_costs(rows, query)
    finally:
        reopened.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_range_lines_equal_the_sum_of_their_daily_lines(
    data: st.DataObject,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Random ledgers on both backends: ``usage_ranges`` cut at any midnights (whole months from
    the monthly rollup, other ranges from the daily one) is, per range and dimensions, the sum of
    ``usage_lines`` over the range's days, with the range's first day as its day."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ranges') / 'l.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").create_database()
    pool = [pool_entry(n, data.draw) for n in range(12)]
    # December 2025, the two days either side of January 1st (where the pool's calls are), February
    edges = sorted({T0 - 31 * DAY, T0 - 2 * DAY, T0 - DAY, T0, T0 + DAY, T0 + 2 * DAY, T0 + 31 * DAY})
    cut = sorted(data.draw(st.lists(st.sampled_from(edges), min_size=2, max_size=7, unique=True)))
    start, end, boundaries = cut[0], cut[-1], cut[1:-1]
    ledger = open_ledger(url)
    try:
        ledger.insert(pool)
        ranges = ledger.usage_ranges(start, end, boundaries)
        daily = ledger.usage_lines(start, end)
    finally:
        ledger.close()
    expected: dict[tuple, list[int]] = {}
    for line in daily:
        day_ns = (line.day - date(1970, 1, 1)).days * DAY
        first = max(edge for edge in cut[:-1] if edge <= day_ns)
        key = (first, *(getattr(line, d) for d in DIMENSIONS))
        sums = expected.setdefault(key, [0] * len(MEASURES))
        for i, measure in enumerate(MEASURES):
            sums[i] += getattr(line, measure)
    got = {
        ((line.day - date(1970, 1, 1)).days * DAY, *(getattr(line, d) for d in DIMENSIONS)): [
            getattr(line, m) for m in MEASURES
        ]
        for line in ranges
    }
    assert got == expected
    assert len(got) == len(ranges)  # one line per range and combination


# --- schema -----------------------------------------------------------------------------------


def test_migrations_are_idempotent_and_recorded_once(ledger_url: str) -> None:
    first = open_ledger(ledger_url)  # migrates the empty database
    try:
        assert first.migrate() == []
        assert first.migrate() == []
        assert first.schema_versions() == SCHEMA_VERSIONS
        assert first.schema_versions()[0] == 1
    finally:
        first.close()
    second = open_ledger(ledger_url)  # another start on the migrated database
    try:
        assert second.migrate() == []
    finally:
        second.close()
    rows = raw_query(
        ledger_url, "SELECT version, COUNT(*) FROM schema_migrations GROUP BY version ORDER BY version"
    )
    assert rows == [(v, 1) for v in SCHEMA_VERSIONS]


def test_reopening_keeps_totals(ledger_url: str) -> None:
    first = open_ledger(ledger_url)
    first.insert([entry(n, contracted=2 * n) for n in range(1, 51)])  # 2 * (1 + ... + 50) = 2_550
    first.close()
    again = open_ledger(ledger_url)  # a collector restart
    try:
        assert again.count() == 50
        (total,) = again.spend(T0, T0 + DAY, group_by=())
        assert (total.requests, total.contracted_nanos) == (50, 2_550)
        assert again.insert([entry(50, contracted=100), entry(51, contracted=102)]) == [False, True]
        (total,) = again.spend(T0, T0 + DAY, group_by=())
        assert (total.requests, total.contracted_nanos) == (51, 2_550 + 102)
    finally:
        again.close()


def test_money_and_token_columns_are_integer_typed(ledger_url: str, ledger: SqlLedger) -> None:
    if ledger_url.startswith("sqlite"):
        declared = {
            row[1]: str(row[2]).upper() for row in raw_query(ledger_url, "PRAGMA table_info(llm_calls)")
        }
    else:
        declared = {
            name: str(kind).upper()
            for name, kind in raw_query(
                ledger_url,
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'llm_calls' AND table_schema = current_schema()",
            )
        }
    for column in (*MONEY, "input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens"):
        assert declared[column] == "BIGINT", (column, declared[column])
    floats = {"REAL", "DOUBLE", "DOUBLE PRECISION", "FLOAT", "NUMERIC", "DECIMAL"}
    assert not floats & set(declared.values()), declared
    # A sum above 2**53 stays exact: a float column or float SUM would round 2**53 + 1 to 2**53.
    ledger.insert([entry(1, contracted=2**53), entry(2, contracted=1)])
    (total,) = ledger.spend(T0, T0 + DAY, group_by=())
    assert total.contracted_nanos == 9_007_199_254_740_993  # 2**53 + 1
    assert float(2**53 + 1) != 2**53 + 1  # indeed not representable as a float


# --- several writers --------------------------------------------------------------------------


def test_two_writers_with_overlapping_batches_store_each_row_once(ledger_url: str) -> None:
    open_ledger(ledger_url).close()  # schema first; concurrent migration has its own test
    writers = [open_ledger(ledger_url), open_ledger(ledger_url)]
    flags: list[list[bool]] = [[], []]
    barrier = threading.Barrier(2)

    def writer(index: int, starts: list[int]) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            for start in starts:
                flags[index].extend(
                    writers[index].insert([entry(n, contracted=2) for n in range(start, start + 64)])
                )

        return run

    # Writer 0 walks up over 0..575, writer 1 walks down over 32..607: every batch overlaps others.
    up = list(range(0, 576, 64))
    down = list(range(544, 0, -64))  # 544, 480, ..., 32: 9 batches
    try:
        assert run_threads([writer(0, up), writer(1, down)]) == []
        distinct = len(set(range(576)) | set(range(32, 608)))  # ids 0..607
        assert distinct == 608
        assert writers[0].count() == distinct
        assert sum(flags[0]) + sum(flags[1]) == distinct
        assert len(flags[0]) == len(flags[1]) == 9 * 64
        (total,) = writers[1].spend(T0, T0 + DAY, group_by=())
        assert total.contracted_nanos == 2 * distinct
    finally:
        for opened in writers:
            opened.close()


def test_concurrent_migrations_both_succeed(ledger_url: str) -> None:
    barrier = threading.Barrier(2)
    opened: list[SqlLedger] = []
    applied: list[list[int]] = []
    lock = threading.Lock()

    def start() -> None:
        barrier.wait()
        ledger = open_ledger(ledger_url)  # migrates on open
        with lock:
            opened.append(ledger)

    assert run_threads([start, start]) == []
    migrate_barrier = threading.Barrier(2)

    def migrate(ledger: SqlLedger) -> Callable[[], None]:
        def run() -> None:
            migrate_barrier.wait()
            result = ledger.migrate()
            with lock:
                applied.append(result)

        return run

    try:
        assert run_threads([migrate(ledger) for ledger in opened]) == []
        assert applied == [[], []]
        for ledger in opened:
            assert ledger.schema_versions() == SCHEMA_VERSIONS
        assert opened[0].insert([entry(1)]) == [True] and opened[1].insert([entry(1)]) == [False]
    finally:
        for ledger in opened:
            ledger.close()


# --- the collector on PostgreSQL --------------------------------------------------------------

# Price-book rates for a self-hosted model (USD per million tokens): input 0.35, output 0.40.
# One call of 1,000 input and 200 output tokens: 1000 * 0.35 / 1e6 + 200 * 0.40 / 1e6
#   = 0.00035 + 0.00008 = 0.00043 USD = 430_000 nano-dollars (contracted).
# Chargeback cost_plus with 10 % markup + 5 % platform fee: 430_000 * 1.15 = 494_500.
CALL_NANOS = 430_000
CALL_CHARGEBACK_NANOS = 494_500
COLLECTOR_CONFIG = """\
version: 1
price_book:
  entries:
    - name: onprem
      model: "onprem-llm-70b"
      input: 0.35
      output: 0.40
chargeback:
  model: cost_plus
  markup_percent: 10
  platform_fee_percent: 5
"""


def onprem_spans(count: int, team: str) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "ledger-backends-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for n in range(count):
        with tracer.start_as_current_span("chat onprem-llm-70b") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "vllm",
                    "gen_ai.request.model": "onprem-llm-70b",
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.output_tokens": 200,
                    "llmcost.team": team,
                    "llmcost.feature": "answers",
                    "user.id": f"user-{n}",
                }
            )
        with tracer.start_as_current_span("GET /healthz"):  # not an LLM call
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


@pytest.fixture
def clean_postgres_url(postgres_url: str) -> str:  # noqa: F811
    """The session database, emptied (TRUNCATE) for this test: the calls and their rollups."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'llm_%' OR tablename = 'budget_reservations'"
            )
        ]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)}")
    return postgres_url


@pytest.fixture
def pg_collector(collector: Collectors, clean_postgres_url: str) -> CollectorApp:
    return collector(
        config=load_config("collector.yaml", text=COLLECTOR_CONFIG), ledger_url=clean_postgres_url
    )


def pg_totals(url: str) -> tuple[int, int, int]:
    """(rows, SUM(contracted), SUM(chargeback)) straight from PostgreSQL."""
    rows = raw_query(url, "SELECT COUNT(*), SUM(contracted_cost_nanos), SUM(chargeback_nanos) FROM llm_calls")
    count, contracted, chargeback = rows[0]
    return int(count), int(contracted or 0), int(chargeback or 0)


def test_collector_on_postgres_bills_an_export_once(
    pg_collector: CollectorApp, clean_postgres_url: str
) -> None:
    exporter = OTLPSpanExporter(endpoint=pg_collector.urls()["otlp_http"], timeout=10)
    spans = onprem_spans(3, team="search") + onprem_spans(2, team="support")
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # acknowledged only after commit
    # 5 LLM calls (the 5 /healthz spans are skipped): 5 * 430_000 = 2_150_000 contracted
    assert pg_totals(clean_postgres_url) == (5, 5 * CALL_NANOS, 5 * CALL_CHARGEBACK_NANOS)
    rows = {r.group["team"]: r for r in pg_collector.ledger.spend(0, time.time_ns() + HOUR)}
    assert (rows["search"].requests, rows["search"].contracted_nanos) == (3, 3 * CALL_NANOS)  # 1_290_000
    assert (rows["support"].requests, rows["support"].chargeback_nanos) == (2, 2 * CALL_CHARGEBACK_NANOS)
    assert rows["search"].tokens["input"] == 3_000 and rows["search"].tokens["output"] == 600

    assert exporter.export(spans) is SpanExportResult.SUCCESS  # a client retry of the same export
    assert pg_totals(clean_postgres_url) == (5, 5 * CALL_NANOS, 5 * CALL_CHARGEBACK_NANOS)
    assert pg_collector.registry.get_sample_value("llmcost_collector_spans_duplicate_total") == 5
    requests = pg_collector.registry.get_sample_value(
        "llmcost_requests_total",
        {"team": "search", "feature": "answers", "environment": "", "provider": "vllm",
         "model": "onprem-llm-70b", "status": "ok"},
    )  # fmt: skip
    assert requests == 3  # the retry did not inflate the counter
    exporter.shutdown()


def test_collector_restart_on_postgres_keeps_totals(collector: Collectors, clean_postgres_url: str) -> None:
    config = load_config("collector.yaml", text=COLLECTOR_CONFIG)
    spans = onprem_spans(4, team="platform")
    first = collector(config=config, ledger_url=clean_postgres_url)
    export(first, spans)
    collector.stop(first)
    restarted = collector(config=config, ledger_url=clean_postgres_url)
    (total,) = restarted.ledger.spend(0, time.time_ns() + HOUR, group_by=())
    assert (total.requests, total.contracted_nanos) == (4, 4 * CALL_NANOS)  # 1_720_000
    export(restarted, spans)  # retried against the new process
    assert pg_totals(clean_postgres_url) == (4, 4 * CALL_NANOS, 4 * CALL_CHARGEBACK_NANOS)


def test_postgres_start_time_is_an_indexed_utc_timestamp(pg_url: str) -> None:  # noqa: F811
    import psycopg

    ledger = open_ledger(pg_url)
    jan31_last = T0 + 31 * DAY - 1_000  # 2026-01-31T23:59:59.999999Z
    ledger.insert([make_entry(1, start_ns=jan31_last), make_entry(2, start_ns=jan31_last + 1_000)])
    ledger.close()
    with psycopg.connect(pg_url) as conn:
        february = conn.execute("SELECT COUNT(*) FROM llm_calls WHERE start_time >= '2026-02-01T00:00:00Z'")
        assert february.fetchone() == (1,)
        months = conn.execute(
            "SELECT to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
            "date_trunc('month', start_time AT TIME ZONE 'UTC')::date::text FROM llm_calls ORDER BY start_time_ns"
        ).fetchall()
        assert months == [
            ("2026-01-31 23:59:59.999999", "2026-01-01"),
            ("2026-02-01 00:00:00.000000", "2026-02-01"),
        ]
        indexes = {
            row[0] for row in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'llm_calls'")
        }
    assert any("(start_time)" in ddl for ddl in indexes)
    assert any("(team, start_time_ns)" in ddl for ddl in indexes)


RESERVE_CONFIG = """
version: 1
budgets:
  - {name: org-cap, amount_usd: 0.0033, period: monthly, basis: provider, hard_limit: true}
"""
# gpt-4o-mini, no input, 1000 output tokens at $0.60 per Mtok: $0.0006 per reservation.
RESERVATION = {"provider": "openai", "model": "gpt-4o-mini", "max_output_tokens": 1000}


def api_post(app: CollectorApp, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        app.urls()["web"] + path.lstrip("/"), data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_two_replicas_on_postgres_share_reservations(collector: Collectors, clean_postgres_url: str) -> None:
    """24 concurrent reservations split over two collectors on one database, against a cap of
    5.5 of them: exactly 5 are granted, and a release on one replica frees room on the other."""
    config = load_config("collector.yaml", text=RESERVE_CONFIG)
    replicas = [collector(config=config, ledger_url=clean_postgres_url) for _ in range(2)]
    answers: list[tuple[int, dict[str, Any]]] = []

    def reserve(n: int) -> None:
        answers.append(api_post(replicas[n % 2], "/api/v1/budgets/reserve", RESERVATION))

    threads = [threading.Thread(target=reserve, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted = [body for status, body in answers if status == 200]
    assert len(granted) == 5 and sorted({status for status, _ in answers}) == [200, 409]
    held = raw_query(
        clean_postgres_url, "SELECT COUNT(*), SUM(amount_nanos) FROM budget_reservations WHERE state = 'held'"
    )
    assert held == [(5, 5 * 600_000)]
    assert api_post(replicas[0], "/api/v1/budgets/reserve", RESERVATION)[0] == 409
    # settled on the other replica without a span: released, so the first replica has room again
    settle = {"reservation_id": granted[0]["reservation_id"], "outcome": "error"}
    assert api_post(replicas[1], "/api/v1/budgets/settle", settle) == (
        200, {"reservation_id": granted[0]["reservation_id"], "state": "released", "held_usd": "0.000000000"}
    )  # fmt: skip
    assert api_post(replicas[0], "/api/v1/budgets/reserve", RESERVATION)[0] == 200


def test_reservations_count_until_their_span_is_in_the_ledger_and_reset_with_the_period(
    ledger: SqlLedger,
) -> None:
    """A hold counts until the call's span is in the ledger (then the ledger does); holds of the
    previous calendar period do not count in the next."""
    from llmcost_collector.budget.reserve import CallScope, Estimate, Granted, Refused, Reservations
    from llmcost_collector.config.budgets import Budget

    budget = Budget(name="cap", amount_usd="0.000003", period="daily", basis="provider", hard_limit=True)
    now = [datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc)]
    reservations = Reservations(ledger, lambda: [budget], lambda: now[0])
    entry = make_entry(1, nanos=2_000, start_ns=int(now[0].timestamp()) * 10**9)
    first = reservations.reserve(
        CallScope(), Estimate(2_000, 2_000), ceiling_nanos=None, ttl_ns=HOUR,
        trace_id=entry.trace_id, span_id=entry.span_id,
    )  # fmt: skip
    assert isinstance(first, Granted)
    refused = reservations.reserve(CallScope(), Estimate(2_000, 2_000), ceiling_nanos=None, ttl_ns=HOUR)
    assert isinstance(refused, Refused) and (refused.spent_nanos, refused.reserved_nanos) == (0, 2_000)
    ledger.insert([entry])  # the call's span lands before its settlement: counted once, by the ledger
    again = reservations.reserve(CallScope(), Estimate(1_000, 1_000), ceiling_nanos=None, ttl_ns=HOUR)
    assert isinstance(again, Granted)
    refused = reservations.reserve(CallScope(), Estimate(1, 1), ceiling_nanos=None, ttl_ns=HOUR)
    assert isinstance(refused, Refused) and (refused.spent_nanos, refused.reserved_nanos) == (2_000, 1_000)
    now[0] = datetime(2026, 12, 1, 0, 1, tzinfo=timezone.utc)  # a new day: nothing spent or held
    assert isinstance(
        reservations.reserve(CallScope(), Estimate(3_000, 3_000), ceiling_nanos=None, ttl_ns=HOUR), Granted
    )


def test_an_unsettled_reservation_expires_once_as_a_leak(ledger: SqlLedger) -> None:
    from llmcost_collector.budget.reserve import CallScope, Estimate, Granted, Reservations
    from llmcost_collector.config.budgets import Budget

    budget = Budget(name="cap", amount_usd="0.000003", period="daily", hard_limit=True)
    now = [datetime(2026, 11, 30, 12, tzinfo=timezone.utc)]
    leaks: list[tuple[str, int]] = []
    reservations = Reservations(ledger, lambda: [budget], lambda: now[0], lambda b, n: leaks.append((b, n)))
    held = reservations.reserve(CallScope(), Estimate(3_000, 3_000), ceiling_nanos=None, ttl_ns=HOUR)
    assert isinstance(held, Granted) and reservations.expire() == 0
    now[0] = datetime(2026, 11, 30, 13, tzinfo=timezone.utc)  # its expiry, never settled
    assert (reservations.expire(), reservations.expire()) == (1, 0) and leaks == [("cap", 1)]
    again = reservations.reserve(CallScope(), Estimate(3_000, 3_000), ceiling_nanos=None, ttl_ns=HOUR)
    assert isinstance(again, Granted)  # the leaked hold no longer counts
    assert reservations.settle(held.reservation_id, "success", None, hold_ns=HOUR).state == "expired"
