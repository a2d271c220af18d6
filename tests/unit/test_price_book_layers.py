"""The org price book: negotiated rates, discounts, custom models, effective dates; never $0."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.config.yaml_loader import ConfigError, load_model
from llmcost_collector.model import PRICED, UNPRICED, Attribution, LlmCall, Usage
from llmcost_collector.price.pricer import PriceBook, Pricer

ROOT = Path(__file__).resolve().parents[2]
BOOK = """
entries:
  - name: acme-openai
    provider: openai
    model: "gpt-4o-mini*"
    input: 0.10
    output: 0.40
    effective_from: 2026-01-01
  - name: enterprise-discount
    provider: anthropic
    model: "*"
    discount_percent: 20
  - name: team-key
    model: gpt-4.1
    api_key_id: key-123
    input: 1
    output: 4
  - name: onprem
    model: llama-3.1-70b
    input: 0.35
    output: 0.40
"""


def call(model: str, provider: str, day: str = "2026-06-01", **properties: str) -> LlmCall:
    start = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()) * 10**9
    return LlmCall(
        trace_id="0" * 32, span_id="0" * 16, start_time_ns=start, end_time_ns=start, provider=provider,
        operation="chat", request_model=model, response_model="",
        usage=Usage(input_tokens=1_000_000, output_tokens=1_000_000), attribution=Attribution(properties=properties),
    )  # fmt: skip


@pytest.fixture
def pricer(tmp_path: Path) -> Pricer:
    return Pricer(load_model(tmp_path / "book.yaml", PriceBook, text=BOOK))


def test_negotiated_rate_is_the_contracted_layer(pricer: Pricer) -> None:
    cost = pricer.price(call("gpt-4o-mini", "openai"))
    # list: 1M * $0.15 + 1M * $0.60 = $0.75; contracted: 1M * $0.10 + 1M * $0.40 = $0.50
    assert (cost.list_nanos, cost.contracted_nanos) == (750_000_000, 500_000_000)
    assert (cost.price_source, cost.price_id, cost.price_effective_from) == (
        "price-book", "price-book:acme-openai", "2026-01-01",
    )  # fmt: skip


def test_before_effective_from_the_list_price_applies(pricer: Pricer) -> None:
    cost = pricer.price(call("gpt-4o-mini", "openai", day="2025-12-31"))
    assert cost.contracted_nanos == 750_000_000 and cost.price_source == "genai-prices"


def test_percent_discount_on_list_price(pricer: Pricer) -> None:
    cost = pricer.price(call("claude-haiku-4-5", "anthropic"))
    # claude-haiku-4-5 list $1 in / $5 out per 1M -> $6; 20% off -> $4.80
    assert (cost.list_nanos, cost.contracted_nanos) == (6_000_000_000, 4_800_000_000)


def test_key_scoped_entry_and_custom_model(pricer: Pricer) -> None:
    assert pricer.price(call("gpt-4.1", "openai", api_key_id="key-123")).contracted_nanos == 5_000_000_000
    assert pricer.price(call("gpt-4.1", "openai")).contracted_nanos == 10_000_000_000  # list $2 + $8
    onprem = pricer.price(call("llama-3.1-70b", "vllm"))
    assert onprem.status == PRICED and onprem.contracted_nanos == onprem.list_nanos == 750_000_000


def test_unknown_model_is_unpriced_never_zero(pricer: Pricer) -> None:
    cost = pricer.price(call("totally-new-model-9000", "acme"))
    assert (
        cost.status == UNPRICED and cost.contracted_nanos is None and "totally-new-model-9000" in cost.reason
    )


def test_reload_swaps_the_book(pricer: Pricer) -> None:
    pricer.reload(None)
    assert pricer.price(call("gpt-4o-mini", "openai")).contracted_nanos == 750_000_000
    assert pricer.price(call("llama-3.1-70b", "vllm")).status == UNPRICED


def test_rates_are_exact_decimals(tmp_path: Path) -> None:
    book = load_model(tmp_path / "b.yaml", PriceBook, text="entries: [{model: m, input: 0.1, output: 0.3}]")
    assert (book.entries[0].input, book.entries[0].output) == (Decimal("0.1"), Decimal("0.3"))


def test_seed_catalog_loads_as_a_price_book() -> None:
    book = load_model(ROOT / "examples" / "model-catalog.json", PriceBook)
    assert {e.model for e in book.entries} >= {"gpt-4o", "gpt-4o-mini"}
    assert book.entries[0].input == Decimal("5.00")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("entries:\n  - model: m\n    input: 1\n    discount_percent: 5\n", 2, "either rates"),
        (
            "entries:\n  - model: m\n    input: 1\n    effective_from: 2026-02-01\n    effective_to: 2026-01-01\n",
            2,
            "effective_to",
        ),
        ("entries:\n  - model: m\n    input: -1\n", 3, "greater than or equal"),
        ("entries:\n  - model: m\n    inptu: 1\n", 3, "unknown key"),
    ],
)
def test_bad_entries_are_refused_with_their_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_model(tmp_path / "book.yaml", PriceBook, text=text)
    issue = caught.value.errors[0]
    assert issue.line == line and fragment in issue.message
    assert str(caught.value).startswith(f"{tmp_path / 'book.yaml'}:{line}:")
