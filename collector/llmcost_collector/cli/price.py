"""`llmcost price MODEL --input N --output N ...`: the cost of a call, every layer and its provenance.

Token counts are the canonical classes (``--input`` is *uncached* input; cache reads and writes
are given apart), so what is printed is exactly what the collector would store for such a call.
"""

from __future__ import annotations

import argparse

HELP = "Price a call: list and contracted cost with provenance (--at DATE for a past price)."
TOKEN_FLAGS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model id, e.g. gpt-4o-mini or claude-sonnet-4-20250514")
    parser.add_argument(
        "--provider", default="", help="gen_ai.provider.name (openai, anthropic, ...); default: infer"
    )
    parser.add_argument("--input", type=int, default=0, help="uncached input tokens")
    parser.add_argument("--output", type=int, default=0, help="output tokens (including reasoning)")
    parser.add_argument("--cache-read", type=int, default=0, help="input tokens read from the prompt cache")
    parser.add_argument(
        "--cache-write", type=int, default=0, help="input tokens written to the cache (5m TTL)"
    )
    parser.add_argument(
        "--cache-write-1h", type=int, default=0, help="input tokens written to the cache (1h TTL)"
    )
    parser.add_argument("--reasoning", type=int, default=0, help="reasoning tokens (part of --output)")
    parser.add_argument("--at", help="date or time of the call (ISO 8601, UTC unless an offset is given)")
    parser.add_argument("--api-key-id", default="", help="API key id, for key-scoped price-book entries")
    book = parser.add_mutually_exclusive_group()
    book.add_argument("--price-book", help="price-book file (YAML/JSON, e.g. examples/model-catalog.json)")
    book.add_argument("--config", help="config file whose price_book gives contracted rates")


def _start_ns(at: str | None) -> int:
    import time
    from datetime import datetime, timezone

    if not at:
        return time.time_ns()
    moment = datetime.fromisoformat(at)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _rates_text(rates: object) -> str:
    from llmcost_collector.price.rates import Rates, Tiered

    if not isinstance(rates, Rates):
        return "-"

    def fmt(rate: object) -> str:
        if isinstance(rate, Tiered):
            tiers = ", ".join(f"{tier} above {start:,}" for start, tier in rate.tiers)
            return f"{rate.base} ({tiers})"
        return "-" if rate is None else str(rate)

    parts = [("input", rates.input), ("cache read", rates.cache_read), ("cache write", rates.cache_write),
             ("cache write 1h", rates.cache_write_1h), ("output", rates.output)]  # fmt: skip
    return ", ".join(f"{name} {fmt(rate)}" for name, rate in parts if rate is not None)


def run(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from llmcost_collector.config.yaml_loader import ConfigError
    from llmcost_collector.model import Attribution, LlmCall, Usage
    from llmcost_collector.money import format_usd
    from llmcost_collector.price.pricer import PriceBook, Pricer

    negative = [name for name in TOKEN_FLAGS if getattr(args, name) < 0]
    if negative:
        print(f"error: --{negative[0].replace('_', '-')} cannot be negative")
        return 2
    if args.reasoning > args.output:
        print("error: --reasoning is part of --output and cannot exceed it")
        return 2
    try:
        start_ns = _start_ns(args.at)
    except ValueError:
        print(
            f"error: --at {args.at!r} is not an ISO 8601 date or time (e.g. 2025-06-10 or 2025-06-10T12:00Z)"
        )
        return 2
    book: PriceBook | None = None
    try:
        if getattr(args, "price_book", None):
            from llmcost_collector.config.yaml_loader import load_model

            book = load_model(args.price_book, PriceBook)
        elif args.config:
            from llmcost_collector.config.schema import load_config

            book = load_config(args.config).price_book
    except ConfigError as exc:
        print(exc)
        return 2
    except OSError as exc:
        print(f"error: {exc}")
        return 2
    usage = Usage(
        input_tokens=args.input,
        cache_read_tokens=args.cache_read,
        cache_write_tokens=args.cache_write + args.cache_write_1h,
        cache_write_1h_tokens=args.cache_write_1h,
        output_tokens=args.output,
        reasoning_tokens=args.reasoning,
    )
    properties = {"api_key_id": args.api_key_id} if getattr(args, "api_key_id", "") else {}
    call = LlmCall(
        trace_id="0" * 32, span_id="0" * 16, start_time_ns=start_ns, end_time_ns=start_ns,
        provider=args.provider, operation="chat", request_model=args.model, response_model="",
        usage=usage, attribution=Attribution(properties=properties),
    )  # fmt: skip
    pricer = Pricer(book)
    cost = pricer.price(call)
    if cost.contracted_nanos is None:
        print(f"unpriced: {cost.reason}")
        print("add it to the price book (price_book.entries in the config file) to price it")
        return 1
    listed, contracted = pricer.layers(args.provider, args.model, start_ns, properties.get("api_key_id", ""))
    when = datetime.fromtimestamp(start_ns // 10**9, timezone.utc).date().isoformat()
    print(f"model            {args.model}  (price id {cost.price_id}, in force on {when})")
    print(f"tokens           input {usage.input_tokens:,}  cache read {usage.cache_read_tokens:,}  "
          f"cache write {usage.cache_write_5m_tokens:,} (5m) + {usage.cache_write_1h_tokens:,} (1h)  "
          f"output {usage.output_tokens:,} (reasoning {usage.reasoning_tokens:,})")  # fmt: skip
    print(f"list cost        ${format_usd(cost.list_nanos or 0)}")
    print(f"contracted cost  ${format_usd(cost.contracted_nanos)}  (source {cost.price_source}"
          + (f", effective from {cost.price_effective_from}" if cost.price_effective_from else "") + ")")  # fmt: skip
    if listed is not None:
        since = f", effective from {listed.effective_from}" if listed.effective_from else ""
        print(f"list rates       {_rates_text(listed)}  ({listed.price_id}{since}; USD per 1M tokens)")
    else:
        print("list rates       none: no public list price; the price book is the only price")
    if contracted is not None and contracted is not listed:
        print(f"contracted rates {_rates_text(contracted)}  ({contracted.price_id}; USD per 1M tokens)")
    return 0
