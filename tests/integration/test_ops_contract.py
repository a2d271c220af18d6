"""Rules, alerts and dashboards speak only the public names of ``docs/reference.md``.

Dashboards and alert rules are what users depend on; they must use exactly the metric names and
labels the reference lists (which the unit tests hold to the collector's real registry), its
recording-rule series, and its alert names and labels, so a renamed metric or a typo shows up here
rather than as an empty panel or an alert that can never fire. Every name is read from the rule
files, the dashboards, ``alertmanager.yml`` and the reference itself. The dashboard's queries are
also parsed by the real PromQL parser (``promtool check rules``).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from llmcost_collector.config.budgets import DEFAULT_THRESHOLDS, severity

from tests import reference
from tests.support import require_binary

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
RULES = ROOT / "prometheus" / "rules" / "llmcost.rules.yml"
ALERTS = ROOT / "prometheus" / "rules" / "llmcost.alerts.yml"
ALERTMANAGER = ROOT / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
DASHBOARD_UIDS = {json.loads(p.read_text())["uid"]: p.name for p in DASHBOARDS}


def documented_series() -> dict[str, set[str]]:
    """Series a scrape yields for each built metric the reference lists -> their label names.

    Planned metrics are left out: a rule or panel on a metric nothing exports yet is always empty.
    """
    series: dict[str, set[str]] = {}
    for name, metric in reference.metrics().items():
        if metric.planned:
            continue
        if metric.type == "histogram":
            series[f"{name}_bucket"] = {*metric.labels, "le"}
            series[f"{name}_sum"] = set(metric.labels)
            series[f"{name}_count"] = set(metric.labels)
        else:
            series[name] = set(metric.labels)
    return series


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


def recorded_series() -> dict[str, set[str]]:
    """Recording rules -> the labels they keep (their expression's ``by`` clause)."""
    return {rule["record"]: selector_labels(rule["expr"])[""] for rule in rule_entries() if "record" in rule}


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (team, period) (max_over_time(llmcost_spend_usd{period="daily",team=~"a|b"}[1h]))'
        " / on (team) group_left llmcost_budget_usd > 0 and time() - 5 > bool 1"
    )
    assert metric_names(expr) == {"llmcost_spend_usd", "llmcost_budget_usd"}
    assert metric_names("team:llmcost_cost_usd:rate5m * 3600") == {"team:llmcost_cost_usd:rate5m"}
    assert selector_labels(expr)["llmcost_spend_usd"] == {"period", "team"}
    # a counter without its _total suffix is not the documented name
    assert not metric_names("sum(rate(llmcost_cost_usd[5m]))") <= set(documented_series())


def check_expr(where: str, expr: str, known: dict[str, set[str]]) -> set[str]:
    """The series ``expr`` uses, asserting each is documented and only documented labels are used."""
    used = metric_names(expr)
    unknown = used - set(known)
    assert not unknown, f"{where}: not in docs/reference.md: {unknown}"
    for metric, labels in selector_labels(expr).items():
        allowed = known[metric] if metric else set().union(*(known[m] for m in used))
        assert labels <= allowed, f"{where}: labels {labels - allowed} not on {metric or used}"
    return used


def test_rules_and_alerts_use_only_documented_metrics() -> None:
    known = documented_series()
    recorded = recorded_series()
    for rule in rule_entries():
        name = str(rule.get("record") or rule["alert"])
        check_expr(name, rule["expr"], {**known, **recorded})
        if "record" in rule:
            level, metric, operation = rule["record"].split(":")
            assert level and operation and metric.startswith("llmcost_"), rule["record"]
    assert len(recorded) >= 10
    listed = reference.recording_rules()
    assert not set(recorded) - listed, f"recording rules not in docs/reference.md: {set(recorded) - listed}"
    assert not listed - set(recorded), (
        f"docs/reference.md lists recording rules not in the rules: {listed - set(recorded)}"
    )


def alertmanager_alert_names() -> set[str]:
    """Alert names Alertmanager routes or inhibits on (``alertname="X"`` or ``alertname=~"X|Y"``)."""
    text = ALERTMANAGER.read_text()
    return {name for names in re.findall(r'alertname\s*=~?\s*"([^"]+)"', text) for name in names.split("|")}


