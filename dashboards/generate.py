"""The otel-llmcost Grafana dashboards as code: ``python dashboards/generate.py`` rewrites the JSON.

Plain dicts, no SDK: every panel is one call, the grid is packed left to right so panels never
overlap, and every query filters on the template variables its metric actually carries (metric
labels as listed in docs/reference.md). The committed JSON is what Grafana provisions; a test
checks that this script reproduces it byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
VARIABLES = ("team", "feature", "environment", "provider", "model")
# Which template variables each metric can be filtered by (its labels, docs/reference.md).
LABELS: dict[str, tuple[str, ...]] = {
    "llmcost_cost_usd_total": VARIABLES,
    "llmcost_tokens_total": VARIABLES,
    "llmcost_requests_total": VARIABLES,
    "llmcost_chargeback_usd_total": ("team", "feature", "environment"),
    "llmcost_unpriced_requests_total": ("provider", "model"),
    "llmcost_cache_hits_total": ("team", "feature"),
    "llmcost_cache_savings_usd_total": ("team", "feature"),
    "llmcost_outcomes_total": ("team",),
    "llmcost_spend_usd": ("team",),
    "llmcost_budget_usd": ("team",),
    "team_period:llmcost_budget_utilisation:ratio": ("team",),
    "team_period:llmcost_spend_usd:max": ("team",),
    "team_period:llmcost_budget_usd:max": ("team",),
}
UIDS = {
    "overview": "llmcost-overview",
    "chargeback": "llmcost-chargeback",
    "sessions": "llmcost-sessions",
    "efficiency": "llmcost-efficiency",
    "reliability": "llmcost-reliability",
}
# Where Grafana's users reach the collector's API and web page (a dashboard variable they can edit).
COLLECTOR_URL = "http://localhost:9464"
TIME_RANGE = "from=${__from:date:iso}&to=${__to:date:iso}"


def sel(metric: str, only: tuple[str, ...] | None = None, **matchers: str) -> str:
    """``metric{...}`` filtered on the template variables it carries, plus exact matchers."""
    names = [v for v in LABELS.get(metric, ()) if only is None or v in only]
    # a value starting with "~" is a regular expression: sel(m, token_type="~input|output")
    parts = [f'{v}=~"${v}"' for v in names] + [
        f'{k}=~"{val[1:]}"' if val.startswith("~") else f'{k}="{val}"' for k, val in matchers.items()
    ]
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


def target(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "refId": ref, "legendFormat": legend}
    if instant:
        out.update(instant=True, range=False, format=fmt or "table")
    elif fmt:
        out["format"] = fmt
    return out


class Board:
    """One dashboard: panels packed row by row on Grafana's 24-column grid."""

    def __init__(self, key: str, title: str, description: str) -> None:
        self.key, self.title, self.description = key, title, description
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {"id": len(self.panels) + 1, "type": "row", "title": title, "collapsed": False, "panels": [],
             "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}}
        )  # fmt: skip
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0

    def panel(
        self, kind: str, title: str, description: str, targets: list[dict[str, Any]], unit: str,
        w: int = 12, h: int = 8, **extra: Any,
    ) -> dict[str, Any]:  # fmt: skip
        if self.x + w > 24:
            self._newline()
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1, "type": kind, "title": title, "description": description,
            "datasource": DATASOURCE, "targets": targets,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {},
        }  # fmt: skip
        panel.update(extra)
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)
        return panel

    def json(self) -> dict[str, Any]:
        return {
            "uid": UIDS[self.key], "title": self.title, "description": self.description,
            "tags": ["otel-llmcost", "finops"], "timezone": "utc", "editable": False, "graphTooltip": 1,
            "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-24h", "to": "now"},
            "fiscalYearStartMonth": 0, "liveNow": False, "annotations": {"list": []},
            "links": [
                {"type": "dashboards", "tags": ["otel-llmcost"], "asDropdown": False, "includeVars": True,
                 "keepTime": True, "title": "LLM cost dashboards", "icon": "external link"},
                {"type": "link", "title": "Collector web page", "url": "${collector_url}/",
                 "targetBlank": True, "icon": "doc"},
            ],
            "templating": {"list": templating()}, "panels": self.panels,
        }  # fmt: skip


