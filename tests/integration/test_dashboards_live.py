"""Every dashboard query, run by a real Prometheus scraping a real collector fed with demo traffic."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmcost_demo.demo import DemoStack, demo_settings

from tests.support import running_prometheus

pytestmark = [pytest.mark.integration, pytest.mark.needs_prometheus]
ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
# Grafana's template variables, as a user with "All" selected would send them.
VARIABLES = {
    "$__rate_interval": "15s",
    "$__range": "2m",
    "$__interval": "5s",
    **{f"${name}": ".*" for name in ("team", "feature", "environment", "provider", "model")},
}
# "Against the previous period" panels look back a day, a week or 30 days; this Prometheus is
# seconds old, so the previous period is shrunk to fit its lifetime (the query is otherwise the same).
PREVIOUS_PERIOD = re.compile(r"offset (1d|1w|30d)\b")


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("prometheus")
    settings = demo_settings(otlp_http_port=0, otlp_grpc_port=0, http_port=0)
    stack = DemoStack(settings, rate=25.0).start()
    assert stack.app is not None
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [
            str(ROOT / "prometheus/rules/llmcost.rules.yml"),
            str(ROOT / "prometheus/rules/llmcost.alerts.yml"),
        ],
        "scrape_configs": [
            {"job_name": "llmcost", "static_configs": [{"targets": [f"127.0.0.1:{stack.app.ports['http']}"]}]}
        ],
    }
    try:
        with running_prometheus(config, tmp) as base:
            time.sleep(20)  # enough 1s scrapes for rate() over the 15s window
            yield base
    finally:
        stack.stop()


def _queries() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        for panel in doc.get("panels", []):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((f"{path.stem}: {panel['title']}", target["expr"]))
    return out


def _expand(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unexpanded variable in {expr}"
    return PREVIOUS_PERIOD.sub("offset 10s", expr)


@pytest.mark.parametrize(("panel", "expr"), _queries(), ids=[q[0] for q in _queries()])
def test_dashboard_query_returns_data(prometheus: str, panel: str, expr: str) -> None:
    answer = _get(prometheus + "/api/v1/query?" + urllib.parse.urlencode({"query": _expand(expr)}))
    assert answer["status"] == "success", answer
    if answer["data"]["result"]:
        return
    # Empty only when a metric the panel reads has no series at all: demo traffic has no response
    # cache, no unpriced model, no rejected span and no reload, and such counters are born at first use.
    absent = [
        name
        for name in set(re.findall(r"\b(llmcost_\w+)", expr))
        if not _get(prometheus + "/api/v1/series?" + urllib.parse.urlencode({"match[]": name}))["data"]
    ]
    assert absent, f"{panel}: no data for {expr}"


def test_template_variables_have_values(prometheus: str) -> None:
    teams = _get(prometheus + "/api/v1/label/team/values?match[]=llmcost_cost_usd_total")["data"]
    assert {"marketing", "support", "search"} <= set(teams)
    environments = _get(prometheus + "/api/v1/label/environment/values?match[]=llmcost_cost_usd_total")[
        "data"
    ]
    assert {"production", "development"} <= set(environments)


def test_budget_recording_rule_sees_ledger_gauges(prometheus: str) -> None:
    query = urllib.parse.urlencode({"query": "team_period:llmcost_budget_utilisation:ratio"})
    result = _get(prometheus + "/api/v1/query?" + query)["data"]["result"]
    assert {r["metric"]["team"] for r in result} >= {"marketing", "support"}
    assert all(float(r["value"][1]) > 0 for r in result)
