"""Reconciliation with the real parts: the recorded run on a SQLite file and on a real
PostgreSQL 15 server (tests/pg.py), the running collector's ``/metrics`` over HTTP showing it,
and the recorded true-up and commitment lines on the period's invoices and FOCUS rows. The
importers and the comparison are tested in tests/unit/test_reconcile.py."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from llmcost_collector.cli.main import cli
from llmcost_collector.config.schema import Config
from llmcost_collector.invoice import focus
from llmcost_collector.invoice.build import Invoicing, Period
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


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[SqlLedger]:
    opened = open_ledger(ledger_url)
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


def test_the_true_up_and_commitment_shares_are_lines_of_the_teams_invoices(
    ledger: SqlLedger, ledger_url: str
) -> None:
    usage = Usage(input_tokens=250, cache_read_tokens=50, output_tokens=75)
    ledger.insert([priced_entry(Config.default(), n, team=team, day=date(2026, 11, 1), model="gpt-4o-mini",
                                usage=usage) for n, team in ((1, "search"), (2, "search"), (3, "support"))])  # fmt: skip
    books, nov = Invoicing(ledger, Config.default()), Period.parse("2026-11")
    before = {doc["team"]: doc["total_nanos"] for doc in books.invoices(nov)}
    args = ["reconcile", "--period", "2026-11", "--bill", str(BILLS / "openai_costs.json"), "--true-up",
            "--commitment", "mini=openai/gpt-4o-mini:1", "--ledger-url", ledger_url]  # fmt: skip
    shown = [render_invoices(books, nov, args) for _ in range(2)]
    assert shown[0] == shown[1]  # the second run replaced the first's lines, it did not add to them
    documents = shown[0]
    lines = {
        doc["team"]: {(line["kind"], line["description"]): line["amount_nanos"] for line in doc["lines"]
                      if line["kind"] in ("true_up", "commitment")}
        for doc in documents
    }  # fmt: skip
    # the bill's residuals (bill - ledger): gpt-4o-mini 517_500 - 258_750 seen, split 2:1 by the teams'
    # cost of it; gpt-4o (batch) 3_750_000 and the image line 20_000_000 that no team ran, split 2:1 by
    # their use of openai (largest remainder); $1 of commitment over 30 days, 1 November's part 2:1
    # and the 29 days nobody used gpt-4o-mini to the unattributed team
    assert lines == {
        "search": {
            ("true_up", "provider bill true-up: openai/gpt-4o-mini (bill - ledger)"): 172_500,
            ("true_up", "provider bill true-up: openai/gpt-4o (bill - ledger)"): 2_500_000,
            ("true_up", "provider bill true-up: openai (no model) (bill - ledger)"): 13_333_333,
            ("commitment", "commitment mini, amortized"): 22_222_223,
        },
        "support": {
            ("true_up", "provider bill true-up: openai/gpt-4o-mini (bill - ledger)"): 86_250,
            ("true_up", "provider bill true-up: openai/gpt-4o (bill - ledger)"): 1_250_000,
            ("true_up", "provider bill true-up: openai (no model) (bill - ledger)"): 6_666_667,
            ("commitment", "commitment mini, amortized"): 11_111_111,
        },
        "unattributed": {("commitment", "commitment mini, amortized"): 966_666_666},
    }
    true_ups = sum(n for team in lines.values() for (kind, _), n in team.items() if kind == "true_up")
    assert true_ups == 20_000_000 + 3_750_000 + 258_750  # exactly the residual
    for doc in documents:  # billed at cost, on top of what the invoice billed before
        assert doc["total_nanos"] - before.get(doc["team"], 0) == sum(lines[doc["team"]].values())
    rows = focus.rows(*books.view(nov))
    for doc in documents:
        mine = [row for row in rows if row["InvoiceId"] == doc["number"]]
        assert sum((row["BilledCost"] for row in mine), Decimal(0)) == Decimal(doc["total_usd"])
        fee = Decimal(lines[doc["team"]][("commitment", "commitment mini, amortized")]) / 10**9
        assert [(r["ChargeCategory"], r["BilledCost"], r["EffectiveCost"]) for r in mine
                if r["x_LineKind"] in ("commitment", "commitment_amortization")] == [
            ("Purchase", fee, Decimal(0)), ("Usage", Decimal(0), fee)]  # fmt: skip
        assert {r["ChargeCategory"] for r in mine if r["x_LineKind"] == "true_up"} <= {"Adjustment"}


def render_invoices(books: Invoicing, period: Period, args: list[str]) -> list[dict]:
    """Run ``llmcost reconcile ARGS`` and read the period's invoices."""
    result = CliRunner().invoke(cli, args, prog_name="llmcost", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return books.invoices(period)
