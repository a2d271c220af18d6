"""`llmcost price`, `llmcost models` and `llmcost reprice` as real processes: the entry point,
stdout and stderr apart, exit codes, a pipe (the details are tested in process, in tests/unit)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from llmcost_collector.ledger import LedgerEntry, open_ledger
from llmcost_collector.model import Attribution, Cost, LlmCall, Usage

from tests.support import table_rows

pytestmark = pytest.mark.integration


LLMCOST = [sys.executable, "-m", "llmcost_collector"]


def llmcost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LLMCOST, *args], capture_output=True, text=True, timeout=60)


def test_price_prints_its_table_on_stdout() -> None:
    # o3 costs $2 / $8 per 1M from 2025-06-10 on (genai-prices); the dates are tested in process.
    result = llmcost("price", "o3", "--provider", "openai", "--input", "1000000", "--output", "1000000",
                     "--at", "2025-07-01")  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    layers = {row[0]: row[1:] for row in table_rows(result.stdout)}
    assert layers["contracted"][:3] == ["$10.000000000", "genai-prices", "openai/o3"]


def test_price_unknown_model_fails_clearly() -> None:
    result = llmcost("price", "no-such-model-xyz", "--input", "10")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("Error: unpriced: ") and len(result.stderr.splitlines()) == 1


def test_models_lists_rates() -> None:
    result = llmcost("models", "--search", "gpt-4o-mini", "--provider", "openai")
    assert result.returncode == 0
    row = next(row for row in table_rows(result.stdout) if row[1:2] == ["gpt-4o-mini"])
    assert row[2:4] == ["0.15", "0.6"]


def test_models_into_a_pipe_closed_early_ends_quietly() -> None:
    # `llmcost models | head -n 3`: head exits after three lines while the table is still printing.
    models = subprocess.Popen([*LLMCOST, "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert models.stdout is not None
    head = subprocess.Popen(["head", "-n", "3"], stdin=models.stdout, stdout=subprocess.PIPE)
    models.stdout.close()  # head alone holds the read end, as in a shell pipeline
    shown, _ = head.communicate(timeout=60)
    _, stderr = models.communicate(timeout=60)
    assert models.returncode == 141, stderr  # 128 + SIGPIPE, what a shell reports
    assert stderr == b""
    assert shown.decode().splitlines()[0].split()[:2] == ["provider", "model"]


def test_reprice_prices_what_was_unpriced_once(tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(ledger_url)
    now = time.time_ns()
    call = LlmCall(
        "ab" * 16, "cd" * 8, now, now, "vllm", "chat", "acme-llm-13b", "",
        Usage(input_tokens=2_000_000, output_tokens=1_000_000), Attribution(team="search"),
    )  # fmt: skip
    # the same answer replayed by the response cache: re-priced, it still owes $0 and saves the call
    hit = LlmCall(
        "ab" * 16, "ef" * 8, now, now, "vllm", "chat", "acme-llm-13b", "",
        Usage(input_tokens=2_000_000, output_tokens=1_000_000), Attribution(team="search"),
        cache_hit=True, cache_lookup=True,
    )  # fmt: skip
    unpriced = Cost.unpriced("unknown model")
    rows = [LedgerEntry.from_call(c, unpriced, None, now) for c in (call, hit)]
    assert ledger.insert(rows) == [True, True]
    ledger.close()
    config = tmp_path / "llmcost.yaml"
    config.write_text(
        "price_book:\n  entries:\n    - {name: acme, model: acme-llm-13b, input: 0.25, output: 0.5}\n"
        "chargeback: {model: cost_plus, markup_percent: 10}\n"
    )
    first = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config))
    # 2M * $0.25 + 1M * $0.50 per 1M = $1.00, charged at +10%.
    assert first.returncode == 0
    assert ["priced", "2", "$1.000000000"] in table_rows(first.stdout)
    again = llmcost("reprice", "--ledger-url", ledger_url, "--config", str(config))
    assert ["priced", "0", "$0.000000000"] in table_rows(again.stdout)
    ledger = open_ledger(ledger_url)
    try:
        (row,) = ledger.spend(0, now + 1, group_by=("team",))
        assert (row.contracted_nanos, row.chargeback_nanos, row.unpriced) == (1_000_000_000, 1_100_000_000, 0)
        assert row.savings_nanos == 1_000_000_000
        paid, replayed = sorted(ledger.entries(0, now + 1), key=lambda e: e.cache_hit)
        assert paid.price_id == "price-book:acme" and paid.repriced_at_ns is not None
        assert (replayed.contracted_cost_nanos, replayed.chargeback_nanos, replayed.savings_nanos) == (
            0,
            0,
            1_000_000_000,
        )
    finally:
        ledger.close()
