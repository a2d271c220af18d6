"""The `llmcost` commands run in process through the click group, as the console script runs them
(the real processes are in tests/integration: test_reprice_and_price_cli.py, test_demo.py and
test_end_to_end.py). `llmcost config check` is tested with the config file, in test_config_reload.py
and test_configuration.py."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import Result
from llmcost_collector.ledger import LedgerEntry, open_ledger
from llmcost_collector.model import PRICED, UNPRICED, Attribution, Cost, LlmCall, Usage

from tests.support import table_rows

Llmcost = Callable[..., Result]


def cells(result: Result) -> dict[str, list[str]]:
    """The rows of the printed tables by their first cell (a price layer, a reprice outcome)."""
    return {row[0]: row[1:] for row in table_rows(result.stdout) if len(row) > 1}


def test_help_lists_every_command_in_order(llmcost: Llmcost) -> None:
    done = llmcost("--help")
    assert done.exit_code == 0
    listed = [row[0] for row in table_rows(done.stdout.partition("Commands:")[2])]
    expected = [
        "serve",
        "demo",
        "price",
        "models",
        "query",
        "report",
        "invoice",
        "export",
        "reconcile",
        "reprice",
        "migrate",
        "config",
        "budgets",
        "alertmanager-config",
    ]
    assert listed == expected


def test_price_every_token_class(llmcost: Llmcost) -> None:
    done = llmcost("price", "gpt-4o-mini", "--provider", "openai", "--input", "800", "--cache-read", "200",
                   "--output", "500", "--at", "2026-11-01")  # fmt: skip
    assert done.exit_code == 0, done.output
    # 800*0.15 + 200*0.075 + 500*0.60 = 120 + 15 + 300 = 435 per 1e6 = $0.000435000
    layers = cells(done)
    assert layers["list"][:3] == ["$0.000435000", "genai-prices", "openai/gpt-4o-mini"]
    assert layers["contracted"][:2] == ["$0.000435000", "genai-prices"]
    assert layers["list"][-1] == "input 0.15, cache read 0.075, output 0.6"
    assert done.stdout.startswith("gpt-4o-mini on 2026-11-01: price id openai/gpt-4o-mini\n")


def test_price_anthropic_cache_writes_5m_and_1h(llmcost: Llmcost) -> None:
    done = llmcost("price", "claude-opus-4-1", "--provider", "anthropic", "--input", "2100", "--cache-read", "30000",
                   "--cache-write", "3000", "--cache-write-1h", "2000", "--output", "1200", "--at", "2026-11-01")  # fmt: skip
    assert done.exit_code == 0, done.output
    # 2100*15 + 30000*1.5 + 3000*18.75 + 2000*30 + 1200*75 = 282750 per 1e6 = $0.28275
    assert cells(done)["list"][0] == "$0.282750000"
    assert "cache write 3,000 (5m) + 2,000 (1h)" in done.stdout


def test_price_at_a_date_before_and_after_a_price_change(llmcost: Llmcost) -> None:
    # o3 cost $10 / $40 per 1M before 2025-06-10 and $2 / $8 from then on (genai-prices).
    args = ("price", "o3", "--provider", "openai", "--input", "1000000", "--output", "1000000")
    before = cells(llmcost(*args, "--at", "2025-06-09"))
    after = cells(llmcost(*args, "--at", "2025-06-10T00:00:01+00:00"))
    assert before["list"][0] == before["contracted"][0] == "$50.000000000"  # 1M*10 + 1M*40 per 1e6
    assert after["list"][0] == after["contracted"][0] == "$10.000000000"  # 1M*2 + 1M*8 per 1e6
    assert after["contracted"][2:4] == ["openai/o3", "2025-06-10"]


def test_price_with_a_price_book(llmcost: Llmcost, tmp_path: Path) -> None:
    config = tmp_path / "llmcost.yaml"
    config.write_text("price_book:\n  entries:\n    - {name: acme, provider: openai, model: gpt-4o-mini, "
                      "input: 0.1, cache_read: 0.05, output: 0.4}\n")  # fmt: skip
    done = llmcost("price", "gpt-4o-mini", "--provider", "openai", "--input", "800", "--cache-read", "200",
                   "--output", "500", "--config", str(config))  # fmt: skip
    assert done.exit_code == 0, done.output
    # contracted: 800*0.1 + 200*0.05 + 500*0.4 = 80 + 10 + 200 = 290 per 1e6; list stays 435 per 1e6
    layers = cells(done)
    assert layers["contracted"][:3] == ["$0.000290000", "price-book", "price-book:acme"]
    assert layers["list"][0] == "$0.000435000"


EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "model-catalog.json"


def test_price_book_entries_scoped_to_a_provider_apply_without_provider(llmcost: Llmcost) -> None:
    # examples/model-catalog.json prices claude-3-5-haiku* for provider anthropic at $1.25 / $5.00
    # per 1M (the seed's haiku-3.5); without --provider the call is taken to be anthropic's.
    done = llmcost("price", "claude-3-5-haiku-20241022", "--input", "1000000", "--output", "1000000",
                   "--at", "2025-01-01", "--price-book", str(EXAMPLE_CATALOG))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert cells(done)["contracted"][:3] == [
        "$6.250000000",
        "price-book",
        "price-book:seed-catalog/haiku-3.5",
    ]
    assert "provider: anthropic (inferred from the price book; --provider to choose)" in done.stdout


def test_price_infers_the_provider_from_the_catalogue(llmcost: Llmcost, tmp_path: Path) -> None:
    book = tmp_path / "book.yaml"  # a contract for openai's models only: gpt-4o-mini is openai's
    book.write_text("entries:\n  - {name: deal, provider: openai, model: '*', discount_percent: 10}\n")
    done = llmcost(
        "price", "gpt-4o-mini", "--input", "1000000", "--at", "2026-11-01", "--price-book", str(book)
    )
    assert done.exit_code == 0, done.output
    assert cells(done)["contracted"][:3] == ["$0.135000000", "price-book", "price-book:deal"]  # 0.15 - 10%
    assert "provider: openai (inferred from the genai-prices catalogue; --provider to choose)" in done.stdout


def test_price_book_naming_two_providers_for_a_model_needs_provider(llmcost: Llmcost, tmp_path: Path) -> None:
    book = tmp_path / "book.yaml"
    book.write_text("entries:\n  - {provider: acme, model: llama-70b, input: 1}\n"
                    "  - {provider: other, model: 'llama-*', input: 2}\n")  # fmt: skip
    done = llmcost("price", "llama-70b", "--input", "10", "--price-book", str(book))
    assert (done.exit_code, done.stdout) == (2, "")
    assert "name several providers: acme, other: give --provider" in done.stderr
    chosen = llmcost(
        "price", "llama-70b", "--input", "1000000", "--provider", "other", "--price-book", str(book)
    )
    assert cells(chosen)["contracted"][:3] == ["$2.000000000", "price-book", "price-book:other/llama-*"]


def test_price_unknown_model_is_unpriced_not_zero(llmcost: Llmcost) -> None:
    done = llmcost("price", "no-such-model-xyz", "--input", "10")
    assert done.exit_code == 1 and done.stdout == ""
    assert done.stderr.startswith("Error: unpriced: ") and "$0" not in done.stderr


def test_price_refuses_impossible_counts_and_dates_as_usage_errors(llmcost: Llmcost, tmp_path: Path) -> None:
    for args, named in [
        (("--output", "10", "--reasoning", "11"), "'--reasoning'"),
        (("--input", "-1"), "'--input'"),
        (("--at", "last tuesday"), "'--at'"),
        (("--config", "a.yaml", "--price-book", "b.yaml"), "--price-book and --config"),
    ]:
        done = llmcost("price", "o3", *args)
        assert (done.exit_code, done.stdout) == (2, ""), args
        assert named in done.stderr and "Usage: llmcost price" in done.stderr


def test_price_bad_config_reports_the_line(llmcost: Llmcost, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("price_book:\n  entries:\n    - model: a\n      input: -1\n")
    done = llmcost("price", "a", "--input", "1", "--config", str(config))
    assert (done.exit_code, done.stdout) == (1, "")
    assert done.stderr.startswith(f"{config}:4:")


def test_models_search(llmcost: Llmcost) -> None:
    done = llmcost("models", "--search", "gpt-4o-mini", "--provider", "openai")
    assert done.exit_code == 0, done.output
    rows = [row for row in table_rows(done.stdout) if row[0] == "openai"]
    assert ["openai", "gpt-4o-mini", "0.15", "0.6", "0.075", "-"] in rows
    assert all("gpt-4o-mini" in row[1] for row in rows)
    assert f"{len(rows)} models; USD per million tokens" in done.stdout


def test_models_shows_tiers_and_nothing_for_no_match(llmcost: Llmcost) -> None:
    tiered = llmcost("models", "--search", "gemini-2.5-pro", "--provider", "gcp.vertex_ai")
    assert tiered.exit_code == 0
    assert any(row[:3] == ["google", "gemini-2.5-pro", "1.25+tiers"] for row in table_rows(tiered.stdout))
    none = llmcost("models", "--search", "zz-no-such-model-zz")
    assert (none.exit_code, none.stdout, none.stderr) == (1, "", "Error: no models match\n")


def test_models_lists_the_price_book_after_the_public_prices(llmcost: Llmcost, tmp_path: Path) -> None:
    book = tmp_path / "book.yaml"
    book.write_text(
        "entries:\n"
        "  - {name: onprem, model: acme-llama-70b, input: 0.35, output: 0.4, effective_from: 2026-01-01}\n"
        "  - {name: deal, provider: openai, model: gpt-4o, api_key_id: key-7, discount_percent: 12.5}\n"
    )
    done = llmcost("models", "--search", "acme-llama", "--price-book", str(book))
    assert done.exit_code == 0, done.output
    rows = table_rows(done.stdout)
    assert ["0 models; USD per million tokens, list prices in force today (genai-prices)"] in rows
    assert ["price-book:onprem", "*", "acme-llama-70b", "-",
            "input 0.35, output 0.4, cache rd -, cache wr -", "2026-01-01", "..."] in rows  # fmt: skip
    assert not any("gpt-4o" in cell for row in rows for cell in row)  # filtered by --search
    discounted = table_rows(llmcost("models", "--search", "zz-none", "--price-book", str(book)).stdout)
    assert not any(row[0] == "price-book:deal" for row in discounted)
    deal = table_rows(
        llmcost("models", "--search", "gpt-4o", "--provider", "openai", "--price-book", str(book)).stdout
    )
    assert ["price-book:deal", "openai", "gpt-4o", "key-7", "12.5% off list", "...", "..."] in deal


def unpriced_entry(model: str, span_id: str, usage: Usage) -> LedgerEntry:
    start = int(datetime(2026, 11, 2, 9, tzinfo=timezone.utc).timestamp()) * 10**9
    call = LlmCall(
        trace_id="e" * 32, span_id=span_id, start_time_ns=start, end_time_ns=start + 10**9, provider="vllm",
        operation="chat", request_model=model, response_model="", usage=usage,
        attribution=Attribution(team="research", feature="rag"),
    )  # fmt: skip
    return LedgerEntry.from_call(call, Cost.unpriced(f"no price for {model}"), None, start + 2 * 10**9)


def test_reprice_prices_unpriced_rows_once(llmcost: Llmcost, tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(ledger_url)
    try:
        ledger.insert([
            unpriced_entry("acme-llama-70b", "1" * 16, Usage(input_tokens=3000, cache_read_tokens=1000, output_tokens=700)),
            unpriced_entry("still-unknown", "2" * 16, Usage(input_tokens=5)),
        ])  # fmt: skip
        assert [e.price_status for e in ledger.unpriced()] == [UNPRICED, UNPRICED]
    finally:
        ledger.close()
    config = tmp_path / "llmcost.yaml"
    config.write_text(
        "price_book:\n  entries:\n    - name: onprem\n      model: acme-llama-70b\n"
        "      input: 0.35\n      cache_read: 0.035\n      output: 0.4\n"
    )
    dry = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config), "--dry-run")
    assert dry.exit_code == 0 and dry.stdout.startswith("dry run: the ledger is unchanged\n")
    # 3000*0.35 + 1000*0.035 + 700*0.4 = 1050 + 35 + 280 = 1365 per 1e6 = $0.001365 = 1,365,000 nanos
    assert cells(dry)["would be priced"] == ["1", "$0.001365000"]
    first = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config))
    assert first.exit_code == 0, first.output
    assert cells(first)["priced"] == ["1", "$0.001365000"]
    assert cells(first)["still unpriced"] == ["1", "-"]
    again = cells(llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config)))
    assert (again["priced"], again["still unpriced"]) == (["0", "$0.000000000"], ["1", "-"])

    ledger = open_ledger(ledger_url)
    try:
        rows = {e.span_id: e for e in ledger.entries(0, 2**62)}
        priced = rows["1" * 16]
        assert (priced.price_status, priced.contracted_cost_nanos, priced.list_cost_nanos) == (
            PRICED,
            1_365_000,
            1_365_000,
        )
        assert (priced.price_source, priced.price_id) == ("price-book", "price-book:onprem")
        assert priced.repriced_at_ns is not None and priced.unpriced_reason == ""
        assert (priced.input_tokens, priced.cache_read_tokens, priced.output_tokens) == (3000, 1000, 700)
        assert rows["2" * 16].price_status == UNPRICED and rows["2" * 16].contracted_cost_nanos is None
        (spend,) = ledger.spend(0, 2**62, group_by=("team",))
        assert (spend.requests, spend.unpriced, spend.contracted_nanos) == (2, 1, 1_365_000)
    finally:
        ledger.close()


def test_report_for_a_month_as_markdown_and_json(llmcost: Llmcost, tmp_path: Path) -> None:
    import json

    nov = int(datetime(2026, 11, 3, tzinfo=timezone.utc).timestamp()) * 10**9
    dec = int(datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()) * 10**9

    def entry(n: int, start: int, nanos: int, environment: str) -> LedgerEntry:
        call = LlmCall(
            trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time_ns=start, end_time_ns=start + 1, provider="openai",
            operation="chat", request_model="gpt-4o", response_model="", usage=Usage(input_tokens=10),
            attribution=Attribution(team="search", feature="chat", environment=environment, user_id="user-1"),
        )  # fmt: skip
        return LedgerEntry.from_call(call, Cost(PRICED, nanos, nanos), nanos, start)

    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(ledger_url)
    try:  # $1.50 production and $0.50 development in November; December's call is not in it
        ledger.insert([entry(1, nov, 1_500_000_000, "production"), entry(2, nov + 1, 500_000_000, "development"),
                       entry(3, dec, 9_000_000_000, "production")])  # fmt: skip
    finally:
        ledger.close()
    md = llmcost("report", "--period", "2026-11", "--ledger-url", ledger_url)
    assert md.exit_code == 0, md.output
    assert "Total costs: $2.00 (2 calls, 0 errors, 0 unpriced)\n├── production: $1.50 (75%)\n" in md.stdout
    assert "└── development: $0.50 (25%)\n" in md.stdout and "1. user-1: $2.00 (no tier)" in md.stdout
    js = llmcost("report", "--period", "2026-11", "--format", "json", "--ledger-url", ledger_url)
    data = json.loads(js.stdout)
    assert (data["period"], data["from"], data["total"]["cost_usd"]) == (
        "2026-11",
        "2026-11-01T00:00:00+00:00",
        "2.000000000",
    )
    bad = llmcost("report", "--period", "November", "--ledger-url", ledger_url)
    assert bad.exit_code == 2 and "--period" in bad.stderr and "YYYY-MM" in bad.stderr


def test_small_amounts_print_as_plain_decimals(llmcost: Llmcost) -> None:
    # 1 input token of gpt-4o-mini: 1 * 0.15 per 1e6 = $0.00000015 = 150 nanos
    done = llmcost("price", "gpt-4o-mini", "--provider", "openai", "--input", "1", "--at", "2026-11-01")
    assert done.exit_code == 0
    assert cells(done)["list"][0] == "$0.000000150", done.stdout


def test_reprice_of_an_empty_ledger_prints_zero_dollars(llmcost: Llmcost, tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_ledger(ledger_url).close()
    done = llmcost("reprice", "--ledger-url", ledger_url)
    assert done.exit_code == 0
    assert (cells(done)["priced"], cells(done)["still unpriced"]) == (["0", "$0.000000000"], ["0", "-"])


def test_a_ledger_that_cannot_be_opened_fails_in_one_line(llmcost: Llmcost, tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not a database, and not a directory either\n" * 100)
    for url, reason in [
        ("mysql://db/ledger", "unsupported ledger URL 'mysql://db/ledger'"),  # the URL
        (f"sqlite:///{not_a_db / 'ledger.db'}", "File exists"),  # the file system
        (f"sqlite:///{not_a_db}", "file is not a database"),  # the database driver
    ]:
        done = llmcost("reprice", "--ledger-url", url)
        assert (done.exit_code, done.stdout) == (1, ""), url
        assert done.stderr.startswith("Error: ledger: ") and reason in done.stderr
        assert len(done.stderr.splitlines()) == 1


@pytest.fixture
def root_logging() -> Iterator[None]:
    """`llmcost serve` sets up the process's root logger; give the next test the one it had."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_serve_that_cannot_start_says_why(llmcost: Llmcost, tmp_path: Path) -> None:
    ports = ("--host", "127.0.0.1", "--no-grpc", "--http-port", "0", "--otlp-http-port", "0")
    bad = tmp_path / "bad.yaml"
    bad.write_text("teams: [\n")
    done = llmcost("serve", "--config", str(bad), *ports)
    assert (done.exit_code, done.stdout) == (1, "")
    assert done.stderr.startswith(f"{bad}:2:1: YAML syntax error")
    done = llmcost("serve", "--ledger-url", "mysql://db/ledger", *ports)
    assert (done.exit_code, done.stdout) == (1, "")
    assert (
        done.stderr
        == "Error: cannot start: unsupported ledger URL 'mysql://db/ledger': use sqlite:///path.db or postgresql://...\n"
    )
    done = llmcost("serve", "--log-level", "loud", *ports)
    assert done.exit_code == 2 and "Invalid value for '--log-level'" in done.stderr


