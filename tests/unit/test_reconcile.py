"""Reconciliation: each importer on its sample bill (tests/golden/bills, totals worked out by
hand from the files), the comparison against a ledger whose true capture rate is known, the
`llmcost reconcile` command and the capture-ratio gauge it feeds."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result
from llmcost_collector.config.schema import Config
from llmcost_collector.ledger import LedgerEntry, SqlLedger, open_ledger
from llmcost_collector.model import Usage
from llmcost_collector.periods import epoch_ns
from llmcost_collector.price.pricebook import PriceBook
from llmcost_collector.reconcile.bill import BillError, BillRow
from llmcost_collector.reconcile.commitments import Commitment, amortize
from llmcost_collector.reconcile.commitments import focus_rows as commitment_rows
from llmcost_collector.reconcile.commitments import team_totals as fee_totals
from llmcost_collector.reconcile.compare import reconcile
from llmcost_collector.reconcile.files import detect, load
from llmcost_collector.reconcile.gauge import CaptureGauge
from llmcost_collector.reconcile.names import ModelNames
from llmcost_collector.reconcile.openai import usage as openai_usage
from llmcost_collector.reconcile.runs import record_run
from llmcost_collector.reconcile.trueup import focus_rows, residuals, true_up

from tests.support import priced_entry, table_rows

BILLS = Path(__file__).parents[1] / "golden" / "bills"
NOV_1, NOV_2, NOV_3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
NOV = (
    epoch_ns(datetime(2026, 11, 1, tzinfo=timezone.utc)),
    epoch_ns(datetime(2026, 12, 1, tzinfo=timezone.utc)),
)
Llmcost = Callable[..., Result]


def bill(name: str) -> list[BillRow]:
    return load(BILLS / name)[1]


def tokens(rows: list[BillRow], name: str) -> int:
    return sum(getattr(row, name) or 0 for row in rows)


def cost(rows: list[BillRow]) -> Decimal:
    return sum((row.cost_usd for row in rows if row.cost_usd is not None), Decimal(0))


def test_each_bill_kind_is_detected_from_its_content() -> None:
    kinds = {path.name: detect(path.read_text()) for path in sorted(BILLS.iterdir())}
    assert kinds == {
        "anthropic_analytics_costs.json": "anthropic-costs",
        "anthropic_costs.json": "anthropic-costs",
        "anthropic_usage.json": "anthropic-usage",
        "bedrock_cur.csv": "bedrock-cur",
        "focus_azure.csv": "focus",
        "openai_costs.json": "openai-costs",
        "openai_usage.json": "openai-usage",
    }
    pages = [json.loads((BILLS / "openai_costs.json").read_text())] * 2  # two pages saved as one list
    assert detect(json.dumps(pages)) == "openai-costs"
    with pytest.raises(BillError, match="neither"):
        detect("day,amount\n2026-11-01,3\n")


def test_openai_usage_subtracts_cached_from_input_and_names_the_batch_tier() -> None:
    rows = bill("openai_usage.json")
    # input_tokens 1200 (200 cached) + 1000 + 600 (100 cached); the 2 November bucket is empty
    assert (tokens(rows, "input_tokens"), tokens(rows, "cache_read_tokens"), tokens(rows, "output_tokens")) == (
        2500, 300, 950,
    )  # fmt: skip
    assert tokens(rows, "requests") == 8 and {row.day for row in rows} == {NOV_1, NOV_3}
    assert [(row.model, row.tier, row.scope) for row in rows if row.tier] == [
        ("gpt-4o-2024-08-06", "batch", "proj_reports")
    ]


def test_openai_audio_tokens_count_on_their_side_as_in_the_ledger() -> None:
    page = json.loads((BILLS / "openai_usage.json").read_text())
    page["data"][0]["results"][0] |= {"input_audio_tokens": 40, "output_audio_tokens": 10}
    row = openai_usage(json.dumps(page))[0]
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (1000 + 40, 200, 300 + 10)


def test_openai_costs_read_string_and_number_amounts_exactly() -> None:
    rows = bill("openai_costs.json")
    # 0.00015 + 0.000015 + 0.00018 + 0.00125 + 0.0025 | 0.000075 + 0.0000075 + 0.00009 + 0.02
    assert cost(rows) == Decimal("0.0242675")
    assert cost([r for r in rows if r.day == NOV_1]) == Decimal("0.004095")
    assert {row.model for row in rows} == {"gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", ""}
    assert [row.item for row in rows if row.tier == "batch"] == ["gpt-4o-2024-08-06, batch input",
                                                                 "gpt-4o-2024-08-06, batch output"]  # fmt: skip


def test_anthropic_usage_adds_both_cache_write_ttls() -> None:
    (sonnet, haiku) = bill("anthropic_usage.json")
    assert (sonnet.input_tokens, sonnet.cache_read_tokens, sonnet.cache_write_tokens, sonnet.output_tokens) == (
        1000, 4000, 600, 800,
    )  # fmt: skip
    assert (sonnet.scope, haiku.scope, haiku.tier, haiku.day) == (
        "apikey_01support",
        "wrkspc_01batch",
        "batch",
        NOV_2,
    )


def test_anthropic_costs_are_cents_with_fractions() -> None:
    rows = bill("anthropic_costs.json")
    # cents: 0.3 + 0.12 + 0.1875 + 0.06 + 1.2 + 1.0 (web search) + 0.012 + 0.02 = 2.8995
    assert cost(rows) == Decimal("0.028995")
    assert [row.cost_usd for row in rows if not row.model] == [Decimal("0.01")]
    (analytics,) = bill("anthropic_analytics_costs.json")
    assert (analytics.cost_usd, analytics.list_usd) == (Decimal("1.505"), Decimal("1.7525"))


def test_bedrock_cur_reads_token_lines_only() -> None:
    rows = bill("bedrock_cur.csv")
    # provisioned throughput ($480) and tax ($0.50) are no token lines: 0.006 + 0.006 + 0.0003 + 0.001875 + 0.0015
    assert cost(rows) == Decimal("0.015675")
    assert (tokens(rows, "input_tokens"), tokens(rows, "output_tokens"), tokens(rows, "cache_read_tokens"),
            tokens(rows, "cache_write_tokens")) == (3000, 400, 1000, 500)  # fmt: skip
    batch = next(row for row in rows if row.tier == "batch")  # 1 unit of "1K tokens"
    assert (batch.input_tokens, batch.model) == (1000, "anthropic.claude-3-5-sonnet-20241022-v2:0")
    assert {row.scope for row in rows} == {
        "arn:aws:iam::123456789012:role/support-bot", "arn:aws:iam::123456789012:role/nightly",
    }  # fmt: skip
    assert {row.model for row in rows if row.day == NOV_1} == {"Claude3.5Sonnet"}


def test_focus_reads_usage_rows_with_token_classes_from_the_meter() -> None:
    rows = bill("focus_azure.csv")
    assert cost(rows) == Decimal("0.00054")  # the tax row is not usage
    assert sum((row.list_usd or Decimal(0) for row in rows), Decimal(0)) == Decimal("0.000565")
    assert (tokens(rows, "input_tokens"), tokens(rows, "output_tokens"), tokens(rows, "cache_read_tokens")) == (
        1500, 500, 200,
    )  # fmt: skip
    assert {(row.provider, row.model) for row in rows} == {("azure.ai.openai", "gpt-4o-mini")}


def test_bill_and_response_names_of_a_model_compare_as_one() -> None:
    book = PriceBook.model_validate(
        {"entries": [{"provider": "aws.bedrock", "model": "anthropic.claude-3-5-sonnet-20241022-v2:0",
                      "aliases": ["Claude3.5Sonnet"], "discount_percent": 0}]}
    )  # fmt: skip
    names = ModelNames(book)
    assert names.canonical("openai", "gpt-4o-mini-2024-07-18", NOV_1) == names.canonical(
        "openai", "gpt-4o-mini", NOV_1
    )
    assert names.canonical("anthropic", "claude-sonnet-4-20250514", NOV_1) == names.canonical(
        "anthropic", "claude-sonnet-4-0", NOV_1
    )
    assert names.canonical("aws.bedrock", "Claude3.5Sonnet", NOV_1) == names.canonical(
        "aws.bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", NOV_1
    )
    assert names.canonical("openai", "House-Model", NOV_1) == "house-model"


def mini(n: int, day: date) -> LedgerEntry:
    """One gpt-4o-mini call: 250 uncached + 50 cached input, 75 output; at list price
    250 * 0.15 + 50 * 0.075 + 75 * 0.60 per million = 86_250 nano-dollars."""
    return priced_entry(Config.default(), n, team="search", day=day, model="gpt-4o-mini",
                        usage=Usage(input_tokens=250, cache_read_tokens=50, output_tokens=75))  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    """Three of the four gpt-4o-mini calls billed on 1 November, both of 3 November, one call on
    2 November (which the bill has not), and none of the batch gpt-4o calls: 1875 of 3750 billed
    tokens, a token capture rate of exactly 0.5."""
    opened = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    opened.insert(
        [mini(1, NOV_1), mini(2, NOV_1), mini(3, NOV_1), mini(4, NOV_2), mini(5, NOV_3), mini(6, NOV_3)]
    )
    yield opened
    opened.close()


def test_capture_rate_unseen_models_and_gap_days(ledger: SqlLedger) -> None:
    rows = bill("openai_usage.json") + bill("openai_costs.json")
    result = reconcile(ledger, rows, *NOV, "2026-11")
    (total,) = result.totals
    assert (total.bill_tokens, total.ledger_tokens, total.token_capture) == (3750, 1875, Decimal("0.5"))
    # dollars: 5 calls x 86_250 nanos against the whole bill of $0.0242675 (images included)
    assert (total.ledger_nanos, total.bill_nanos, total.cost_capture) == (
        431_250,
        24_267_500,
        Decimal("0.0178"),
    )
    by_key = {(line.day, line.model): line for line in result.lines}
    nov_1 = by_key[(NOV_1, "gpt-4o-mini")]
    assert (nov_1.token_capture, nov_1.cost_capture) == (Decimal("0.75"), Decimal("0.75"))
    assert nov_1.bill_models == {"gpt-4o-mini-2024-07-18"}
    assert nov_1.token_differences == {"input_tokens": -250, "cache_read_tokens": -50, "cache_write_tokens": 0,
                                       "output_tokens": -75}  # fmt: skip
    assert (by_key[(NOV_3, "gpt-4o-mini")].token_capture, by_key[(NOV_3, "gpt-4o-mini")].cost_capture) == (
        Decimal("1"), Decimal("1"),
    )  # fmt: skip
    assert (
        by_key[(NOV_1, "gpt-4o")].note == "ledger never saw"
        and by_key[(NOV_2, "gpt-4o-mini")].note == "not on the bill"
    )
    assert result.unseen_models == [("openai", "gpt-4o")]
    assert result.gap_days == [("openai", NOV_2, "bill")]


def test_reconcile_command_prints_the_table_json_and_csv(
    llmcost: Llmcost, ledger: SqlLedger, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    args = ("reconcile", "--period", "2026-11", "--bill", str(BILLS / "openai_usage.json"),
            "--bill", str(BILLS / "openai_costs.json"), "--ledger-url", url)  # fmt: skip
    shown = llmcost(*args, "--no-record")
    assert shown.exit_code == 0, shown.output
    cells = {tuple(row[:3]): row[3:] for row in table_rows(shown.stdout) if len(row) > 3}
    assert cells[("2026-11-01", "openai", "gpt-4o-mini")][:6] == ["1500", "1125", "0.7500", "0.000345000",
                                                                  "0.000258750", "0.7500"]  # fmt: skip
    assert "ledger never saw: openai gpt-4o" in shown.stdout
    assert "gap: openai 2026-11-02 has nothing on the bill" in shown.stdout
    data = json.loads(llmcost(*args, "--format", "json", "--no-record").stdout)
    assert data["providers"][0]["token_capture"] == "0.5000" and data["providers"][0]["capture"] == "0.0178"
    table = list(csv.DictReader(io.StringIO(llmcost(*args, "--format", "csv", "--no-record").stdout)))
    assert [(r["model"], r["tier"]) for r in table if r["tier"]] == [("gpt-4o", "batch")]
    assert {(r["day"], r["model"], r["note"]) for r in table if r["note"]} == {
        ("2026-11-01", "gpt-4o", "ledger never saw"), ("2026-11-02", "gpt-4o-mini", "not on the bill"),
        ("2026-11-03", "(no model)", "no model on the bill"),
    }  # fmt: skip
    assert [
        (s.labels, s.value) for m in CaptureGauge(ledger, ttl=0).collect() for s in m.samples
    ] == []  # --no-record
    assert llmcost(*args).exit_code == 0  # recorded: dollars, as the costs file has them
    assert [(s.labels, s.value) for m in CaptureGauge(ledger, ttl=0).collect() for s in m.samples] == [
        ({"provider": "openai"}, 0.0178)
    ]
    bad = llmcost("reconcile", "--period", "2026-11", "--bill", str(BILLS / ".." / "usage_corpus.json"),
                  "--ledger-url", url)  # fmt: skip
    assert bad.exit_code == 1 and "usage_corpus.json" in bad.stderr


def test_a_recorded_run_sets_the_capture_gauge(ledger: SqlLedger) -> None:
    gauge = CaptureGauge(ledger, ttl=0)
    assert [sample.value for metric in gauge.collect() for sample in metric.samples] == []
    result = reconcile(ledger, bill("openai_usage.json"), *NOV, "2026-11")
    (run,) = record_run(ledger, result)
    assert (run.basis, run.capture, run.bill, run.ledger) == ("tokens", Decimal("0.5"), 3750, 1875)
    samples = [(s.name, s.labels, s.value) for metric in gauge.collect() for s in metric.samples]
    assert samples == [("llmcost_capture_ratio", {"provider": "openai"}, 0.5)]


def test_true_up_spreads_each_residual_exactly_by_usage(tmp_path: Path) -> None:
    config = Config.default()
    usage = Usage(input_tokens=250, cache_read_tokens=50, output_tokens=75)  # 86_250 nanos per call
    opened = open_ledger(f"sqlite:///{tmp_path / 'trueup.db'}")
    try:  # 1 November: search 2 gpt-4o-mini calls, support 1; the bill's gpt-4o and images nobody ran
        opened.insert([priced_entry(config, n, team=team, day=NOV_1, model="gpt-4o-mini", usage=usage)
                       for n, team in ((1, "search"), (2, "search"), (3, "support"))])  # fmt: skip
        result = reconcile(opened, bill("openai_costs.json"), *NOV, "2026-11")
        owed = residuals(result)
        # gpt-4o-mini: 345_000 + 172_500 billed - 258_750 seen; gpt-4o batch 3_750_000; images 20_000_000
        assert owed == {
            ("openai", ""): 20_000_000,
            ("openai", "gpt-4o"): 3_750_000,
            ("openai", "gpt-4o-mini"): 258_750,
        }
        lines = true_up(opened, result, *NOV)
    finally:
        opened.close()
    got = {(line.team, line.model): (line.amount_nanos, line.basis) for line in lines}
    assert got == {
        ("search", "gpt-4o-mini"): (172_500, "model"), ("support", "gpt-4o-mini"): (86_250, "model"),
        # no team used gpt-4o or the image line: split by the teams' use of the provider, 2:1
        ("search", "gpt-4o"): (2_500_000, "provider"), ("support", "gpt-4o"): (1_250_000, "provider"),
        ("search", ""): (13_333_333, "provider"), ("support", ""): (6_666_667, "provider"),  # largest remainder
    }  # fmt: skip
    for key, amount in owed.items():
        assert sum(line.amount_nanos for line in lines if (line.provider, line.model) == key) == amount
    rows = focus_rows(lines, NOV_1, date(2026, 12, 1))
    assert {row["ChargeCategory"] for row in rows} == {"Adjustment"}
    assert sum(row["BilledCost"] for row in rows) == Decimal("0.02400875")
    assert rows[0]["ChargeDescription"].startswith("Reconciliation true-up: openai")


def test_a_commitment_is_amortized_per_day_and_spread_by_that_days_usage(tmp_path: Path) -> None:
    config = Config.default()
    usage = Usage(input_tokens=250, cache_read_tokens=50, output_tokens=75)
    opened = open_ledger(f"sqlite:///{tmp_path / 'fees.db'}")
    try:  # 1 November only: search 2 gpt-4o-mini calls, support 1
        opened.insert([priced_entry(config, n, team=team, day=NOV_1, model="gpt-4o-mini", usage=usage)
                       for n, team in ((1, "search"), (2, "search"), (3, "support"))])  # fmt: skip
        fee = Commitment.parse("mini-reserved=openai/gpt-4o-mini-2024-07-18:1")
        shares = amortize(opened, fee, NOV_1, date(2026, 12, 1), *NOV)
        other = amortize(opened, Commitment.parse("pt=openai/gpt-4o:1"), NOV_1, date(2026, 12, 1), *NOV)
    finally:
        opened.close()
    # $1 over 30 days: 10 days of 33_333_334 nanos (largest remainder, in day order), 20 of 33_333_333;
    # 1 November's part 2:1 -> 22_222_222.67 and 11_111_111.33, the left nano to the larger remainder
    assert [(s.team, s.amount_nanos) for s in shares if s.day == NOV_1] == [
        ("search", 22_222_223),
        ("support", 11_111_111),
    ]
    assert fee_totals(shares) == {("mini-reserved", "search"): 22_222_223, ("mini-reserved", "support"): 11_111_111,
                                  ("mini-reserved", "unattributed"): 966_666_666}  # fmt: skip
    assert {s.team for s in other} == {"unattributed"}  # nobody used gpt-4o: the fee is paid all the same
    purchase, *used = commitment_rows(fee, shares, NOV_1, date(2026, 12, 1))
    assert (purchase["ChargeCategory"], purchase["BilledCost"], purchase["EffectiveCost"]) == (
        "Purchase", Decimal("1.000000000"), Decimal(0),
    )  # fmt: skip
    assert sum(row["EffectiveCost"] for row in used) == Decimal(1) and {
        row["BilledCost"] for row in used
    } == {0}
    with pytest.raises(ValueError, match="NAME=PROVIDER"):
        Commitment.parse("pt=openai:lots")


def test_by_api_key_sets_each_bill_key_against_the_calls_of_that_key(tmp_path: Path) -> None:
    config = Config.default()
    usage = Usage(input_tokens=250, cache_read_tokens=50, output_tokens=75)  # 375 tokens a call
    opened = open_ledger(f"sqlite:///{tmp_path / 'keys.db'}")
    try:  # 1 November: two calls with the bill's key_search, one with a key the bill does not have
        opened.insert([priced_entry(config, n, team="search", day=NOV_1, model="gpt-4o-mini", usage=usage,
                                    properties={"api_key_id": key})
                       for n, key in ((1, "key_search"), (2, "key_search"), (3, "key_other"))])  # fmt: skip
        result = reconcile(opened, bill("openai_usage.json"), *NOV, "2026-11", by_api_key=True)
    finally:
        opened.close()
    nov_1 = {(line.model, line.api_key): line for line in result.lines if line.day == NOV_1}
    assert (nov_1[("gpt-4o-mini", "key_search")].bill.total_tokens, nov_1[("gpt-4o-mini", "key_search")].token_capture) == (
        1500, Decimal("0.5"),
    )  # fmt: skip
    assert nov_1[("gpt-4o-mini", "key_other")].note == "not on the bill"
    assert nov_1[("gpt-4o", "key_reports")].note == "ledger never saw"


def test_anthropic_usage_and_costs_meet_the_ledger_under_the_responses_model_name(tmp_path: Path) -> None:
    config = Config.default()
    # the responses name claude-sonnet-4-0; the bill the dated snapshot claude-sonnet-4-20250514
    usage = Usage(input_tokens=500, cache_read_tokens=4000, cache_write_tokens=600, cache_write_1h_tokens=100,
                  output_tokens=800)  # fmt: skip
    opened = open_ledger(f"sqlite:///{tmp_path / 'anthropic.db'}")
    try:
        opened.insert([priced_entry(config, 1, team="support", day=NOV_1, model="claude-sonnet-4-0", usage=usage,
                                    provider="anthropic")])  # fmt: skip
        result = reconcile(
            opened, bill("anthropic_usage.json") + bill("anthropic_costs.json"), *NOV, "2026-11"
        )
    finally:
        opened.close()
    (sonnet,) = [line for line in result.lines if line.day == NOV_1 and line.model]
    assert sonnet.bill_models == {"claude-sonnet-4-20250514"} and sonnet.seen
    # the bill's 1000 uncached input against the ledger's 500: every other class agrees
    assert sonnet.token_differences == {"input_tokens": -500, "cache_read_tokens": 0, "cache_write_tokens": 0,
                                        "output_tokens": 0}  # fmt: skip
    assert (sonnet.bill.total_tokens, sonnet.ledger.total_tokens, sonnet.token_capture) == (
        6400,
        5900,
        Decimal("0.9219"),
    )
    # Sonnet 4 list: 500 x $3 + 4000 x $0.30 + 500 x $3.75 + 100 x $6 + 800 x $15 per million = $0.017175
    assert (sonnet.ledger.cost_nanos, sonnet.bill.cost_nanos) == (17_175_000, 18_675_000)
    assert result.unseen_models == [
        ("anthropic", "claude-3-5-haiku-latest")
    ]  # the catalogue's id of the snapshot


def test_the_price_books_aliases_map_a_cur_usage_type_to_the_ledgers_model(
    llmcost: Llmcost, tmp_path: Path
) -> None:
    bedrock = "anthropic.claude-3-5-sonnet-20241022-v2:0"
    url = f"sqlite:///{tmp_path / 'bedrock.db'}"
    opened = open_ledger(url)
    try:  # 1 November, exactly the tokens the CUR bills under the usage type USE1-Claude3.5Sonnet-*
        usage = Usage(input_tokens=2000, cache_read_tokens=1000, cache_write_tokens=500, output_tokens=400)
        opened.insert([priced_entry(Config.default(), 1, team="support", day=NOV_1, model=bedrock, usage=usage,
                                    provider="aws.bedrock")])  # fmt: skip
    finally:
        opened.close()
    config = tmp_path / "llmcost.yaml"
    config.write_text(
        f"price_book:\n  entries:\n    - {{provider: aws.bedrock, model: '{bedrock}', aliases: [Claude3.5Sonnet], "
        "discount_percent: 0}\n"
    )
    args = ("reconcile", "--period", "2026-11", "--bill", str(BILLS / "bedrock_cur.csv"), "--ledger-url", url,
            "--no-record", "--format", "json")  # fmt: skip
    plain = json.loads(llmcost(*args).stdout)
    unseen = [
        (line["day"], line["bill_models"]) for line in plain["lines"] if line["note"] == "ledger never saw"
    ]
    assert unseen == [
        ("2026-11-01", ["Claude3.5Sonnet"]),
        ("2026-11-02", [bedrock]),
    ]  # 2 November: nobody called it
    mapped = json.loads(llmcost(*args, "--config", str(config)).stdout)
    nov_1 = [line for line in mapped["lines"] if line["day"] == "2026-11-01"]
    assert [(line["bill_models"], line["token_capture"], line["note"]) for line in nov_1] == [
        (["Claude3.5Sonnet"], "1.0000", "")
    ]
