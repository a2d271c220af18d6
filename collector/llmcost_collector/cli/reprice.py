"""`llmcost reprice`: price the ledger's unpriced calls with today's price data and price book."""

from __future__ import annotations

import argparse

HELP = "Re-price unpriced calls in the ledger (after adding their model to the price book)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ledger-url", help="default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db")
    parser.add_argument("--config", help="config file (price book, chargeback); default: $LLMCOST_CONFIG")
    parser.add_argument("--dry-run", action="store_true", help="show what would be priced, change nothing")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per pass")


def run(args: argparse.Namespace) -> int:
    import os

    from llmcost_collector.app import DEFAULT_LEDGER_URL
    from llmcost_collector.chargeback.per_call import make_chargeback
    from llmcost_collector.config.schema import Config, load_config
    from llmcost_collector.config.yaml_loader import ConfigError
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.model import PRICED
    from llmcost_collector.money import format_usd
    from llmcost_collector.price.pricer import Pricer

    config_path = args.config or os.environ.get("LLMCOST_CONFIG")
    try:
        config = load_config(config_path) if config_path else Config.default()
    except ConfigError as exc:
        print(exc)
        return 2
    ledger = open_ledger(args.ledger_url or os.environ.get("LLMCOST_LEDGER_URL", DEFAULT_LEDGER_URL))
    pricer = Pricer(config.price_book)
    chargeback = make_chargeback(config)
    priced = still = 0
    total = 0
    try:
        seen: set[tuple[str, str]] = set()
        while True:
            entries = [e for e in ledger.unpriced(args.batch) if (e.trace_id, e.span_id) not in seen]
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
                updates.append((entry.trace_id, entry.span_id, cost, chargeback(call, cost.contracted_nanos)))
                total += cost.contracted_nanos or 0
            priced += len(updates)
            if updates and not args.dry_run:
                ledger.update_costs(updates)
            if len(entries) < args.batch:
                break
    finally:
        ledger.close()
    verb = "would price" if args.dry_run else "priced"
    print(f"{verb} {priced} calls (${format_usd(total)} contracted); {still} still unpriced")
    return 0
