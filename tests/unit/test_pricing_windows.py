"""The Pricer's rate cache never applies a price outside the window in which it is in force.

Prices used (genai-prices 0.2.3 data, USD per 1M tokens), each expected amount computed by hand:
* deepseek-chat: 0.27 in / 1.1 out between 00:30 and 16:30 UTC, 0.135 / 0.55 off-peak (TimeOfDate).
* claude-sonnet-4-6: until 2026-03-12 input 3 (6 above 200k total input), output 15 (22.5 above
  200k); from 2026-03-13 a flat 3 / 15 (StartDate, UTC midnight).
* o3: 10 / 40 until 2025-06-09, 2 / 8 from 2025-06-10.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmcost_collector.model import PRICED, Attribution, LlmCall, Usage
from llmcost_collector.price.billing import bill
from llmcost_collector.price.catalog import NS_PER_DAY, instant
from llmcost_collector.price.pricer import PriceBook, Pricer

NS = 10**9


def at(text: str) -> int:
    moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * NS


def call(
    model: str, provider: str, start_ns: int, usage: Usage, response_model: str = "", **props: str
) -> LlmCall:
    return LlmCall(
        trace_id="1" * 32, span_id="2" * 16, start_time_ns=start_ns, end_time_ns=start_ns + NS,
        provider=provider, operation="chat", request_model=model, response_model=response_model,
        usage=usage, attribution=Attribution(team="t", properties=dict(props)),
    )  # fmt: skip


MILLION_IN = Usage(input_tokens=1_000_000)


def test_time_of_day_price_is_not_cached_across_its_edges() -> None:
    pricer = Pricer()
    peak = at("2026-11-01T10:00:00")
    off_peak = at("2026-11-01T20:00:00")
    # 1M * 0.27 = $0.27 at peak; 1M * 0.135 = $0.135 off-peak, same day, same warm Pricer
    assert pricer.price(call("deepseek-chat", "deepseek", peak, MILLION_IN)).list_nanos == 270_000_000
    assert pricer.price(call("deepseek-chat", "deepseek", off_peak, MILLION_IN)).list_nanos == 135_000_000
    assert (
        pricer.price(call("deepseek-chat", "deepseek", peak + 3600 * NS, MILLION_IN)).list_nanos
        == 270_000_000
    )
    # the peak window starts at 00:30:00 exactly; one nanosecond earlier is still off-peak
    start = at("2026-11-01T00:30:00")
    assert pricer.price(call("deepseek-chat", "deepseek", start - 1, MILLION_IN)).list_nanos == 135_000_000
    assert pricer.price(call("deepseek-chat", "deepseek", start, MILLION_IN)).list_nanos == 270_000_000


def test_warm_new_price_never_reprices_a_call_one_nanosecond_before_the_change() -> None:
    pricer = Pricer()
    usage = Usage(input_tokens=300_000, output_tokens=1000)
    change = at("2026-03-13T00:00:00")
    new = pricer.price(call("claude-sonnet-4-6", "anthropic", change + 5 * NS, usage))
    old = pricer.price(call("claude-sonnet-4-6", "anthropic", change - 1, usage))
    # new flat price: 300000*3 + 1000*15 = 900000 + 15000 = 915000 per 1e6 = $0.915
    assert new.list_nanos == 915_000_000 and new.price_effective_from == "2026-03-13"
    # old long-context tier (300k > 200k): 300000*6 + 1000*22.5 = 1800000 + 22500 = 1822500 per 1e6
    assert old.list_nanos == 1_822_500_000 and old.price_effective_from == ""


def test_instant_never_rounds_up_across_midnight() -> None:
    last_ns_of_day = at("2026-03-13T00:00:00") - 1
    assert instant(last_ns_of_day).date().isoformat() == "2026-03-12"
    assert instant(last_ns_of_day + 1).date().isoformat() == "2026-03-13"


def test_price_book_effective_to_is_exclusive_at_utc_midnight() -> None:
    book = PriceBook.model_validate({"entries": [
        {"name": "jan", "provider": "openai", "model": "gpt-4o-mini", "input": "0.1", "output": "0.4",
         "effective_from": "2026-01-01", "effective_to": "2026-02-01"},
    ]})  # fmt: skip
    pricer = Pricer(book)
    usage = Usage(input_tokens=1_000_000)
    inside = pricer.price(call("gpt-4o-mini", "openai", at("2026-01-15T12:00:00"), usage))
    after = pricer.price(call("gpt-4o-mini", "openai", at("2026-02-01T00:00:00"), usage))
    last = pricer.price(call("gpt-4o-mini", "openai", at("2026-02-01T00:00:00") - 1, usage))
    before = pricer.price(call("gpt-4o-mini", "openai", at("2026-01-01T00:00:00") - 1, usage))
    assert (inside.contracted_nanos, inside.price_id) == (100_000_000, "price-book:jan")  # 1M * 0.1
    assert (last.contracted_nanos, last.price_id) == (100_000_000, "price-book:jan")
    assert (after.contracted_nanos, after.price_source) == (150_000_000, "genai-prices")  # 1M * 0.15 list
    assert (before.contracted_nanos, before.price_source) == (150_000_000, "genai-prices")
    assert inside.list_nanos == after.list_nanos == 150_000_000


# --- model resolution ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "request_model", "response_model", "price_id"),
    [
        ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),  # dated response id
        ("azure.ai.openai", "prod-chat-deployment", "gpt-4o-mini-2024-07-18", "azure/gpt-4o-mini"),
        ("azure.ai.openai", "gpt-4o-mini", "acme-finetune-xyz", "azure/gpt-4o-mini"),  # response unknown
        ("aws.bedrock", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
         "us.anthropic.claude-3-7-sonnet-20250219-v1:0", "",
         "aws/regional.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        ("gcp.vertex_ai", "publishers/google/models/gemini-2.0-flash-001", "", "google/gemini-2.0-flash"),
        ("gcp.vertex_ai", "claude-3-5-sonnet-v2@20241022", "", "google/claude-3-5-sonnet"),
        ("", "gpt-4o-mini", "", "openai/gpt-4o-mini"),  # provider unknown: matched by model
        ("my-gateway", "claude-3-5-haiku-20241022", "", "anthropic/claude-3-5-haiku-latest"),
        ("openai", "anthropic/claude-3.5-sonnet", "", "anthropic/claude-3-5-sonnet"),  # compatible gateway
    ],
)  # fmt: skip
def test_model_resolution(provider: str, request_model: str, response_model: str, price_id: str) -> None:
    cost = Pricer().price(
        call(request_model, provider, at("2026-11-01T12:00:00"), MILLION_IN, response_model)
    )
    assert (cost.status, cost.price_id) == (PRICED, price_id)


def test_self_hosted_models_are_never_billed_at_a_cloud_price() -> None:
    cost = Pricer().price(call("gpt-oss-120b", "ollama", at("2026-11-01T12:00:00"), MILLION_IN))
    assert cost.list_nanos is None and cost.contracted_nanos is None
    assert "'gpt-oss-120b'" in cost.reason and "'ollama'" in cost.reason
    book = PriceBook.model_validate({"entries": [{"provider": "ollama", "model": "gpt-oss-*", "input": 0.02,
                                                  "output": 0.1}]})  # fmt: skip
    priced = Pricer(book).price(call("gpt-oss-120b", "ollama", at("2026-11-01T12:00:00"), MILLION_IN))
    assert (priced.list_nanos, priced.contracted_nanos) == (20_000_000, 20_000_000)  # 1M * 0.02, book only


def test_unknown_model_names_every_model_tried() -> None:
    cost = Pricer().price(call("prod-deploy-7", "azure.ai.openai", at("2026-11-01T12:00:00"), MILLION_IN,
                               "acme-ft-42"))  # fmt: skip
    assert cost.status == "unpriced" and "'acme-ft-42' / 'prod-deploy-7'" in cost.reason


def test_one_hour_cache_writes_are_twice_input_where_the_list_lacks_the_rate() -> None:
    """Bedrock claude-3-7-sonnet lists 3 in / 3.75 5m-write and no 1h rate: Anthropic's 2x input applies."""
    usage = Usage(cache_write_tokens=3000, cache_write_1h_tokens=2000, output_tokens=100)
    cost = Pricer().price(call("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "aws.bedrock",
                               at("2026-11-01T12:00:00"), usage))  # fmt: skip
    # 1000 (5m) * 3.75 + 2000 (1h) * 6 + 100 * 15 = 3750 + 12000 + 1500 = 17250 per 1e6 = $0.01725
    assert cost.list_nanos == 17_250_000


