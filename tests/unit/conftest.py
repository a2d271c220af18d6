"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from llmcost_collector.cli.main import cli

# Variables that change what `llmcost` prints: the collector's own, and rich's terminal overrides.
_ENV = ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE", "COLUMNS")


@pytest.fixture
def llmcost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run ``llmcost ARGS`` in this process, as the console script does, in an empty directory.

    stdout and stderr are kept apart, since the exit-code convention says which gets what. The
    developer's ``LLMCOST_*`` variables are removed so they cannot change the result, and errors
    other than click's propagate, so a crash fails the test instead of passing as exit code 1.
    """
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={name: None for name in os.environ if name.startswith("LLMCOST_") or name in _ENV})

    def run(*args: str) -> Result:
        return runner.invoke(cli, list(args), prog_name="llmcost", catch_exceptions=False)

    return run
