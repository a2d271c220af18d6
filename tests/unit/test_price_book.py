"""The org price book: negotiated rates (contracted layer) beside genai-prices list prices, percent
discounts, custom models, effective dating, key-scoped entries, reload, Decimal exactness and
line-precise errors. Every expected amount is computed by hand in the comment next to it."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.config.schema import load_config
from llmcost_collector.config.yaml_loader import ConfigError, load_model
from llmcost_collector.model import PRICED, UNPRICED, Attribution, LlmCall, Usage
from llmcost_collector.price.pricer import PriceBook, Pricer

ROOT = Path(__file__).resolve().parents[2]
BOOK_YAML = """\
currency: USD
entries:
  - name: acme-gpt-4o-mini
    provider: openai
    model: "gpt-4o-mini*"
    input: 0.1
    cache_read: 0.05
    output: 0.4
    effective_from: 2026-07-01
    effective_to: 2027-01-01
  - name: key-team-x
    provider: openai
    model: gpt-4.1
    api_key_id: key-x
    input: 1.5
    output: 6
  - name: anthropic-enterprise
    provider: anthropic
    model: "claude-*"
    discount_percent: 12.5
  - name: onprem-llama
    provider: vllm
    model: acme-llama-70b
    input: 0.2
    output: 0.2
"""
# 1000 uncached input, 4000 cache reads, 500 output
CACHED = Usage(input_tokens=1000, cache_read_tokens=4000, output_tokens=500)
# 2000 input, 1000 output, no cache
PLAIN = Usage(input_tokens=2000, output_tokens=1000)


def call(model: str, provider: str, when: str, usage: Usage, **properties: str) -> LlmCall:
    start = int(datetime.fromisoformat(when).replace(tzinfo=timezone.utc).timestamp()) * 10**9
    return LlmCall(
        trace_id="1" * 32, span_id="2" * 16, start_time_ns=start, end_time_ns=start + 10**9,
        provider=provider, operation="chat", request_model=model, response_model="",
        usage=usage, attribution=Attribution(team="t", properties=dict(properties)),
    )  # fmt: skip


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return load_model("book.yaml", PriceBook, text=BOOK_YAML)


@pytest.fixture
def pricer(book: PriceBook) -> Pricer:
    return Pricer(book)


# --- the seed catalogue -------------------------------------------------------------------


def test_seed_catalog_json_loads_as_a_price_book() -> None:
    catalog = load_model(ROOT / "examples" / "model-catalog.json", PriceBook)
    rates = {e.name: (e.input, e.output) for e in catalog.entries}
    assert rates == {
        "seed-catalog/gpt-4o": (Decimal("5.00"), Decimal("15.00")),
        "seed-catalog/gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
        "seed-catalog/claude-3-5-sonnet": (Decimal("3.00"), Decimal("15.00")),
        "seed-catalog/haiku-3.5": (Decimal("1.25"), Decimal("5.00")),
    }


def test_seed_catalog_prices_contracted_while_list_stays_genai_prices() -> None:
    pricer = Pricer(load_model(ROOT / "examples" / "model-catalog.json", PriceBook))
    cost = pricer.price(call("gpt-4o", "openai", "2026-11-01", PLAIN))
    assert cost.contracted_nanos == 25_000_000  # seed 5/15: 2000*5 + 1000*15 = 10000 + 15000 = 25000 per 1e6
    assert (cost.price_source, cost.price_id) == ("price-book", "price-book:seed-catalog/gpt-4o")
    assert cost.list_nanos == 15_000_000  # genai-prices gpt-4o 2.5/10: 2000*2.5 + 1000*10 = 15000 per 1e6


def test_seed_catalog_haiku_glob_and_effective_from() -> None:
    pricer = Pricer(load_model(ROOT / "examples" / "model-catalog.json", PriceBook))
    haiku = call("claude-3-5-haiku-20241022", "anthropic", "2026-11-01", PLAIN)
    cost = pricer.price(haiku)
    # 2000*1.25 + 1000*5 = 2500 + 5000 = 7500 per 1e6
    assert (cost.contracted_nanos, cost.price_source) == (7_500_000, "price-book")
    assert (cost.price_id, cost.price_effective_from) == ("price-book:seed-catalog/haiku-3.5", "2024-11-15")
    # genai-prices claude-3-5-haiku: 0.8/4 -> 2000*0.8 + 1000*4 = 1600 + 4000 = 5600 per 1e6
    assert cost.list_nanos == 5_600_000
    early = pricer.price(call("claude-3-5-haiku-20241022", "anthropic", "2024-11-14", PLAIN))
    assert (early.contracted_nanos, early.price_source) == (
        5_600_000,
        "genai-prices",
    )  # before effective_from


# --- negotiated rates, discounts, custom models ------------------------------------------------


def test_negotiated_rates_replace_the_list_price(pricer: Pricer) -> None:
    cost = pricer.price(call("gpt-4o-mini", "openai", "2026-11-01", CACHED))
    assert cost.status == PRICED
    # contracted: 1000*0.1 + 4000*0.05 + 500*0.4 = 100 + 200 + 200 = 500 per 1e6 = $0.0005
    assert cost.contracted_nanos == 500_000
    # list (genai-prices 0.15 / 0.075 / 0.60): 150 + 300 + 300 = 750 per 1e6
    assert cost.list_nanos == 750_000
    assert (cost.price_source, cost.price_id) == ("price-book", "price-book:acme-gpt-4o-mini")
    assert cost.price_effective_from == "2026-07-01"


def test_glob_matches_the_dated_model_id(pricer: Pricer) -> None:
    cost = pricer.price(call("gpt-4o-mini-2024-07-18", "openai", "2026-11-01", CACHED))
    assert (cost.contracted_nanos, cost.list_nanos) == (500_000, 750_000)


@pytest.mark.parametrize(
    ("when", "source", "contracted"),
    [
        ("2026-06-30", "genai-prices", 750_000),  # the day before effective_from: list price
        ("2026-07-01", "price-book", 500_000),  # effective_from is inclusive
        ("2026-12-31", "price-book", 500_000),
        ("2027-01-01", "genai-prices", 750_000),  # effective_to is exclusive
    ],
)
def test_effective_dating(pricer: Pricer, when: str, source: str, contracted: int) -> None:
    cost = pricer.price(call("gpt-4o-mini", "openai", when, CACHED))
    assert (cost.price_source, cost.contracted_nanos, cost.list_nanos) == (source, contracted, 750_000)


def test_percent_discount_on_the_list_price(pricer: Pricer) -> None:
    cost = pricer.price(call("claude-haiku-4-5", "anthropic", "2026-11-01", CACHED))
    # list 1 / 0.1 / 5: 1000*1 + 4000*0.1 + 500*5 = 1000 + 400 + 2500 = 3900 per 1e6
    assert cost.list_nanos == 3_900_000
    # 12.5% off: 3900 * 0.875 = 3412.5 per 1e6 = 3,412,500 nanos exactly
    assert cost.contracted_nanos == 3_412_500
    assert (cost.price_source, cost.price_id) == ("price-book", "price-book:anthropic-enterprise")


def test_percent_discount_on_a_tiered_list_price(pricer: Pricer) -> None:
    usage = Usage(input_tokens=250_000, output_tokens=1000)
    cost = pricer.price(call("claude-sonnet-4-5", "anthropic", "2026-11-01", usage))
    # 250k > 200k: tier 6 / 22.5 -> 250000*6 + 1000*22.5 = 1500000 + 22500 = 1522500 per 1e6
    assert cost.list_nanos == 1_522_500_000
    assert cost.contracted_nanos == 1_332_187_500  # 1522500 * 0.875 = 1332187.5 per 1e6


def test_discount_on_an_unknown_model_stays_unpriced(pricer: Pricer) -> None:
    cost = pricer.price(call("claude-nonexistent-9", "anthropic", "2026-11-01", PLAIN))
    assert cost.status == UNPRICED and cost.contracted_nanos is None and cost.list_nanos is None
    assert "claude-nonexistent-9" in cost.reason


def test_custom_self_hosted_model_is_priced_only_by_the_book(pricer: Pricer) -> None:
    assert pricer.list_prices.rates("vllm", "acme-llama-70b", 0) is None  # no public list price
    cost = pricer.price(call("acme-llama-70b", "vllm", "2026-11-01", PLAIN))
    # 2000*0.2 + 1000*0.2 = 600 per 1e6
    assert (cost.status, cost.contracted_nanos, cost.price_id) == (PRICED, 600_000, "price-book:onprem-llama")
    assert cost.list_nanos == 600_000  # no list layer: list cost is the book's


def test_api_key_scoped_entry(pricer: Pricer) -> None:
    keyed = pricer.price(call("gpt-4.1", "openai", "2026-11-01", PLAIN, api_key_id="key-x"))
    other = pricer.price(call("gpt-4.1", "openai", "2026-11-01", PLAIN, api_key_id="key-y"))
    none = pricer.price(call("gpt-4.1", "openai", "2026-11-01", PLAIN))
    # key-x: 2000*1.5 + 1000*6 = 3000 + 6000 = 9000 per 1e6; list 2/8: 4000 + 8000 = 12000 per 1e6
    assert (keyed.contracted_nanos, keyed.list_nanos, keyed.price_id) == (
        9_000_000,
        12_000_000,
        "price-book:key-team-x",
    )
    assert (other.contracted_nanos, other.price_source) == (12_000_000, "genai-prices")
    assert (none.contracted_nanos, none.price_source) == (12_000_000, "genai-prices")


@pytest.mark.parametrize(
    ("model", "provider"), [("no-such-model-xyz", "openai"), ("my-finetune", ""), ("", "")]
)
def test_unknown_model_is_unpriced_with_a_reason_never_zero(model: str, provider: str) -> None:
    cost = Pricer().price(call(model, provider, "2026-11-01", PLAIN))
    assert cost.status == UNPRICED
    assert cost.contracted_nanos is None and cost.list_nanos is None
    assert cost.reason and "no list or price-book price" in cost.reason


def test_reload_swaps_the_book(book: PriceBook) -> None:
    pricer = Pricer(book)
    mini = call("gpt-4o-mini", "openai", "2026-11-01", CACHED)
    assert pricer.price(mini).contracted_nanos == 500_000  # warm: cached per model and day
    pricer.reload(None)
    assert (pricer.price(mini).contracted_nanos, pricer.price(mini).price_source) == (750_000, "genai-prices")
    assert pricer.price(call("acme-llama-70b", "vllm", "2026-11-01", PLAIN)).status == UNPRICED
    cheaper = load_model(
        "b.yaml", PriceBook, text="entries:\n  - {model: gpt-4o-mini, discount_percent: 40}\n"
    )
    pricer.reload(cheaper)
    assert pricer.price(mini).contracted_nanos == 450_000  # 750 * 0.6 = 450 per 1e6


# --- exactness -----------------------------------------------------------------------------------


def test_yaml_decimals_are_exact(book: PriceBook) -> None:
    entry = book.entries[0]
    assert entry.input == Decimal("0.1") and entry.input.as_tuple().exponent == -1  # not a binary float
    assert book.entries[2].discount_percent == Decimal("12.5")


def test_sub_nano_costs_round_half_even_once() -> None:
    """$0.000001 per 1M tokens is 0.001 nano-dollars per token: 1500 tokens = 1.5 -> 2, 2500 = 2.5 -> 2."""
    book = load_model("t.yaml", PriceBook, text="entries:\n  - {model: tiny, input: 0.000001, output: 0}\n")
    pricer = Pricer(book)
    assert pricer.price(call("tiny", "x", "2026-11-01", Usage(input_tokens=1500))).contracted_nanos == 2
    assert pricer.price(call("tiny", "x", "2026-11-01", Usage(input_tokens=2500))).contracted_nanos == 2
    assert pricer.price(call("tiny", "x", "2026-11-01", Usage(input_tokens=3500))).contracted_nanos == 4


def test_many_tiny_rates_sum_exactly() -> None:
    """0.1 + 0.2 is exactly 0.3 in Decimal: 1M input at 0.1 + 1M output at 0.2 = $0.3 = 300,000,000 nanos."""
    book = load_model("t.yaml", PriceBook, text="entries:\n  - {model: m, input: 0.1, output: 0.2}\n")
    cost = Pricer(book).price(call("m", "x", "2026-11-01", Usage(input_tokens=10**6, output_tokens=10**6)))
    assert cost.contracted_nanos == 300_000_000


# --- validation with line-precise errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("entries:\n  - model: gpt-4o\n    input: 1\n    discount_percent: 10\n", 2, "not both"),
        ("entries:\n  - model: gpt-4o\n    name: x\n", 2, "give rates"),
        (
            "entries:\n  - model: a\n    input: 1\n  - model: b\n    input: 1\n    effective_from: 2026-05-01\n"
            "    effective_to: 2026-04-01\n",
            4,
            "effective_to must be after effective_from",
        ),
        (
            "entries:\n  - model: a\n    input: 1\n    effective_from: 2026-05-01\n    effective_to: 2026-05-01\n",
            2,
            "effective_to must be after effective_from",
        ),
        ("entries:\n  - model: a\n    input: -1\n", 3, "greater than or equal to 0"),
        ("entries:\n  - model: a\n    discount_percent: 150\n", 3, "less than or equal to 100"),
        ("entries:\n  - model: a\n    inptu: 1\n    output: 2\n", 3, "unknown key 'inptu'"),
        ("currency: EUR\nentries: []\n", 1, "currency"),
        ("entries:\n  - model: a\n    input: 1\n    input: 2\n", 4, "duplicate key 'input'"),
    ],
    ids=[
        "rates-and-discount",
        "neither",
        "to-before-from",
        "to-equals-from",
        "negative",
        "discount>100",
        "typo",
        "currency",
        "duplicate",
    ],
)
def test_bad_entries_are_refused_with_their_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_model("prices.yaml", PriceBook, text=text)
    assert any(
        issue.line == line and fragment in (issue.path + " " + issue.message) for issue in info.value.errors
    ), str(info.value)
    assert f"prices.yaml:{line}:" in str(info.value)


def test_bad_price_book_in_a_config_file_points_into_it(tmp_path: Path) -> None:
    path = tmp_path / "llmcost.yaml"
    path.write_text("price_book:\n  entries:\n    - model: a\n      input: 1\n      discount_percent: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (issue,) = info.value.errors
    assert (issue.line, issue.path) == (3, "price_book.entries[0]")
    assert str(info.value).startswith(f"{path}:3:")


# --- aliases: an entry written for the seed's names -----------------------------------------------

SEED_ALIAS = """\
entries:
  - name: seed-haiku
    provider: anthropic
    model: haiku-3.5
    aliases: [claude-3-5-haiku-20241022, "claude-3-5-haiku-latest"]
    input: 1.25
    output: 5.00
  - {name: seed-sonnet, model: sonnet-3.5, aliases: [claude-3-5-sonnet-20241022]}
