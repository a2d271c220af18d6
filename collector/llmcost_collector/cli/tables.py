"""The tables every subcommand prints, in one style, with rich.

Commands import this module inside the command, never at module level: rich takes longer to
import than the rest of ``llmcost --help`` together.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from llmcost_collector.cli.output import exit_broken_pipe


class _Console(Console):
    """A console whose broken pipe ends the process with the CLI's exit code, not rich's 1."""

    def on_broken_pipe(self) -> None:
        exit_broken_pipe()


def console() -> Console:
    """A rich console on the current stdout (click's test runner swaps it), plain text only.

    Markup and emoji codes are off because the printed values are model ids, paths and reasons,
    where ``[...]`` or ``:name:`` is literal text. When stdout is a pipe or a file, lines are never
    wrapped at 80 columns, so ``grep`` and ``awk`` see one table row per line; a terminal gets
    tables fitted to its width.
    """
    out = _Console(highlight=False, markup=False, emoji=False)
    if not out.is_terminal:
        out.width = 10_000
    return out


def table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    """A table in the style all commands share: a header rule and space-separated columns.

    ``right`` names the numeric columns, aligned right. Without outer borders a row splits into
    its cells on runs of spaces, which is what scripts reading the output rely on.
    """
    out = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in columns:
        out.add_column(name, justify="right" if name in right else "left")
    return out
