"""`llmcost export focus`: a month's chargeback as FOCUS 1.3 cost data (CSV or Parquet).

One row per day x team x model x token class, plus the invoices' monthly lines (fees, outcomes,
seats, shared costs, adjustments); ``SUM(BilledCost)`` per ``InvoiceId`` is each invoice's total.
A closed month is exported as issued.
"""

from __future__ import annotations

from pathlib import Path

import click

from llmcost_collector.cli.invoice import CONFIG_HELP, LEDGER_HELP, invoicing, parse_period


@click.group()
def export() -> None:
    """Export ledger data (focus: FOCUS 1.3 cost data)."""


@export.command()
@click.option("--period", required=True, help="the month, YYYY-MM (e.g. 2025-01)")
@click.option("--format", "fmt", type=click.Choice(("csv", "parquet")), default="csv", show_default=True)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="file to write (parquet: required)"
)
@click.option("--ledger-url", help=LEDGER_HELP)
@click.option("--config", help=CONFIG_HELP)
def focus(period: str, fmt: str, out: Path | None, ledger_url: str | None, config: str | None) -> None:
    """Write a month's FOCUS 1.3 export (CSV to stdout without --out)."""
    month = parse_period(period)
    if fmt == "parquet" and out is None:
        raise click.UsageError("--format parquet writes a file: give --out FILE.")
    from llmcost_collector.invoice import focus as focus_export

    with invoicing(config, ledger_url) as books:
        documents, usage = books.view(month)
    rows = focus_export.rows(documents, usage)
    try:
        if fmt == "parquet":
            assert out is not None
            focus_export.write_parquet(rows, out)
        elif out is None:
            click.echo(focus_export.to_csv(rows), nl=False)
            return
        else:
            out.write_text(focus_export.to_csv(rows), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc}") from None
    from llmcost_collector.cli.tables import console

    console().print(f"{len(rows)} FOCUS rows for {month.name} written to {out}")