def test_query_answers_like_the_api_in_table_csv_and_json(llmcost: Llmcost, tmp_path: Path) -> None:
    from tests.unit.test_ledger import make_entry

    nov = 1_793_491_200 * 10**9  # 2026-11-01T00:00:00Z
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(ledger_url)
    try:
        ledger.insert([make_entry(1, team="search", start_ns=nov + 10**9), make_entry(2, team="search", start_ns=nov + 2 * 10**9),
                       make_entry(3, team="ads", start_ns=nov + 3 * 10**9, environment="staging")])  # fmt: skip
    finally:
        ledger.close()
    month = ("--ledger-url", ledger_url, "--from", "2026-11-01", "--to", "2026-12-01")
    shown = llmcost("query", *month, "-g", "team")
    assert shown.exit_code == 0, shown.output
    rows = cells(shown)
    # contracted 1,000,001 and chargeback 2,000,002 nano-dollars per call
    assert rows["search"][0] == "2" and rows["search"][-2:] == ["0.004000004", "0.000000000"]
    assert rows["ads"][0] == "1" and rows["total"][0] == "3"
    csv_out = llmcost("query", *month, "-g", "team", "-w", "environment!=staging", "--format", "csv")
    assert csv_out.exit_code == 0, csv_out.output
    header, *lines = csv_out.stdout.splitlines()
    assert header.startswith("team,requests,errors,unpriced,input_tokens,")
    assert [line.split(",")[:2] for line in lines] == [["search", "2"]]
    as_json = json.loads(llmcost("query", *month, "-g", "team", "--format", "json", "-n", "1").stdout)
    assert [(r["team"], r["others"], r["requests"]) for r in as_json["rows"]] == [
        ("search", False, 2),
        ("__others__", True, 1),
    ]
    refused = llmcost("query", *month, "-w", "region=eu")
    assert refused.exit_code == 2 and "unknown parameter 'region'" in refused.stderr
    both = llmcost("query", *month, "-g", "team", "-w", "team=search", "-w", "team=ads", "--format", "csv")
    assert sorted(line.split(",")[0] for line in both.stdout.splitlines()[1:]) == [
        "ads",
        "search",
    ]  # as team=search,ads
    option = llmcost("query", *month, "-w", "limit=1")
    assert option.exit_code == 2 and "'limit' is an option (--limit), not a column" in option.stderr


