"""`llmcost migrate`: bring a ledger to the current schema, with a progress bar.

The collector migrates its ledger when it starts, so this is never required. On a large
existing ledger, though, a migration that builds data (the rollups are computed from every call
already stored) takes a while: run it here first to watch it, then start the collector.
"""

from __future__ import annotations

import click

from llmcost_collector.cli.output import ledger_errors, ledger_failed


@click.command()
@click.option("--ledger-url", help="default: $LLMCOST_LEDGER_URL or sqlite:///llmcost.db")
def migrate(ledger_url: str | None) -> None:
    """Apply the ledger's pending schema migrations (the collector also does at start)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from llmcost_collector.cli.tables import console, table
    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.settings import Settings

    url = Settings.from_flags(ledger_url=ledger_url).ledger_url
    out = console()
    try:
        ledger = open_ledger(url, migrate=False)
        try:
            pending = ledger.pending_migrations()
            if not pending:
                out.print("the ledger is up to date")
                return
            progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True),  # stdout keeps only the result table
            )  # fmt: skip
            with progress:
                task = progress.add_task("building from stored calls", total=None)

                def step(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                applied = ledger.migrate(progress=step)
        finally:
            ledger.close()
    except ledger_errors() as exc:
        raise ledger_failed(exc) from None
    done = table("version", "migration", right=("version",))
    for version, description in pending:
        if version in applied:
            done.add_row(str(version), description)
    out.print(done)
