"""`llmcost models [--search X] [--provider P]`: known models and their list rates per million tokens."""

from __future__ import annotations

import argparse

HELP = "List known models with their list prices per million tokens."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--search", default="", help="substring of the model id or name")
    parser.add_argument("--provider", default="", help="provider (openai, anthropic, aws.bedrock, ...)")


def _fmt(rate: object) -> str:
    from ..pricing.rates import Tiered

    if rate is None:
        return "-"
    if isinstance(rate, Tiered):
        return f"{rate.base}+tiers"
    return str(rate)


def run(args: argparse.Namespace) -> int:
    from ..pricing.catalog import ListPrices

    rows = ListPrices().models(search=args.search, provider=args.provider)
    if not rows:
        print("no models match")
        return 1
    print(f"{'provider':<12} {'model':<44} {'input':>9} {'output':>9} {'cache rd':>9} {'cache wr':>9}")
    for provider, model, rates in sorted(rows):
        print(f"{provider:<12} {model:<44} {_fmt(rates.input):>9} {_fmt(rates.output):>9} "
              f"{_fmt(rates.cache_read):>9} {_fmt(rates.cache_write):>9}")  # fmt: skip
    print(f"{len(rows)} models; USD per million tokens, list prices in force today (genai-prices)")
    return 0
