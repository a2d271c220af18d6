"""Rules, alerts and dashboards speak only the public names of docs/reference.md.

Dashboards and alert rules are what users depend on; they must use exactly the collector's
contract metric names and the contract's alert names and labels, so a renamed metric or a typo
shows up here rather than as an empty panel or an alert that can never fire. The dashboard's
queries are also parsed by the real PromQL parser (``promtool check rules``).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import reference_alerts, reference_metrics, require_binary

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
RULES = ROOT / "prometheus" / "rules" / "llmcost.rules.yml"
ALERTS = ROOT / "prometheus" / "rules" / "llmcost.alerts.yml"

# docs/reference.md, "Prometheus metrics" and "Alerts": the names users depend on.
CONTRACT_METRICS: dict[str, tuple[str, ...]] = reference_metrics()
CONTRACT_ALERTS = reference_alerts() - {"LLMCostCaptureGap"}  # comes with reconciliation
THRESHOLD_SEVERITY = {"50": "info", "80": "warning", "95": "critical", "100": "critical"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_LABEL_NAME = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_IDENT = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(?![\w:])(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
             "offset", "bool", "inf", "nan", "Inf", "NaN"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (function and keyword names excluded)."""
    text = _STRING.sub('""', expr)
    text = _GROUPING.sub(" ", text)
    text = _MATCHERS.sub("{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    return {name for name, call in _IDENT.findall(text) if not call and name not in _KEYWORDS}


def selector_labels(expr: str) -> dict[str, set[str]]:
    """Label names used in each metric's matchers and in the expression's by/on clauses."""
    text = _STRING.sub('""', expr)
    grouping = {label.strip() for _, labels in _GROUPING.findall(text) for label in labels.split(",")}
    used: dict[str, set[str]] = {}
    for match in re.finditer(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", text):
        used.setdefault(match.group(1), set()).update(_LABEL_NAME.findall(match.group(2)))
    used[""] = grouping - {""}
    return used


def dashboard_exprs(path: Path) -> Iterator[tuple[str, str]]:
    def walk(panels: list[dict]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(json.loads(path.read_text())["panels"])


def rule_entries() -> Iterator[dict]:
    for path in (RULES, ALERTS):
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (team, period) (max_over_time(llmcost_spend_usd{period="daily",team=~"a|b"}[1h]))'
        " / on (team) group_left llmcost_budget_usd > 0 and time() - 5 > bool 1"
    )
    assert metric_names(expr) == {"llmcost_spend_usd", "llmcost_budget_usd"}
    assert metric_names("team:llmcost_cost_usd:rate5m * 3600") == {"team:llmcost_cost_usd:rate5m"}
    assert selector_labels(expr)["llmcost_spend_usd"] == {"period", "team"}
    # a counter without its _total suffix is not the contract's name
    assert not metric_names("sum(rate(llmcost_cost_usd[5m]))") <= set(CONTRACT_METRICS)


def test_rules_and_alerts_use_only_contract_metrics() -> None:
    recorded = set()
    for rule in rule_entries():
        used = metric_names(rule["expr"])
        unknown = used - set(CONTRACT_METRICS)
        assert not unknown, f"{rule.get('record') or rule.get('alert')}: not in docs/reference.md: {unknown}"
        for metric, labels in selector_labels(rule["expr"]).items():
            allowed = set().union(*(CONTRACT_METRICS[m] for m in used)) if used else set()
            assert labels <= (set(CONTRACT_METRICS[metric]) if metric else allowed), (rule, labels)
        if "record" in rule:
            level, metric, operation = rule["record"].split(":")
            assert level and operation and metric.startswith("llmcost_"), rule["record"]
            recorded.add(rule["record"])
    assert len(recorded) >= 10


def test_alerts_match_the_contract() -> None:
    alerts = [rule for rule in rule_entries() if "alert" in rule]
    assert {rule["alert"] for rule in alerts} == CONTRACT_ALERTS
    thresholds = {
        rule["labels"]["threshold"]: rule["labels"]["severity"]
        for rule in alerts
        if rule["alert"] == "LLMCostBudgetThreshold"
    }
    assert thresholds == THRESHOLD_SEVERITY
    for rule in alerts:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        assert "$value" in rule["annotations"]["summary"] + rule["annotations"]["description"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower()


def test_dashboards_use_only_contract_metrics() -> None:
    assert [p.name for p in DASHBOARDS] == ["llmcost-overview.json"]
    for path in DASHBOARDS:
        seen: set[str] = set()
        for title, expr in dashboard_exprs(path):
            used = metric_names(expr)
            assert used, f"{title}: no metric in {expr!r}"
            assert used <= set(CONTRACT_METRICS), (
                f"{title}: not in docs/reference.md: {used - set(CONTRACT_METRICS)}"
            )
            for metric, labels in selector_labels(expr).items():
                allowed = (
                    set(CONTRACT_METRICS[metric])
                    if metric
                    else set().union(*(CONTRACT_METRICS[m] for m in used))
                )
                assert labels <= allowed, f"{title}: labels {labels - allowed} not on {metric or used}"
            seen |= used
        # the overview covers spend, tokens, requests, unpriced calls and budgets
        assert {
            "llmcost_cost_usd_total",
            "llmcost_tokens_total",
            "llmcost_requests_total",
            "llmcost_unpriced_requests_total",
            "llmcost_spend_usd",
            "llmcost_budget_usd",
        } <= seen
        variables = json.loads(path.read_text())["templating"]["list"]
        for variable in variables:
            if variable["type"] == "query":
                query = variable["query"]["query"]
                inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
                assert inner, query
                assert metric_names(inner.group(1)) <= set(CONTRACT_METRICS)


@pytest.mark.needs_prometheus
def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """Every panel query, with Grafana's variables filled in, is valid PromQL for the real parser."""
    rules = []
    for path in DASHBOARDS:
        for index, (title, expr) in enumerate(dashboard_exprs(path)):
            filled = (
                expr.replace("$__rate_interval", "5m")
                .replace("$__range", "1h")
                .replace("$__interval", "1m")
                .replace("$team", ".*")
                .replace("$environment", ".*")
            )
            assert "$" not in filled, f"{title}: unknown variable in {expr!r}"
            rules.append({"record": f"dashboard:check:{path.stem.replace('-', '_')}_{index}", "expr": filled})
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [require_binary("promtool"), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
