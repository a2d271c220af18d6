"""Golden corpus (tests/golden/provider_payloads.json): real provider usage payloads, the span attributes
an instrumentation emits for them, and the cost computed by hand, asserted exactly in nano-dollars.

Three independent checks per case: (1) the fixture's span attributes agree with the raw provider
payload (no transcription slip), (2) ``normalize_span`` + ``Pricer().price`` give the hand-computed
nano-dollars, (3) genai-prices' own ``calc_price`` agrees with the hand arithmetic.
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from llmcost_collector.model import PRICED, LlmCall, SpanView
from llmcost_collector.normalize.span import normalize_span
from llmcost_collector.price.catalog import PROVIDER_IDS
from llmcost_collector.price.pricer import Pricer

CORPUS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "golden" / "provider_payloads.json").read_text()
)["cases"]
IDS = [case["name"] for case in CORPUS]
PRICER = Pricer()


def start_ns(case: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(case["start"]).timestamp()) * 10**9


def span_for(case: dict[str, Any]) -> SpanView:
    start = start_ns(case)
    return SpanView(
        trace_id="ab" * 16, span_id="cd" * 8, name="chat " + case["attributes"].get("gen_ai.request.model", ""),
        start_time_ns=start, end_time_ns=start + 2 * 10**9, attributes=dict(case["attributes"]), resource={},
    )  # fmt: skip


def call_for(case: dict[str, Any]) -> LlmCall:
    call = normalize_span(span_for(case))
    assert call is not None, "an LLM span must give a call"
    return call


def implied_by_payload(payload: dict[str, Any]) -> dict[str, int]:
    """What the raw provider payload says, in canonical terms (uncached input, ...), by hand per wire format."""
    if "usageMetadata" in payload:  # Gemini: promptTokenCount includes cached; thoughts are extra output
        meta = payload["usageMetadata"]
        cached = meta.get("cachedContentTokenCount", 0)
        thoughts = meta.get("thoughtsTokenCount", 0)
        return {"input_tokens": meta["promptTokenCount"] - cached, "cache_read_tokens": cached,
                "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
                "output_tokens": meta["candidatesTokenCount"] + thoughts, "reasoning_tokens": thoughts}  # fmt: skip
    usage = payload["usage"]
    if "inputTokens" in usage:  # Bedrock Converse: inputTokens excludes cache reads and writes
        return {"input_tokens": usage["inputTokens"], "cache_read_tokens": usage.get("cacheReadInputTokens", 0),
                "cache_write_tokens": usage.get("cacheWriteInputTokens", 0), "cache_write_1h_tokens": 0,
                "output_tokens": usage["outputTokens"], "reasoning_tokens": 0}  # fmt: skip
    if payload.get("type") == "message":  # Anthropic: input_tokens excludes cache reads and writes
        creation = usage.get("cache_creation") or {}
        return {"input_tokens": usage["input_tokens"], "cache_read_tokens": usage.get("cache_read_input_tokens", 0),
                "cache_write_tokens": usage.get("cache_creation_input_tokens", 0),
                "cache_write_1h_tokens": creation.get("ephemeral_1h_input_tokens", 0),
                "output_tokens": usage["output_tokens"], "reasoning_tokens": 0}  # fmt: skip
    if "prompt_tokens" in usage:  # OpenAI chat completions (and the final streaming chunk): includes cached
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
        return {"input_tokens": usage["prompt_tokens"] - cached, "cache_read_tokens": cached,
                "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
                "output_tokens": usage["completion_tokens"], "reasoning_tokens": reasoning}  # fmt: skip
    # OpenAI responses: input_tokens includes input_tokens_details.cached_tokens
    cached = usage["input_tokens_details"]["cached_tokens"]
    return {"input_tokens": usage["input_tokens"] - cached, "cache_read_tokens": cached,
            "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "output_tokens": usage["output_tokens"],
            "reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"]}  # fmt: skip


def canonical(call: LlmCall) -> dict[str, int]:
    u = call.usage
    return {"input_tokens": u.input_tokens, "cache_read_tokens": u.cache_read_tokens,
            "cache_write_tokens": u.cache_write_tokens, "cache_write_1h_tokens": u.cache_write_1h_tokens,
            "output_tokens": u.output_tokens, "reasoning_tokens": u.reasoning_tokens}  # fmt: skip


def test_corpus_covers_what_the_issue_asks_for() -> None:
    names = " ".join(IDS).lower()
    for needle in ("chat.completions", "responses", "streaming", "5m/1h", "gemini", "bedrock", "long context",
                   "before its", "after its"):  # fmt: skip
        assert needle in names, needle
    assert len({c["expected_nanos"] for c in CORPUS}) >= 12  # distinct amounts, not one case copied


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_fixture_attributes_agree_with_the_provider_payload(case: dict[str, Any]) -> None:
    assert case["expected_usage"] == implied_by_payload(case["provider_payload"])


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_canonical_usage(case: dict[str, Any]) -> None:
    call = call_for(case)
    assert canonical(call) == case["expected_usage"]
    assert not call.usage.estimated


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_golden_cost_is_exact_to_the_nano_dollar(case: dict[str, Any]) -> None:
    cost = PRICER.price(call_for(case))
    assert cost.status == PRICED, cost.reason
    assert cost.contracted_nanos == case["expected_nanos"], case["arithmetic"]
    assert cost.list_nanos == case["expected_nanos"]  # no price book: both layers are the list price
    assert cost.price_source == "genai-prices"
    assert cost.price_id == case["expected_price_id"]
    if "expected_effective_from" in case:
        assert cost.price_effective_from == case["expected_effective_from"]


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_hand_arithmetic_agrees_with_genai_prices_calc_price(case: dict[str, Any]) -> None:
    """The oracle for the hand arithmetic: genai-prices' own (slow, uncached) calculation."""
    usage = case["expected_usage"]
    provider = case["attributes"].get("gen_ai.provider.name") or case["attributes"]["gen_ai.system"]
    provider_id = PROVIDER_IDS.get({"gemini": "gcp.gemini"}.get(provider, provider), provider)
    model = case["attributes"].get("gen_ai.response.model") or case["attributes"]["gen_ai.request.model"]
    price = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage["input_tokens"] + usage["cache_read_tokens"] + usage["cache_write_tokens"],
            cache_read_tokens=usage["cache_read_tokens"],
            cache_write_tokens=usage["cache_write_tokens"],  # genai-prices: all writes, 1h ones included
            cache_write_1h_tokens=usage["cache_write_1h_tokens"] if usage["cache_write_1h_tokens"] else None,
            output_tokens=usage["output_tokens"],
        ),
        model,
        provider_id=provider_id,
        genai_request_timestamp=datetime.fromisoformat(case["start"]),
    )
    assert price.total_price * Decimal(10**9) == case["expected_nanos"], case["arithmetic"]


