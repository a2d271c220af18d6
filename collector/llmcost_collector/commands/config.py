"""`llmcost config check FILE`: validate a config file, with line-precise errors."""

from __future__ import annotations

import argparse

HELP = "Work with the configuration file (check: validate it, with line-precise errors)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a config file and summarize it")
    check.add_argument("file", help="the YAML config file")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..yamlconfig import ConfigError

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc)
        return 1
    budgets = sum(
        1 for t in config.teams for p in ("daily", "monthly") if config.budget_for(t.name, p) is not None
    )
    print(
        f"OK: {len(config.teams)} teams, {budgets} budgets, {len(config.attribution.rules)} attribution rules "
        f"(trust: {config.attribution.trust}), {len(config.price_book.entries)} price-book entries, "
        f"chargeback {config.chargeback.model}"
    )
    return 0
