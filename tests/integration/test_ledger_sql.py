"""The ledger on SQLite and on a real PostgreSQL: exactly-once, exact sums, migrations, replicas."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmcost_collector.ledger import VERSIONS, LedgerEntry, open_ledger
from llmcost_collector.ledger.sql import SqlLedger
from llmcost_collector.model import PRICED, Attribution, Cost, LlmCall, Usage

from tests.pg import pg_cluster, pg_url  # noqa: F401  (fixtures: a fresh database per test)

pytestmark = pytest.mark.integration
NOW = time.time_ns()


def entry(
    n: int, team: str = "search", nanos: int | None = 1_000_001, model: str = "gpt-4o", response: str = ""
) -> LedgerEntry:
    call = LlmCall(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time_ns=NOW - n, end_time_ns=NOW, provider="openai",
        operation="chat", request_model=model, response_model=response,
        usage=Usage(input_tokens=100, cache_read_tokens=20, output_tokens=50, reasoning_tokens=10),
        attribution=Attribution(team=team, feature="answers", user_id=f"u{n % 3}", properties={"tenant": "acme"}),
    )  # fmt: skip
    cost = (
        Cost(PRICED, nanos, nanos, "genai-prices", "openai/gpt-4o")
        if nanos is not None
        else Cost.unpriced("unknown")
    )
    return LedgerEntry.from_call(call, cost, None if nanos is None else nanos * 2, NOW)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[SqlLedger]:
    opened = open_ledger(ledger_url)
    yield opened
    opened.close()


def test_duplicates_are_never_inserted_twice(ledger: SqlLedger) -> None:
    first = [entry(1), entry(2), entry(1)]  # a duplicate inside the batch
    assert ledger.insert(first) == [True, True, False]
    assert ledger.insert([entry(2), entry(3)]) == [False, True]  # a retried export
    assert ledger.count() == 3


def test_spend_sums_are_exact_integers(ledger: SqlLedger) -> None:
    ledger.insert(
        [
            entry(1, "search"),
            entry(2, "search"),
            entry(3, "support", nanos=7),
            entry(4, "support", nanos=None),
        ]
    )
    rows = {r.group["team"]: r for r in ledger.spend(0, NOW + 1, group_by=("team",))}
    assert rows["search"].contracted_nanos == 2_000_002  # 1,000,001 * 2: no float rounding
    assert rows["search"].chargeback_nanos == 4_000_004
    assert (rows["support"].requests, rows["support"].unpriced, rows["support"].contracted_nanos) == (2, 1, 7)
    assert rows["search"].tokens == {
        "input": 200,
        "cache_read": 40,
        "cache_write": 0,
        "output": 100,
        "reasoning": 20,
    }
    (only,) = ledger.spend(0, NOW + 1, group_by=("team",), filters={"team": "support", "user_id": "u0"})
    assert only.requests == 1  # entry(3): user u0
    assert ledger.spend(NOW + 1, NOW + 2) == []
    with pytest.raises(ValueError):
        ledger.spend(0, NOW, group_by=("team; DROP TABLE llm_calls",))


def test_model_groups_by_the_response_model_when_reported(ledger: SqlLedger) -> None:
    ledger.insert([entry(1, model="gpt-4o", response="gpt-4o-2024-08-06"), entry(2, model="gpt-4o")])
    assert {r.group["model"]: r.requests for r in ledger.spend(0, NOW + 1, group_by=("model",))} == {
        "gpt-4o-2024-08-06": 1, "gpt-4o": 1,
    }  # fmt: skip


def test_unpriced_then_repriced(ledger: SqlLedger) -> None:
    ledger.insert([entry(1, nanos=None), entry(2)])
    (unpriced,) = ledger.unpriced(10)
    assert unpriced.to_call().usage.cache_read_tokens == 20 and unpriced.to_call().attribution.properties == {
        "tenant": "acme"
    }
    changed = ledger.update_costs(
        [(unpriced.trace_id, unpriced.span_id, Cost(PRICED, 5, 4, "price-book", "pb:x"), 6)]
    )
    assert changed == 1 and ledger.unpriced(10) == []
    (row,) = ledger.spend(0, NOW + 1, group_by=())
    assert (row.contracted_nanos, row.chargeback_nanos, row.unpriced) == (1_000_001 + 4, 2_000_002 + 6, 0)


def test_migrations_are_idempotent_and_reopen_keeps_totals(ledger_url: str) -> None:
    first = open_ledger(ledger_url)
    first.insert([entry(1), entry(2)])
    assert first.migrate() == [] and first.schema_versions() == list(VERSIONS)
    first.close()
    again = open_ledger(ledger_url)
    try:
        assert again.count() == 2
        assert again.spend(0, NOW + 1, group_by=())[0].contracted_nanos == 2_000_002
    finally:
        again.close()


def test_money_columns_are_integers(ledger: SqlLedger) -> None:
    if ledger.dialect.name == "sqlite":
        types = {row[1]: row[2] for row in ledger._read("PRAGMA table_info(llm_calls)")}
    else:
        types = {
            name: kind.upper()
            for name, kind in ledger._read(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'llm_calls'"
            )
        }
    for column in ("list_cost_nanos", "contracted_cost_nanos", "chargeback_nanos", "savings_nanos"):
        assert types[column] == "BIGINT", (column, types[column])


def test_replicas_writing_the_same_spans_bill_each_once(pg_url: str) -> None:  # noqa: F811
    ledgers = [open_ledger(pg_url) for _ in range(2)]  # two collector replicas
    flags: list[bool] = []
    lock = threading.Lock()

    def write(ledger: SqlLedger, offset: int) -> None:
        for start in range(offset, 400, 50):
            result = ledger.insert([entry(n) for n in range(start, start + 100)])
            with lock:
                flags.extend(result)

    threads = [threading.Thread(target=write, args=(led, i * 25)) for i, led in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    distinct = ledgers[0].count()
    assert distinct == 475  # ids 0..474
    assert sum(flags) == distinct
    for led in ledgers:
        led.close()


def test_concurrent_migrations_on_postgres(pg_url: str) -> None:  # noqa: F811
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_ledger(pg_url).close()
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ledger = open_ledger(pg_url)
    assert ledger.schema_versions() == list(VERSIONS)
    ledger.close()
