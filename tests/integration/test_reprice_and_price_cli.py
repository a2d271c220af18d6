"""`llmcost price`, `llmcost models` and `llmcost reprice`, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from llmcost_collector.ledger import LedgerEntry, open_ledger
from llmcost_collector.model import Attribution, Cost, LlmCall, Usage

pytestmark = pytest.mark.integration


def llmcost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmcost_collector", *args], capture_output=True, text=True, timeout=60
    )


def test_price_shows_layers_and_the_dated_price() -> None:
    # o3 cost $10 / $40 per 1M before 2025-06-10 and $2 / $8 from then on (genai-prices).
    before = llmcost(
        "price",
        "o3",
        "--provider",
        "openai",
        "--input",
        "1000000",
        "--output",
        "1000000",
        "--at",
        "2025-06-01",
    )
    after = llmcost(
        "price",
        "o3",
        "--provider",
        "openai",
        "--input",
        "1000000",
        "--output",
        "1000000",
        "--at",
        "2025-07-01",
    )
    assert before.returncode == after.returncode == 0
    assert "contracted cost  $50.000000000" in before.stdout
    assert "contracted cost  $10.000000000" in after.stdout
    assert "price id openai/o3" in after.stdout


def test_price_unknown_model_fails_clearly() -> None:
    result = llmcost("price", "no-such-model-xyz", "--input", "10")
    assert result.returncode == 1 and "unpriced" in result.stdout


def test_models_lists_rates() -> None:
    result = llmcost("models", "--search", "gpt-4o-mini", "--provider", "openai")
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["gpt-4o-mini"])
    assert line.split()[2:4] == ["0.15", "0.6"]


def test_reprice_prices_what_was_unpriced_once(tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(ledger_url)
    now = time.time_ns()
    call = LlmCall(
        "ab" * 16, "cd" * 8, now, now, "vllm", "chat", "acme-llm-13b", "",
        Usage(input_tokens=2_000_000, output_tokens=1_000_000), Attribution(team="search"),
    )  # fmt: skip
    assert ledger.insert([LedgerEntry.from_call(call, Cost.unpriced("unknown model"), None, now)]) == [True]
    ledger.close()
    config = tmp_path / "llmcost.yaml"
    config.write_text(
        "price_book:\n  entries:\n    - {name: acme, model: acme-llm-13b, input: 0.25, output: 0.5}\n"
        "chargeback: {model: cost_plus, markup_percent: 10}\n"
    )
    first = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config))
    # 2M * $0.25 + 1M * $0.50 per 1M = $1.00, charged at +10%.
    assert first.returncode == 0 and first.stdout.startswith("priced 1 calls ($1.000000000 contracted)")
    again = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config))
    assert again.stdout.startswith("priced 0 calls")
    ledger = open_ledger(ledger_url)
    try:
        (row,) = ledger.spend(0, now + 1, group_by=("team",))
        assert (row.contracted_nanos, row.chargeback_nanos, row.unpriced) == (1_000_000_000, 1_100_000_000, 0)
        (entry,) = ledger.entries(0, now + 1)
        assert entry.price_id == "price-book:acme" and entry.repriced_at_ns is not None
    finally:
        ledger.close()


def test_models_into_a_closed_pipe_ends_quietly() -> None:
    """`llmcost models | head -1`: the reader leaves early; no traceback, a clean exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmcost_collector", "models"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().split()[:2] == [b"provider", b"model"]
    proc.stdout.close()  # as head does after its line
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr, stderr