def templating() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {"selected": False, "text": "Prometheus", "value": "prometheus"}, "hide": 0,
         "options": [], "refresh": 1, "regex": "", "includeAll": False, "multi": False},
    ]  # fmt: skip
    for i, name in enumerate(VARIABLES):
        # chained: each variable offers the values seen with the ones chosen before it
        query = f"label_values({sel('llmcost_cost_usd_total', VARIABLES[:i])}, {name})"
        out.append(
            {"name": name, "label": name.capitalize(), "type": "query", "datasource": DATASOURCE,
             "query": {"query": query, "refId": f"{name}-query"}, "definition": query, "refresh": 2,
             "sort": 1, "multi": True, "includeAll": True, "allValue": ".*",
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "hide": 0}
        )  # fmt: skip
    out.append(
        {"name": "collector_url", "label": "Collector URL", "type": "textbox", "query": COLLECTOR_URL,
         "current": {"text": COLLECTOR_URL, "value": COLLECTOR_URL}, "options": [], "hide": 0}
    )  # fmt: skip
    return out


def money_table(**extra: Any) -> dict[str, Any]:
    return {"options": {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
            "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True}}}], **extra}  # fmt: skip


CHARGED = "llmcost_chargeback_usd_total"
COST = "llmcost_cost_usd_total"
REQUESTS = "llmcost_requests_total"


def overview() -> Board:
    b = Board("overview", "LLM cost overview",
              "otel-llmcost: what the organisation spends on LLM calls, who spends it, and against which budget.")  # fmt: skip
    b.row("Spend")
    charged = f"sum(increase({sel(CHARGED)}[$__range]))"
    for label, since, offset, previous in (
        ("today", "now/d", "1d", "yesterday by this time"),
        ("this week", "now/w", "1w", "last week by this time"),
        ("this month", "now/M", "30d", "the same elapsed time 30 days earlier"),
    ):
        before = f"sum(increase({sel(CHARGED)}[$__range] offset {offset}))"
        b.panel("stat", f"Spend {label}",
                f"How much have teams been charged {label} so far (Prometheus counters; the ledger's invoices are exact)?",
                [target(charged)], "currencyUSD", w=4, h=4, timeFrom=since, hideTimeOverride=False)  # fmt: skip
        b.panel("stat", f"Change {label} vs previous",
                f"Is spend {label} higher or lower than {previous}?",
                [target(f"({charged} - {before}) / {before}")], "percentunit", w=4, h=4, timeFrom=since)  # fmt: skip
    b.row("Trend")
    b.panel("timeseries", "Charged and provider cost per hour",
            "Is spend rising? Charged to teams (markups included) against the providers' contracted cost, per hour.",
            [target(f"sum(rate({sel(CHARGED)}[$__rate_interval])) * 3600", "charged"),
             target(f"sum(rate({sel(COST)}[$__rate_interval])) * 3600", "provider cost", "B")], "currencyUSD")  # fmt: skip
    b.panel("timeseries", "Cost by team per hour", "Which team's spend is moving?",
            [target(f"sum by (team) (rate({sel(COST)}[$__rate_interval])) * 3600", "{{team}}")], "currencyUSD")  # fmt: skip
    b.row("Top spenders")
    b.panel("table", "Top teams by charge", "Which teams were charged most in the time range?",
            [target(f"topk(10, sum by (team) (increase({sel(CHARGED)}[$__range])))", instant=True)],
            "currencyUSD", w=8, **money_table())  # fmt: skip
    b.panel("table", "Top features by charge", "Which features (per team) cost most in the time range?",
            [target(f"topk(10, sum by (team, feature) (increase({sel(CHARGED)}[$__range])))", instant=True)],
            "currencyUSD", w=8, **money_table())  # fmt: skip
    b.panel("table", "Top models by cost", "Which models cost most in the time range (provider cost)?",
            [target(f"topk(10, sum by (provider, model) (increase({sel(COST)}[$__range])))", instant=True)],
            "currencyUSD", w=8, **money_table())  # fmt: skip
    b.row("Mix, budgets and data quality")
    b.panel("piechart", "Cost by environment", "How is spend split between production, staging and development?",
            [target(f"sum by (environment) (increase({sel(COST)}[$__range]))", "{{environment}}", instant=True,
                    fmt="time_series")], "currencyUSD", w=6)  # fmt: skip
    b.panel("stat", "Unpriced share of calls",
            "What share of calls has no known price (stored, not priced, re-priceable)? No unpriced series means none.",
            [target(f"(sum(increase({sel('llmcost_unpriced_requests_total')}[$__range])) or vector(0))"
                    f" / sum(increase({sel(REQUESTS)}[$__range]))")], "percentunit", w=6)  # fmt: skip
    b.panel("gauge", "Budget utilisation",
            "How much of each team's daily and monthly budget is spent (ledger, period to date)?",
            [target(f"{sel('team_period:llmcost_budget_utilisation:ratio')}", "{{team}} ({{period}})")],
            "percentunit", w=12,
            fieldConfig={"defaults": {"unit": "percentunit", "min": 0, "max": 1, "thresholds": {"mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 0.8},
                          {"color": "red", "value": 0.95}]}}, "overrides": []})  # fmt: skip
    b.panel("timeseries", "Tokens by type", "Which token classes (input, cache read/write, output, reasoning) flow?",
            [target(f"sum by (token_type) (rate({sel('llmcost_tokens_total')}[$__rate_interval]))", "{{token_type}}")],
            "short", w=24)  # fmt: skip
    return b


def chargeback() -> Board:
    b = Board("chargeback", "LLM cost: team chargeback",
              "What each team is charged, against its budget, with the forecast to month end and the markup.")  # fmt: skip
    b.row("Budgets")
    b.panel("table", "Spend against budget by team",
            "Where does each team stand against its daily and monthly budget (ledger, period to date)?",
            [target(sel("team_period:llmcost_spend_usd:max"), ref="A", instant=True),
             target(sel("team_period:llmcost_budget_usd:max"), ref="B", instant=True)],
            "currencyUSD", transformations=[{"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": {"Time": True},
                 "renameByName": {"Value #A": "spent", "Value #B": "budget"}}}])  # fmt: skip
    remaining = "scalar((days_in_month() - day_of_month() + 1) * 86400 - time() % 86400)"
    forecast = (f"max by (team) ({sel('llmcost_spend_usd', period='monthly')})"
                f" + on (team) sum by (team) (rate({sel(CHARGED, ('team',))}[6h])) * {remaining}")  # fmt: skip
    b.panel("bargauge", "Forecast to month end by team",
            "What will each team have spent by month end at its charge rate of the last 6 hours?",
            [target(forecast, "{{team}}")], "currencyUSD")  # fmt: skip
    b.panel("bargauge", "Forecast against monthly budget",
            "Which teams will overrun their monthly budget at the current rate (1 = 100 %)?",
            [target(f"({forecast}) / on (team) (max by (team) ({sel('llmcost_budget_usd', period='monthly', scope='~team=[^,]+', basis='charged')}) > 0)",
                    "{{team}}")], "percentunit")  # fmt: skip
    b.panel("stat", "Attribution coverage",
            "What share of provider cost is attributed to a team by a span or rule (not the default team)?",
            [target("llmcost_attribution_coverage_ratio", "{{period}}")], "percentunit")  # fmt: skip
    b.row("Charged vs provider cost")
    b.panel("timeseries", "Charged vs provider cost by team per hour",
            "How much do teams pay on top of the providers' cost (markups and fees)?",
            [target(f"sum by (team) (rate({sel(CHARGED)}[$__rate_interval])) * 3600", "{{team}} charged"),
             target(f"sum by (team) (rate({sel(COST, ('team', 'feature', 'environment'))}[$__rate_interval])) * 3600",
                    "{{team}} provider cost", "B")], "currencyUSD")  # fmt: skip
    b.panel("bargauge", "Markup: charged per provider dollar",
            "Which markup does each team's chargeback apply (charged ÷ provider cost; 1.15 = 15 % on top)?",
            [target(f"sum by (team) (increase({sel(CHARGED)}[$__range]))"
                    f" / sum by (team) (increase({sel(COST, ('team', 'feature', 'environment'))}[$__range]))",
                    "{{team}}")], "percentunit")  # fmt: skip
    b.panel("table", "Charged by team and feature",
            "What is each team charged per feature in the time range (the chargeback lines)?",
            [target(f"sum by (team, feature) (increase({sel(CHARGED)}[$__range]))", instant=True)],
            "currencyUSD", **money_table())  # fmt: skip
    b.panel("table", "Outcomes by team", "Which business outcomes did each team record (value-based chargeback)?",
            [target(f"sum by (team, outcome) (increase({sel('llmcost_outcomes_total')}[$__range]))", instant=True)],
            "short", **money_table())  # fmt: skip
    return b


