"""`llmcost budgets`: every configured budget with its spend, percent, forecast and state.

Read from the ledger with the same status the gauges and ``GET /api/v1/budgets/status`` use.
"""

from __future__ import annotations

import click

from llmcost_collector.cli.output import ConfigInvalid, ledger_errors, ledger_failed


@click.command()
@click.option("--config", "config_path", envvar="LLMCOST_CONFIG", required=True, help="the config file")
@click.option("--ledger-url", help="default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db")
@click.option("--user", "user_id", help="for per-user budgets: this user's spend")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def budgets(config_path: str, ledger_url: str | None, user_id: str | None, fmt: str) -> None:
    """Each budget's period-to-date spend, percent, forecast to period end and state."""
    import json
    from datetime import datetime, timezone

    from llmcost_collector.budget import budget_status, status_json
    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.config.schema import load_config
    from llmcost_collector.config.yaml_loader import ConfigError
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.settings import Settings

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise ConfigInvalid(exc) from None
    now = datetime.now(timezone.utc)
    try:
        ledger = open_ledger(Settings.from_flags(ledger_url=ledger_url).ledger_url)
        try:
            rows = [
                status_json(budget_status(b, ledger.costs, now, user_id=user_id))
                for b in config.all_budgets()
            ]
        finally:
            ledger.close()
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    if fmt == "json":
        click.echo(json.dumps({"budgets": rows}, indent=2))
        return
    out = table("budget", "scope", "period", "basis", "spent_usd", "amount_usd", "percent", "forecast_usd",
                "state", right=("spent_usd", "amount_usd", "percent", "forecast_usd"))  # fmt: skip
    for row in rows:
        spent = str(row["spent_usd"]) + (f" ({len(row['users_over'])} users over)" if row["per_user"] else "")  # type: ignore[arg-type]
        out.add_row(str(row["budget"]), str(row["scope"]), str(row["period"]), str(row["basis"]), spent,
                    str(row["amount_usd"]), f"{row['percent']}%" if row["percent"] else "-",
                    str(row["forecast_usd"]), str(row["state"]))  # fmt: skip
    console().print(out)
