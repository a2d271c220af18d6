"""`llmcost price`, `llmcost models` and `llmcost reprice`, run as real processes the way a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from llmcost_collector.ledger import LedgerEntry, open_ledger
from llmcost_collector.model import PRICED, UNPRICED, Attribution, Cost, LlmCall, Usage


def llmcost(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMCOST_")}
    return subprocess.run(
        [sys.executable, "-m", "llmcost_collector", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env=env, check=False,
    )  # fmt: skip


def test_help_lists_the_pricing_commands(tmp_path: Path) -> None:
    done = llmcost("--help", cwd=tmp_path)
    assert done.returncode == 0
    for name in ("price", "models", "reprice"):
        assert name in done.stdout


def test_price_every_token_class(tmp_path: Path) -> None:
    done = llmcost("price", "gpt-4o-mini", "--provider", "openai", "--input", "800", "--cache-read", "200",
                   "--output", "500", "--at", "2026-11-01", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # 800*0.15 + 200*0.075 + 500*0.60 = 120 + 15 + 300 = 435 per 1e6 = $0.000435
    assert "list cost        $0.000435000" in done.stdout
    assert "contracted cost  $0.000435000  (source genai-prices" in done.stdout
    assert "price id openai/gpt-4o-mini" in done.stdout


def test_price_anthropic_cache_writes_5m_and_1h(tmp_path: Path) -> None:
    done = llmcost("price", "claude-opus-4-1", "--provider", "anthropic", "--input", "2100", "--cache-read", "30000",
                   "--cache-write", "3000", "--cache-write-1h", "2000", "--output", "1200", "--at", "2026-11-01",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout
    # 2100*15 + 30000*1.5 + 3000*18.75 + 2000*30 + 1200*75 = 282750 per 1e6 = $0.28275
    assert "list cost        $0.282750000" in done.stdout
    assert "cache write 3,000 (5m) + 2,000 (1h)" in done.stdout


def test_price_at_a_date_before_and_after_a_price_change(tmp_path: Path) -> None:
    args = ("price", "o3", "--provider", "openai", "--input", "1000000", "--output", "1000000")
    before = llmcost(*args, "--at", "2025-06-09", cwd=tmp_path)
    after = llmcost(*args, "--at", "2025-06-10T00:00:01+00:00", cwd=tmp_path)
    assert before.returncode == after.returncode == 0
    assert "list cost        $50.000000000" in before.stdout  # 1M*10 + 1M*40 per 1e6
    assert "list cost        $10.000000000" in after.stdout  # 1M*2 + 1M*8 per 1e6
    assert "effective from 2025-06-10" in after.stdout


def test_price_with_a_price_book(tmp_path: Path) -> None:
    config = tmp_path / "llmcost.yaml"
    config.write_text("price_book:\n  entries:\n    - {name: acme, provider: openai, model: gpt-4o-mini, "
                      "input: 0.1, cache_read: 0.05, output: 0.4}\n")  # fmt: skip
    done = llmcost("price", "gpt-4o-mini", "--provider", "openai", "--input", "800", "--cache-read", "200",
                   "--output", "500", "--config", str(config), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout
    # contracted: 800*0.1 + 200*0.05 + 500*0.4 = 80 + 10 + 200 = 290 per 1e6; list stays 435 per 1e6
    assert "contracted cost  $0.000290000  (source price-book" in done.stdout
    assert "list cost        $0.000435000" in done.stdout


def test_price_unknown_model_is_unpriced_not_zero(tmp_path: Path) -> None:
    done = llmcost("price", "no-such-model-xyz", "--input", "10", cwd=tmp_path)
    assert done.returncode == 1
    assert "unpriced:" in done.stdout and "$0" not in done.stdout


def test_price_refuses_reasoning_above_output(tmp_path: Path) -> None:
    done = llmcost("price", "o3", "--output", "10", "--reasoning", "11", cwd=tmp_path)
    assert done.returncode == 2 and "--reasoning" in done.stdout


def test_price_bad_config_reports_the_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("price_book:\n  entries:\n    - model: a\n      input: -1\n")
    done = llmcost("price", "a", "--input", "1", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{config}:4:" in done.stdout


def test_models_search(tmp_path: Path) -> None:
    done = llmcost("models", "--search", "gpt-4o-mini", "--provider", "openai", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("openai ")]
    assert ["openai", "gpt-4o-mini", "0.15", "0.6", "0.075", "-"] in rows
    assert all("gpt-4o-mini" in row[1] for row in rows)


def test_models_shows_tiers_and_nothing_for_no_match(tmp_path: Path) -> None:
    tiered = llmcost("models", "--search", "gemini-2.5-pro", "--provider", "gcp.vertex_ai", cwd=tmp_path)
    assert tiered.returncode == 0
    assert any(
        line.split()[:3] == ["google", "gemini-2.5-pro", "1.25+tiers"] for line in tiered.stdout.splitlines()
    )
    none = llmcost("models", "--search", "zz-no-such-model-zz", cwd=tmp_path)
    assert none.returncode == 1 and "no models match" in none.stdout


def unpriced_entry(model: str, span_id: str, usage: Usage) -> LedgerEntry:
    start = int(datetime(2026, 11, 2, 9, tzinfo=timezone.utc).timestamp()) * 10**9
    call = LlmCall(
        trace_id="e" * 32, span_id=span_id, start_time_ns=start, end_time_ns=start + 10**9, provider="vllm",
        operation="chat", request_model=model, response_model="", usage=usage,
        attribution=Attribution(team="research", feature="rag"),
    )  # fmt: skip
    return LedgerEntry.from_call(call, Cost.unpriced(f"no price for {model}"), None, start + 2 * 10**9)


def test_reprice_prices_unpriced_rows_once(tmp_path: Path) -> None:
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
    dry = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "would price 1 calls" in dry.stdout
    # 3000*0.35 + 1000*0.035 + 700*0.4 = 1050 + 35 + 280 = 1365 per 1e6 = $0.001365 = 1,365,000 nanos
    first = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "priced 1 calls ($0.001365000 contracted); 1 still unpriced" in first.stdout
    again = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.startswith("priced 0 calls ("), again.stdout
    assert "0 still unpriced" not in again.stdout and "1 still unpriced" in again.stdout

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


def test_small_amounts_print_as_plain_decimals(tmp_path: Path) -> None:
    # 1 input token of gpt-4o-mini: 1 * 0.15 per 1e6 = $0.00000015 = 150 nanos
    done = llmcost(
        "price", "gpt-4o-mini", "--provider", "openai", "--input", "1", "--at", "2026-11-01", cwd=tmp_path
    )
    assert done.returncode == 0
    assert "list cost        $0.000000150" in done.stdout, done.stdout


def test_reprice_of_an_empty_ledger_prints_zero_dollars(tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_ledger(ledger_url).close()
    done = llmcost("reprice", "--ledger-url", ledger_url, cwd=tmp_path)
    assert done.returncode == 0
    assert "priced 0 calls ($0.000000000 contracted); 0 still unpriced" in done.stdout, done.stdout
