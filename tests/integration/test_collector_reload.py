"""Reloads that need a real process around them: SIGHUP delivered to this process, and a running
collector applying good edits to its config file and refusing broken ones."""

from __future__ import annotations

import logging
import os
import signal
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.config.schema import Config
from llmcost_collector.config.watch import ConfigWatcher

from tests.integration.conftest import Collectors, config_file, metric
from tests.support import wait_for

pytestmark = pytest.mark.integration

GOOD = "version: 1\nteams:\n  - {name: search, budgets: {daily: 5}}\n"
GOOD_2 = "version: 1\nteams:\n  - {name: search, budgets: {daily: 7.25}}\n"
GOOD_3 = "version: 1\nteams:\n  - {name: search, budgets: {daily: 9}}\n  - {name: web}\n"
# line 3: "  - {name: search, budgets: {daily: -1}}": '-1' at index 36 -> column 37
BROKEN = "version: 1\nteams:\n  - {name: search, budgets: {daily: -1}}\n"


def test_sighup_reloads_even_when_the_file_looks_unchanged(tmp_path: Path) -> None:
    """SIGHUP forces a reload (unchanged file included), applies good edits, refuses broken ones,
    and stop() puts the previous handler back."""
    assert threading.current_thread() is threading.main_thread()  # signal handlers need it
    path = tmp_path / "llmcost.yaml"
    path.write_text(GOOD)
    applied: list[Config] = []
    # A poll interval far beyond the test: only the signal can trigger these reloads.
    watcher = ConfigWatcher(path, applied.append, poll_interval=3600)
    before = signal.getsignal(signal.SIGHUP)
    watcher.install_sighup_handler()
    watcher.start()
    try:
        os.kill(os.getpid(), signal.SIGHUP)  # unchanged file: a forced reload still happens
        wait_for(lambda: len(applied) == 1)
        assert applied[0].budget_for("search", "daily") == Decimal(5)
        path.write_text(GOOD_2)
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: len(applied) == 2)
        assert applied[1].budget_for("search", "daily") == Decimal("7.25")
        path.write_text("teams: [{name: a, budgets: {monthly: oops}}]\n")
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: watcher.reload_failures == 1)
        assert len(applied) == 2 and "llmcost.yaml:1:" in str(watcher.last_error)
    finally:
        watcher.stop()
    assert signal.getsignal(signal.SIGHUP) == before  # stop() restored the previous handler


def test_running_collector_applies_good_edits_and_refuses_broken_ones(
    collector: Collectors, caplog: pytest.LogCaptureFixture
) -> None:
    """Edits to the watched file apply while the collector serves; an invalid or unparsable edit is
    logged at its line and column, counted, and the previous config keeps running (still ready)."""
    caplog.set_level(logging.INFO, logger="llmcost_collector")
    app = collector(GOOD)
    path = config_file(app)
    assert app.config.budget_for("search", "daily") == Decimal(5)
    path.write_text(GOOD_2)
    wait_for(lambda: app.config.budget_for("search", "daily") == Decimal("7.25"))
    assert metric(app, "llmcost_collector_config_reloads_total", result="applied") == 1

    path.write_text(BROKEN)

    def refused() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "event", "") == "config_error"]

    wait_for(refused)
    (record,) = refused()
    assert (record.line, record.column, record.key) == (3, 37, "teams[0].budgets.daily")  # type: ignore[attr-defined]
    wait_for(lambda: any(getattr(r, "event", "") == "config_reload_refused" for r in caplog.records))
    assert metric(app, "llmcost_collector_config_reloads_total", result="refused") == 1
    assert app.config.budget_for("search", "daily") == Decimal("7.25")  # the old config keeps running
    assert app.ready() == (True, "ok")

    path.write_text(GOOD + "\nbogus: [unclosed\n")  # not even YAML
    wait_for(lambda: metric(app, "llmcost_collector_config_reloads_total", result="refused") == 2)
    assert app.config.budget_for("search", "daily") == Decimal("7.25")
    assert app._watcher is not None and str(app._watcher.last_error).startswith(f"{path}:")

    path.write_text(GOOD_3)
    wait_for(lambda: app.config.budget_for("search", "daily") == Decimal(9))
    assert app.config.team_names() == ["search", "web"]
