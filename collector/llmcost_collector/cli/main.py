"""`llmcost`: a thin command line over the collector's app objects, one subcommand per job.

Each subcommand lives in ``llmcost_collector.cli.<name>`` and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Command modules keep their heavy imports
inside ``run`` so that ``llmcost --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from llmcost_collector import __version__

# Order is the order shown by --help.
SUBCOMMANDS = ("serve", "demo", "price", "models", "reprice", "config")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmcost",
        description="otel-llmcost: LLM cost attribution and chargeback on OpenTelemetry.",
    )
    parser.add_argument("--version", action="version", version=f"llmcost {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"llmcost_collector.cli.{name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`llmcost models | head`): stop quietly, as a Unix filter does,
        # and keep the interpreter from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