# --- invoices, closing, the FOCUS export and re-pricing a range ----------------------------

INVOICE_CONFIG = """
teams: [{name: search}]
price_book:
  entries:
    - {name: house, model: house-model, input: 2.00, output: 8.00}
chargeback: {model: cost_plus, markup_percent: 10, platform_fee_monthly_usd: 5}
"""
# FOCUS 1.3 columns the export must carry (the issue's list and the spec's mandatory ones).
FOCUS_COLUMNS = {
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ChargeCategory", "ChargeClass",
    "ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd", "BillingAccountId",
    "BillingAccountName", "BillingCurrency", "ChargeDescription", "ChargeFrequency", "ConsumedQuantity",
    "ConsumedUnit", "PricingQuantity", "PricingUnit", "PricingCategory", "ServiceCategory", "ServiceName",
    "ServiceProviderName", "InvoiceIssuerName", "HostProviderName", "SubAccountId", "SubAccountName", "InvoiceId",
    "Tags", "SkuId", "SkuMeter", "SkuPriceDetails", "AllocatedMethodId", "AllocatedMethodDetails",
    "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags", "x_Feature", "x_Environment", "x_UserTier",
}  # fmt: skip


@pytest.fixture
def invoice_files(tmp_path: Path) -> tuple[str, str]:
    """(ledger URL, config path): search's January, 1M input + 100k output = $2.80 of tokens."""
    from llmcost_collector.config.schema import load_config

    from tests.support import priced_entry

    config = tmp_path / "llmcost.yaml"
    config.write_text(INVOICE_CONFIG)
    loaded = load_config(config)
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(ledger_url)
    try:
        ledger.insert([priced_entry(loaded, 1, team="search", day=date(2025, 1, 3), feature="answers",
                                    usage=Usage(input_tokens=1_000_000, output_tokens=100_000))])  # fmt: skip
    finally:
        ledger.close()
    return ledger_url, str(config)


