"""`llmcost reprice`: price ledger calls again with today's price data and price book.

Calls are stored unpriced, never at zero, when their model has no price; once the price book
has it, this command prices them (and their chargeback) in place, each call once. With
``--from``/``--to`` it recomputes every call of those days from its stored tokens (a corrected
price book, a negotiated rate dated back) and prints the difference per team. The ledger rows
change; invoices of a closed month do not: the difference becomes adjustment lines on the next
open month's invoices.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import click

from llmcost_collector.cli.output import ConfigInvalid, ledger_errors, ledger_failed

if TYPE_CHECKING:
    from llmcost_collector.model import LlmCall
    from llmcost_collector.price.pricer import Pricer


@click.command()
@click.option("--ledger-url", help="default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db")
@click.option("--config", help="config file (price book, chargeback); default: $LLMCOST_CONFIG")
@click.option("--dry-run", is_flag=True, help="show what would be priced, change nothing")
@click.option("--batch", type=click.IntRange(min=1), default=10_000, show_default=True, help="rows per pass")
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="re-price every call from this UTC day"
)
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="up to this UTC day (exclusive)")
def reprice(
    ledger_url: str | None,
    config: str | None,
    dry_run: bool,
    batch: int,
    start: datetime | None,
    end: datetime | None,
) -> None:
    """Price the ledger's unpriced calls with today's price book (--from/--to: every call of those days).

    Run it after adding their model to the price book; each call is priced once. With --from and
    --to, every call of the days [FROM, TO) is priced again from its stored tokens, and the
    difference per team is printed; a closed month gets adjustments on its next open month.
    """
    if (start is None) != (end is None):
        raise click.UsageError("--from and --to go together.")
    if start is not None and end is not None and end <= start:
        raise click.UsageError("--to must be after --from.")

    from llmcost_collector.chargeback.per_call import make_chargeback
    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.config.schema import Config, load_config
    from llmcost_collector.config.yaml_loader import ConfigError
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.model import PRICED
    from llmcost_collector.money import format_usd
    from llmcost_collector.price.billing import bill
    from llmcost_collector.price.pricer import Pricer
    from llmcost_collector.settings import Settings

    settings = Settings.from_flags(config_path=config, ledger_url=ledger_url)  # flags over LLMCOST_*
    config_path = settings.config_path
    try:
        loaded = load_config(config_path) if config_path else Config.default()
    except ConfigError as exc:
        raise ConfigInvalid(exc) from None
    pricer = Pricer(loaded.price_book)
    chargeback = make_chargeback(loaded)
    url = settings.ledger_url
    if start is not None and end is not None:
        _reprice_range(url, pricer, chargeback, start, end, dry_run)
        return
    priced = still = total = 0
    try:
        ledger = open_ledger(url)
        try:
            seen: set[tuple[str, str]] = set()
            while True:
                entries = [e for e in ledger.unpriced(batch) if (e.trace_id, e.span_id) not in seen]
                if not entries:
                    break
                updates = []
                for entry in entries:
                    seen.add((entry.trace_id, entry.span_id))
                    call = entry.to_call()
                    billed = bill(pricer, call)  # a response-cache hit stays $0, its saving priced
                    cost = billed.cost
                    if cost.status != PRICED:
                        still += 1
                        continue
                    updates.append(
                        (entry.trace_id, entry.span_id, cost, chargeback(call, cost.contracted_nanos),
                         billed.savings_nanos, billed.prompt_cache_savings_nanos)
                    )  # fmt: skip
                    total += cost.contracted_nanos or 0
                priced += len(updates)
                if updates and not dry_run:
                    ledger.update_costs(updates)
                if len(entries) < batch:
                    break
        finally:
            ledger.close()
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    summary = table("calls", "count", "contracted", right=("count", "contracted"))
    summary.add_row("would be priced" if dry_run else "priced", str(priced), f"${format_usd(total)}")
    summary.add_row("still unpriced", str(still), "-")
    out = console()
    if dry_run:
        out.print("dry run: the ledger is unchanged")
    out.print(summary)


def _reprice_range(
    url: str,
    pricer: Pricer,
    chargeback: Callable[[LlmCall, int | None], int | None],
    start: datetime,
    end: datetime,
    dry_run: bool,
) -> None:
    """Every call of [start, end) priced again; the difference per team printed."""
    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.invoice.build import Period
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.ledger.invoice_store import InvoiceStore
    from llmcost_collector.money import format_usd
    from llmcost_collector.periods import epoch_ns
    from llmcost_collector.price.billing import bill

    start_ns = epoch_ns(start.replace(tzinfo=timezone.utc))
    end_ns = epoch_ns(end.replace(tzinfo=timezone.utc))
    before: dict[
        str, list[int]
    ] = {}  # team -> [calls changed, contracted before, after, chargeback before, after]
    try:
        ledger = open_ledger(url)
        try:
            updates = []
            for entry in ledger.entries(start_ns, end_ns):
                if entry.operation == "outcome":
                    continue
                call = entry.to_call()
                priced = bill(pricer, call)
                cost = priced.cost
                charged = chargeback(call, cost.contracted_nanos)
                old = (
                    entry.price_status,
                    entry.list_cost_nanos,
                    entry.contracted_cost_nanos,
                    entry.chargeback_nanos,
                    entry.savings_nanos,
                    entry.prompt_cache_savings_nanos,
                )
                new = (cost.status, cost.list_nanos, cost.contracted_nanos, charged, priced.savings_nanos,
                       priced.prompt_cache_savings_nanos)  # fmt: skip
                if old == new:
                    continue
                sums = before.setdefault(entry.team, [0, 0, 0, 0, 0])
                sums[0] += 1
                sums[1] += entry.contracted_cost_nanos or 0
                sums[2] += cost.contracted_nanos or 0
                sums[3] += entry.chargeback_nanos or 0
                sums[4] += charged or 0
                updates.append((entry.trace_id, entry.span_id, cost, charged, *new[4:]))
            if updates and not dry_run:
                for offset in range(0, len(updates), 10_000):
                    ledger.update_costs(updates[offset : offset + 10_000])
            closed = InvoiceStore(ledger).closed_periods()
        finally:
            ledger.close()
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    summary = table(
        "team",
        "calls",
        "contracted before",
        "contracted after",
        "chargeback difference",
        right=("calls", "contracted before", "contracted after", "chargeback difference"),
    )
    for team, (calls, was, now, charged_was, charged_now) in sorted(before.items()):
        summary.add_row(
            team,
            str(calls),
            f"${format_usd(was)}",
            f"${format_usd(now)}",
            f"${format_usd(charged_now - charged_was)}",
        )
    out = console()
    out.print(
        ("dry run: the ledger is unchanged; " if dry_run else "")
        + f"{sum(v[0] for v in before.values())} calls re-priced"
    )
    out.print(summary)
    months = []
    month = Period.of(start.date())
    while month.start < end.date():
        months.append(month.name)
        month = Period.of(month.end)
    for name in sorted(set(months) & set(closed)):
        out.print(
            f"{name} is closed: its invoices stay as issued; the difference is an adjustment on the next open month"
        )
