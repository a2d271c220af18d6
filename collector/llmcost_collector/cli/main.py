"""`llmcost`: a thin command line over the collector's app objects, one subcommand per job.

Each subcommand is a click command in ``llmcost_collector.cli.<name>``. The modules import only
click at module level and keep their heavy imports (the pricer and its price data, the ledger,
pydantic, rich) inside the command, so that ``llmcost --help`` stays instant.

Results (tables, summaries) go to stdout; errors go to stderr, never as a traceback for an
expected error. Exit codes, the same for every subcommand:

* 0: done.
* 1: the operation failed: an unknown (unpriced) model, no model matching a search, a ledger
  that cannot be opened or used, ports already in use. stderr says why in one ``Error: ...``
  line. An invalid or unreadable config file or price book is a failure too: stderr then has
  one ``file:line:col: path: message`` line per problem, the format editors and CI annotate.
* 2: usage error, reported by click with the usage line: an unknown option, a missing argument,
  a value click or the command refuses (a negative token count, a date that is not ISO 8601).
* 141 (128 + SIGPIPE): whoever read stdout went away (``llmcost models | head``), which a shell
  reports the same way for ``yes | head``; nothing more is printed.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from llmcost_collector import __version__
from llmcost_collector.cli.alertmanager import alertmanager_config
from llmcost_collector.cli.budgets import budgets
from llmcost_collector.cli.config import config
from llmcost_collector.cli.demo import demo
from llmcost_collector.cli.export import export
from llmcost_collector.cli.invoice import invoice
from llmcost_collector.cli.migrate import migrate
from llmcost_collector.cli.models import models
from llmcost_collector.cli.output import exit_broken_pipe
from llmcost_collector.cli.price import price
from llmcost_collector.cli.query import query
from llmcost_collector.cli.reconcile import reconcile
from llmcost_collector.cli.report import report
from llmcost_collector.cli.reprice import reprice
from llmcost_collector.cli.serve import serve


class Llmcost(click.Group):
    """The command group: commands listed in the order added, and the broken-pipe exit above.

    Output still buffered when a command returns is flushed here, inside the guard, rather than
    at interpreter shutdown, where a broken pipe would be reported as an ignored exception.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()
        except BrokenPipeError:
            exit_broken_pipe()
        return result


@click.group(cls=Llmcost, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmcost", message="%(prog)s %(version)s")
def cli() -> None:
    """otel-llmcost: LLM cost attribution and chargeback on OpenTelemetry."""


# Order is the order shown by --help.
for command in (
    serve,
    demo,
    price,
    models,
    query,
    report,
    invoice,
    export,
    reconcile,
    reprice,
    migrate,
    config,
    budgets,
    alertmanager_config,
):
    cli.add_command(command)


def main() -> None:
    """The ``llmcost`` console script and ``python -m llmcost_collector``: exits with the code."""
    cli()


if __name__ == "__main__":
    main()