SESSION = "llmcost_session_cost_usd"


def sessions() -> Board:
    b = Board("sessions", "LLM cost: sessions and workflows",
              "What a workflow run (session) costs, per workflow type; the single runs live in the collector's API.")  # fmt: skip
    b.row("Cost per run")
    runs_link = ("${collector_url}/api/v1/sessions?session_name=${__data.fields.session_name}"
                 f"&order_by=cost&order=desc&limit=20&{TIME_RANGE}")  # fmt: skip
    b.panel("table", "Cost per workflow run (links to the most expensive runs)",
            "What does a run of each workflow cost on average and at p95, and how many ran? Prometheus holds no "
            "per-session series and core Grafana cannot read the collector's JSON without a plugin, so each "
            "workflow links to /api/v1/sessions, which lists its most expensive runs from the ledger.",
            [target(f"sum by (session_name) (increase({SESSION}_count[$__range]))", ref="A", instant=True),
             target(f"sum by (session_name) (increase({SESSION}_sum[$__range]))"
                    f" / sum by (session_name) (increase({SESSION}_count[$__range]))", ref="B", instant=True),
             target(f"histogram_quantile(0.95, sum by (le, session_name) (increase({SESSION}_bucket[$__range])))",
                    ref="C", instant=True)],
            "currencyUSD", w=24,
            fieldConfig={"defaults": {"unit": "currencyUSD", "links": [
                {"title": "Most expensive runs of this workflow (collector API)", "url": runs_link, "targetBlank": True},
                {"title": "Runs above this workflow's p95", "targetBlank": True,
                 "url": "${collector_url}/api/v1/sessions/outliers?session_name=${__data.fields.session_name}&"
                        + TIME_RANGE}]},
                "overrides": [{"matcher": {"id": "byName", "options": "runs"},
                               "properties": [{"id": "unit", "value": "short"}]}]},
            transformations=[{"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": {"Time": True},
                 "renameByName": {"Value #A": "runs", "Value #B": "average", "Value #C": "p95"}}}],
            links=[{"title": "Most expensive runs (collector API)", "targetBlank": True,
                    "url": f"${{collector_url}}/api/v1/sessions?order_by=cost&order=desc&limit=50&{TIME_RANGE}"}])  # fmt: skip
    b.panel("timeseries", "Average cost per session by workflow (rolling hour)",
            "Is a workflow getting more expensive per run?",
            [target(f"sum by (session_name) (increase({SESSION}_sum[1h])) / sum by (session_name) "
                    f"(increase({SESSION}_count[1h]))", "{{session_name}}")], "currencyUSD")  # fmt: skip
    b.panel("timeseries", "p95 cost per session by workflow (rolling hour)",
            "What does an expensive run of each workflow cost (95th percentile, from the histogram buckets)?",
            [target(f"histogram_quantile(0.95, sum by (le, session_name) (increase({SESSION}_bucket[1h])))",
                    "{{session_name}}")], "currencyUSD")  # fmt: skip
    b.row("Distribution")
    b.panel("heatmap", "Session cost distribution",
            "How are run costs spread: a few costly runs, or all of them?",
            [target(f"sum by (le) (increase({SESSION}_bucket[$__rate_interval]))", "{{le}}", fmt="heatmap")],
            "currencyUSD", w=16,
            options={"calculate": False, "yAxis": {"unit": "currencyUSD"}, "cellGap": 1})  # fmt: skip
    b.panel("stat", "Sessions finished", "How many workflow runs finished in the time range?",
            [target(f"sum(increase({SESSION}_count[$__range]))")], "short", w=8)  # fmt: skip
    return b