def test_invoice_prints_every_format(
    llmcost: Llmcost, invoice_files: tuple[str, str], tmp_path: Path
) -> None:
    ledger_url, config = invoice_files
    flags = ("--period", "2025-01", "--ledger-url", ledger_url, "--config", config)
    markdown = llmcost("invoice", *flags)
    assert markdown.exit_code == 0, markdown.output
    # $2.80 x 1.10 = $3.08 + the $5 fixed fee = $8.08
    assert "# Invoice LLM-2025-01-search (draft)" in markdown.stdout and "**8.08**" in markdown.stdout
    (document,) = json.loads(llmcost("invoice", *flags, "--format", "json").stdout)
    assert (document["total"], document["total_usd"]) == ("8.08", "8.080000000")
    rows = list(csv.DictReader(io.StringIO(llmcost("invoice", *flags, "--format", "csv").stdout)))
    assert [(row["kind"], row["amount"]) for row in rows] == [
        ("usage", "3.08"),
        ("fixed_platform_fee", "5.00"),
        ("total", "8.08"),
    ]
    out = tmp_path / "invoices"
    for fmt in ("html", "pdf"):
        written = llmcost("invoice", *flags, "--format", fmt, "--out", str(out))
        assert written.exit_code == 0, written.output
    html = (out / "LLM-2025-01-search.html").read_text()
    assert "<svg" in html and "8.08" in html and "<script" not in html  # inline chart, no CDN
    assert (out / "LLM-2025-01-search.pdf").read_bytes().startswith(b"%PDF-")


