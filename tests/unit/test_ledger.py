"""The ledger on SQLite: URLs, entries, flags, queries and threads (PostgreSQL: integration tests)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmcost_collector.ledger import COLUMNS, SCHEMA_VERSIONS, LedgerEntry, SqlLedger, open_ledger
from llmcost_collector.ledger.entry import (
    INT_COLUMNS,
    MAX_PROPERTIES_CHARS,
    MAX_TEXT_CHARS,
    _storage_fault_by_column,
    storage_fault,
)
from llmcost_collector.model import PRICED, Attribution, Cost, LlmCall, Usage

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def make_call(n: int, *, team: str = "search", start_ns: int | None = None, **extra: object) -> LlmCall:
    call = LlmCall(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        start_time_ns=T0 + n if start_ns is None else start_ns,
        end_time_ns=(T0 + n if start_ns is None else start_ns) + 1_000_000,
        provider="openai",
        operation="chat",
        request_model="gpt-4o",
        response_model="",
        usage=Usage(input_tokens=100, cache_read_tokens=20, cache_write_tokens=4, output_tokens=50,
                    reasoning_tokens=10),
        attribution=Attribution(team=team, feature="answers", user_id=f"u{n % 3}", properties={"tenant": "acme"}),
    )  # fmt: skip
    for name, value in extra.items():  # LlmCall fields, else Attribution fields
        setattr(call if hasattr(call, name) else call.attribution, name, value)
    return call


def make_entry(
    n: int,
    *,
    team: str = "search",
    nanos: int | None = 1_000_001,
    start_ns: int | None = None,
    **extra: object,
) -> LedgerEntry:
    """Call ``n``: priced at ``nanos`` contracted (list = nanos + 1, chargeback = 2 * nanos), or unpriced."""
    call = make_call(n, team=team, start_ns=start_ns, **extra)
    if nanos is None:
        return LedgerEntry.from_call(call, Cost.unpriced("unknown model"), None, T0)
    cost = Cost(PRICED, nanos + 1, nanos, "genai-prices", "openai/gpt-4o", "2024-08-06")
    return LedgerEntry.from_call(call, cost, 2 * nanos, T0)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    opened = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def test_urls_open_the_same_ledger_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url, path in (
        ("sqlite:///relative/ledger.db", tmp_path / "relative" / "ledger.db"),
        (f"sqlite:///{tmp_path}/abs.db", tmp_path / "abs.db"),  # sqlite:////abs/path.db
    ):
        opened = open_ledger(url)
        assert opened.insert([make_entry(1)]) == [True]
        opened.close()
        assert path.exists(), url
    memory = open_ledger("sqlite:///:memory:")
    assert memory.insert([make_entry(1), make_entry(1)]) == [True, False] and memory.count() == 1
    memory.close()
    for bad in ("mysql://x/y", "sqlite:///", "sqlite:///x.db?journal=off", "sqlite:///x.db?synchronous=off"):
        with pytest.raises(ValueError):
            open_ledger(bad)


def test_default_durability_is_wal_with_full_sync(ledger: SqlLedger) -> None:
    conn = ledger._write_conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_entry_keeps_every_field_and_round_trips(ledger: SqlLedger) -> None:
    call = make_call(7, status="error", error_type="RateLimitError", cache_hit=True, outcome="resolved",
                     outcome_count=2, server_address="api.openai.com", dialect="openllmetry")  # fmt: skip
    call.usage.estimated = True
    call.usage.cache_write_1h_tokens = 3
    call.attribution.team_source = "rule"
    entry = LedgerEntry.from_call(
        call, Cost(PRICED, 11, 9, "price-book", "pb:acme", "2026-01-01"), 12, T0 + 5
    )
    assert len(entry.values()) == len(COLUMNS)
    assert ledger.insert([entry]) == [True]
    (stored,) = ledger.entries(T0, T0 + 10**9)
    assert stored == entry  # every column comes back as it went in
    assert stored.to_call() == call and stored.cost == Cost(
        PRICED, 11, 9, "price-book", "pb:acme", "2026-01-01"
    )
    assert (stored.usage_estimated, stored.cache_hit, stored.currency, stored.properties) == (
        1, 1, "USD", '{"tenant": "acme"}',
    )  # fmt: skip


def test_flags_mark_only_first_copies_as_new(ledger: SqlLedger) -> None:
    assert ledger.insert([]) == []
    assert ledger.insert([make_entry(1), make_entry(2), make_entry(1), make_entry(1)]) == [
        True,
        True,
        False,
        False,
    ]
    assert ledger.insert([make_entry(3), make_entry(2), make_entry(3)]) == [True, False, False]
    assert ledger.count() == 3


def test_start_time_is_an_exact_utc_timestamp(ledger: SqlLedger, tmp_path: Path) -> None:
    jan31_last = T0 + 30 * 86_400 * 10**9 + 86_399 * 10**9 + 999_999_999  # 2026-01-31T23:59:59.999999999Z
    ledger.insert([make_entry(1, start_ns=jan31_last), make_entry(2, start_ns=jan31_last + 1)])
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        stamps = [row[0] for row in conn.execute("SELECT start_time FROM llm_calls ORDER BY start_time_ns")]
        february = conn.execute("SELECT COUNT(*) FROM llm_calls WHERE start_time >= '2026-02-01'").fetchone()[
            0
        ]
        by_month = conn.execute(
            "SELECT strftime('%Y-%m', start_time), COUNT(*) FROM llm_calls GROUP BY 1"
        ).fetchall()
    assert stamps == ["2026-01-31 23:59:59.999999999", "2026-02-01 00:00:00.000000000"]
    assert february == 1 and by_month == [("2026-01", 1), ("2026-02", 1)]


def test_money_columns_are_bigint_and_hold_integers(ledger: SqlLedger, tmp_path: Path) -> None:
    types = ledger.column_types()
    for column in ("list_cost_nanos", "contracted_cost_nanos", "chargeback_nanos", "savings_nanos"):
        assert types[column] == "BIGINT"
    ledger.insert([make_entry(1), make_entry(2, nanos=None)])
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        kinds = set(
            conn.execute("SELECT typeof(contracted_cost_nanos), typeof(chargeback_nanos) FROM llm_calls")
        )
    assert kinds == {("integer", "integer"), ("null", "null")}


def test_group_by_and_filter_names_are_allow_listed(ledger: SqlLedger) -> None:
    ledger.insert([make_entry(1)])
    for bad in ("team; DROP TABLE llm_calls", "trace_id", "list_cost_nanos", "1"):
        with pytest.raises(ValueError):
            ledger.spend(T0, T0 + 10, group_by=(bad,))
        with pytest.raises(ValueError):
            ledger.spend(T0, T0 + 10, filters={bad: "x"})
        with pytest.raises(ValueError):
            ledger.top(bad, T0, T0 + 10)
    # A hostile *value* is just a value.
    assert ledger.spend(T0, T0 + 10, filters={"team": "x' OR '1'='1"}) == []
    assert ledger.count() == 1


def test_readers_run_while_the_writer_writes(ledger: SqlLedger) -> None:
    """The collector inserts from one thread while HTTP threads read totals."""
    errors: list[BaseException] = []
    done = threading.Event()
    seen: list[int] = []

    def read() -> None:
        try:
            while not done.is_set():
                rows = ledger.spend(T0, T0 + 10**12, group_by=())
                total = rows[0].requests if rows else 0
                assert rows == [] or rows[0].contracted_nanos == total * 1_000_001  # whole batches only
                seen.append(total)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for batch in range(20):
        assert all(ledger.insert([make_entry(batch * 100 + i) for i in range(100)]))
    done.set()
    for thread in readers:
        thread.join()
    assert errors == [] and seen and all(total % 100 == 0 for total in seen)
    assert ledger.count() == 2000


def test_schema_is_migrated_to_the_latest_version(ledger: SqlLedger) -> None:
    assert ledger.schema_versions() == SCHEMA_VERSIONS
    assert set(COLUMNS) | {"start_time"} == set(ledger.column_types())
    types = ledger.column_types()
    assert {name for name in COLUMNS if types[name] == "BIGINT"} == INT_COLUMNS  # what inserts cast to


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(COLUMNS),
            st.one_of(
                st.text(alphabet="ab\x00", max_size=3),
                st.just("x" * (MAX_TEXT_CHARS + 1)),
                st.just("p" * (MAX_PROPERTIES_CHARS + 1)),
                st.integers(min_value=-(2**64), max_value=2**64),
                st.none(),
            ),
        ),
        max_size=3,
    )
)
def test_the_fast_storage_check_answers_as_the_column_walk(edits: list[tuple[str, object]]) -> None:
    """Any row, with NULs, over-long texts or out-of-range integers in any column: the check
    every span goes through gives the same answer as walking the columns one by one."""
    entry = make_entry(1)._replace(**dict(edits))
    assert storage_fault(entry) == _storage_fault_by_column(entry)
