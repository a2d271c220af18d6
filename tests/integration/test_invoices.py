"""Monthly invoices from a real ledger on both backends: byte-identical JSON, closing, the
adjustments that late spans, re-pricing and config changes give a closed month, and a month cut
into ranges by a mid-month settings change and a mid-month price change.

Rows are priced as the pipeline prices them (``tests.support.priced_entry``) with a price-book
model at $2 input / $0.50 cache read / $8 output per million tokens; amounts are worked out by
hand in the comments.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.invoice import focus
from llmcost_collector.invoice.build import Invoicing, Period
from llmcost_collector.invoice.render import render
from llmcost_collector.ledger import SqlLedger, open_ledger
from llmcost_collector.ledger.invoice_store import PeriodClosed
from llmcost_collector.model import Usage
from llmcost_collector.reconcile.runs import record_lines
from llmcost_collector.reconcile.trueup import TrueUpLine

from tests.pg import pg_cluster, pg_url, postgres_url  # noqa: F401  (fixtures)
from tests.support import priced_entry

pytestmark = pytest.mark.integration

CONFIG = """
teams:
  - {name: search, display_name: Search}
  - name: support
    chargeback: {model: value_based}
price_book:
  entries:
    - {name: house, model: house-model, input: 2.00, cache_read: 0.50, output: 8.00}
chargeback:
  model: cost_plus
  markup_percent: 10
  platform_fee_percent: 15
  outcomes: {ticket_resolved: 0.50}
  seat_monthly_usd: 2.00
  shared_costs:
    - {name: gateway, monthly_usd: 30, method: even}
"""
JAN = Period.parse("2025-01")
FEB = Period.parse("2025-02")
MAR = Period.parse("2025-03")


def january(config: Config) -> list:
    return [
        # search: 1M input + 100k output = $2.00 + $0.80 = $2.80
        priced_entry(config, 1, team="search", day=date(2025, 1, 3), feature="answers", user_id="ann",
                     usage=Usage(input_tokens=1_000_000, output_tokens=100_000)),
        # search: a failed call, 500k input = $1.00
        priced_entry(config, 2, team="search", day=date(2025, 1, 9), status="error", user_id="bob",
                     usage=Usage(input_tokens=500_000)),
        # support (value-based): 250k input = $0.50 of tokens, not billed; 3 tickets resolved
        priced_entry(config, 3, team="support", day=date(2025, 1, 4), user_id="cy",
                     usage=Usage(input_tokens=250_000)),
        priced_entry(config, 4, team="support", day=date(2025, 1, 5), outcome="ticket_resolved", outcome_count=3),
    ]  # fmt: skip


def expected_january() -> dict[str, Decimal]:
    # search: tokens $3.80 x 1.10 = $4.18, fee 15 % of $3.80 = $0.57, seats 2 x $2 = $4,
    #         gateway $30 / 2 = $15 -> $23.75
    # support: 3 x $0.50 = $1.50, seats 1 x $2 = $2, gateway $15 -> $18.50
    return {"search": Decimal("23.75"), "support": Decimal("18.50")}


# The same month with a price cut on the 11th (the price book's second entry) and search's markup
# raised to 20 % from the 16th; no seats, outcomes or shared costs, so every line is usage.
CHANGES = """
teams:
  - name: search
    chargeback_changes:
      - {effective_from: 2025-01-16, markup_percent: 20}
price_book:
  entries:
    - {name: house, model: house-model, input: 2.00, cache_read: 0.50, output: 8.00, effective_to: 2025-01-11}
    - {name: house-cut, model: house-model, input: 1.00, cache_read: 0.25, output: 4.00, effective_from: 2025-01-11}