TOKENS = "llmcost_tokens_total"


def efficiency() -> Board:
    b = Board("efficiency", "LLM cost: cache and efficiency",
              "What caching saves, how much input is served from prompt caches, and what a request or outcome costs.")  # fmt: skip
    b.row("Cache")
    b.panel("timeseries", "Cache hits by kind per minute",
            "How often are calls served from the response cache or the provider's prompt cache?",
            [target(f"sum by (kind) (rate({sel('llmcost_cache_hits_total')}[$__rate_interval])) * 60", "{{kind}}")],
            "short", w=8)  # fmt: skip
    b.panel("bargauge", "Cache savings by kind",
            "What did response-cache hits save in the time range?",
            [target(f"sum by (kind) (increase({sel('llmcost_cache_savings_usd_total')}[$__range]))", "{{kind}}")],
            "currencyUSD", w=8)  # fmt: skip
    b.panel("stat", "Cached-token share of input",
            "What share of input tokens is read from a provider prompt cache (cheaper than uncached input)?",
            [target(f"sum(increase({sel(TOKENS, token_type='cache_read')}[$__range]))"
                    f" / sum(increase({sel(TOKENS, token_type='~input|cache_read|cache_write')}[$__range]))")],
            "percentunit", w=8)  # fmt: skip
    b.row("Unit cost")
    b.panel("table", "Cost per request by model",
            "Which models are expensive per call (provider cost ÷ calls, time range)?",
            [target(f"sum by (provider, model) (increase({sel(COST)}[$__range]))"
                    f" / sum by (provider, model) (increase({sel(REQUESTS)}[$__range]))", instant=True)],
            "currencyUSD", **money_table())  # fmt: skip
    b.panel("table", "Cost per outcome by team",
            "What does one business outcome (e.g. a resolved ticket) cost in provider spend? A team's cost is "
            "divided by each of its outcome kinds.",
            [target(f"sum by (team) (increase({sel(COST, ('team',))}[$__range])) / on (team) group_right "
                    f"sum by (team, outcome) (increase({sel('llmcost_outcomes_total')}[$__range]))", instant=True)],
            "currencyUSD", **money_table())  # fmt: skip
    b.panel("timeseries", "Cost per request by model over time",
            "Is a model getting more expensive per call (longer prompts, more output)?",
            [target(f"sum by (provider, model) (rate({sel(COST)}[$__rate_interval]))"
                    f" / sum by (provider, model) (rate({sel(REQUESTS)}[$__rate_interval]))", "{{provider}}/{{model}}")],
            "currencyUSD", w=24)  # fmt: skip
    return b