"""


def test_an_entry_for_a_seed_name_prices_calls_naming_its_catalogue_alias() -> None:
    pricer = Pricer(load_model("seed.yaml", PriceBook, text=SEED_ALIAS))
    cost = pricer.price(call("claude-3-5-haiku-20241022", "anthropic", "2026-11-01", PLAIN))
    # 2000*1.25 + 1000*5 = 7500 per 1e6; the list layer is genai-prices' 0.8/4: 1600 + 4000 = 5600
    assert (cost.contracted_nanos, cost.price_id) == (7_500_000, "price-book:seed-haiku")
    assert cost.list_nanos == 5_600_000


def test_a_call_naming_the_seed_name_gets_the_aliased_models_list_price() -> None:
    pricer = Pricer(load_model("seed.yaml", PriceBook, text=SEED_ALIAS))
    cost = pricer.price(call("haiku-3.5", "anthropic", "2026-11-01", PLAIN))  # no catalogue knows it
    assert (cost.contracted_nanos, cost.list_nanos) == (7_500_000, 5_600_000)


def test_an_alias_without_rates_is_priced_at_the_catalogue_models_list_price() -> None:
    pricer = Pricer(load_model("seed.yaml", PriceBook, text=SEED_ALIAS))
    cost = pricer.price(call("sonnet-3.5", "anthropic", "2026-11-01", PLAIN))
    # genai-prices claude-3-5-sonnet 3/15: 2000*3 + 1000*15 = 6000 + 15000 = 21000 per 1e6
    assert (cost.status, cost.list_nanos, cost.contracted_nanos) == (PRICED, 21_000_000, 21_000_000)
    assert (cost.price_source, cost.price_id) == ("genai-prices", "anthropic/claude-3-5-sonnet")


def test_an_entry_with_only_glob_aliases_and_no_price_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_model("b.yaml", PriceBook, text="entries:\n  - {model: haiku-3.5, aliases: ['claude-*']}\n")
    assert "b.yaml:2:" in str(info.value) and "aliases naming a catalogue model" in str(info.value)


# --- include: a catalogue file in the collector's config ------------------------------------------


def catalogue_config(tmp_path: Path, include: str, entries: str = "") -> Path:
    (tmp_path / "catalogues").mkdir(exist_ok=True)
    (tmp_path / "catalogues" / "model-catalog.json").write_text(
        (ROOT / "examples" / "model-catalog.json").read_text()
    )
    path = tmp_path / "llmcost.yaml"
    path.write_text(f"version: 1\nprice_book:\n  include: {include}\n{entries}")
    return path


def test_a_config_includes_the_seed_catalogue_after_its_own_entries(tmp_path: Path) -> None:
    own = "  entries:\n    - {name: ours, provider: openai, model: gpt-4o, input: 2, output: 8}\n"
    config = load_config(catalogue_config(tmp_path, "catalogues/model-catalog.json", own))
    assert [e.name for e in config.price_book.entries] == [
        "ours", "seed-catalog/gpt-4o", "seed-catalog/gpt-4o-mini", "seed-catalog/claude-3-5-sonnet",
        "seed-catalog/haiku-3.5",
    ]  # fmt: skip
    pricer = Pricer(config.price_book)
    # the config's own entry wins: 2000*2 + 1000*8 = 12000 per 1e6
    assert pricer.price(call("gpt-4o", "openai", "2026-11-01", PLAIN)).contracted_nanos == 12_000_000
    haiku = pricer.price(call("claude-3-5-haiku-20241022", "anthropic", "2026-11-01", PLAIN))
    assert (haiku.contracted_nanos, haiku.price_id) == (7_500_000, "price-book:seed-catalog/haiku-3.5")


def test_a_missing_include_is_reported_at_its_line(tmp_path: Path) -> None:
    path = catalogue_config(tmp_path, "[catalogues/model-catalog.json, nowhere.json]")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (issue,) = info.value.errors
    assert (issue.line, issue.path) == (3, "price_book.include[1]")
    assert str(info.value).startswith(f"{path}:3:") and "nowhere.json: no such file" in str(info.value)


def test_a_bad_included_file_is_reported_at_its_own_line(tmp_path: Path) -> None:
    path = catalogue_config(tmp_path, "prices.yaml")
    (tmp_path / "prices.yaml").write_text("entries:\n  - model: m\n    input: -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{tmp_path / 'prices.yaml'}:3:") and "entries[0].input" in str(
        info.value
    )


def test_includes_do_not_nest(tmp_path: Path) -> None:
    path = catalogue_config(tmp_path, "prices.yaml")
    (tmp_path / "prices.yaml").write_text("entries: []\ninclude: catalogues/model-catalog.json\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (
        str(info.value)
        == f"{tmp_path / 'prices.yaml'}:2:10: include: an included price book cannot include others"
    )
