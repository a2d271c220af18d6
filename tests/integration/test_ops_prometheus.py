"""Prometheus side of the ops stack, checked by the real ``promtool``.

The rules and their unit tests (``prometheus/tests/*.test.yml``) are what users deploy and what
proves each alert fires at the right values with the right labels; these tests run them with the
same binary CI installs, so a rule that does not load or an expectation that no longer holds fails
``make test``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from llmcost_collector.config.budgets import severity

from tests.support import require_binary

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROM / "tests").glob("*.test.yml"))

pytestmark = [pytest.mark.integration, pytest.mark.needs_prometheus]


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_rule_files_pass_promtool_check() -> None:
    assert [p.name for p in RULE_FILES] == ["llmcost.alerts.yml", "llmcost.rules.yml"]
    result = _promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS, "prometheus/tests/*.test.yml is empty"
    result = _promtool("test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS)


def test_unit_tests_cover_every_alert_and_threshold() -> None:
    """Each alert has a firing expectation; each budget threshold fires with its own labels."""
    fired: dict[str, list[dict[str, str]]] = {}
    silent: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                if expected:
                    fired.setdefault(check["alertname"], []).extend(a["exp_labels"] for a in expected)
                else:
                    silent.add(check["alertname"])
    alerts = {
        "LLMCostBudgetThreshold",
        "LLMCostBudgetForecast",
        "LLMCostUnpricedModel",
        "LLMCostHighErrorRate",
        "LLMCostCaptureGap",
    }
    assert set(fired) == alerts
    assert silent == alerts, "every alert also needs a case where it must not fire"
    severities = {(a["threshold"], a["severity"]) for a in fired["LLMCostBudgetThreshold"]}
    # the defaults and custom thresholds on each side of the severity steps (below 80 info,
    # below 95 warning, else critical)
    assert severities == {
        ("50", "info"), ("60", "info"), ("80", "warning"), ("90", "warning"),
        ("95", "critical"), ("100", "critical"), ("110", "critical"), ("120", "critical"),
    }  # fmt: skip
    assert {severity(int(t)) for t, s in severities if severity(int(t)) != s} == set()
    periods = {"daily", "weekly", "monthly"}
    assert {a["period"] for a in fired["LLMCostBudgetThreshold"]} == periods
    assert {a["period"] for a in fired["LLMCostBudgetForecast"]} == periods


@pytest.mark.parametrize(
    ("original", "mutated", "failing"),
    [
        # a threshold a tenth of a percent early: 49.99 % (at 1m) would fire the 50 % alert
        ("(llmcost_budget_threshold_ratio) - 1e-9)", "(llmcost_budget_threshold_ratio) - 0.001)",
         "name: default thresholds at every boundary,\n    alertname: LLMCostBudgetThreshold, time: 1m"),
        # without the float allowance 0.88 / 1.10 misses 80 %
        ("(llmcost_budget_threshold_ratio) - 1e-9)", "(llmcost_budget_threshold_ratio))",
         "name: exact boundary in floating point"),
        # a forecast off by a cent: the $143.99 budget would not fire
        ("+ deriv(llmcost_budget_spend_usd{period=\"daily\"}[1h])",
         "- 0.02 + deriv(llmcost_budget_spend_usd{period=\"daily\"}[1h])",
         "name: daily forecast just under and over"),
    ],
    ids=["threshold-boundary", "float-boundary", "forecast-boundary"],
)  # fmt: skip
def test_unit_tests_detect_a_wrong_rule(tmp_path: Path, original: str, mutated: str, failing: str) -> None:
    """The unit tests are sharp: each small change to an alert rule makes them fail where expected."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in RULE_FILES:
        text = path.read_text()
        if path.name == "llmcost.alerts.yml":
            assert text.count(original) == 1
            text = text.replace(original, mutated)
        (tmp_path / "rules" / path.name).write_text(text)
    for path in UNIT_TESTS:
        (tmp_path / "tests" / path.name).write_text(path.read_text())
    result = _promtool("test", "rules", *(str(tmp_path / "tests" / p.name) for p in UNIT_TESTS))
    assert result.returncode != 0
    assert failing in result.stdout + result.stderr


def test_prometheus_config_is_valid_and_loads_the_rules() -> None:
    """``rule_files`` are relative to prometheus.yml, so the checkout's layout is the container's."""
    result = _promtool("check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout
    for path in RULE_FILES:
        assert f"Checking {PROM / 'rules' / path.name}" in result.stdout


def test_prometheus_scrapes_the_collector_and_alerts_alertmanager() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["llmcost"]["static_configs"] for t in sc["targets"]]
    assert targets == ["llmcost-1:9464", "llmcost-2:9464"]
    assert jobs["llmcost"].get("metrics_path", "/metrics") == "/metrics"
    am_targets = [
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert am_targets == ["alertmanager:9093"]
    assert sorted(config["rule_files"]) == sorted(f"rules/{p.name}" for p in RULE_FILES)