# --- the price book's contracted layer --------------------------------------------------------


def test_negotiated_entry_without_cache_rates_keeps_the_list_ratio() -> None:
    book = PriceBook.model_validate({"entries": [
        {"name": "mini", "provider": "openai", "model": "gpt-4o-mini", "input": "0.1", "output": "0.4"},
    ]})  # fmt: skip
    usage = Usage(input_tokens=1000, cache_read_tokens=4000, output_tokens=500)
    cost = Pricer(book).price(call("gpt-4o-mini", "openai", at("2026-11-01T12:00:00"), usage))
    # cache read: list 0.075 x 0.1/0.15 = 0.05 (not the full 0.1 input rate)
    # 1000*0.1 + 4000*0.05 + 500*0.4 = 100 + 200 + 200 = 500 per 1e6
    assert cost.contracted_nanos == 500_000
    # list: 1000*0.15 + 4000*0.075 + 500*0.6 = 150 + 300 + 300 = 750 per 1e6
    assert cost.list_nanos == 750_000


def test_provider_wide_discount_with_the_default_model_glob() -> None:
    book = PriceBook.model_validate(
        {"entries": [{"name": "oai-commit", "provider": "openai", "discount_percent": 20}]}
    )
    cost = Pricer(book).price(call("o3", "openai", at("2026-11-01T12:00:00"), Usage(input_tokens=10**6,
                                                                                     output_tokens=10**6)))  # fmt: skip
    # list 1M*2 + 1M*8 = $10; 20% off = $8
    assert (cost.list_nanos, cost.contracted_nanos, cost.price_id) == (
        10 * NS,
        8 * NS,
        "price-book:oai-commit",
    )