def reliability() -> Board:
    b = Board("reliability", "LLM cost: reliability and ingest health",
              "Failed and unpriced calls, and whether the collector keeps up with what it is sent.")  # fmt: skip
    b.row("Calls")
    errors = f"sum(rate({sel(REQUESTS, status='error')}[$__rate_interval]))"
    b.panel("stat", "Error rate", "What share of LLM calls fails?",
            [target(f"{errors} / sum(rate({sel(REQUESTS)}[$__rate_interval]))")], "percentunit", w=6)  # fmt: skip
    b.panel("table", "Failed calls by model (cost in the collector API)",
            "Which models fail, and how often? Metrics carry no cost per status; the link opens "
            "/api/v1/costs for failed calls, which has their cost from the ledger.",
            [target(f"sum by (provider, model) (increase({sel(REQUESTS, status='error')}[$__range]))", instant=True)],
            "short", w=18, **money_table(links=[{"title": "Cost of failed calls (collector API)", "targetBlank": True,
                "url": f"${{collector_url}}/api/v1/costs?status=error&group_by=team,provider,model&{TIME_RANGE}"}]))  # fmt: skip
    b.panel("timeseries", "Error ratio by model", "Which provider/model fails most?",
            [target(f"sum by (provider, model) (rate({sel(REQUESTS, status='error')}[$__rate_interval]))"
                    f" / sum by (provider, model) (rate({sel(REQUESTS)}[$__rate_interval]))",
                    "{{provider}}/{{model}}")], "percentunit")  # fmt: skip
    b.panel("timeseries", "Unpriced calls by model", "Which models have no known price (calls per minute)?",
            [target(f"sum by (provider, model) (rate({sel('llmcost_unpriced_requests_total')}[$__rate_interval])) * 60",
                    "{{provider}}/{{model}}")], "short")  # fmt: skip
    b.row("Collector ingest")
    b.panel("timeseries", "Spans received by transport", "How many spans per second reach the collector?",
            [target("sum by (transport) (rate(llmcost_collector_spans_received_total[$__rate_interval]))",
                    "{{transport}}")], "short", w=8)  # fmt: skip
    b.panel("timeseries", "Duplicate and suppressed spans",
            "How many spans are retries already billed, or a second instrumentation of a billed call?",
            [target("sum(rate(llmcost_collector_spans_duplicate_total[$__rate_interval]))", "duplicates"),
             target("sum(rate(llmcost_collector_spans_suppressed_total[$__rate_interval]))", "suppressed", "B")],
            "short", w=8)  # fmt: skip
    b.panel("timeseries", "Spans rejected by reason", "Which LLM spans are refused, and why (OTLP partial success)?",
            [target("sum by (reason) (rate(llmcost_collector_spans_rejected_total[$__rate_interval]))", "{{reason}}")],
            "short", w=8)  # fmt: skip
    b.panel("timeseries", "Exports refused by reason (429/503 answers)",
            "Is the collector shedding load (overload answers 429/503) or refusing exports (size, decode, auth)?",
            [target("sum by (reason) (rate(llmcost_collector_exports_refused_total[$__rate_interval]))",
                    "{{reason}}")], "short", w=8)  # fmt: skip
    b.panel("timeseries", "Ingest queue depth (deepest replica)", "Does the ledger writer keep up (spans waiting)?",
            [target("max(llmcost_collector_queue_depth_spans)", "spans waiting")], "short", w=8)  # fmt: skip
    b.panel("timeseries", "Ledger commit latency", "How long does a ledger group commit take (p50, p95)?",
            [target("histogram_quantile(0.5, sum by (le) (rate(llmcost_collector_ledger_commit_seconds_bucket"
                    "[$__rate_interval])))", "p50"),
             target("histogram_quantile(0.95, sum by (le) (rate(llmcost_collector_ledger_commit_seconds_bucket"
                    "[$__rate_interval])))", "p95", "B")], "s", w=8)  # fmt: skip
    b.panel("stat", "Collector replicas reporting", "How many collector replicas does Prometheus scrape?",
            [target("count(llmcost_collector_queue_depth_spans)")], "short", w=12)  # fmt: skip
    b.panel("timeseries", "Configuration reloads by result", "Did the last configuration change apply?",
            [target("sum by (result) (increase(llmcost_collector_config_reloads_total[$__rate_interval]))",
                    "{{result}}")], "short", w=12)  # fmt: skip
    return b


BOARDS = (overview, chargeback, sessions, efficiency, reliability)


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    out = {}
    for build in BOARDS:
        board = build().json()
        out[f"{board['uid']}.json"] = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
    return out


def main() -> None:
    for name, text in render().items():
        (HERE / name).write_text(text)


if __name__ == "__main__":
    main()