chargeback: {model: cost_plus, markup_percent: 10, platform_fee_percent: 15}
"""


def changing_january(config: Config) -> list:
    m = 1_000_000
    return [
        # before the cut: 1M input + 100k output at $2 / $8 = $2.80
        priced_entry(config, 1, team="search", day=date(2025, 1, 3), usage=Usage(input_tokens=m, output_tokens=m // 10)),
        # after the cut, before the change: 1M input + 1M cache read + 100k output at $1 / $0.25 / $4 = $1.65
        priced_entry(config, 2, team="search", day=date(2025, 1, 12),
                     usage=Usage(input_tokens=m, cache_read_tokens=m, output_tokens=m // 10)),
        # after the change: 2M input at $1 = $2.00
        priced_entry(config, 3, team="search", day=date(2025, 1, 20), usage=Usage(input_tokens=2 * m)),
    ]  # fmt: skip


@pytest.fixture
def config() -> Config:
    return load_config("llmcost.yaml", text=CONFIG)


@pytest.fixture
def ledger(ledger_url: str, config: Config):  # type: ignore[no-untyped-def]
    opened = open_ledger(ledger_url)
    opened.insert(january(config))
    yield opened
    opened.close()


def totals(documents: list[dict]) -> dict[str, Decimal]:
    return {doc["team"]: Decimal(doc["total_usd"]) for doc in documents}


def test_january_invoices_by_hand(ledger: SqlLedger, config: Config) -> None:
    documents = Invoicing(ledger, config).invoices(JAN)
    assert totals(documents) == expected_january()
    search = next(doc for doc in documents if doc["team"] == "search")
    assert search["number"] == "LLM-2025-01-search" and search["status"] == "draft"
    kinds = {line["kind"]: line for line in search["lines"]}
    assert (kinds["failed_requests"]["quantity"], kinds["failed_requests"]["amount"]) == (1, "1.10")
    assert sum(Decimal(line["amount"]) for line in search["lines"] if not line["informational"]) == Decimal(
        search["total"]
    )


def test_sqlite_and_postgresql_give_byte_identical_json_invoices(
    tmp_path: Path,
    pg_url: str,  # noqa: F811  (the fixture)
    config: Config,
) -> None:
    outputs = []
    changing = load_config("llmcost.yaml", text=CHANGES)  # a month cut into ranges
    for url in (f"sqlite:///{tmp_path / 'same.db'}", pg_url):
        ledger = open_ledger(url)
        try:
            ledger.insert(january(config))
            outputs.append(render(Invoicing(ledger, config).invoices(JAN), "json"))
            ledger.insert(
                [row._replace(trace_id="c" + row.trace_id[1:]) for row in changing_january(changing)]
            )
            outputs.append(render(Invoicing(ledger, changing).invoices(JAN), "json"))
        finally:
            ledger.close()
    assert outputs[:2] == outputs[2:]
    assert totals(json.loads(outputs[0])) == expected_january()


def test_a_settings_change_and_a_price_change_mid_month_give_each_range_its_own_charge(
    ledger_url: str,
) -> None:
    config = load_config("llmcost.yaml", text=CHANGES)
    ledger = open_ledger(ledger_url)
    try:
        ledger.insert(changing_january(config))
        books = Invoicing(ledger, config)
        (search,) = books.invoices(JAN)
        documents, usage = books.view(JAN)
    finally:
        ledger.close()
    lines = {(line["kind"], line["start"]): line["amount_usd"] for line in search["lines"]}
    assert lines == {
        # to the 15th at 10 %: ($2.80 + $1.65) x 1.10 = $4.895, fee 15 % of $4.45 = $0.6675
        ("usage", "2025-01-01"): "4.895000000",
        ("platform_fee", "2025-01-01"): "0.667500000",
        # from the 16th at 20 %: $2.00 x 1.20 = $2.40, fee 15 % of $2.00 = $0.30
        ("usage", "2025-01-16"): "2.400000000",
        ("platform_fee", "2025-01-16"): "0.300000000",
        # 1M cache reads on the 12th at the cut rates: 1M x ($1 - $0.25); at the 1st's rates it would be $1.50
        ("prompt_cache_savings", None): "-0.750000000",
    }
    assert search["total_usd"] == "8.262500000"  # 4.895 + 0.6675 + 2.40 + 0.30
    # the FOCUS grain is back per day: the three days' usage, priced at their own rates
    by_day = {}
    for charge in usage:
        by_day[charge["day"]] = by_day.get(charge["day"], 0) + charge["contracted_nanos"]
    assert by_day == {"2025-01-03": 2_800_000_000, "2025-01-12": 1_650_000_000, "2025-01-20": 2_000_000_000}
    rows = focus.rows(documents, usage)
    assert sum((row["BilledCost"] for row in rows), Decimal(0)) == Decimal(search["total_usd"])


def test_a_closed_period_never_changes_and_late_usage_is_adjusted_next_month(
    ledger: SqlLedger, config: Config
) -> None:
    books = Invoicing(ledger, config)
    issued = render(books.close(JAN), "json")
    # a late span for January: 500k input = $1.00 of tokens -> $1.10 + $0.15 fee = $1.25 more
    ledger.insert([priced_entry(config, 9, team="search", day=date(2025, 1, 30), user_id="ann",
                                usage=Usage(input_tokens=500_000))])  # fmt: skip
    assert render(books.invoices(JAN), "json") == issued
    february = {doc["team"]: doc for doc in books.invoices(FEB)}
    (adjustment,) = [line for line in february["search"]["lines"] if line["kind"] == "adjustment"]
    assert (adjustment["reference"], adjustment["reason"], adjustment["amount_usd"]) == (
        "LLM-2025-01-search",
        "late usage",
        "1.250000000",
    )
    assert not [line for line in february["support"]["lines"] if line["kind"] == "adjustment"]
    books.close(FEB)
    march = books.invoices(MAR)
    assert not [line for doc in march for line in doc["lines"] if line["kind"] == "adjustment"]  # booked once


def test_a_true_up_recorded_after_close_is_an_adjustment_on_the_next_period(
    ledger: SqlLedger, config: Config
) -> None:
    books = Invoicing(ledger, config)

    def trued(nanos: int) -> None:  # what `llmcost reconcile --period 2025-01 --true-up` records
        record_lines(ledger, "2025-01", [TrueUpLine("search", "openai", "house-model", nanos, "model")], None)

    trued(1_000_000_001)  # while January is open: a line of its own on the draft, at cost
    (line,) = [line for line in books.invoices(JAN, "search")[0]["lines"] if line["kind"] == "true_up"]
    assert (line["description"], line["amount_usd"], line["markup_usd"]) == (
        "provider bill true-up: openai/house-model (bill - ledger)", "1.000000001", "0.000000000",
    )  # fmt: skip
    issued = render(books.close(JAN), "json")
    assert totals(json.loads(issued))["search"] == expected_january()["search"] + Decimal("1.000000001")
    assert not [line for doc in books.invoices(FEB) for line in doc["lines"] if line["kind"] == "adjustment"]
    trued(1_250_000_000)  # a re-run for the closed month: January never changes, February has the rest
    assert render(books.invoices(JAN), "json") == issued
    february = {doc["team"]: doc for doc in books.invoices(FEB)}
    adjustments = [(line["reference"], line["reason"], line["amount_usd"])
                   for doc in february.values() for line in doc["lines"] if line["kind"] == "adjustment"]  # fmt: skip
    assert adjustments == [("LLM-2025-01-search", "provider bill true-up", "0.249999999")]
    assert not [line for doc in february.values() for line in doc["lines"] if line["kind"] == "true_up"]
    books.close(FEB)
    assert not [line for doc in books.invoices(MAR) for line in doc["lines"] if line["kind"] == "adjustment"]


def test_a_config_change_after_close_is_an_adjustment(ledger: SqlLedger, config: Config) -> None:
    Invoicing(ledger, config).close(JAN)
    raised = load_config("llmcost.yaml", text=CONFIG.replace("markup_percent: 10", "markup_percent: 20"))
    february = {doc["team"]: doc for doc in Invoicing(ledger, raised).invoices(FEB)}
    (adjustment,) = [line for line in february["search"]["lines"] if line["kind"] == "adjustment"]
    # 10 % more markup on $3.80 of January tokens: $0.38
    assert (adjustment["reason"], adjustment["amount_usd"]) == ("chargeback settings changed", "0.380000000")


def test_closing_twice_fails_and_changes_nothing(ledger: SqlLedger, config: Config) -> None:
    books = Invoicing(ledger, config)
    books.close(JAN)
    with pytest.raises(PeriodClosed):
        books.close(JAN)
    assert totals(books.invoices(JAN)) == expected_january()


def test_focus_export_sums_back_to_the_invoices(ledger: SqlLedger, config: Config) -> None:
    books = Invoicing(ledger, config)
    books.close(JAN)
    ledger.insert(
        [priced_entry(config, 9, team="search", day=date(2025, 1, 30), usage=Usage(input_tokens=500_000))]
    )
    documents, usage = books.view(FEB)
    rows = focus.rows(documents, usage)
    (correction,) = [row for row in rows if row["ChargeClass"] == "Correction"]
    assert (correction["ChargeCategory"], correction["InvoiceId"], correction["BilledCost"]) == (
        "Adjustment",
        "LLM-2025-02-search",
        Decimal("1.25"),
    )
    for january_or_february in (JAN, FEB):
        documents, usage = books.view(january_or_february)
        rows = focus.rows(documents, usage)
        for doc in documents:
            billed = sum((row["BilledCost"] for row in rows if row["InvoiceId"] == doc["number"]), Decimal(0))
            assert billed == Decimal(doc["total_usd"]), doc["number"]


def test_the_readme_worked_example(tmp_path: Path) -> None:
    """README "Chargeback and invoices": examples/chargeback.yaml's January, by hand.

    gpt-4o at 10 % off list: $2.25 in, $1.125 cached, $9 out per million; gpt-4o-mini $0.135 / $0.54.
    Provider cost per team: research 4M x 2.25 + 0.5M x 9 = 13.50; search 20M x 2.25 + 8M x 1.125
    + 2M x 9 = 72.00 and a failed 2.25; marketing 30M x 0.135 + 6M x 0.54 = 7.29; web 22.50 + 18 =
    40.50; support 15.75; ads 6.75 twice: 164.79 in all, which the $1,200 gateway follows.
    """
    config = load_config(Path(__file__).resolve().parents[2] / "examples" / "chargeback.yaml")
    m = 1_000_000
    calls = [
        ("research", 6, "gpt-4o", Usage(input_tokens=4 * m, output_tokens=m // 2), {}),
        ("search", 3, "gpt-4o", Usage(input_tokens=20 * m, cache_read_tokens=8 * m, output_tokens=2 * m), {}),
        ("search", 9, "gpt-4o", Usage(input_tokens=m), {"status": "error"}),
        ("marketing", 12, "gpt-4o-mini", Usage(input_tokens=30 * m, output_tokens=6 * m), {}),
        ("web", 4, "gpt-4o", Usage(input_tokens=10 * m, output_tokens=2 * m), {}),
        ("support", 5, "gpt-4o", Usage(input_tokens=3 * m, output_tokens=m // 2), {"user_id": "u1"}),
        ("support", 6, "gpt-4o", Usage(input_tokens=m), {"user_id": "u2"}),
        ("support", 7, "gpt-4o", Usage(input_tokens=m), {"user_id": "u3"}),
        ("ads", 10, "gpt-4o", Usage(input_tokens=2 * m, output_tokens=m // 4), {}),
        ("ads", 20, "gpt-4o", Usage(input_tokens=2 * m, output_tokens=m // 4), {}),
        ("unattributed", 15, "gpt-4o", Usage(input_tokens=m), {"team_source": "default"}),
    ]
    rows = [priced_entry(config, n, team=team, day=date(2025, 1, day), model=model, usage=usage, **extra)
            for n, (team, day, model, usage, extra) in enumerate(calls, 1)]  # fmt: skip
    rows.append(priced_entry(config, 99, team="support", day=date(2025, 1, 8), outcome="ticket_resolved",
                             outcome_count=120))  # fmt: skip
    ledger = open_ledger(f"sqlite:///{tmp_path / 'readme.db'}")
    try:
        ledger.insert(rows)
        documents = Invoicing(ledger, config).invoices(JAN)
    finally:
        ledger.close()
    printed = {doc["team"]: doc["total"] for doc in documents}
    assert printed == {
        "research": "161.81",  # 13.50 + 1200 x 13.50 / 164.79 (98.31) + 300 / 6
        "search": "690.93",  # 72 x 1.2 + 2.25 x 1.2 + 15 % of 74.25 + 1200 x 74.25 / 164.79 + 50
        "marketing": "361.83",  # 7.29 x 1.2 + 250 + 1200 x 7.29 / 164.79 + 50
        "web": "393.52",  # 12M tokens: Standard, 40.50 x 1.2 + 1200 x 40.50 / 164.79 + 50
        "support": "230.69",  # 120 x 0.50 + 3 x 2.00 + 1200 x 15.75 / 164.79 + 50
        "ads": "162.48",  # 6.75 + 6.75 x 1.1 + 1200 x 13.50 / 164.79 + 50
        "unattributed": "2.25",  # 1M x 2.25, at cost, not spread
    }