def test_alerts_match_the_reference() -> None:
    documented = reference.alerts()
    alerts = [rule for rule in rule_entries() if "alert" in rule]
    built = {name for name, (_, planned) in documented.items() if not planned}
    assert {rule["alert"] for rule in alerts} == built
    routed = alertmanager_alert_names()
    assert {"LLMCostBudgetThreshold", "LLMCostUnpricedModel"} <= routed
    assert routed <= set(documented), (
        f"alertmanager.yml: not in docs/reference.md: {routed - set(documented)}"
    )
    for rule in alerts:
        fixed = rule.get("labels", {})
        labels = (
            set(fixed)
            | selector_labels(rule["expr"])[""]
            | set(re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])))
        )
        listed = documented[rule["alert"]][0]
        assert labels <= listed, f"{rule['alert']}: labels {labels - listed} not in docs/reference.md"
        # the severity is the rule's, or (budget thresholds) the threshold series' own label
        assert fixed.get("severity") in {"info", "warning", "critical"} or "severity" in labels
        assert {"summary", "description", "runbook_url", "dashboard_url"} <= set(rule["annotations"])
        assert "$value" in rule["annotations"]["summary"] + rule["annotations"]["description"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert f"\n## {rule['alert']}\n" in RUNBOOK.read_text(), (
            f"docs/runbook.md: no section {rule['alert']}"
        )
        dashboard = re.search(r"/d/([\w-]+)/", rule["annotations"]["dashboard_url"])
        assert dashboard and dashboard.group(1) in DASHBOARD_UIDS, rule["annotations"]["dashboard_url"]
    (threshold_rule,) = [rule for rule in alerts if rule["alert"] == "LLMCostBudgetThreshold"]
    assert "llmcost_budget_threshold_ratio" in threshold_rule["expr"]
    assert DASHBOARD_UIDS["llmcost-chargeback"] == "llmcost-chargeback.json"
    assert "/d/llmcost-chargeback/" in threshold_rule["annotations"]["dashboard_url"]


def test_threshold_severities_are_the_documented_ones() -> None:
    """The reference's table of default thresholds is what the collector labels them with."""
    rows = reference.rows_with(reference.section("Alerts"), "threshold", "severity")
    documented = {
        next(iter(reference.backticked(row["threshold"]))): next(iter(reference.backticked(row["severity"])))
        for row in rows
        if reference.backticked(row["threshold"]) and row["threshold"].strip("`").isdigit()
    }
    assert set(documented) == {str(t) for t in DEFAULT_THRESHOLDS}
    assert documented == {threshold: severity(int(threshold)) for threshold in documented}
    assert (severity(79), severity(94), severity(120)) == ("info", "warning", "critical")


def test_dashboards_use_only_documented_metrics() -> None:
    assert [p.name for p in DASHBOARDS] == [
        "llmcost-chargeback.json",
        "llmcost-efficiency.json",
        "llmcost-overview.json",
        "llmcost-reliability.json",
        "llmcost-sessions.json",
    ]
    known = {**documented_series(), **recorded_series()}
    for path in DASHBOARDS:
        seen: set[str] = set()
        for title, expr in dashboard_exprs(path):
            used = check_expr(title, expr, known)
            assert used, f"{title}: no metric in {expr!r}"
            seen |= used
        # the overview covers spend, tokens, requests, unpriced calls and budgets
        assert (
            path.stem != "llmcost-overview"
            or {
                "llmcost_cost_usd_total",
                "llmcost_tokens_total",
                "llmcost_requests_total",
                "llmcost_unpriced_requests_total",
                "team_period:llmcost_budget_utilisation:ratio",
            }
            <= seen
        )
        variables = json.loads(path.read_text())["templating"]["list"]
        for variable in variables:
            if variable["type"] == "query":
                query = variable["query"]["query"]
                inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
                assert inner, query
                used = check_expr(variable["name"], inner.group(1), known)
                assert inner.group(2) in set().union(*(known[m] for m in used)), query


@pytest.mark.needs_prometheus
def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """Every panel query, with Grafana's variables filled in, is valid PromQL for the real parser."""
    rules = []
    for path in DASHBOARDS:
        for index, (title, expr) in enumerate(dashboard_exprs(path)):
            filled = (
                expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m")
            )
            for variable in ("team", "feature", "environment", "provider", "model"):
                filled = filled.replace(f"${variable}", ".*")
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