def test_invoice_usage_errors(llmcost: Llmcost, invoice_files: tuple[str, str]) -> None:
    ledger_url, config = invoice_files
    bad_month = llmcost("invoice", "--period", "2025-13", "--ledger-url", ledger_url)
    assert bad_month.exit_code == 2 and "YYYY-MM" in bad_month.stderr
    assert llmcost("invoice", "--ledger-url", ledger_url).exit_code == 2  # no --period
    pdf = llmcost("invoice", "--period", "2025-01", "--format", "pdf", "--ledger-url", ledger_url)
    assert pdf.exit_code == 2 and "--out" in pdf.stderr
    nobody = llmcost("invoice", "--period", "2025-01", "--team", "nobody", "--ledger-url", ledger_url,
                     "--config", config)  # fmt: skip
    assert (nobody.exit_code, nobody.stderr) == (1, "Error: no invoice for team 'nobody' in 2025-01\n")


def test_invoice_close_issues_once(llmcost: Llmcost, invoice_files: tuple[str, str]) -> None:
    ledger_url, config = invoice_files
    flags = ("--period", "2025-01", "--ledger-url", ledger_url, "--config", config)
    closed = llmcost("invoice", "close", *flags)
    assert closed.exit_code == 0, closed.output
    assert cells(closed)["LLM-2025-01-search"] == ["search", "$8.08"]
    again = llmcost("invoice", "close", *flags)
    assert (again.exit_code, again.stderr) == (1, "Error: period 2025-01 is already closed\n")
    (document,) = json.loads(llmcost("invoice", *flags, "--format", "json").stdout)
    assert document["status"] == "closed"


