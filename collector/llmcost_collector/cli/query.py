"""`llmcost query`: the ``/api/v1/costs`` question from the command line, read from the ledger.

The options become the API's flat parameters and go through the same parser and the same
answer (``llmcost_collector.web.costs``), so the rows, the money and the errors are the same.
"""

from __future__ import annotations

import click

from llmcost_collector.cli.output import ledger_errors, ledger_failed


@click.command()
@click.option("--ledger-url", help="default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db")
@click.option(
    "--group-by", "-g", default="team", show_default=True, help="columns or property.<name>, comma-separated"
)
@click.option("--bucket", "-b", help="time bucket: hour, day, week or month")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone for buckets, dates and periods")
@click.option("--period", "-p", help="today, yesterday, this_week, last_week, this_month or last_month")
@click.option("--from", "from_", help="start, ISO 8601 (a date is midnight in --tz)")
@click.option("--to", help="end, ISO 8601, exclusive")
@click.option(
    "--where", "-w", multiple=True, metavar="COLUMN=V1,V2",
    help="filter (repeatable): team=search,support; COLUMN!=V excludes; property.region=eu",
)  # fmt: skip
@click.option(
    "--order-by", default="-charged", show_default=True, help="a measure or group column; '-' descends"
)
@click.option("--limit", "-n", type=int, help="keep this many groups, fold the rest into one others row")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
def query(
    ledger_url: str | None,
    group_by: str,
    bucket: str | None,
    tz: str,
    period: str | None,
    from_: str | None,
    to: str | None,
    where: tuple[str, ...],
    order_by: str,
    limit: int | None,
    fmt: str,
) -> None:
    """Costs from the ledger grouped by any column, in time buckets (like GET /api/v1/costs)."""
    import csv
    import json
    import sys

    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.settings import Settings
    from llmcost_collector.web import costs

    params = {"group_by": group_by, "tz": tz, "order_by": order_by}
    for name, value in (("bucket", bucket), ("period", period), ("from", from_), ("to", to)):
        if value is not None:
            params[name] = value
    if limit is not None:
        params["limit"] = str(limit)
    for condition in where:
        column, sep, values = condition.partition("=")
        if not sep or not column:
            raise click.BadParameter(f"{condition!r} is not COLUMN=VALUES", param_hint="--where")
        if column in costs.PARAMETERS:
            raise click.BadParameter(f"{column!r} is an option (--{column.replace('_', '-')}), not a column",
                                     param_hint="--where")  # fmt: skip
        # A column given twice takes the values of both, as a repeated API parameter does.
        params[column] = f"{params[column]},{values}" if column in params else values
    try:
        request = costs.parse(params)
    except costs.BadQuery as exc:
        raise click.UsageError(str(exc)) from None
    settings = Settings.from_flags(ledger_url=ledger_url)
    try:
        ledger = open_ledger(settings.ledger_url)
        try:
            body = costs.answer(ledger, request)
        finally:
            ledger.close()
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    if fmt == "json":
        click.echo(json.dumps(body, indent=2))
        return
    groups = body["group_by"]
    head = [*(["bucket"] if body["bucket"] else []), *groups]
    numbers = ["requests", "errors", "unpriced", *(f"{name}_tokens" for name in costs.TOKEN_CLASSES)]
    money = ["list_cost_usd", "contracted_cost_usd", "charged_usd", "savings_usd"]
    records = []
    for row in [*body["rows"], {**{g: "total" for g in head[:1]}, **body["totals"]}]:
        cells = [str(row.get(name, "")) for name in head]
        cells += [str(row["requests"]), str(row["errors"]), str(row["unpriced_requests"])]
        cells += [str(row["tokens"][name]) for name in costs.TOKEN_CLASSES]
        cells += [row[name] for name in money]
        records.append(cells)
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*head, *numbers, *money])
        writer.writerows(records[:-1])  # totals are a sum of the rows: spreadsheets add them
        return
    right = (*numbers, *money)
    out = table(*head, *numbers, *money, right=right) if head else table(*numbers, *money, right=right)
    for cells in records:
        out.add_row(*cells)
    console().print(out)
