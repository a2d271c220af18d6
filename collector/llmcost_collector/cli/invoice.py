"""`llmcost invoice`: each team's chargeback invoice for a month; `llmcost invoice close` issues them.

An open month's invoices are drafts, recomputed from the ledger on every run; ``close`` stores
them as issued (numbers, lines, prices and settings), after which they are printed as issued
and corrections arrive as adjustment lines on the next open month.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from llmcost_collector.cli.output import ConfigInvalid, ledger_errors, ledger_failed

if TYPE_CHECKING:
    from rich.console import Console

    from llmcost_collector.invoice.build import Invoicing, Period

FORMATS = ("md", "html", "pdf", "csv", "json")
LEDGER_HELP = "default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db"
CONFIG_HELP = "config file (teams, chargeback, price book); default: $LLMCOST_CONFIG"


def parse_period(value: str) -> Period:
    from llmcost_collector.invoice.build import Period

    try:
        return Period.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--period'") from None


@contextmanager
def invoicing(config: str | None, ledger_url: str | None) -> Iterator[Invoicing]:
    """The config (flags over ``LLMCOST_*``), the ledger and the invoicing over both; ledger
    problems become one ``Error:`` line with exit 1, an invalid config its file:line:col lines."""
    from llmcost_collector.config.schema import Config, load_config
    from llmcost_collector.config.yaml_loader import ConfigError
    from llmcost_collector.invoice.build import Invoicing
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.settings import Settings

    settings = Settings.from_flags(config_path=config, ledger_url=ledger_url)
    try:
        loaded = load_config(settings.config_path) if settings.config_path else Config.default()
    except ConfigError as exc:
        raise ConfigInvalid(exc) from None
    try:
        ledger = open_ledger(settings.ledger_url)
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    try:
        yield Invoicing(ledger, loaded)
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    finally:
        ledger.close()


@click.group(invoke_without_command=True)
@click.option("--period", help="the month, YYYY-MM (e.g. 2025-01)")
@click.option("--team", help="only this team's invoice")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="write one file per team here")
@click.option("--ledger-url", help=LEDGER_HELP)
@click.option("--config", help=CONFIG_HELP)
@click.pass_context
def invoice(
    ctx: click.Context,
    period: str | None,
    team: str | None,
    fmt: str,
    out: Path | None,
    ledger_url: str | None,
    config: str | None,
) -> None:
    """Print or write each team's invoice for a month (close: issue them).

    Without --out, the invoices go to stdout (PDF needs --out); with it, one file per team named
    after its invoice number, with a progress bar on stderr.
    """
    if ctx.invoked_subcommand is not None:
        return
    if period is None:
        raise click.UsageError("Missing option '--period' (a month, YYYY-MM).")
    month = parse_period(period)
    if fmt == "pdf" and out is None:
        raise click.UsageError("--format pdf writes files: give --out DIR.")
    from llmcost_collector.invoice.render import render, render_one

    with invoicing(config, ledger_url) as books:
        documents = books.invoices(month, team)
    if team is not None and not documents:
        raise click.ClickException(f"no invoice for team {team!r} in {month.name}")
    if out is None:
        text = render(documents, fmt)
        click.echo(text if isinstance(text, str) else text.decode(), nl=False)
        return
    from rich.progress import Progress

    from llmcost_collector.cli.tables import console

    try:
        out.mkdir(parents=True, exist_ok=True)
        with Progress(console=_stderr_console(), transient=True) as progress:
            task = progress.add_task(f"invoices {month.name}", total=len(documents))
            for doc in documents:
                content = render_one(doc, fmt)
                target = out / f"{doc['number']}.{fmt}"
                if isinstance(content, bytes):
                    target.write_bytes(content)
                else:
                    target.write_text(content, encoding="utf-8")
                progress.advance(task)
    except OSError as exc:  # an unwritable directory, or no Pango library for WeasyPrint's PDF
        raise click.ClickException(f"cannot write invoices: {exc}") from None
    console().print(f"{len(documents)} invoices for {month.name} written to {out}")


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, markup=False, emoji=False)


@invoice.command()
@click.option("--period", required=True, help="the month to close, YYYY-MM")
@click.option("--ledger-url", help=LEDGER_HELP)
@click.option("--config", help=CONFIG_HELP)
def close(period: str, ledger_url: str | None, config: str | None) -> None:
    """Issue a month's invoices: store them as final, with their numbers, prices and settings.

    A closed month never changes: later spans, re-pricing and config changes for it become
    adjustment lines on the next open month. Closing a month twice is an error.
    """
    month = parse_period(period)
    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.ledger.invoice_store import PeriodClosed

    with invoicing(config, ledger_url) as books:
        try:
            documents = books.close(month)
        except PeriodClosed as exc:
            raise click.ClickException(str(exc)) from None
    summary = table("invoice", "team", "total", right=("total",))
    for doc in documents:
        summary.add_row(doc["number"], doc["team"], f"${doc['total']}")
    out = console()
    out.print(f"closed {month.name}: {len(documents)} invoices issued")
    out.print(summary)