def test_export_focus_csv_and_parquet(
    llmcost: Llmcost, invoice_files: tuple[str, str], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    ledger_url, config = invoice_files
    flags = ("--period", "2025-01", "--ledger-url", ledger_url, "--config", config)
    exported = llmcost("export", "focus", *flags)
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert set(rows[0]) >= FOCUS_COLUMNS
    usage = {row["SkuMeter"]: row for row in rows if row["x_LineKind"] == "usage"}
    # one row per token class: input $2.00, output $0.80; billed with the 10 % markup
    assert {
        meter: (row["ConsumedQuantity"], row["ContractedCost"], row["BilledCost"])
        for meter, row in usage.items()
    } == {
        "Input Tokens": ("1000000", "2.000000000", "2.200000000"),
        "Output Tokens": ("100000", "0.800000000", "0.880000000"),
    }
    output = usage["Output Tokens"]
    assert (output["ConsumedUnit"], output["PricingUnit"], output["PricingQuantity"]) == (
        "Tokens",
        "1000000 Tokens",
        "0.1",
    )
    assert json.loads(output["SkuPriceDetails"]) == {
        "CacheAction": "None",
        "ModelId": "house-model",
        "TokenDirection": "Output",
    }
    assert (output["ServiceCategory"], output["SubAccountId"], output["x_Feature"]) == (
        "AI and Machine Learning",
        "search",
        "answers",
    )
    assert sum(Decimal(row["BilledCost"]) for row in rows) == Decimal("8.08")
    parquet = tmp_path / "jan.parquet"
    assert llmcost("export", "focus", *flags, "--format", "parquet", "--out", str(parquet)).exit_code == 0
    table = pq.read_table(parquet)
    assert table.schema.field("BilledCost").type == pa.decimal128(38, 9)
    assert sum(table.column("BilledCost").to_pylist()) == Decimal("8.08")


def test_reprice_a_closed_range_gives_adjustments(
    llmcost: Llmcost, invoice_files: tuple[str, str], tmp_path: Path
) -> None:
    ledger_url, config = invoice_files
    assert (
        llmcost(
            "invoice", "close", "--period", "2025-01", "--ledger-url", ledger_url, "--config", config
        ).exit_code
        == 0
    )
    cheaper = tmp_path / "cheaper.yaml"
    cheaper.write_text(INVOICE_CONFIG.replace("input: 2.00", "input: 1.00"))
    flags = (
        "--from",
        "2025-01-01",
        "--to",
        "2025-02-01",
        "--ledger-url",
        ledger_url,
        "--config",
        str(cheaper),
    )
    dry = llmcost("reprice", *flags, "--dry-run")
    assert dry.exit_code == 0, dry.output
    # input $2.00 -> $1.00: contracted $2.80 -> $1.80, chargeback -$1.10
    assert cells(dry)["search"] == ["1", "$2.800000000", "$1.800000000", "$-1.100000000"]
    assert "2025-01 is closed" in dry.stdout
    assert llmcost("reprice", *flags).exit_code == 0
    january = json.loads(llmcost("invoice", "--period", "2025-01", "--format", "json", "--ledger-url", ledger_url,
                                 "--config", str(cheaper)).stdout)  # fmt: skip
    assert january[0]["total"] == "8.08"  # as issued
    (february,) = json.loads(llmcost("invoice", "--period", "2025-02", "--format", "json", "--ledger-url", ledger_url,
                                     "--config", str(cheaper)).stdout)  # fmt: skip
    (adjustment,) = [line for line in february["lines"] if line["kind"] == "adjustment"]
    assert (adjustment["reference"], adjustment["reason"], adjustment["amount_usd"]) == (
        "LLM-2025-01-search", "re-priced", "-1.100000000",
    )  # fmt: skip


def test_migrate_builds_the_rollups_of_an_existing_ledger_with_a_progress_bar(
    llmcost: Llmcost, tmp_path: Path
) -> None:
    import sqlite3

    from tests.unit.test_ledger import make_entry

    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(ledger_url)
    try:
        ledger.insert([make_entry(n, team="search") for n in range(1, 4)])
        (before,) = ledger.spend(0, 2**62, group_by=())
    finally:
        ledger.close()
    # The same calls as a ledger from before the rollups: their tables gone, versions 3, 6 and 9 not run.
    conn = sqlite3.connect(tmp_path / "ledger.db")
    for (table,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'llm_rollup_%'"
    ).fetchall():
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DELETE FROM schema_migrations WHERE version IN (3, 6, 9)")
    conn.commit()
    conn.close()
    done = llmcost("migrate", "--ledger-url", ledger_url)
    assert done.exit_code == 0, done.output
    assert [row[0] for row in table_rows(done.stdout)][1:] == ["3", "6", "9"]
    assert "building from stored calls" in done.stderr
    again = llmcost("migrate", "--ledger-url", ledger_url)
    assert again.exit_code == 0 and again.stdout.strip() == "the ledger is up to date"
    ledger = open_ledger(ledger_url)
    try:
        (after,) = ledger.spend(0, 2**62, group_by=())
    finally:
        ledger.close()
    assert (after.requests, after.contracted_nanos, after.chargeback_nanos) == (
        3,
        before.contracted_nanos,
        before.chargeback_nanos,
    )


ALERTING_CONFIG = """
teams:
  - {name: web, contact: "#web-alerts, web@example.com"}
  - {name: data, contact: "https://hooks.example.com/data"}
  - {name: quiet, budgets: {daily: 10}}
budgets:
  - {name: web-monthly, amount_usd: 100, period: monthly, scope: {team: web}}
  - {name: data-weekly, amount_usd: 50, period: weekly, scope: {team: data}, thresholds: [60, 90, 120]}
alerting:
  finops_contact: finops@example.com
  oncall_contact: "https://pager.example.com/hook"
  slack_api_url_file: /run/secrets/slack
  smtp: {smarthost: "smtp.example.com:587", from: alerts@example.com, auth_password_file: /run/secrets/smtp}
  repeat_interval: 12h
"""


def test_alertmanager_config_routes_by_team_contact_and_inhibits_every_lower_threshold(
    llmcost: Llmcost, tmp_path: Path
) -> None:
    import yaml

    (tmp_path / "llmcost.yaml").write_text(ALERTING_CONFIG)
    done = llmcost("alertmanager-config", "--config", "llmcost.yaml")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("# Alertmanager for otel-llmcost, rendered by `llmcost alertmanager-config")
    rendered = yaml.safe_load(done.stdout)
    receivers = {r["name"]: r for r in rendered["receivers"]}
    assert set(receivers) == {"default", "finops", "team-web", "team-data", "oncall"}  # no route for quiet
    assert [c["channel"] for c in receivers["team-web"]["slack_configs"]] == ["#web-alerts"]
    assert [c["to"] for c in receivers["team-web"]["email_configs"]] == ["web@example.com"]
    assert [c["url"] for c in receivers["team-data"]["webhook_configs"]] == ["https://hooks.example.com/data"]
    assert "llmcost.slack.text" in receivers["team-web"]["slack_configs"][0]["text"]
    assert "llmcost.email.html" in receivers["finops"]["email_configs"][0]["html"]
    route = rendered["route"]
    assert route["repeat_interval"] == "12h" and route["receiver"] == "default"
    assert route["group_by"][:4] == ["alertname", "budget", "scope", "period"]
    assert [(r["receiver"], r["matchers"], r.get("continue", False)) for r in route["routes"]] == [
        ("finops", ['alertname=~"LLMCostBudgetThreshold|LLMCostBudgetForecast|LLMCostUnpricedModel"'], True),
        ("team-web", ['team="web"'], False),
        ("team-data", ['team="data"'], False),
        ("oncall", ['severity="critical"'], False),
    ]
    assert rendered["global"]["slack_api_url_file"] == "/run/secrets/slack"
    assert rendered["global"]["smtp_auth_password_file"] == "/run/secrets/smtp"
    # the thresholds of every budget: the defaults (of web and quiet) and data's 60/90/120
    inhibits = {rule["source_matchers"][1]: rule["target_matchers"][1] for rule in rendered["inhibit_rules"]}
    assert inhibits == {
        'threshold="60"': 'threshold="50"',
        'threshold="80"': 'threshold=~"50|60"',
        'threshold="90"': 'threshold=~"50|60|80"',
        'threshold="95"': 'threshold=~"50|60|80|90"',
        'threshold="100"': 'threshold=~"50|60|80|90|95"',
        'threshold="120"': 'threshold=~"50|60|80|90|95|100"',
    }
    assert all(rule["equal"] == ["budget", "scope", "period"] for rule in rendered["inhibit_rules"])


def test_alertmanager_config_out_writes_the_templates_next_to_it(llmcost: Llmcost, tmp_path: Path) -> None:
    (tmp_path / "llmcost.yaml").write_text(ALERTING_CONFIG)
    done = llmcost("alertmanager-config", "--config", "llmcost.yaml", "--out", "am/alertmanager.yml")
    assert done.exit_code == 1 and "cannot write am/alertmanager.yml" in done.stderr  # no such directory
    (tmp_path / "am").mkdir()
    done = llmcost("alertmanager-config", "--config", "llmcost.yaml", "--out", "am/alertmanager.yml")
    assert done.exit_code == 0, done.output
    assert done.stdout == ""
    printed = llmcost("alertmanager-config", "--config", "llmcost.yaml").stdout
    assert (tmp_path / "am" / "alertmanager.yml").read_text() == printed
    assert '{{ define "llmcost.slack.text" -}}' in (tmp_path / "am" / "llmcost.tmpl").read_text()


@pytest.mark.parametrize(
    ("contact", "alerting", "message"),
    [
        ("#web", "{}", "set alerting.slack_api_url_file"),
        ("web@example.com", "{}", "set alerting.smtp"),
        ("pager me", "{}", "is not a #slack-channel"),
        ("https://hooks.example.com/web", "{group_wait: soon}", "alerting.group_wait"),
    ],
)
def test_alertmanager_config_refuses_contacts_it_cannot_reach(
    llmcost: Llmcost, tmp_path: Path, contact: str, alerting: str, message: str
) -> None:
    (tmp_path / "llmcost.yaml").write_text(
        f"teams:\n  - {{name: web, contact: '{contact}'}}\nalerting: {alerting}\n"
    )
    done = llmcost("alertmanager-config", "--config", "llmcost.yaml")
    assert done.exit_code == 1
    assert message in done.stderr and done.stdout == ""
