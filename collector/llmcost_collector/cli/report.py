"""`llmcost report`: the period's spend report from the ledger, as Markdown or JSON."""

from __future__ import annotations

import click

from llmcost_collector.cli.output import ledger_errors, ledger_failed


@click.command()
@click.option(
    "--period",
    default="this_month",
    show_default=True,
    help="a month as YYYY-MM, or today, this_week, this_month, last_month (UTC)",
)
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "--top", type=click.IntRange(min=1, max=100), default=5, show_default=True, help="users to list"
)
@click.option("--ledger-url", help="default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db")
def report(period: str, fmt: str, top: int, ledger_url: str | None) -> None:
    """Spend report: total, environment -> feature tree, top users, cache, sessions, outcomes, tiers."""
    import json
    from datetime import datetime, timezone

    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.periods import epoch_ns, named_period
    from llmcost_collector.report.render import to_json, to_markdown
    from llmcost_collector.report.summary import build_report
    from llmcost_collector.settings import Settings

    try:
        start, end = named_period(period, datetime.now(timezone.utc))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    settings = Settings.from_flags(ledger_url=ledger_url)
    try:
        ledger = open_ledger(settings.ledger_url)
        try:
            built = build_report(ledger, epoch_ns(start), epoch_ns(end), label=period, top=top)
        finally:
            ledger.close()
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    if fmt == "json":
        click.echo(json.dumps(to_json(built), indent=2))
    else:
        click.echo(to_markdown(built), nl=False)
