"""Hot reload by the file watcher (in process; SIGHUP and a running collector are in\n``tests/integration/test_collector_reload.py``) and `llmcost config check`."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from llmcost_collector.config.schema import Config
from llmcost_collector.config.watch import ConfigWatcher

from tests.support import table_rows, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_good_change_applies_bad_change_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The watcher applies a changed file, refuses an invalid one once (logged at its line and
    column, the old config kept), applies the next good one, and ignores a rewrite or touch that
    leaves the content as it was."""
    path = tmp_path / "llmcost.yaml"
    path.write_text("teams: [{name: a, budgets: {daily: 1}}]\n")
    applied: list[Config] = []
    watcher = ConfigWatcher(path, applied.append, poll_interval=0.02).start()
    try:
        time.sleep(0.2)
        assert applied == []  # nothing changed yet: nothing applied
        path.write_text("teams: [{name: a, budgets: {daily: 2}}]\n")  # same size: the hash sees it
        wait_for(lambda: len(applied) == 1)
        assert applied[-1].budget_for("a", "daily") == 2
        assert watcher.reloads == 1 and watcher.reload_failures == 0
        with caplog.at_level(logging.ERROR, logger="llmcost_collector.config.watch"):
            path.write_text("teams:\n  - name: a\n    budgets: {daily: -1}\n")
            wait_for(lambda: watcher.reload_failures == 1)
        assert len(applied) == 1 and applied[-1].budget_for("a", "daily") == 2  # the old config stays
        lines = [r for r in caplog.records if getattr(r, "event", "") == "config_error"]
        assert [(r.line, r.column, r.key) for r in lines] == [(3, 22, "teams[0].budgets.daily")]  # type: ignore[attr-defined]
        assert f"{path}:3:22: teams[0].budgets.daily:" in lines[0].getMessage()
        assert str(watcher.last_error) == (
            f"{path}:3:22: teams[0].budgets.daily: Input should be greater than or equal to 0"
        )
        time.sleep(0.2)
        assert watcher.reload_failures == 1  # refused once, not again on every poll
        path.write_text("teams: [{name: a, budgets: {daily: 3}}, {name: web}]\n")
        wait_for(lambda: len(applied) == 2)
        assert applied[-1].budget_for("a", "daily") == 3 and applied[-1].team_names() == ["a", "web"]
        assert watcher.reloads == 2 and watcher.last_error is None
        path.write_text(path.read_text())  # rewritten with the same content, new mtime
        os.utime(path)  # and touched: nothing to reload
        time.sleep(0.2)
        assert len(applied) == 2 and watcher.reloads == 2 and watcher.reload_failures == 1
    finally:
        watcher.stop()


def test_an_included_price_book_reloads_when_it_changes_and_a_bad_one_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A change to an included file reloads like one to the config; an included file that does
    not validate is refused at its own line, and the running price book stays."""
    path = tmp_path / "llmcost.yaml"
    included = tmp_path / "catalog.yaml"
    included.write_text("entries:\n  - {model: m, input: 1}\n")
    path.write_text("price_book: {include: catalog.yaml}\n")
    applied: list[Config] = []
    watcher = ConfigWatcher(path, applied.append, poll_interval=0.02).start()
    try:
        included.write_text("entries:\n  - {model: m, input: 2}\n")
        wait_for(lambda: len(applied) == 1)
        assert [e.input for e in applied[-1].price_book.entries] == [2]
        with caplog.at_level(logging.ERROR, logger="llmcost_collector.config.watch"):
            included.write_text("entries:\n  - {model: m, input: -3}\n")
            wait_for(lambda: watcher.reload_failures == 1)
        assert str(watcher.last_error).startswith(f"{included}:2:")
        assert len(applied) == 1  # the running price book stays
        included.write_text("entries:\n  - {model: m, input: 3}\n")
        wait_for(lambda: len(applied) == 2)
        assert [e.input for e in applied[-1].price_book.entries] == [3]
        path.write_text("price_book: {include: [catalog.yaml, gone.yaml]}\n")
        wait_for(lambda: watcher.reload_failures == 2)
        assert str(watcher.last_error).startswith(f"{path}:1:")
        assert "gone.yaml: no such file" in str(watcher.last_error)
        assert len(applied) == 2
    finally:
        watcher.stop()


def test_a_deleted_file_keeps_the_running_config(tmp_path: Path) -> None:
    path = tmp_path / "llmcost.yaml"
    path.write_text("teams: [{name: a}]\n")
    applied: list[Config] = []
    watcher = ConfigWatcher(path, applied.append, poll_interval=0.02).start()
    try:
        path.unlink()
        time.sleep(0.15)
        assert applied == [] and watcher.reload_failures == 0
        path.write_text("teams: [{name: b}]\n")  # recreated (e.g. written elsewhere and renamed)
        wait_for(lambda: len(applied) == 1)
        assert applied[0].team_names() == ["b"]
    finally:
        watcher.stop()


def test_an_emptied_file_is_refused_as_a_partial_write(tmp_path: Path) -> None:
    path = tmp_path / "llmcost.yaml"
    path.write_text("teams: [{name: a}]\n")
    applied: list[Config] = []
    watcher = ConfigWatcher(path, applied.append, poll_interval=0.02, empty_wait=0.3).start()
    try:
        path.write_text("")  # truncated, the new content not written yet
        wait_for(lambda: watcher.reload_failures == 1)
        assert applied == [] and "empty file" in str(watcher.last_error)
        path.write_text("version: 1\n")  # all defaults, said explicitly
        wait_for(lambda: len(applied) == 1)
        assert applied[0].team_names() == []
    finally:
        watcher.stop()


def test_config_check_ok_and_errors(tmp_path: Path, llmcost: Callable[..., Result]) -> None:
    example = ROOT / "examples" / "llmcost.yaml"
    good = llmcost("config", "check", str(example))
    assert good.exit_code == 0 and good.stdout.startswith(f"OK: {example} is valid\n")
    summary = {row[0]: row[1:] for row in table_rows(good.stdout)}
    assert summary["teams"][0] == "4" and summary["price-book entries"][0] == "2"
    assert summary["budgets"][0] == "7" and summary["attribution rules"] == ["4", "trust: accept"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nteams:\n  - name: a\n    budgets: {monthly: -3}\n  - name: a\n    colour: red\n"
    )
    result = llmcost("config", "check", str(bad))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"{bad}:4:24: teams[0].budgets.monthly: Input should be greater than or equal to 0",
        f"{bad}:6:5: teams[1].colour: unknown key 'colour'",
    ]
    result = llmcost("config", "check", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 1 and "cannot read file" in result.stderr


def test_config_check_reports_a_duplicate_key(tmp_path: Path, llmcost: Callable[..., Result]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("chargeback:\n  model: cost_plus\n  model: at_cost\n")
    result = llmcost("config", "check", str(bad))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{bad}:3:3: chargeback.model: duplicate key 'model'"
