"""Pricing throughput per core (issue 4): our cached Pricer vs genai-prices' calc_price, same calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import genai_prices
from llmcost_collector.model import Attribution, LlmCall, SpanView, Usage
from llmcost_collector.normalize.span import normalize_span
from llmcost_collector.price.pricer import Pricer

MODELS = (
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("anthropic", "claude-sonnet-4-5"),
    ("openai", "o4-mini"),
)
N = 20_000


def calls() -> list[LlmCall]:
    now = time.time_ns()
    out = []
    for i in range(N):
        provider, model = MODELS[i % len(MODELS)]
        usage = Usage(
            input_tokens=800 + i % 50, cache_read_tokens=200, output_tokens=300, reasoning_tokens=i % 7
        )
        out.append(LlmCall("0" * 32, "0" * 16, now, now, provider, "chat", model, "", usage, Attribution()))
    return out


def per_call_us(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - started) / len(items) * 1e6)
    return best


def _cold_run(items: list[LlmCall]) -> float:
    """Every call a cache miss: a fresh Pricer resolves the model, its price window and compiles rates."""
    started = time.perf_counter()
    for item in items:
        Pricer().price(item)
    return (time.perf_counter() - started) / len(items) * 1e6


def run() -> str:
    items = calls()
    pricer = Pricer()
    for call in items[: len(MODELS)]:
        pricer.price(call)  # warm-up: rates resolved once per model and day
    ours = per_call_us(pricer.price, items)
    when = datetime.now(timezone.utc)

    def genai(call: LlmCall) -> object:
        usage = genai_prices.Usage(
            input_tokens=call.usage.total_input_tokens, cache_read_tokens=call.usage.cache_read_tokens,
            output_tokens=call.usage.output_tokens,
        )  # fmt: skip
        return genai_prices.calc_price(
            usage, call.request_model, provider_id=call.provider, genai_request_timestamp=when
        )

    uncached = per_call_us(genai, items[:2000])
    cold = min(_cold_run(items[:1000]) for _ in range(3))
    spans = [
        SpanView("a" * 32, "b" * 16, "chat", 1, 2, {
            "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.cache_read.input_tokens": 200, "gen_ai.usage.output_tokens": 300,
            "llmcost.team": "search", "llmcost.feature": "answers", "user.id": "u-1", "session.id": "s-1",
        }, {"service.name": "api"})
        for _ in range(N)
    ]  # fmt: skip
    normalize = per_call_us(normalize_span, spans)
    other = [SpanView("a" * 32, "b" * 16, "GET /", 1, 2, {"http.request.method": "GET", "http.route": "/x",
                      "url.path": "/x"}, {"service.name": "api"}) for _ in range(N)]  # fmt: skip
    skip = per_call_us(normalize_span, other)
    return (
        "## Pricing (issue 4)\n\n"
        f"{N:,} calls over {len(MODELS)} models, one core, best of 3.\n\n"
        "| path | µs per call | calls/s | ratio |\n|---|---:|---:|---:|\n"
        f"| genai-prices `calc_price` (uncached baseline) | {uncached:.1f} | {1e6 / uncached:,.0f} | 1.00 |\n"
        f"| **ours**: `Pricer.price` (rates cached per model and price window, integer math) | {ours:.2f} | "
        f"{1e6 / ours:,.0f} | {uncached / ours:.0f}x faster |\n"
        f"| `Pricer.price` cold (every call a miss: resolve + price window + compile) | {cold:.1f} | "
        f"{1e6 / cold:,.0f} | {uncached / cold:.1f}x |\n"
        f"| `normalize_span` (any dialect -> canonical usage + attribution) | {normalize:.2f} | {1e6 / normalize:,.0f} | |\n"
        f"| `normalize_span` of a non-LLM span (fast skip) | {skip:.2f} | {1e6 / skip:,.0f} | |\n\n"
        f"Goal: pricing at most 5 µs per span after warm-up: **{ours:.2f} µs** "
        f"({'met' if ours <= 5 else 'NOT met'}).\n"
    )