def test_a_cache_hit_owes_nothing_and_saves_what_it_would_cost_when_served() -> None:
    """o3's price fell on 2025-06-10: an answer cached on the 9th and replayed on the 10th saved
    the 10th's price (1M input x $2 = $2), not the original call's ($10)."""
    pricer = Pricer()
    original = call("o3", "openai", at("2025-06-09T12:00:00"), MILLION_IN)
    replayed = call("o3", "openai", at("2025-06-10T12:00:00"), MILLION_IN)
    replayed.cache_hit = True
    assert bill(pricer, original).cost.contracted_nanos == 10 * NS
    hit = bill(pricer, replayed)
    assert (hit.cost.list_nanos, hit.cost.contracted_nanos, hit.savings_nanos) == (0, 0, 2 * NS)
    assert hit.prompt_cache_savings_nanos == 0  # the whole call was avoided, counted once


def test_prompt_cache_savings_are_the_read_rate_against_the_input_rate() -> None:
    book = PriceBook.model_validate({"entries": [
        {"name": "mini", "provider": "openai", "model": "gpt-4o-mini", "input": "0.1", "output": "0.4",
         "cache_read": "0.025"},
    ]})  # fmt: skip
    usage = Usage(input_tokens=1000, cache_read_tokens=4000, output_tokens=500)
    billed = bill(Pricer(book), call("gpt-4o-mini", "openai", at("2026-11-01T12:00:00"), usage))
    # 1000*0.1 + 4000*0.025 + 500*0.4 = 400 per 1e6; the reads at 0.1 would add 4000*0.075 = 300
    assert (billed.cost.contracted_nanos, billed.savings_nanos, billed.prompt_cache_savings_nanos) == (
        400_000,
        0,
        300_000,
    )


def test_price_book_defaults_and_exact_decimals() -> None:
    assert PriceBook().entries == []
    entry = PriceBook.model_validate({"entries": [{"model": "m", "input": 0.15, "output": "0.60"}]}).entries[
        0
    ]
    assert (entry.input, entry.output, entry.provider) == (Decimal("0.15"), Decimal("0.60"), "*")
    with pytest.raises(ValueError):
        PriceBook.model_validate({"entries": [{"model": "m", "input": "NaN", "output": 1}]})


def test_reload_never_serves_rates_cached_under_the_old_book() -> None:
    pricer = Pricer()
    mini = call("gpt-4o-mini", "openai", at("2026-11-01T12:00:00"), MILLION_IN)
    assert pricer.price(mini).contracted_nanos == 150_000_000
    pricer.reload(
        PriceBook.model_validate({"entries": [{"model": "gpt-4o-mini", "input": 0.1, "output": 0.4}]})
    )
    assert pricer.price(mini).contracted_nanos == 100_000_000
    pricer.reload(None)
    assert pricer.price(mini).contracted_nanos == 150_000_000


# --- properties ---------------------------------------------------------------------------------

MODELS = [("deepseek", "deepseek-chat"), ("anthropic", "claude-sonnet-4-6"), ("openai", "o3"),
          ("openai", "gpt-4o-mini"), ("gcp.gemini", "gemini-2.5-pro")]  # fmt: skip
EPOCHS = [at("2025-06-10T00:00:00"), at("2026-03-13T00:00:00"), at("2026-11-01T00:30:00")]
usages = st.builds(
    lambda i, r, w, o: Usage(input_tokens=i, cache_read_tokens=r, cache_write_tokens=w, output_tokens=o),
    st.integers(0, 400_000), st.integers(0, 300_000), st.integers(0, 50_000), st.integers(0, 100_000),
)  # fmt: skip
instants = st.builds(lambda base, off: base + off, st.sampled_from(EPOCHS),
                     st.integers(-2 * NS_PER_DAY, 2 * NS_PER_DAY))  # fmt: skip
WARM = Pricer()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MODELS), usages, instants)
def test_a_warm_pricer_agrees_with_a_cold_one(model: tuple[str, str], usage: Usage, start: int) -> None:
    """Whatever the cache holds (from earlier examples at other instants), the answer is the fresh one."""
    provider, name = model
    assert WARM.price(call(name, provider, start, usage)) == Pricer().price(
        call(name, provider, start, usage)
    )


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(MODELS), usages, instants)
def test_list_cost_equals_genai_prices_to_the_nano_dollar(
    model: tuple[str, str], usage: Usage, start: int
) -> None:
    provider, name = model
    cost = WARM.price(call(name, provider, start, usage))
    reference = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=usage.total_input_tokens, cache_read_tokens=usage.cache_read_tokens,
                           cache_write_tokens=usage.cache_write_tokens, output_tokens=usage.output_tokens),
        name, provider_id={"gcp.gemini": "google"}.get(provider, provider), genai_request_timestamp=instant(start),
    )  # fmt: skip
    expected = int((reference.total_price * NS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert cost.list_nanos == expected
