"""Reconciliation with the real parts: the recorded run on a SQLite file and on a real
PostgreSQL 15 server (tests/pg.py), and the running collector's ``/metrics`` over HTTP showing
it. The importers and the comparison are tested in tests/unit/test_reconcile.py."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.config.schema import Config
from llmcost_collector.ledger import SqlLedger, open_ledger
from llmcost_collector.model import Usage
from llmcost_collector.periods import epoch_ns
from llmcost_collector.reconcile.compare import reconcile
from llmcost_collector.reconcile.files import load
from llmcost_collector.reconcile.runs import last_runs, record_run
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Collectors
from tests.pg import pg_cluster, pg_url, postgres_url  # noqa: F401  (fixtures)
from tests.support import priced_entry

BILLS = Path(__file__).parents[1] / "golden" / "bills"
NOV = (
    epoch_ns(datetime(2026, 11, 1, tzinfo=timezone.utc)),
    epoch_ns(datetime(2026, 12, 1, tzinfo=timezone.utc)),
)


def seeded(ledger: SqlLedger) -> SqlLedger:
    """Two of the four gpt-4o-mini calls the usage bill has on 1 November (250 + 50 cached input,
    75 output each): 750 of the bill's 3750 tokens, a capture of exactly 0.2."""
    usage = Usage(input_tokens=250, cache_read_tokens=50, output_tokens=75)
    ledger.insert([priced_entry(Config.default(), n, team="search", day=date(2026, 11, 1), model="gpt-4o-mini",
                                usage=usage) for n in (1, 2)])  # fmt: skip
    return ledger


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlLedger]:
    url = (
        f"sqlite:///{tmp_path / 'l.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    opened = open_ledger(url)
    yield opened
    opened.close()


def test_a_later_run_replaces_the_providers_recorded_capture(ledger: SqlLedger) -> None:
    rows = load(BILLS / "openai_usage.json")[1]
    record_run(seeded(ledger), reconcile(ledger, rows, *NOV, "2026-10"), now=1_000)
    record_run(
        ledger, reconcile(ledger, rows + load(BILLS / "anthropic_usage.json")[1], *NOV, "2026-11"), now=2_000
    )
    runs = [
        (r.provider, r.period, r.capture, r.basis, r.bill, r.ledger, r.recorded_at) for r in last_runs(ledger)
    ]
    assert runs == [
        ("anthropic", "2026-11", Decimal("0"), "tokens", 6800, 0, 2_000),
        ("openai", "2026-11", Decimal("0.2"), "tokens", 3750, 750, 2_000),
    ]


def test_the_collector_exports_the_recorded_capture_ratio(collector: Collectors) -> None:
    app = collector(config=Config.default())
    record_run(
        seeded(app.ledger), reconcile(app.ledger, load(BILLS / "openai_usage.json")[1], *NOV, "2026-11")
    )
    with urllib.request.urlopen(app.urls()["metrics"], timeout=5) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    assert [(s.labels, s.value) for s in families["llmcost_capture_ratio"].samples] == [
        ({"provider": "openai"}, 0.2)
    ]
