"""`llmcost price MODEL --input N --output N ...`: the cost of a call, every layer and its provenance.

Token counts are the canonical classes (``--input`` is *uncached* input; cache reads and writes
are given apart), so what is printed is exactly what the collector would store for such a call.
"""

from __future__ import annotations

import click

from llmcost_collector.cli.models import rate_text
from llmcost_collector.cli.output import ConfigInvalid

TOKENS = click.IntRange(min=0)


def start_ns(ctx: click.Context, param: click.Parameter, at: str | None) -> int:
    """``--at`` as Unix nanoseconds (now when absent); a date without an offset is UTC.

    Integer arithmetic on the timedelta, not ``timestamp()``: a float would lose nanoseconds.
    """
    import time
    from datetime import datetime, timezone

    if not at:
        return time.time_ns()
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(
            f"{at!r} is not an ISO 8601 date or time (e.g. 2025-06-10 or 2025-06-10T12:00Z)"
        ) from None
    from llmcost_collector.periods import epoch_ns

    return epoch_ns(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def rates_text(rates: object) -> str:
    """Every rate of ``rates`` with its token class, tiers spelled out (``2.5 (5 above 200,000)``)."""
    from llmcost_collector.price.rates import Rates, Tiered

    if not isinstance(rates, Rates):
        return "-"

    def fmt(rate: object) -> str:
        if isinstance(rate, Tiered):
            tiers = ", ".join(f"{rate_text(tier)} above {start:,}" for start, tier in rate.tiers)
            return f"{rate_text(rate.base)} ({tiers})"
        return rate_text(rate)

    parts = [("input", rates.input), ("cache read", rates.cache_read), ("cache write", rates.cache_write),
             ("cache write 1h", rates.cache_write_1h), ("output", rates.output)]  # fmt: skip
    return ", ".join(f"{name} {fmt(rate)}" for name, rate in parts if rate is not None)


@click.command()
@click.argument("model")
@click.option(
    "--provider",
    default="",
    help="gen_ai.provider.name (openai, anthropic, ...); default: the price book's, else the catalogue's",
)
@click.option("--input", "input_tokens", type=TOKENS, default=0, help="uncached input tokens")
@click.option("--output", "output_tokens", type=TOKENS, default=0, help="output tokens (including reasoning)")
@click.option("--cache-read", type=TOKENS, default=0, help="input tokens read from the prompt cache")
@click.option("--cache-write", type=TOKENS, default=0, help="input tokens written to the cache (5m TTL)")
@click.option("--cache-write-1h", type=TOKENS, default=0, help="input tokens written to the cache (1h TTL)")
@click.option("--reasoning", type=TOKENS, default=0, help="reasoning tokens (part of --output)")
@click.option(
    "--at",
    "start",
    callback=start_ns,
    help="date or time of the call (ISO 8601, UTC unless an offset is given); default: now",
)
@click.option("--api-key-id", default="", help="API key id, for key-scoped price-book entries")
@click.option("--price-book", help="price-book file (YAML/JSON, e.g. examples/model-catalog.json)")
@click.option("--config", help="config file whose price_book gives contracted rates")
def price(
    model: str,
    provider: str,
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write: int,
    cache_write_1h: int,
    reasoning: int,
    start: int,
    api_key_id: str,
    price_book: str | None,
    config: str | None,
) -> None:
    """Price a call: list and contracted cost, with their provenance.

    MODEL is the model id, e.g. gpt-4o-mini or claude-sonnet-4-20250514. --at DATE prices the
    call as of a past date, with the prices and price-book entries in force then.
    """
    from datetime import datetime, timezone

    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.config.yaml_loader import ConfigError
    from llmcost_collector.model import Attribution, LlmCall, Usage
    from llmcost_collector.money import format_usd
    from llmcost_collector.price.pricer import AmbiguousProvider, PriceBook, Pricer

    if reasoning > output_tokens:
        raise click.BadParameter("is part of --output and cannot exceed it", param_hint="'--reasoning'")
    if price_book and config:
        raise click.UsageError("--price-book and --config are alternatives: give one")
    book: PriceBook | None = None
    try:
        if price_book:
            from llmcost_collector.config.includes import load_price_book

            book = load_price_book(price_book)
        elif config:
            from llmcost_collector.config.schema import load_config

            book = load_config(config).price_book
    except ConfigError as exc:
        raise ConfigInvalid(exc) from None
    usage = Usage(
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write + cache_write_1h,
        cache_write_1h_tokens=cache_write_1h,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning,
    )
    pricer = Pricer(book)
    inferred = ""
    if not provider:
        try:
            provider, inferred = pricer.infer_provider(model, start)
        except AmbiguousProvider as exc:
            raise click.UsageError(f"{exc}: give --provider") from None
    properties = {"api_key_id": api_key_id} if api_key_id else {}
    call = LlmCall(
        trace_id="0" * 32, span_id="0" * 16, start_time_ns=start, end_time_ns=start,
        provider=provider, operation="chat", request_model=model, response_model="",
        usage=usage, attribution=Attribution(properties=properties),
    )  # fmt: skip
    cost = pricer.price(call)
    if cost.contracted_nanos is None:
        raise click.ClickException(
            f"unpriced: {cost.reason}; add it to the price book (price_book.entries in the config file)"
        )
    listed, contracted = pricer.layers(provider, model, start, api_key_id)
    when = datetime.fromtimestamp(start // 10**9, timezone.utc).date().isoformat()
    layers = table("layer", "cost", "source", "price id", "effective from", "rates (USD per 1M tokens)",
                   right=("cost",))  # fmt: skip
    if listed is not None and cost.list_nanos is not None:
        layers.add_row("list", f"${format_usd(cost.list_nanos)}", listed.source, listed.price_id,
                       listed.effective_from or "-", rates_text(listed))  # fmt: skip
    else:
        layers.add_row(
            "list", "-", "-", "-", "-", "none: no public list price; the price book is the only price"
        )
    layers.add_row("contracted", f"${format_usd(cost.contracted_nanos)}", cost.price_source, cost.price_id,
                   cost.price_effective_from or "-", rates_text(contracted))  # fmt: skip
    out = console()
    out.print(f"{model} on {when}: price id {cost.price_id}")
    if inferred:
        out.print(f"provider: {provider} (inferred from the {inferred}; --provider to choose)")
    out.print(f"tokens: input {usage.input_tokens:,}, cache read {usage.cache_read_tokens:,}, "
              f"cache write {usage.cache_write_5m_tokens:,} (5m) + {usage.cache_write_1h_tokens:,} (1h), "
              f"output {usage.output_tokens:,} (reasoning {usage.reasoning_tokens:,})")  # fmt: skip
    out.print(layers)
