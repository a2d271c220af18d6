"""`llmcost config check FILE`: validate a config file, with line-precise errors.

Prints a one-line summary and exits 0 when the file is valid; otherwise prints every problem as
``file:line:col: path: message`` (the format editors and CI annotate) and exits 1.
"""

from __future__ import annotations

import argparse

HELP = "Work with the configuration file (check: validate it, with line-precise errors)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a config file and summarize it")
    check.add_argument("file", help="the YAML (or JSON) config file, e.g. $LLMCOST_CONFIG")


def run(args: argparse.Namespace) -> int:
    from llmcost_collector.config.schema import PERIODS, load_config
    from llmcost_collector.config.yaml_loader import ConfigError

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc)
        return 1
    teams = config.team_names()
    budgets = sum(1 for t in teams for p in PERIODS if config.budget_for(t, p) is not None)
    charge = config.chargeback
    print(
        f"OK: {len(teams)} teams, {len(config.price_book.entries)} price-book entries, {budgets} budgets, "
        f"{len(config.attribution.rules)} attribution rules (trust: {config.attribution.trust}), "
        f"chargeback {charge.model} ({len(charge.volume_tiers)} volume tiers, {len(charge.outcomes)} outcomes)"
    )
    return 0
