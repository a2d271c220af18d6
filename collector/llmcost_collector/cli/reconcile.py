"""`llmcost reconcile`: the period's ledger set against the providers' own bills.

Each ``--bill`` file's kind is detected from its content (or forced with ``--kind``); the table
shows capture rates (ledger / bill) per day, provider and model, then per provider, then the
billed models the ledger never saw and the days one side has and the other has not. Unless
``--no-record``, each provider's capture ratio is stored in the ledger database, where the
collector's ``llmcost_capture_ratio`` gauge reads it, and so are the ``--true-up`` and
``--commitment`` amounts per team, which the period's draft invoices bill as lines of their own
(a run with ``--true-up`` replaces the period's recorded true-up, one with ``--commitment`` its
recorded commitments).
"""

from __future__ import annotations

from pathlib import Path

import click

from llmcost_collector.cli.output import ConfigInvalid, ledger_errors, ledger_failed

KINDS = ("openai-usage", "openai-costs", "anthropic-usage", "anthropic-costs", "bedrock-cur", "focus")


@click.command()
@click.option("--period", required=True, help="a month as YYYY-MM, or this_month, last_month (UTC)")
@click.option(
    "--bill", "bills", multiple=True, required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path), help="a provider bill file (repeatable)",
)  # fmt: skip
@click.option("--kind", type=click.Choice(KINDS), help="the kind of every --bill file (default: detected)")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="store the capture ratios (gauge) and true-up and commitment lines (invoices)",
)
@click.option(
    "--by-api-key", is_flag=True, help="split each line by API key (the ledger's api_key_id property)"
)
@click.option("--true-up", "do_true_up", is_flag=True, help="spread bill - ledger over the teams by usage")
@click.option(
    "--commitment",
    "commitment_specs",
    multiple=True,
    metavar="NAME=PROVIDER[/MODEL]:USD",
    help="a flat monthly fee, amortized per day and spread by usage (repeatable)",
)
@click.option(
    "--focus-out", type=click.Path(dir_okay=False, path_type=Path),
    help="write the true-up and commitment lines to FILE as FOCUS rows (CSV)",
)  # fmt: skip
@click.option("--config", help="config file (its price book maps model aliases); default: $LLMCOST_CONFIG")
@click.option("--ledger-url", help="default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db")
def reconcile(
    period: str, bills: tuple[Path, ...], kind: str | None, fmt: str, record: bool,
    by_api_key: bool, do_true_up: bool, commitment_specs: tuple[str, ...], focus_out: Path | None,
    config: str | None, ledger_url: str | None,
) -> None:  # fmt: skip
    """Reconcile the ledger with provider bills: capture rate, unseen models, gap days."""
    import csv
    import json
    import sys
    from datetime import datetime, timezone

    from llmcost_collector.config.schema import Config, load_config
    from llmcost_collector.config.yaml_loader import ConfigError
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.money import format_usd
    from llmcost_collector.periods import epoch_ns, named_period
    from llmcost_collector.reconcile import commitments as fees
    from llmcost_collector.reconcile.bill import BillError
    from llmcost_collector.reconcile.commitments import Commitment
    from llmcost_collector.reconcile.compare import reconcile as run
    from llmcost_collector.reconcile.files import load
    from llmcost_collector.reconcile.names import ModelNames
    from llmcost_collector.reconcile.render import (
        TOTAL_COLUMNS,
        line_cells,
        line_columns,
        to_json,
        total_cells,
    )
    from llmcost_collector.reconcile.runs import record_lines, record_run
    from llmcost_collector.reconcile.trueup import FOCUS_COLUMNS, focus_rows, true_up
    from llmcost_collector.settings import Settings

    try:
        commitments = [Commitment.parse(spec) for spec in commitment_specs]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--commitment") from None
    try:
        start, end = named_period(period, datetime.now(timezone.utc))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    settings = Settings.from_flags(config_path=config, ledger_url=ledger_url)
    try:
        loaded = load_config(settings.config_path) if settings.config_path else Config.default()
    except ConfigError as exc:
        raise ConfigInvalid(exc) from None
    rows = []
    for path in bills:
        try:
            rows += load(path, kind)[1]
        except BillError as exc:
            raise click.ClickException(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None
    try:
        ledger = open_ledger(settings.ledger_url)
        try:
            names = ModelNames(loaded.price_book)
            result = run(ledger, rows, epoch_ns(start), epoch_ns(end), period, names, by_api_key)
            trued = true_up(ledger, result, epoch_ns(start), epoch_ns(end), names) if do_true_up else []
            amortized = [
                (c, fees.amortize(ledger, c, start.date(), end.date(), epoch_ns(start), epoch_ns(end), names))
                for c in commitments
            ]
            if record:
                record_run(ledger, result)
                record_lines(
                    ledger, start.strftime("%Y-%m"), trued if do_true_up else None, amortized or None
                )
        finally:
            ledger.close()
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    if focus_out:
        with focus_out.open("w", newline="") as out_file:
            focus = csv.DictWriter(out_file, FOCUS_COLUMNS, lineterminator="\n")
            focus.writeheader()
            focus.writerows(focus_rows(trued, start.date(), end.date()))
            for commitment, shares in amortized:
                focus.writerows(fees.focus_rows(commitment, shares, start.date(), end.date()))
    if fmt == "json":
        doc = to_json(result)
        doc["commitments"] = [
            {"commitment": name, "team": team, "amount_usd": format_usd(nanos)}
            for _, shares in amortized
            for (name, team), nanos in fees.team_totals(shares).items()
        ]
        if do_true_up:
            doc["true_up"] = [
                {"team": t.team, "provider": t.provider, "model": t.model, "amount_usd": format_usd(t.amount_nanos),
                 "basis": t.basis, "label": t.label}
                for t in trued
            ]  # fmt: skip
        click.echo(json.dumps(doc, indent=2))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(line_columns(by_api_key))
        writer.writerows(line_cells(line, by_api_key) for line in result.lines)
        return
    from llmcost_collector.cli.tables import console, table

    out = console()
    columns = line_columns(by_api_key)
    lines = table(*columns, right=columns[-12:-2])
    for line in result.lines:
        lines.add_row(*line_cells(line, by_api_key))
    out.print(lines)
    totals = table(*TOTAL_COLUMNS, right=TOTAL_COLUMNS[1:])
    for cells in total_cells(result):
        totals.add_row(*cells)
    out.print(totals)
    for provider, model in result.unseen_models:
        out.print(f"ledger never saw: {provider} {model}")
    for provider, day, side in result.gap_days:
        out.print(f"gap: {provider} {day.isoformat()} has nothing on the {side}")
    if amortized:
        committed = table("commitment", "team", "amortized_usd", right=("amortized_usd",))
        for _, shares in amortized:
            for (name, team), nanos in fees.team_totals(shares).items():
                committed.add_row(name, team, format_usd(nanos))
        out.print(committed)
    if do_true_up:
        adjustments = table("team", "provider", "model", "true_up_usd", "split_by", right=("true_up_usd",))
        for t in trued:
            adjustments.add_row(
                t.team, t.provider, t.model or "(no model)", format_usd(t.amount_nanos), t.basis
            )
        out.print(adjustments)
    if result.outside_period:
        out.print(f"{result.outside_period} bill rows outside {period} were left out")
