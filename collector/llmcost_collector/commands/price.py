"""`llmcost price MODEL --input N --output N ...`: the cost of a call, every layer and its provenance."""

from __future__ import annotations

import argparse

HELP = "Price a call: list and contracted cost with provenance (--at DATE for a past price)."


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
    parser.add_argument("--at", help="date or time of the call (ISO 8601), default now")
    parser.add_argument("--config", help="config file whose price book gives contracted rates")


def run(args: argparse.Namespace) -> int:
    import time
    from datetime import datetime, timezone

    from ..config import load_config
    from ..model import Attribution, LlmCall, Usage, format_usd
    from ..pricing import Pricer
    from ..yamlconfig import ConfigError

    if args.reasoning > args.output:
        print("error: --reasoning is part of --output and cannot exceed it")
        return 2
    if args.at:
        moment = datetime.fromisoformat(args.at)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        start_ns = int(moment.timestamp() * 1e9)
    else:
        start_ns = time.time_ns()
    try:
        book = load_config(args.config).price_book if args.config else None
    except ConfigError as exc:
        print(exc)
        return 2
    usage = Usage(
        input_tokens=args.input,
        cache_read_tokens=args.cache_read,
        cache_write_tokens=args.cache_write + args.cache_write_1h,
        cache_write_1h_tokens=args.cache_write_1h,
        output_tokens=args.output,
        reasoning_tokens=args.reasoning,
    )
    call = LlmCall(
        trace_id="0" * 32, span_id="0" * 16, start_time_ns=start_ns, end_time_ns=start_ns,
        provider=args.provider, operation="chat", request_model=args.model, response_model="",
        usage=usage, attribution=Attribution(),
    )  # fmt: skip
    cost = Pricer(book).price(call)
    if cost.contracted_nanos is None:
        print(f"unpriced: {cost.reason}")
        print("add it to the price book (price_book.entries in the config file) to price it")
        return 1
    when = datetime.fromtimestamp(start_ns / 1e9, timezone.utc).date().isoformat()
    print(f"model            {args.model}  (price id {cost.price_id}, in force on {when})")
    print(f"tokens           input {usage.input_tokens:,}  cache read {usage.cache_read_tokens:,}  "
          f"cache write {usage.cache_write_5m_tokens:,} (5m) + {usage.cache_write_1h_tokens:,} (1h)  "
          f"output {usage.output_tokens:,} (reasoning {usage.reasoning_tokens:,})")  # fmt: skip
    print(f"list cost        ${format_usd(cost.list_nanos or 0)}")
    print(f"contracted cost  ${format_usd(cost.contracted_nanos)}  (source {cost.price_source}"
          + (f", effective from {cost.price_effective_from}" if cost.price_effective_from else "") + ")")  # fmt: skip
    return 0
