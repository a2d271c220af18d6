"""`llmcost models [--search X] [--provider P]`: known models and their list rates per million tokens.

With ``--price-book FILE`` the book's entries (negotiated rates, discounts, custom models) are
listed after the public ones, so both layers can be checked side by side.
"""

from __future__ import annotations

import argparse

HELP = "List known models with their list prices per million tokens."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--search", default="", help="substring of the model id or name")
    parser.add_argument("--provider", default="", help="provider (openai, anthropic, aws.bedrock, ...)")
    parser.add_argument("--price-book", help="also list this price book's entries (YAML/JSON)")


def _fmt(rate: object) -> str:
    from llmcost_collector.price.rates import Tiered

    if rate is None:
        return "-"
    if isinstance(rate, Tiered):
        return f"{rate.base}+tiers"
    return str(rate)


def run(args: argparse.Namespace) -> int:
    from llmcost_collector.price.catalog import ListPrices

    book_path = getattr(args, "price_book", None)
    entries = []
    if book_path:
        from llmcost_collector.config.yaml_loader import ConfigError, load_model
        from llmcost_collector.price.pricer import PriceBook

        try:
            book = load_model(book_path, PriceBook)
        except (ConfigError, OSError) as exc:
            print(exc)
            return 2
        needle = args.search.lower()
        entries = [
            e for e in book.entries
            if (not needle or needle in e.model.lower() or needle in e.name.lower())
            and (not args.provider or e.provider in ("*", args.provider))
        ]  # fmt: skip
    rows = ListPrices().models(search=args.search, provider=args.provider)
    if not rows and not entries:
        print("no models match")
        return 1
    print(f"{'provider':<12} {'model':<44} {'input':>9} {'output':>9} {'cache rd':>9} {'cache wr':>9}")
    for provider, model, rates in sorted(rows):
        print(f"{provider:<12} {model:<44} {_fmt(rates.input):>9} {_fmt(rates.output):>9} "
              f"{_fmt(rates.cache_read):>9} {_fmt(rates.cache_write):>9}")  # fmt: skip
    print(f"{len(rows)} models; USD per million tokens, list prices in force today (genai-prices)")
    if entries:
        print(f"\nprice book {book_path}: first matching entry in force wins")
        for e in entries:
            if e.discount_percent is not None:
                terms = f"{e.discount_percent}% off list"
            else:
                terms = f"input {_fmt(e.input)} output {_fmt(e.output)} cache rd {_fmt(e.cache_read)} " \
                        f"cache wr {_fmt(e.cache_write)}"  # fmt: skip
            window = f"{e.effective_from or '...'} to {e.effective_to or '...'}"
            key = f" key {e.api_key_id}" if e.api_key_id else ""
            print(f"  {e.label:<40} {e.provider}/{e.model}{key}: {terms} ({window})")
    return 0
