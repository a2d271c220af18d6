"""`llmcost models [--search X] [--provider P]`: known models and their list rates per million tokens.

With ``--price-book FILE`` the book's entries (negotiated rates, discounts, custom models) are
listed after the public ones, so both layers can be checked side by side.
"""

from __future__ import annotations

import click

from llmcost_collector.cli.output import ConfigInvalid


def rate_text(rate: object) -> str:
    """A rate as its exact decimal text; ``-`` for none, ``BASE+tiers`` for a tiered price."""
    from decimal import Decimal

    from llmcost_collector.price.rates import Tiered

    if rate is None:
        return "-"
    if isinstance(rate, Tiered):
        return f"{rate_text(rate.base)}+tiers"
    return format(rate, "f") if isinstance(rate, Decimal) else str(rate)


@click.command()
@click.option("--search", default="", help="substring of the model id or name")
@click.option("--provider", default="", help="provider (openai, anthropic, aws.bedrock, ...)")
@click.option("--price-book", help="also list this price book's entries (YAML/JSON)")
def models(search: str, provider: str, price_book: str | None) -> None:
    """List known models with their list prices per million tokens."""
    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.price.catalog import ListPrices

    entries = []
    if price_book:
        from llmcost_collector.config.includes import load_price_book
        from llmcost_collector.config.yaml_loader import ConfigError

        try:
            book = load_price_book(price_book)
        except ConfigError as exc:
            raise ConfigInvalid(exc) from None
        needle = search.lower()
        entries = [
            e for e in book.entries
            if (not needle or any(needle in name.lower() for name in (e.model, e.name, *e.aliases)))
            and (not provider or e.provider in ("*", provider))
        ]  # fmt: skip
    rows = ListPrices().models(search=search, provider=provider)
    if not rows and not entries:
        raise click.ClickException("no models match")
    out = console()
    listed = table("provider", "model", "input", "output", "cache rd", "cache wr",
                   right=("input", "output", "cache rd", "cache wr"))  # fmt: skip
    for prov, model, rates in sorted(rows):
        listed.add_row(
            prov, model, *map(rate_text, (rates.input, rates.output, rates.cache_read, rates.cache_write))
        )
    out.print(listed)
    out.print(f"{len(rows)} models; USD per million tokens, list prices in force today (genai-prices)")
    if entries:
        book_table = table("entry", "provider", "model", "api key", "terms", "from", "to")
        for e in entries:
            if e.is_pure_alias:
                terms = f"list price of {e.catalogue_alias}"
            elif e.discount_percent is not None:
                terms = f"{rate_text(e.discount_percent)}% off list"
            else:
                terms = (f"input {rate_text(e.input)}, output {rate_text(e.output)}, "
                         f"cache rd {rate_text(e.cache_read)}, cache wr {rate_text(e.cache_write)}")  # fmt: skip
            book_table.add_row(e.label, e.provider, " = ".join((e.model, *e.aliases)), e.api_key_id or "-", terms,
                               str(e.effective_from or "..."), str(e.effective_to or "..."))  # fmt: skip
        out.print()
        out.print(f"price book {price_book}: the first matching entry in force wins")
        out.print(book_table)
