"""`llmcost config check FILE`: validate a config file, with line-precise errors.

Prints what the file configures and exits 0 when it is valid; otherwise prints every problem on
stderr as ``file:line:col: path: message`` (the format editors and CI annotate) and exits 1.
"""

from __future__ import annotations

import click

from llmcost_collector.cli.output import ConfigInvalid


@click.group()
def config() -> None:
    """Work with the configuration file (check: validate it)."""


@config.command()
@click.argument("file")
def check(file: str) -> None:
    """Validate a config file and summarize what it configures.

    FILE is the YAML (or JSON) config file, e.g. $LLMCOST_CONFIG.
    """
    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.config.schema import PERIODS, load_config
    from llmcost_collector.config.yaml_loader import ConfigError

    try:
        loaded = load_config(file)
    except ConfigError as exc:
        raise ConfigInvalid(exc) from None
    teams = loaded.team_names()
    budgets = sum(1 for t in teams for p in PERIODS if loaded.budget_for(t, p) is not None)
    rules, charge = loaded.attribution, loaded.chargeback
    summary = table("section", "count", "details", right=("count",))
    summary.add_row("teams", str(len(teams)), ", ".join(teams) or "-")
    entries = loaded.price_book.entries
    summary.add_row("price-book entries", str(len(entries)), ", ".join(e.label for e in entries) or "-")
    summary.add_row("budgets", str(budgets), "-")
    summary.add_row("attribution rules", str(len(rules.rules)), f"trust: {rules.trust}")
    summary.add_row("chargeback volume tiers", str(len(charge.volume_tiers)), f"model: {charge.model}")
    summary.add_row("chargeback outcomes", str(len(charge.outcomes)), "-")
    out = console()
    out.print(f"OK: {file} is valid")
    out.print(summary)
