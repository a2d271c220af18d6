"""Golden corpus: real usage payloads priced exactly, to the nano-dollar, from published prices."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from llmcost_collector.model import PRICED, SpanView
from llmcost_collector.normalize.span import normalize_span
from llmcost_collector.price.pricer import Pricer

CORPUS = json.loads((Path(__file__).parents[1] / "golden" / "usage_corpus.json").read_text())["cases"]
PRICER = Pricer()


def span_for(case: dict) -> SpanView:
    start = (
        int(datetime.fromisoformat(case["date"]).replace(hour=12, tzinfo=timezone.utc).timestamp()) * 10**9
    )
    return SpanView(
        trace_id="1" * 32, span_id="2" * 16, name="chat", start_time_ns=start, end_time_ns=start + 10**9,
        attributes={"gen_ai.operation.name": "chat", **case["attributes"]}, resource={},
    )  # fmt: skip


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_golden_cost_is_exact(case: dict) -> None:
    call = normalize_span(span_for(case))
    assert call is not None
    cost = PRICER.price(call)
    assert cost.status == PRICED, cost.reason
    assert cost.contracted_nanos == case["expected_nanos"], case["arithmetic"]
    assert cost.list_nanos == case["expected_nanos"]  # no price book: contracted = list
    assert cost.price_source == "genai-prices" and cost.price_id


def test_cached_tokens_are_not_billed_twice() -> None:
    (case,) = [c for c in CORPUS if c["name"].startswith("anthropic")]
    call = normalize_span(span_for(case))
    assert call is not None
    usage = call.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (1500, 20000, 3000)
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (2000, 1000)
    assert usage.total_input_tokens == case["attributes"]["gen_ai.usage.input_tokens"]


def test_price_change_is_effective_dated() -> None:
    before, after = (c for c in CORPUS if c["name"].startswith("openai o3"))
    priced = [PRICER.price(normalize_span(span_for(c))) for c in (before, after)]  # type: ignore[arg-type]
    assert [p.contracted_nanos for p in priced] == [50_000_000, 10_000_000]
    assert priced[1].price_effective_from == "2025-06-10"
