"""The ledger's contract, run against SQLite and a real PostgreSQL 15 alike.

Exactly-once under retried batches and concurrent writers, totals that survive a restart,
idempotent migrations, exact nano-dollar sums, re-pricing, and integer-only money columns.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmcost_collector.ledger import VERSIONS, SqlLedger, open_ledger
from llmcost_collector.model import PRICED, Cost

from tests.pg import pg_cluster, pg_url  # noqa: F401  (fixtures)
from tests.unit.test_ledger import T0, make_entry

pytestmark = pytest.mark.integration
DAY = 86_400 * 10**9


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[SqlLedger]:
    opened = open_ledger(ledger_url)
    yield opened
    opened.close()


def test_retried_and_repeated_calls_are_billed_once(ledger: SqlLedger) -> None:
    assert ledger.insert([make_entry(1), make_entry(2), make_entry(1)]) == [True, True, False]
    assert ledger.insert([make_entry(2), make_entry(3), make_entry(3), make_entry(1)]) == [
        False,
        True,
        False,
        False,
    ]
    batch = [make_entry(n) for n in range(4, 600)]
    assert all(ledger.insert(batch)) and not any(ledger.insert(batch))  # a whole export retried
    (total,) = ledger.spend(0, T0 + DAY, group_by=())
    assert ledger.count() == total.requests == 599
    assert total.contracted_nanos == 599 * 1_000_001


def test_reopening_keeps_every_row_and_total(ledger_url: str) -> None:
    first = open_ledger(ledger_url)
    first.insert([make_entry(n, nanos=n) for n in range(1, 101)])
    first.close()
    again = open_ledger(ledger_url)  # a collector restart
    try:
        assert again.migrate() == []
        assert again.insert([make_entry(100, nanos=100), make_entry(101, nanos=101)]) == [False, True]
        (total,) = again.spend(0, T0 + DAY, group_by=())
        assert (total.requests, total.contracted_nanos) == (101, sum(range(1, 102)))
    finally:
        again.close()


def test_migrations_are_recorded_once_and_idempotent(ledger_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:  # replicas starting together
        try:
            open_ledger(ledger_url).close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ledger = open_ledger(ledger_url)
    try:
        assert ledger.migrate() == [] and ledger.migrate() == []
        assert ledger.schema_versions() == list(VERSIONS)
    finally:
        ledger.close()


def test_spend_groups_and_filters_are_exact_nanos(ledger: SqlLedger) -> None:
    big = 2**53 + 1  # a float sum would round this; integer SQL must not
    ledger.insert(
        [
            make_entry(1, team="search", nanos=big),
            make_entry(2, team="search", nanos=big),
            make_entry(3, team="support", nanos=7),
            make_entry(4, team="support", nanos=None),
            make_entry(5, team="support", nanos=3, response_model="gpt-4o-2024-08-06"),
            make_entry(6, team="search", nanos=5, start_ns=T0 + DAY),  # outside [T0, T0 + DAY)
        ]
    )
    rows = {r.group["team"]: r for r in ledger.spend(T0, T0 + DAY)}
    assert set(rows) == {"search", "support"}
    search, support = rows["search"], rows["support"]
    assert (search.requests, search.unpriced, search.contracted_nanos) == (2, 0, 2 * big)
    assert (search.list_nanos, search.chargeback_nanos) == (2 * big + 2, 4 * big)
    assert search.tokens == {"input": 200, "cache_read": 40, "cache_write": 8, "output": 100, "reasoning": 20}
    assert (support.requests, support.unpriced, support.contracted_nanos, support.chargeback_nanos) == (
        3,
        1,
        10,
        20,
    )

    by_model = {
        tuple(r.group.values()): r.requests for r in ledger.spend(T0, T0 + DAY, group_by=("team", "model"))
    }
    assert by_model == {
        ("search", "gpt-4o"): 2,
        ("support", "gpt-4o"): 2,
        ("support", "gpt-4o-2024-08-06"): 1,
    }
    users = ledger.spend(T0, T0 + DAY, group_by=("user_id",), filters={"team": "support", "model": "gpt-4o"})
    assert [(r.group["user_id"], r.requests, r.unpriced, r.contracted_nanos) for r in users] == [
        ("u0", 1, 0, 7), ("u1", 1, 1, None),
    ]  # calls 3 and 4; call 5 ran another model  # fmt: skip
    (unpriced_only,) = ledger.spend(
        T0, T0 + DAY, group_by=("price_status",), filters={"price_status": "unpriced"}
    )
    assert (unpriced_only.requests, unpriced_only.contracted_nanos) == (1, None)  # unknown, never zero
    assert ledger.spend(T0 + 2 * DAY, T0 + 3 * DAY) == []
    (day2,) = ledger.spend(T0 + DAY, T0 + 2 * DAY, group_by=())  # start inclusive, end exclusive
    assert (day2.requests, day2.contracted_nanos) == (1, 5)


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


def test_unpriced_calls_are_repriced_in_place(ledger: SqlLedger) -> None:
    ledger.insert([make_entry(1, nanos=None), make_entry(2), make_entry(3, nanos=None, start_ns=T0 - 5)])
    unpriced = ledger.unpriced(10)
    assert [e.span_id for e in unpriced] == [f"{3:016x}", f"{1:016x}"]  # oldest first
    assert unpriced[0].to_call().usage.cache_read_tokens == 20
    assert unpriced[0].to_call().attribution.properties == {"tenant": "acme"}
    assert ledger.unpriced(1) == unpriced[:1]
    changed = ledger.update_costs(
        [(e.trace_id, e.span_id, Cost(PRICED, 5, 4, "price-book", "pb:x", "2026-01-01"), 6) for e in unpriced]
        + [("f" * 32, "f" * 16, Cost(PRICED, 1, 1), 1)]  # not in the ledger: nothing changes
    )
    assert changed == 2 and ledger.unpriced(10) == []
    (total,) = ledger.spend(T0 - 10, T0 + DAY, group_by=())
    assert (total.unpriced, total.contracted_nanos, total.chargeback_nanos) == (
        0,
        1_000_001 + 8,
        2_000_002 + 12,
    )
    repriced = {e.span_id: e for e in ledger.entries(T0 - 10, T0 + DAY)}
    assert repriced[f"{1:016x}"].price_id == "pb:x" and repriced[f"{1:016x}"].repriced_at_ns
    assert repriced[f"{2:016x}"].repriced_at_ns is None


def test_money_columns_are_integer_typed(ledger: SqlLedger) -> None:
    types = ledger.column_types()
    for column in ("list_cost_nanos", "contracted_cost_nanos", "chargeback_nanos", "savings_nanos"):
        assert types[column] == "BIGINT", (column, types[column])
    for column in ("input_tokens", "cache_read_tokens", "output_tokens", "start_time_ns"):
        assert types[column] == "BIGINT"
    assert not {"REAL", "DOUBLE PRECISION", "NUMERIC", "FLOAT"} & set(types.values())


def test_concurrent_writers_bill_each_call_once(ledger_url: str) -> None:
    """Two writers (replicas on PostgreSQL; two connections on one SQLite file) with overlapping
    batches, one walking up and one down so their key orders cross."""
    ledgers = [open_ledger(ledger_url) for _ in range(2)]
    flags: list[bool] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def write(ledger: SqlLedger, starts: range, seed: int) -> None:
        rng = random.Random(seed)
        try:
            for start in starts:
                batch = [make_entry(n) for n in range(start, start + 100)]
                rng.shuffle(batch)
                result = ledger.insert(batch)
                with lock:
                    flags.extend(result)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(ledgers[0], range(0, 400, 50), 1)),
        threading.Thread(target=write, args=(ledgers[1], range(375, -25, -50), 2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert ledgers[0].count() == 475  # ids 0..474
        assert sum(flags) == 475
        (total,) = ledgers[1].spend(0, T0 + DAY, group_by=())
        assert total.contracted_nanos == 475 * 1_000_001
    finally:
        for ledger in ledgers:
            ledger.close()


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