def test_one_pricer_in_any_order_gives_the_same_answers() -> None:
    """Rates are cached per (provider, model, key, day): a warm cache never leaks a price across days."""
    pricer = Pricer()
    cases = list(CORPUS) * 3
    random.Random(7).shuffle(cases)
    for case in cases:
        assert pricer.price(call_for(case)).contracted_nanos == case["expected_nanos"], case["name"]


def test_warm_cache_for_the_new_price_does_not_reprice_an_older_call() -> None:
    before, after = (c for c in CORPUS if c["name"].startswith("claude-sonnet-4-6"))
    pricer = Pricer()
    for _ in range(3):  # after first: the new price is cached when the older call arrives
        assert pricer.price(call_for(after)).contracted_nanos == 930_000_000
        assert pricer.price(call_for(before)).contracted_nanos == 1_845_000_000


def test_reasoning_is_part_of_output_and_billed_once() -> None:
    """Adding reasoning as a separate output class would bill 1408 tokens twice: 1408 * $2/1M = 2816000 nanos."""
    (case,) = [c for c in CORPUS if "gpt-5-mini" in c["name"]]
    attrs = {k: v for k, v in case["attributes"].items() if k != "gen_ai.usage.reasoning.output_tokens"}
    without = PRICER.price(call_for({**case, "attributes": attrs}))
    assert without.contracted_nanos == case["expected_nanos"] == 3_889_200


def test_the_three_anthropic_spellings_cost_the_same() -> None:
    """SDK names, OTel + llmcost names, and native input all describe one Opus call: 282,750,000 nanos."""
    opus = [c for c in CORPUS if "claude-opus-4-1" in c["name"]]
    assert len(opus) == 2
    native = dict(opus[1]["attributes"], **{"gen_ai.usage.input_tokens": 2100})  # input excludes cache
    costs = {PRICER.price(call_for(c)).contracted_nanos for c in opus}
    costs.add(PRICER.price(call_for({**opus[1], "attributes": native})).contracted_nanos)
    assert costs == {282_750_000}
