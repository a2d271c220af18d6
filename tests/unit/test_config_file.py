"""The config file: line-precise errors, exact money, attribution rules, chargeback, reload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.chargeback import make_chargeback
from llmcost_collector.config import Config, load_config
from llmcost_collector.config_watch import ConfigWatcher
from llmcost_collector.model import Attribution, LlmCall, Usage
from llmcost_collector.yamlconfig import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def errors(text: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config("llmcost.yaml", text=text)
    return [(e.line, e.column, e.path, e.message) for e in caught.value.errors]


def test_shipped_configs_validate() -> None:
    example = load_config(ROOT / "examples" / "llmcost.yaml")
    assert example.team_names() == ["marketing", "support", "search", "platform"]
    assert example.budget_for("marketing", "monthly") == Decimal(5000)
    load_config(ROOT / "collector" / "llmcost_collector" / "data" / "demo-config.yaml")


def test_syntax_error_has_its_line() -> None:
    ((line, _column, path, message),) = errors("teams:\n  - name: a\n    budgets: {daily: 1\n")
    assert line == 4 and path == "" and "YAML syntax error" in message


def test_unknown_key_is_reported_at_the_key() -> None:
    assert errors("version: 1\nteams:\n  - name: a\n    budgtes: {}\n") == [
        (4, 5, "teams[0].budgtes", "unknown key 'budgtes'")
    ]


def test_wrong_type_and_negative_money() -> None:
    found = errors("teams:\n  - name: a\n    budgets:\n      daily: lots\n      monthly: -5\n")
    assert [(line, column, path) for line, column, path, _ in found] == [
        (4, 14, "teams[0].budgets.daily"),
        (5, 16, "teams[0].budgets.monthly"),
    ]


def test_duplicate_keys_are_refused() -> None:
    ((line, column, path, message),) = errors("chargeback:\n  markup_percent: 10\n  markup_percent: 20\n")
    assert (line, column, path) == (3, 3, "chargeback.markup_percent") and "duplicate key" in message


def test_cross_field_checks() -> None:
    assert "ascending" in errors("teams: [{name: a, budgets: {thresholds: [80, 50]}}]")[0][3]
    assert (
        "ascending"
        in errors(
            "chargeback: {volume_tiers: [{up_to_tokens: 100, markup_percent: 1}, {up_to_tokens: 10, markup_percent: 2}]}"
        )[0][3]
    )
    assert "unique" in errors("teams: [{name: a}, {name: a}]")[0][3]


def test_money_is_exact_decimal() -> None:
    config = load_config("x.yaml", text="teams: [{name: a, budgets: {daily: 0.1, monthly: 1e2}}]")
    assert config.budget_for("a", "daily") == Decimal("0.1")
    assert config.budget_for("a", "monthly") == Decimal("100")
    assert config.budget_for("a", "weekly") is None and config.budget_for("nobody", "daily") is None


RULES = """
attribution:
  trust: {trust}
  rules:
    - {{match: {{service.name: "checkout-*"}}, team: payments}}
    - {{match: {{k8s.namespace.name: "support-*", llmcost.property.api_key_id: "key-*"}}, team: support}}
"""


@pytest.mark.parametrize(
    ("trust", "attrs", "asserted", "expected"),
    [
        ("accept", {"service.name": "checkout-api"}, "", ("payments", "rule")),
        ("accept", {"service.name": "checkout-api"}, "marketing", ("marketing", "span")),
        ("override", {"service.name": "checkout-api"}, "marketing", ("payments", "overridden")),
        ("override", {"service.name": "search-api"}, "marketing", ("marketing", "span")),
        ("reject", {"service.name": "search-api"}, "marketing", ("unattributed", "default")),
        (
            "reject",
            {"k8s.namespace.name": "support-eu", "llmcost.property.api_key_id": "key-7"},
            "x",
            ("support", "rule"),
        ),
        (
            "accept",
            {"k8s.namespace.name": "support-eu"},
            "",
            ("unattributed", "default"),
        ),  # both keys must match
    ],
)
def test_trust_policy_and_rules(trust: str, attrs: dict, asserted: str, expected: tuple[str, str]) -> None:
    resolve = load_config("x.yaml", text=RULES.format(trust=trust)).team_resolver()
    assert resolve(attrs, {}, asserted) == expected
    assert resolve({}, attrs, asserted) == expected  # resource attributes count too


def test_chargeback_cost_plus_and_team_override() -> None:
    config = load_config(
        "x.yaml",
        text="chargeback: {model: cost_plus, markup_percent: 15, platform_fee_percent: 5}\n"
        "teams: [{name: lab, chargeback: {model: at_cost}}, {name: ops, chargeback: {markup_percent: 30}}]\n",
    )
    charge = make_chargeback(config)

    def call(team: str) -> LlmCall:
        return LlmCall("0" * 32, "0" * 16, 0, 0, "openai", "chat", "m", "", Usage(), Attribution(team=team))

    assert charge(call("search"), 1_000_000) == 1_200_000  # 15% markup + 5% fee
    assert charge(call("lab"), 1_000_000) == 1_000_000  # at cost
    assert charge(call("ops"), 1_000_000) == 1_350_000  # 30% + 5%
    assert charge(call("search"), None) is None  # unpriced stays unpriced
    assert charge(call("search"), 3) == 4  # 3.6 nano-dollars rounds half-even to 4


def test_watcher_applies_good_refuses_bad_and_reloads_on_sighup(tmp_path: Path) -> None:
    path = tmp_path / "llmcost.yaml"
    path.write_text("teams: [{name: a, budgets: {daily: 1}}]\n")
    applied: list[Config] = []
    watcher = ConfigWatcher(path, applied.append, poll_interval=0.05)
    watcher.install_sighup_handler()
    watcher.start()
    try:
        path.write_text("teams: [{name: a, budgets: {daily: 2}}]\n")
        wait_for(lambda: len(applied) == 1)
        assert applied[-1].budget_for("a", "daily") == 2
        path.write_text("teams: [{name: a, budgets: {daily: -1}}]\n")
        wait_for(lambda: watcher.reload_failures == 1)
        assert len(applied) == 1 and "llmcost.yaml:1:" in str(watcher.last_error)
        path.write_text("teams: [{name: a, budgets: {daily: 3}}]\n")
        wait_for(lambda: len(applied) == 2)
        os.kill(os.getpid(), signal.SIGHUP)  # same content: only the signal triggers this reload
        wait_for(lambda: len(applied) == 3)
        assert applied[-1].budget_for("a", "daily") == 3
    finally:
        watcher.stop()
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_config_check_command(tmp_path: Path) -> None:
    good = subprocess.run([sys.executable, "-m", "llmcost_collector", "config", "check", str(ROOT / "examples" / "llmcost.yaml")],
                          capture_output=True, text=True)  # fmt: skip
    assert good.returncode == 0 and good.stdout.startswith("OK: 4 teams")
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text("version: 1\nteams:\n  - name: a\n    budgets: {monthly: -3}\n")
    bad = subprocess.run([sys.executable, "-m", "llmcost_collector", "config", "check", str(bad_file)],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1
    assert (
        bad.stdout.strip()
        == f"{bad_file}:4:24: teams[0].budgets.monthly: Input should be greater than or equal to 0"
    )


def test_threads_share_one_resolver_safely() -> None:
    resolve = load_config("x.yaml", text=RULES.format(trust="accept")).team_resolver()
    results: list[tuple[str, str]] = []

    def work() -> None:
        for n in range(2000):
            results.append(resolve({"service.name": f"checkout-{n % 50}"}, {}, ""))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {("payments", "rule")} and len(results) == 8000
