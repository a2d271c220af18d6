"""What every subcommand shares for failing and ending: the exit-code convention in code.

The convention is documented in ``llmcost_collector.cli.main``. Only click is imported here; the
database drivers are looked up when an error happens, and the tables (rich) are in
``llmcost_collector.cli.tables``, so that ``llmcost --help`` stays instant.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import IO, Any, NoReturn

import click

from llmcost_collector.redact import redact

# What a shell reports for a process killed by SIGPIPE (``yes | head``).
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


class ConfigInvalid(click.ClickException):
    """A config file or price book that cannot be used: exit 1, every problem on stderr.

    The problems are printed as ``file:line:col: path: message`` lines without click's ``Error:``
    prefix, because that is the format editors and CI annotations parse.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.message, err=True)


def ledger_errors() -> tuple[type[BaseException], ...]:
    """The errors of opening or using a ledger that are the operator's to fix, not bugs.

    A bad URL (``ValueError``), an unwritable path, an unreachable or locked database, a missing
    optional driver: each is reported in one line with exit 1, never as a traceback. Evaluated in
    the ``except`` clause, when the error happens, so psycopg's errors are included exactly when
    a PostgreSQL ledger imported it (importing it here would slow every SQLite run).
    """
    import sqlite3

    errors: tuple[type[BaseException], ...] = (ValueError, OSError, ImportError, sqlite3.Error)
    psycopg = sys.modules.get("psycopg")
    return (*errors, psycopg.Error) if psycopg is not None else errors


def ledger_failed(exc: BaseException, what: str = "ledger") -> click.ClickException:
    """The one-line error for a ledger error, with any URL password masked (a driver may quote
    the URL it was given)."""
    return click.ClickException(f"{what}: {redact(str(exc))}")


def exit_broken_pipe() -> NoReturn:
    """End quietly with ``EXIT_BROKEN_PIPE`` once stdout's reader has gone (``llmcost models | head``).

    click and rich would exit 1, which this CLI keeps for failed operations. stdout is pointed at
    /dev/null first (the recipe of Python's signal docs), so the flush at exit cannot fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_BROKEN_PIPE)
