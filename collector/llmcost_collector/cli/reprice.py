"""`llmcost reprice`: price the ledger's unpriced calls with today's price data and price book.

Calls are stored unpriced, never at zero, when their model has no price; once the price book
has it, this command prices them (and their chargeback) in place, each call once.
"""

from __future__ import annotations

import click

from llmcost_collector.cli.output import ConfigInvalid, ledger_errors


@click.command()
@click.option("--ledger-url", help="default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db")
@click.option("--config", help="config file (price book, chargeback); default: $LLMCOST_CONFIG")
@click.option("--dry-run", is_flag=True, help="show what would be priced, change nothing")
@click.option("--batch", type=click.IntRange(min=1), default=10_000, show_default=True, help="rows per pass")
def reprice(ledger_url: str | None, config: str | None, dry_run: bool, batch: int) -> None:
    """Price the ledger's unpriced calls with today's price book.

    Run it after adding their model to the price book; each call is priced once.
    """

    from llmcost_collector.chargeback.per_call import make_chargeback
    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.config.schema import Config, load_config
    from llmcost_collector.config.yaml_loader import ConfigError
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.model import PRICED
    from llmcost_collector.money import format_usd
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
                    cost = pricer.price(call)
                    if cost.status != PRICED:
                        still += 1
                        continue
                    updates.append(
                        (entry.trace_id, entry.span_id, cost, chargeback(call, cost.contracted_nanos))
                    )
                    total += cost.contracted_nanos or 0
                priced += len(updates)
                if updates and not dry_run:
                    ledger.update_costs(updates)
                if len(entries) < batch:
                    break
        finally:
            ledger.close()
    except ledger_errors() as exc:
        raise click.ClickException(f"ledger: {exc}") from None
    summary = table("calls", "count", "contracted", right=("count", "contracted"))
    summary.add_row("would be priced" if dry_run else "priced", str(priced), f"${format_usd(total)}")
    summary.add_row("still unpriced", str(still), "-")
    out = console()
    if dry_run:
        out.print("dry run: the ledger is unchanged")
    out.print(summary)
