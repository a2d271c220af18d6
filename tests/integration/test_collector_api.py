"""The collector's HTTP port: health, query API, web page; outcomes, cache hits and unpriced calls."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from fastapi.testclient import TestClient
from llmcost_collector.app import CollectorApp
from llmcost_collector.config.schema import load_config
from llmcost_collector.ledger import SpanLink, SqlLedger, open_ledger
from llmcost_collector.model import Usage
from llmcost_collector.web import costs
from llmcost_collector.web.api import make_web_app
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import otel_llmcost
from otel_llmcost.estimate import estimate_tokens
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor, traces_itself
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor
from tests.integration.conftest import FAR_FUTURE, Collectors, config_file, export, metric, post
from tests.pg import pg_cluster, pg_url  # noqa: F401  (fixtures)
from tests.support import priced_entry, wait_for
from tests.unit.test_ledger import make_entry

pytestmark = pytest.mark.integration

CONFIG = """
version: 1
teams:
  - {name: support, budgets: {daily: 10, monthly: 100}}
budgets:
  - {name: triage-prod, amount_usd: 0.0013, period: weekly, basis: provider, thresholds: [50, 120],
     scope: {team: support, feature: triage}, timezone: Europe/Paris}
  - {name: org, amount_usd: 1, period: monthly}
  - {name: free-users, amount_usd: 0.0008, period: monthly, scope: {user_tier: free, per_user: true}}
attribution:
  rules:
    - {match: {service.name: "helpdesk-*"}, team: support}
chargeback: {model: cost_plus, markup_percent: 20}
"""


def spans(*attribute_sets: dict) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "helpdesk-api"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for attributes in attribute_sets:
        with tracer.start_as_current_span("span") as span:
            span.set_attributes(attributes)
    provider.shutdown()
    return list(exporter.get_finished_spans())


CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 1000,
    "llmcost.feature": "triage",
    "session.id": "s-1",
    "llmcost.session.name": "Ticket",
}
# gpt-4o-mini: 1000 * 0.15 / 1e6 + 1000 * 0.60 / 1e6 = $0.00075 = 750,000 nano-dollars.
CALL_NANOS = 750_000


@pytest.fixture
def app(collector: Collectors) -> CollectorApp:
    """A collector with the support team's rules and budgets; sessions close after 0.2 s idle."""
    return collector(CONFIG, session_idle_seconds=0.2)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_rules_attribute_and_cost_plus_charges(app: CollectorApp) -> None:
    export(app, spans(CALL))
    (row,) = app.ledger.spend(0, time.time_ns() + 10**12, group_by=("team", "feature"))
    assert row.group == {"team": "support", "feature": "triage"}  # from the service.name rule
    assert row.contracted_nanos == CALL_NANOS
    assert row.chargeback_nanos == CALL_NANOS * 120 // 100  # cost-plus 20%
    status, body = get(app.urls()["api"] + "?group_by=team,feature")
    assert status == 200
    (api_row,) = json.loads(body)["rows"]
    assert Decimal(api_row["cost_usd"]) == Decimal("0.00075")
    assert Decimal(api_row["chargeback_usd"]) == Decimal("0.0009")


def test_budget_and_spend_gauges_come_from_the_ledger(app: CollectorApp) -> None:
    export(app, spans(CALL, CALL))
    app.gauges.invalidate()
    spend = app.registry.get_sample_value("llmcost_spend_usd", {"team": "support", "period": "monthly"})
    assert spend == pytest.approx(2 * CALL_NANOS * 1.2 / 1e9)
    labels = {"budget": "support-daily", "scope": "team=support", "team": "support", "period": "daily"}
    assert app.registry.get_sample_value("llmcost_budget_usd", {**labels, "basis": "charged"}) == 10
    scoped = {"budget": "triage-prod", "scope": "team=support,feature=triage", "team": "support"}
    scoped |= {"period": "weekly", "basis": "provider"}
    spent = app.registry.get_sample_value("llmcost_budget_spend_usd", scoped)
    assert spent == pytest.approx(2 * CALL_NANOS / 1e9)  # provider basis: no markup
    ratio = app.registry.get_sample_value(
        "llmcost_budget_threshold_ratio", {**scoped, "threshold": "120", "severity": "critical"}
    )
    assert ratio == 1.2
    org = {"budget": "org", "scope": "organisation", "team": "", "period": "monthly", "basis": "charged"}
    assert app.registry.get_sample_value("llmcost_budget_spend_usd", org) == pytest.approx(spend)
    # a per-user budget is never a metric series (user ids are not labels)
    assert app.registry.get_sample_value("llmcost_budget_usd", {**org, "budget": "free-users"}) is None


def test_budget_status_is_exact_per_scope_and_user(app: CollectorApp) -> None:
    """Status from the ledger: exact nanos per scope and basis, per-user budgets per user."""
    free = {**CALL, "user.id": "u-1", "llmcost.user_tier": "free"}
    export(app, spans(CALL, free, {**free, "user.id": "u-2", "gen_ai.usage.output_tokens": 1}))
    statuses = {s.budget.name: s for s in app.budget_statuses()}
    u2_nanos = 1000 * 150 + 1 * 600  # 1000 input at $0.15/M, 1 output at $0.60/M
    charged = (2 * CALL_NANOS + u2_nanos) * 12 // 10  # cost-plus 20 %
    assert statuses["support-monthly"].spent_nanos == statuses["org"].spent_nanos == charged
    triage = statuses["triage-prod"]
    assert triage.spent_nanos == 2 * CALL_NANOS + u2_nanos
    assert triage.crossed == 120 and triage.state == "exceeded"
    assert triage.start.utcoffset() is not None and triage.start.weekday() == 0  # Monday, Paris time
    users = statuses["free-users"]
    assert [(u.user_id, u.spent_nanos) for u in users.users_over] == [("u-1", CALL_NANOS * 12 // 10)]
    assert users.state == "exceeded"
    (one,) = [s for s in app.budget_statuses(user_id="u-2") if s.budget.name == "free-users"]
    assert one.users_over == () and one.spent_nanos == u2_nanos * 12 // 10 and one.crossed is None


def test_attribution_coverage_gauge_is_the_share_of_cost_with_a_team(app: CollectorApp) -> None:
    # one call matched by the service.name rule, one from a service no rule knows: half the cost
    export(app, spans(CALL, {**CALL, "service.name": "batch-job"}))
    app.coverage.invalidate()
    ratio = app.registry.get_sample_value("llmcost_attribution_coverage_ratio", {"period": "monthly"})
    assert ratio == 0.5


def test_unknown_model_is_unpriced_not_free(app: CollectorApp) -> None:
    export(app, spans({**CALL, "gen_ai.request.model": "in-house-llm-7b"}))
    (entry,) = app.ledger.unpriced(10)
    assert entry.contracted_cost_nanos is None and "in-house-llm-7b" in entry.unpriced_reason
    assert entry.input_tokens == 1000  # tokens kept for re-pricing
    labels = {"provider": "openai", "model": "in-house-llm-7b"}
    assert app.registry.get_sample_value("llmcost_unpriced_requests_total", labels) == 1


def test_cache_hits_save_and_outcomes_count(app: CollectorApp) -> None:
    export(
        app,
        spans(
            {**CALL, "llmcost.cache.hit": True},
            {"llmcost.outcome": "ticket_resolved", "llmcost.outcome.count": 3},
        ),
    )
    (hit,) = [e for e in app.ledger.entries(0, time.time_ns() + 10**12) if e.cache_hit]
    assert (hit.contracted_cost_nanos, hit.savings_nanos) == (0, CALL_NANOS)
    labels = {"team": "support", "feature": "triage", "kind": "response"}
    assert app.registry.get_sample_value("llmcost_cache_savings_usd_total", labels) == pytest.approx(
        CALL_NANOS / 1e9
    )
    outcome = {"team": "support", "outcome": "ticket_resolved"}
    assert app.registry.get_sample_value("llmcost_outcomes_total", outcome) == 3


def test_a_cache_hit_replaying_a_response_id_is_not_a_duplicate_of_the_call(app: CollectorApp) -> None:
    """A response-cache hit hands back the stored response, id included, without a provider call:
    the call and the hit are two rows (the cost, then the saving)."""
    replayed = {**CALL, "gen_ai.response.id": "chatcmpl-cached-1"}
    export(app, spans(replayed, {**replayed, "llmcost.cache.hit": True}))
    rows = list(app.ledger.entries(0, time.time_ns() + 10**12))
    assert sorted((e.cache_hit, e.contracted_cost_nanos, e.savings_nanos) for e in rows) == [
        (0, CALL_NANOS, 0),
        (1, 0, CALL_NANOS),
    ]


def test_session_cost_is_observed_after_idle(app: CollectorApp) -> None:
    export(app, spans(CALL, CALL))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        count = app.registry.get_sample_value("llmcost_session_cost_usd_count", {"session_name": "Ticket"})
        if count:
            break
        time.sleep(0.1)
    assert count == 1
    total = app.registry.get_sample_value("llmcost_session_cost_usd_sum", {"session_name": "Ticket"})
    assert total == pytest.approx(2 * CALL_NANOS / 1e9)


def test_health_ready_page_and_bad_query(app: CollectorApp) -> None:
    base = app.urls()["web"]
    assert get(base + "healthz")[0] == 200
    status, body = get(base + "readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    status, body = get(base)
    assert status == 200 and "<title>otel-llmcost</title>" in body
    status, body = get(base + "api/v1/spend?group_by=user_id;drop")
    assert status == 400 and "cannot group by" in json.loads(body)["error"]
    assert get(base + "api/v1/spend?from=yesterday")[0] == 400
    status, body = get(base + "api/v1/spend?region=eu")  # not silently everyone's totals
    assert status == 400 and "unknown parameter region" in json.loads(body)["error"]
    assert get(base + "api/v1/spend?team=search&group_by=feature")[0] == 200
    status, body = get(base + "no/such/page")
    assert status == 404 and "no such path" in json.loads(body)["error"]


def test_the_api_documents_itself(app: CollectorApp) -> None:
    base = app.urls()["web"]
    status, body = get(base + "openapi.json")
    spec = json.loads(body)
    spend = spec["paths"]["/api/v1/spend"]["get"]
    names = {p["name"] for p in spend["parameters"]}
    assert {"group_by", "from", "to", "team", "feature", "user_id", "model"} <= names
    assert "400" in spend["responses"] and "422" not in spend["responses"]  # as answered
    assert {"/healthz", "/readyz"} <= set(spec["paths"])
    sessions = {p["name"] for p in spec["paths"]["/api/v1/sessions"]["get"]["parameters"]}
    assert {"period", "from", "to", "order_by", "order", "limit", "team", "team!", "session_name"} <= sessions
    assert "400" in spec["paths"]["/api/v1/reports/summary"]["get"]["responses"]
    reserve = spec["paths"]["/api/v1/budgets/reserve"]["post"]
    assert {"200", "400", "409"} <= set(reserve["responses"])
    assert "max_output_tokens" in spec["components"]["schemas"]["ReserveRequest"]["required"]
    assert {"200", "400", "404"} <= set(spec["paths"]["/api/v1/budgets/settle"]["post"]["responses"])
    status, page = get(base + "docs")
    assert status == 200 and "/openapi.json" in page
    script = page.split('src="', 1)[1].split('"', 1)[0]  # the bundled Swagger UI, served locally
    assert script.startswith("/static/") and get(base + script.lstrip("/"))[0] == 200


def test_metrics_negotiate_openmetrics_and_gzip(app: CollectorApp) -> None:
    url = app.urls()["metrics"]
    request = urllib.request.Request(url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert response.read().decode().rstrip().endswith("# EOF")
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert b"llmcost_spend_usd" in gzip.decompress(response.read())


def test_an_internal_error_costs_one_span_not_the_export(
    app: CollectorApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_price = app.pricer.price

    def flaky(call: object) -> object:
        if getattr(call, "request_model", "") == "explodes":
            raise RuntimeError("bug")
        return real_price(call)  # type: ignore[arg-type]

    monkeypatch.setattr(app.pricer, "price", flaky)
    exporter = OTLPSpanExporter(endpoint=app.urls()["otlp_http"])
    assert (
        exporter.export(spans(CALL, {**CALL, "gen_ai.request.model": "explodes"})) is SpanExportResult.SUCCESS
    )
    assert app.ledger.count() == 1  # the healthy span is billed
    assert (
        app.registry.get_sample_value("llmcost_collector_spans_rejected_total", {"reason": "internal"}) == 1
    )


def test_a_rule_feature_fills_spans_without_one(collector: Collectors) -> None:
    """A rule matching a resource attribute charges its team and, the span naming no feature, its
    feature; the ledger records that both came from the rule."""
    app = collector(
        config=load_config(
            "c.yaml",
            text="attribution:\n  rules:\n    - match: {k8s.namespace.name: 'support-*'}\n"
            "      team: support\n      feature: ticket-triage\n",
        )
    )
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"k8s.namespace.name": "support-eu"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("chat gpt-4o") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 5,
            }
        )
    provider.shutdown()
    export(app, list(memory.get_finished_spans()))
    (row,) = app.ledger.spend(0, time.time_ns() + 10**12, group_by=("team", "team_source", "feature"))
    assert row.group == {"team": "support", "team_source": "rule", "feature": "ticket-triage"}


# --- /api/v1/costs ----------------------------------------------------------------------------

NOV = 1_793_491_200 * 10**9  # 2026-11-01T00:00:00Z


@pytest.fixture
def costs_client(tmp_path: Path) -> Iterator[tuple[TestClient, SqlLedger]]:
    """The web app in process over a SQLite ledger seeded with calls at known times."""
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    web = make_web_app(CollectorRegistry(), ledger, lambda: (True, "ok"))
    with TestClient(web) as client:
        yield client, ledger
    ledger.close()


def seed(ledger: SqlLedger) -> None:
    """November 2026: search 3 calls (1 in staging, region eu/us), support 2 calls, ads 1 call at
    23:30 UTC on Nov 2 (Nov 3 in Berlin); each call contracted 1,000,001 nano-dollars."""
    hour = 3_600 * 10**9
    rows = [
        make_entry(
            1, team="search", start_ns=NOV + hour, environment="production", properties={"region": "eu"}
        ),
        make_entry(
            2, team="search", start_ns=NOV + 2 * hour, environment="production", properties={"region": "us"}
        ),
        make_entry(
            3, team="search", start_ns=NOV + 3 * hour, environment="staging", properties={"region": "eu"}
        ),
        make_entry(4, team="support", start_ns=NOV + 4 * hour, environment="production"),
        make_entry(5, team="support", start_ns=NOV + 5 * hour, environment="production"),
        make_entry(6, team="ads", start_ns=NOV + 47 * hour + 30 * 60 * 10**9, environment="production"),
    ]
    assert all(ledger.insert(rows))


def ask(client: TestClient, **params: str) -> dict:
    response = client.get("/api/v1/costs", params={"from": "2026-11-01", "to": "2026-12-01", **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_costs_group_filter_and_negate_by_columns_and_properties(
    costs_client: tuple[TestClient, SqlLedger],
) -> None:
    client, ledger = costs_client
    seed(ledger)
    body = ask(client, group_by="team")
    assert [(r["team"], r["requests"], r["contracted_cost_usd"]) for r in body["rows"]] == [
        ("search", 3, "0.003000003"), ("support", 2, "0.002000002"), ("ads", 1, "0.001000001"),
    ]  # fmt: skip
    # per call: input 100, cache_read 20, cache_write 4, output 50 of which reasoning 10
    assert body["totals"]["tokens"] == {"input": 600, "cache_read": 120, "cache_write": 24, "output": 240,
                                        "reasoning": 60}  # fmt: skip
    assert body["totals"]["charged_usd"] == "0.012000012"  # chargeback 2 x 1,000,001 x 6
    several = ask(client, group_by="team", team="search,ads")
    assert {r["team"] for r in several["rows"]} == {"search", "ads"}
    negated = ask(client, group_by="environment", **{"team!": "support,ads"})
    assert {(r["environment"], r["requests"]) for r in negated["rows"]} == {("production", 2), ("staging", 1)}
    regions = ask(client, group_by="property.region", team="search")
    assert {(r["property.region"], r["requests"]) for r in regions["rows"]} == {("eu", 2), ("us", 1)}
    eu = ask(client, group_by="team", **{"property.region": "eu"})
    assert [(r["team"], r["requests"]) for r in eu["rows"]] == [("search", 2)]
    assert ledger.insert([make_entry(7, team="a,b\\c", start_ns=NOV + 6 * 3_600 * 10**9)]) == [True]
    odd = ask(client, group_by="team", team="a\\,b\\\\c,ads")  # the comma and backslash escaped
    assert {(r["team"], r["requests"]) for r in odd["rows"]} == {("a,b\\c", 1), ("ads", 1)}
    dotted = {"deploy.region": "eu-west"}  # a property name with a dot: one name, not a path
    assert ledger.insert([make_entry(8, team="ads", start_ns=NOV, properties=dotted)]) == [True]
    west = ask(client, group_by="property.deploy.region", **{"property.deploy.region": "eu-west"})
    assert [(r["property.deploy.region"], r["requests"]) for r in west["rows"]] == [("eu-west", 1)]


def test_costs_buckets_follow_the_time_zone(costs_client: tuple[TestClient, SqlLedger]) -> None:
    client, ledger = costs_client
    seed(ledger)
    utc = ask(client, group_by="team", bucket="day", team="ads")
    assert [(r["bucket"], r["requests"]) for r in utc["rows"]] == [("2026-11-02T00:00:00+00:00", 1)]
    # 23:30 UTC on Nov 2 is 00:30 on Nov 3 in Berlin (UTC+1 in November)
    berlin = ask(client, group_by="team", bucket="day", tz="Europe/Berlin", team="ads")
    assert [(r["bucket"], r["requests"]) for r in berlin["rows"]] == [("2026-11-03T00:00:00+01:00", 1)]
    hourly = ask(client, group_by="team", bucket="hour", team="search", order_by="requests")
    assert [r["bucket"][11:16] for r in hourly["rows"]] == ["01:00", "02:00", "03:00"]
    month = ask(client, group_by="", bucket="month")
    assert [(r["bucket"], r["requests"]) for r in month["rows"]] == [("2026-11-01T00:00:00+00:00", 6)]
    # Clocks go back in Berlin at 01:00 UTC on Oct 25: 02:00 comes twice, as two hours
    october = NOV - 7 * 24 * 3_600 * 10**9 + 15 * 60 * 10**9  # Oct 25, 00:15 UTC
    assert ledger.insert([make_entry(20 + i, team="ops", start_ns=october + i * 30 * 60 * 10**9)
                          for i in range(3)]) == [True] * 3  # fmt: skip
    fold = ask(
        client, group_by="team", bucket="hour", tz="Europe/Berlin", team="ops", **{"from": "2026-10-25"}
    )
    assert [(r["bucket"], r["requests"]) for r in fold["rows"]] == [
        ("2026-10-25T02:00:00+02:00", 2), ("2026-10-25T02:00:00+01:00", 1),
    ]  # fmt: skip
    # Lord Howe moves its clocks half an hour, at 15:30 UTC on Oct 3 (02:00+10:30 becomes 02:30+11):
    # the bucket after the change starts at it, and the next on the local hour again
    minute = 60 * 10**9
    change = NOV - 29 * 24 * 60 * minute + 15 * 60 * minute + 30 * minute  # Oct 3, 15:30 UTC
    assert ledger.insert([make_entry(30, team="howe", start_ns=change + 10 * minute),
                          make_entry(31, team="howe", start_ns=change + 40 * minute)]) == [True, True]  # fmt: skip
    howe = ask(
        client,
        group_by="team",
        bucket="hour",
        tz="Australia/Lord_Howe",
        team="howe",
        **{"from": "2026-10-03"},
    )
    assert [(r["bucket"], r["requests"]) for r in howe["rows"]] == [
        ("2026-10-04T02:30:00+11:00", 1), ("2026-10-04T03:00:00+11:00", 1),
    ]  # fmt: skip
    inside = ask(client, group_by="team", bucket="hour", tz="Australia/Lord_Howe", team="howe",
                 **{"from": "2026-10-04T02:40:00+11:00"})  # fmt: skip
    assert [(r["bucket"], r["requests"]) for r in inside["rows"]] == [
        ("2026-10-04T02:30:00+11:00", 1), ("2026-10-04T03:00:00+11:00", 1),
    ]  # fmt: skip


def test_costs_order_and_limit_fold_the_rest_into_others(costs_client: tuple[TestClient, SqlLedger]) -> None:
    client, ledger = costs_client
    seed(ledger)
    body = ask(client, group_by="team", limit="1")
    assert [(r["team"], r["others"], r["requests"]) for r in body["rows"]] == [
        ("search", False, 3), ("__others__", True, 3),
    ]  # fmt: skip
    # users over a whole month: ranked by the per-user rollup in SQL; u0, u1, u2 have two calls each,
    # so the tie goes to the first id
    users = ask(client, group_by="user_id", limit="1", order_by="-requests")
    assert [(r["user_id"], r["requests"]) for r in users["rows"]] == [("u0", 2), ("__others__", 4)]
    assert users["totals"]["requests"] == 6
    by_name = ask(client, group_by="team", order_by="team")
    assert [r["team"] for r in by_name["rows"]] == ["ads", "search", "support"]
    descending = ask(client, group_by="team", order_by="-team")
    assert [r["team"] for r in descending["rows"]] == ["support", "search", "ads"]


def test_costs_presets_are_calendar_periods_in_the_time_zone() -> None:
    now = datetime(2026, 12, 2, 23, 30, tzinfo=timezone.utc)  # Dec 3, 00:30 in Berlin

    def bounds(**params: str) -> tuple[str, str]:
        query = costs.parse(params, now=now).query
        return (datetime.fromtimestamp(query.start_ns // 10**9, timezone.utc).isoformat(),
                datetime.fromtimestamp(query.end_ns // 10**9, timezone.utc).isoformat())  # fmt: skip

    assert bounds(period="last_month") == ("2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")
    assert bounds(period="this_month") == ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    assert bounds(period="today") == ("2026-12-02T00:00:00+00:00", "2026-12-03T00:00:00+00:00")
    assert bounds(period="today", tz="Europe/Berlin") == (
        "2026-12-02T23:00:00+00:00",
        "2026-12-03T23:00:00+00:00",
    )
    assert bounds(period="this_week") == (
        "2026-11-30T00:00:00+00:00",
        "2026-12-07T00:00:00+00:00",
    )  # a Monday
    assert bounds() == bounds(period="this_month")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"region": "eu"}, "'region'"),
        ({"group_by": "team,colour"}, "'colour'"),
        ({"group_by": "property.a b"}, "'property.a b'"),
        ({"group_by": "property.a'b"}, "property.a'b"),
        ({"group_by": "team,feature,team"}, "'team' is named twice"),
        ({"from": "1970-01-01", "to": "2261-12-31", "bucket": "hour"}, "bucket: about 2,559,600 hours"),
        ({"from": "2000-01-01", "to": "2026-01-01", "bucket": "hour"}, "more than 10,000"),
        ({"bucket": "fortnight"}, "bucket"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"period": "someday"}, "period"),
        ({"period": "today", "from": "2026-11-01"}, "period"),
        ({"from": "yesterday-ish"}, "from"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
        ({"from": "1500-01-01"}, "from"),
        ({"order_by": "colour"}, "order_by"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_costs_refuse_unknown_or_malformed_parameters_by_name(
    costs_client: tuple[TestClient, SqlLedger], params: dict[str, str], named: str
) -> None:
    client, _ = costs_client
    response = client.get("/api/v1/costs", params=params)
    assert response.status_code == 400
    assert named in response.json()["error"]


# --- sessions and reports ---------------------------------------------------------------------

STEP = {**CALL, "llmcost.session.path": "/triage"}


def get_json(url: str) -> dict:
    status, body = get(url)
    assert status == 200, body
    return json.loads(body)


def session_histogram(app: CollectorApp) -> tuple[float | None, float | None]:
    labels = {"session_name": "Ticket"}
    sample = app.registry.get_sample_value
    return sample("llmcost_session_cost_usd_count", labels), sample("llmcost_session_cost_usd_sum", labels)


def test_sessions_survive_a_restart_and_the_histogram_observes_the_ledger_total(
    collector: Collectors, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = collector(CONFIG, ledger_url=url, session_idle_seconds=3600)  # never idle before the stop
    export(first, spans(STEP, STEP))
    collector.stop(first)
    restarted = collector(CONFIG, ledger_url=url, session_idle_seconds=0.2)
    export(restarted, spans(STEP))  # the same session continues after the restart
    (session,) = get_json(restarted.urls()["web"] + "api/v1/sessions")["sessions"]
    assert (session["session_id"], session["session_name"], session["team"], session["steps"]) == (
        "s-1", "Ticket", "support", 3,
    )  # fmt: skip
    assert session["cost_usd"] == "0.002250000"  # 3 x 750,000 nano-dollars
    assert session["first_call"] < session["last_call"] and Decimal(session["duration_seconds"]) > 0
    # Observed once idle, with all three calls: the ledger's total, not the one call seen since the restart.
    wait_for(lambda: session_histogram(restarted)[0])
    assert session_histogram(restarted) == (1, pytest.approx(3 * CALL_NANOS / 1e9))


def test_replicas_agree_and_only_the_one_with_the_last_call_observes(
    collector: Collectors, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = (collector(CONFIG, ledger_url=url, session_idle_seconds=0.2) for _ in range(2))
    export(a, spans(STEP))
    export(b, spans(STEP))  # the session's later call reaches the other replica
    paths = ("api/v1/sessions", "api/v1/sessions/summary", "api/v1/reports/summary")
    for path in paths:
        assert get_json(a.urls()["web"] + path) == get_json(b.urls()["web"] + path), path
    wait_for(lambda: session_histogram(b)[0])
    a.sessions.sweep()
    assert session_histogram(b) == (1, pytest.approx(2 * CALL_NANOS / 1e9))
    assert session_histogram(a) == (None, None)  # a saw the first call only: b observes the session


def test_session_summary_and_outliers_over_http(app: CollectorApp) -> None:
    export(app, spans(STEP, STEP, {**STEP, "session.id": "s-2"}))
    base = app.urls()["web"] + "api/v1/sessions/"
    (ticket,) = get_json(base + "summary?group_by=session_name&period=this_month")["types"]
    # runs of 1,500,000 and 750,000 nanos: nearest-rank p50 = the 1st, p95 = the 2nd
    assert ticket == {
        "session_name": "Ticket", "runs": 2, "steps": 3, "unpriced_requests": 0, "total_usd": "0.002250000",
        "average_usd": "0.001125000", "p50_usd": "0.000750000", "p95_usd": "0.001500000", "max_usd": "0.001500000",
        "steps_by_path": [{"session_path": "/triage", "calls": 3, "unpriced_requests": 0, "cost_usd": "0.002250000",
                           "cost_per_run_usd": "0.001125000"}],
    }  # fmt: skip
    assert get_json(base + "outliers")["sessions"] == []  # nothing above the p95 of two runs
    above = get_json(base + "outliers?above=0.001")["sessions"]
    assert [(s["session_id"], s["threshold_usd"]) for s in above] == [("s-1", "0.001000000")]
    listed = get_json(app.urls()["web"] + "api/v1/sessions?order_by=steps&order=asc&limit=1&team=support")
    assert [s["session_id"] for s in listed["sessions"]] == ["s-2"]
    assert get_json(app.urls()["web"] + "api/v1/sessions?session_id!=s-1,s-2")["sessions"] == []
    report = get_json(app.urls()["web"] + "api/v1/reports/summary?period=this_month&top=1")
    assert (
        report["total"]["cost_usd"] == "0.002250000" and report["sessions"][0]["average_usd"] == "0.001125000"
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("sessions?region=eu", "region"),
        ("sessions?limit=0", "limit"),
        ("sessions?limit=ten", "limit"),
        ("sessions?limit=1&limit=2", "limit"),
        ("sessions?order_by=price", "order_by"),
        ("sessions?order=up", "order"),
        ("sessions?period=2026-13", "period"),
        ("sessions?period=soon", "period"),
        ("sessions?period=this_month&from=2026-01-01", "period"),
        ("sessions?from=yesterday", "from"),
        ("sessions?to=noon", "to"),
        ("sessions?from=2026-02-01&to=2026-01-01", "to"),
        ("sessions?team=", "team"),
        ("sessions?user_id!=", "user_id!"),
        ("sessions/summary?group_by=team", "group_by"),
        ("sessions/summary?limit=5", "limit"),
        ("sessions/outliers?above=cheap", "above"),
        ("sessions/outliers?above=-1", "above"),
        ("sessions/outliers?above=NaN", "above"),
        ("sessions/outliers?above=10000000000", "above"),
        ("sessions/outliers?above=1e400", "above"),
        ("sessions/outliers?order=asc", "order"),
        ("reports/summary?top=0", "top"),
        ("reports/summary?top=101", "top"),
        ("reports/summary?team=search", "team"),
        ("reports/summary?period=next_year", "period"),
    ],
)
def test_every_sessions_and_reports_parameter_is_checked(app: CollectorApp, query: str, named: str) -> None:
    status, body = get(app.urls()["web"] + "api/v1/" + query)
    assert status == 400, body
    assert named in json.loads(body)["error"], body


def test_llmcost_budgets_prints_each_budget_from_the_ledger(app: CollectorApp) -> None:
    from click.testing import CliRunner
    from llmcost_collector.cli.main import cli

    export(app, spans(CALL))
    assert app.settings.config_path is not None
    args = ["budgets", "--config", app.settings.config_path, "--ledger-url", app.settings.ledger_url]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["budget"]: row for row in json.loads(result.output)["budgets"]}
    assert Decimal(rows["support-daily"]["spent_usd"]) == Decimal("0.0009")  # charged, cost-plus 20 %
    assert rows["support-daily"]["percent"] == "0.01" and rows["support-daily"]["state"] == "ok"
    assert Decimal(rows["triage-prod"]["spent_usd"]) == Decimal("0.00075")  # provider basis
    assert rows["triage-prod"]["crossed"] == 50
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0 and "triage-prod" in table.output and "free-users" in table.output


def test_budget_status_api_answers_from_the_ledger(app: CollectorApp) -> None:
    export(app, spans(CALL, {**CALL, "user.id": "u-9", "llmcost.user_tier": "free"}))
    base = app.urls()["api"].replace("/api/v1/spend", "/api/v1/budgets/status")
    status, body = get(base)
    assert status == 200
    rows = {row["budget"]: row for row in json.loads(body)["budgets"]}
    assert Decimal(rows["org"]["spent_usd"]) == Decimal("0.0018") and rows["org"]["percent"] == "0.18"
    assert rows["free-users"]["users_over"] == [{"user_id": "u-9", "spent_usd": "0.000900000"}]
    assert rows["free-users"]["state"] == "exceeded"
    status, body = get(base + "?user_id=nobody")
    (free,) = [row for row in json.loads(body)["budgets"] if row["budget"] == "free-users"]
    assert free["users_over"] == [] and Decimal(free["spent_usd"]) == 0 and free["state"] == "ok"


def test_guard_refuses_a_free_user_over_budget_before_the_call(app: CollectorApp) -> None:
    import otel_llmcost

    export(app, spans({**CALL, "user.id": "u-9", "llmcost.user_tier": "free"}))
    url = app.urls()["api"].replace("/api/v1/spend", "/api/v1/budgets/status")
    config_file(app).write_text(CONFIG.replace("per_user: true}", "per_user: true}, hard_limit: true"))
    wait_for(lambda: app.config.budgets[-1].hard_limit)
    guard = otel_llmcost.guard(url, refresh_seconds=60)
    try:
        with pytest.raises(
            otel_llmcost.BudgetExceededError, match=r"free-users.*0\.0009.*0\.0008.*user_id=u-9"
        ):
            guard.check(user_id="u-9", user_tier="free")
        guard.check(user_id="u-2", user_tier="free")  # under its own budget
        with (
            otel_llmcost.attribute(team="consumer", user_id="u-9", user_tier="free"),
            pytest.raises(otel_llmcost.BudgetExceededError),
        ):
            guard.check()
    finally:
        guard.close()
    closed = otel_llmcost.guard("http://127.0.0.1:9/nothing", refresh_seconds=60, fail_closed=True)
    with pytest.raises(otel_llmcost.BudgetExceededError, match="unreachable"):
        closed.check(user_id="u-2")
    closed.close()
    open_guard = otel_llmcost.guard("http://127.0.0.1:9/nothing", refresh_seconds=60)
    open_guard.check(user_id="u-2")  # fail-open
    open_guard.close()


def _quote_client(tmp_path: Path) -> TestClient:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'quote.db'}")
    return TestClient(make_web_app(CollectorRegistry(), ledger, lambda: (True, "ok")))


def test_quote_compares_models_with_the_invoice_engine(tmp_path: Path) -> None:
    # 10M uncached input, 2M output, list prices on 2026-11-15: gpt-4o-mini $0.15 / $0.60 per
    # Mtok, claude-3-5-sonnet $3 / $15; cost-plus 10 % markup plus a 5 % platform fee.
    body = {
        "choices": [
            {"provider": "openai", "model": "gpt-4o-mini"},
            {"provider": "anthropic", "model": "claude-3-5-sonnet-20241022"},
        ],
        "volume": {"input_tokens": 10_000_000, "output_tokens": 2_000_000},
        "chargeback": {"model": "cost_plus", "markup_percent": "10", "platform_fee_percent": "5"},
        "on": "2026-11-15",
    }
    answer = _quote_client(tmp_path).post("/api/v1/quote", json=body)
    assert answer.status_code == 200, answer.text
    mini, sonnet = answer.json()["quotes"]
    mini_cost = Decimal("10") * Decimal("0.15") + Decimal("2") * Decimal("0.60")  # 2.70
    sonnet_cost = Decimal("10") * Decimal("3") + Decimal("2") * Decimal("15")  # 60.00
    assert Decimal(mini["cost_usd"]) == mini_cost
    assert Decimal(sonnet["cost_usd"]) == sonnet_cost
    assert Decimal(mini["charge_usd"]) == mini_cost * Decimal("1.15")
    assert Decimal(sonnet["charge_usd"]) == sonnet_cost * Decimal("1.15")
    assert mini["markup_percent"] == "10"
    (delta,) = answer.json()["comparisons"]
    assert Decimal(delta["delta_usd"]) == (sonnet_cost - mini_cost) * Decimal("1.15")
    assert delta["delta_percent"] == str(
        ((sonnet_cost - mini_cost) * 100 / mini_cost).quantize(Decimal("0.01"))
    )


def test_quote_crosses_a_volume_tier_boundary(tmp_path: Path) -> None:
    client = _quote_client(tmp_path)

    def charge(requests: int) -> dict[str, object]:
        body = {
            "choices": [{"provider": "openai", "model": "gpt-4o-mini"}],
            "volume": {
                "requests": requests,
                "input_tokens_per_request": 800,
                "output_tokens_per_request": 200,
            },
            "chargeback": {"model": "tiered"},
            "on": "2026-11-15",
        }
        answer = client.post("/api/v1/quote", json=body)
        assert answer.status_code == 200, answer.text
        result: dict[str, object] = answer.json()["quotes"][0]
        return result

    below, at = charge(9_999), charge(10_000)  # 9,999,000 tokens vs exactly 10,000,000
    assert below["tier"]["name"] == "Experimental" and below["markup_percent"] == "50"  # type: ignore[index]
    assert at["tier"]["name"] == "Standard" and at["markup_percent"] == "20"  # type: ignore[index]
    cost = 10_000 * (800 * Decimal("0.15") + 200 * Decimal("0.60")) / 1_000_000  # $2.40
    assert Decimal(at["charge_usd"]) == cost * Decimal("1.20")  # type: ignore[arg-type]
    bad = client.post("/api/v1/quote", json={"choices": [], "volume": {}})
    assert bad.status_code == 400


def test_catalog_lists_price_book_entries_first_with_source_and_date(tmp_path: Path) -> None:
    from llmcost_collector.config.schema import load_config as load
    from llmcost_collector.price.pricer import Pricer

    config_file = tmp_path / "llmcost.yaml"
    config_file.write_text(
        f"version: 1\nprice_book:\n  include: {Path('examples/model-catalog.json').resolve()}\n"
    )
    pricer = Pricer(load(config_file).price_book)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'catalog.db'}")
    client = TestClient(make_web_app(CollectorRegistry(), ledger, lambda: (True, "ok"), pricer=pricer))
    models = client.get("/api/v1/catalog", params={"search": "gpt-4o-mini"}).json()["models"]
    first = models[0]
    assert (first["provider"], first["model"], first["source"]) == ("openai", "gpt-4o-mini", "price-book")
    assert (first["effective_from"], first["input_per_mtok"], first["output_per_mtok"]) == (
        "2024-10-10",
        "0.15",
        "0.60",
    )
    assert any(m["source"] == "genai-prices" and m["model"] == "gpt-4o-mini" for m in models)


def test_each_quote_is_recorded_as_bounded_metrics_and_in_the_api(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    ledger = open_ledger(f"sqlite:///{tmp_path / 'stats.db'}")
    client = TestClient(make_web_app(registry, ledger, lambda: (True, "ok")))
    body = {
        "choices": [
            {"provider": "openai", "model": "gpt-4o-mini"},
            {"provider": "anthropic", "model": "claude-3-5-sonnet-20241022"},
        ],
        "volume": {"input_tokens": 10_000_000, "output_tokens": 2_000_000},
        "chargeback": {"model": "at_cost"},
        "on": "2026-11-15",
    }
    for _ in range(2):
        assert client.post("/api/v1/quote", json=body).status_code == 200
    # 12M tokens a month: the 10M-100M band; at cost, $2.70 and $60.00, delta $57.30
    mini = {"model": "openai/gpt-4o-mini", "chargeback_model": "at_cost", "volume_band": "10m_100m"}
    sonnet = {**mini, "model": "anthropic/claude-3-5-sonnet-20241022"}
    assert registry.get_sample_value("llmcost_quotes_total", mini) == 2
    assert registry.get_sample_value("llmcost_quote_monthly_charge_usd_sum", sonnet) == pytest.approx(120.0)
    assert registry.get_sample_value("llmcost_quote_monthly_charge_usd_bucket", {**mini, "le": "10.0"}) == 2
    # $57.30 more than the baseline, twice (negative buckets: prometheus_client exports no _sum)
    assert (
        registry.get_sample_value("llmcost_quote_comparison_delta_usd_bucket", {**sonnet, "le": "10.0"}) == 0
    )
    assert (
        registry.get_sample_value("llmcost_quote_comparison_delta_usd_bucket", {**sonnet, "le": "100.0"}) == 2
    )
    assert registry.get_sample_value("llmcost_quote_comparison_delta_usd_count", mini) is None  # the baseline
    stats = {s["model"]: s for s in client.get("/api/v1/quote/stats").json()["selections"]}
    assert stats["anthropic/claude-3-5-sonnet-20241022"] == {
        **sonnet, "quotes": 2, "monthly_charge_usd": "120.000000000", "comparison_delta_usd": "114.600000000"
    }  # fmt: skip
    assert Decimal(stats["openai/gpt-4o-mini"]["monthly_charge_usd"]) == Decimal("5.40")


def test_the_models_label_is_capped(tmp_path: Path) -> None:
    from llmcost_collector.metrics.quotes import MODEL_CAP, QuoteMetrics

    registry = CollectorRegistry()
    metrics = QuoteMetrics(registry)
    for n in range(MODEL_CAP + 5):
        quote = {"provider": "p", "model": f"m{n}", "volume_tokens": 5, "charge_usd": "1"}
        metrics.record({"chargeback_model": "at_cost", "quotes": [quote]})
    labels = {"model": "__other__", "chargeback_model": "at_cost", "volume_band": "under_1m"}
    assert registry.get_sample_value("llmcost_quotes_total", labels) == 5
    assert len({s["model"] for s in metrics.summary()}) == MODEL_CAP + 1


def test_invoices_over_http_are_the_invoice_engines(tmp_path: Path) -> None:
    from llmcost_collector.config.schema import Config
    from llmcost_collector.invoice.build import Invoicing, Period
    from llmcost_collector.invoice.render import render_one

    ledger = open_ledger(f"sqlite:///{tmp_path / 'invoices.db'}")
    config = Config.model_validate({"chargeback": {"model": "cost_plus", "markup_percent": 10}})
    odd = "a/b c&__proto__"  # any team name is one query parameter
    ledger.insert([priced_entry(config, 1, team=odd, day=date(2026, 11, 3), model="gpt-4o-mini",
                                usage=Usage(input_tokens=1_000_000, output_tokens=1_000_000))])  # fmt: skip
    client = TestClient(
        make_web_app(CollectorRegistry(), ledger, lambda: (True, "ok"), config=lambda: config)
    )
    (expected,) = Invoicing(ledger, config).invoices(Period.parse("2026-11"), odd)
    # gpt-4o-mini: $0.15 + $0.60 = $0.75, cost-plus 10 %: $0.825, printed $0.82 (half to even)
    assert (expected["total_usd"], expected["total"]) == ("0.825000000", "0.82")
    answer = client.get("/api/v1/invoices", params={"period": "2026-11"}).json()
    assert answer == {"period": "2026-11", "invoices": [expected]}
    markdown = client.get("/api/v1/invoices", params={"period": "2026-11", "team": odd, "format": "md"})
    assert markdown.text == render_one(expected, "md")
    assert (
        markdown.headers["content-disposition"] == 'attachment; filename="invoice-2026-11-a_b_c___proto__.md"'
    )
    csv_answer = client.get("/api/v1/invoices", params={"period": "2026-11", "team": odd, "format": "csv"})
    assert csv_answer.text == render_one(expected, "csv") and csv_answer.headers["content-type"].startswith(
        "text/csv"
    )
    for params, error in (
        ({"period": "2026-13"}, "period"),
        ({"format": "docx"}, "format"),
        ({"period": "2026-11", "format": "pdf"}, "pdf is one invoice"),
        ({"period": "2026-11", "team": "nobody", "format": "md"}, "no invoice for 'nobody'"),
        ({"region": "eu"}, "unknown parameter region"),
    ):
        bad = client.get("/api/v1/invoices", params=params)
        assert bad.status_code == 400 and error in bad.json()["error"], bad.text


def test_links_name_the_grafana_dashboards_only_when_configured(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'links.db'}")
    plain = TestClient(make_web_app(CollectorRegistry(), ledger, lambda: (True, "ok")))
    assert plain.get("/api/v1/links").json() == {"grafana": None, "dashboards": []}
    linked = TestClient(
        make_web_app(CollectorRegistry(), ledger, lambda: (True, "ok"), grafana_url="http://grafana:3000/")
    )
    dashboards = linked.get("/api/v1/links").json()["dashboards"]
    shipped = sorted(p.stem for p in Path("dashboards").glob("llmcost-*.json"))
    assert sorted(d["uid"] for d in dashboards) == shipped
    assert {d["url"] for d in dashboards} == {f"http://grafana:3000/d/{uid}" for uid in shipped}


# --- the guard's reserve mode: the real openai SDK, the fake provider, a real collector ----------

RESERVE_CONFIG = """
version: 1
teams:
  - {name: search}
  - {name: consumer}
budgets:
  - {name: free-tier, amount_usd: 25, period: monthly, scope: {user_tier: free, per_user: true}, hard_limit: true}
  - {name: search-cap, amount_usd: 0.0063126, period: monthly, basis: provider, scope: {team: search},
     hard_limit: true}
attribution:
  rules:
    - {match: {service.name: "search-*"}, team: search}
chargeback: {model: cost_plus, markup_percent: 20}
"""
PING = [{"role": "user", "content": "ping"}]
# gpt-4o-mini at $0.15 / $0.60 per Mtok. A ping's input as the guard counts it: the prompt plus
# OpenAI's chat framing (4 per message, 3 per request); output at max_tokens=1000.
PING_INPUT = estimate_tokens("ping") + 4 + 3
MAX_CALL_NANOS = PING_INPUT * 150 + 1000 * 600
CAP_NANOS = 6_312_600  # search-cap: 10.5 calls at the maximum


class Reserving:
    """A collector, the fake provider, the openai SDK instrumented and exporting to the collector,
    and a reserve-mode guard on the collector's API port."""

    def __init__(self, app: CollectorApp, fake: FakeProvider, guard: otel_llmcost.ReserveGuard) -> None:
        self.app, self.fake, self.guard = app, fake, guard
        self.client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        self.aclient = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)

    def ping(self, **options: Any) -> Any:
        return self.client.chat.completions.create(
            model="gpt-4o-mini", messages=PING, max_tokens=1000, **options
        )

    def rows(self) -> list[tuple[str, str, str, int]]:
        """(budget, state, outcome, amount_nanos) of every reservation, from the ledger file."""
        self.guard.flush()
        path = self.app.settings.ledger_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            return conn.execute(
                "SELECT budget, state, outcome, amount_nanos FROM budget_reservations ORDER BY created_at_ns"
            ).fetchall()

    def reserve(self, **body: Any) -> tuple[int, dict[str, Any]]:
        request = {"scope": {"team": "search"}, "provider": "openai", "model": "gpt-4o-mini",
                   "max_output_tokens": 1000, **body}  # fmt: skip
        status, answer, _ = post(
            self.app.urls()["web"] + "api/v1/budgets/reserve",
            json.dumps(request).encode(),
            {"content-type": "application/json"},
        )
        return status, json.loads(answer)


@contextmanager
def _guarded(collector: Collectors, monkeypatch: pytest.MonkeyPatch, mode: str) -> Iterator[Reserving]:
    app = collector(RESERVE_CONFIG)
    provider = TracerProvider(resource=Resource.create({"service.name": "search-api"}))
    provider.add_span_processor(otel_llmcost.AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=app.urls()["otlp_http"])))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)  # the anthropic SDK's own spans use it
    monkeypatch.delenv("ANTHROPIC_OPEN_TELEMETRY", raising=False)
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    fake = FakeProvider(default=Scenario(input_tokens=PING_INPUT, output_tokens=1000)).start()
    if mode == "reserve":
        guard: Any = otel_llmcost.guard(app.urls()["web"], mode="reserve")
    else:
        guard = otel_llmcost.guard(app.urls()["web"] + "api/v1/budgets/status", refresh_seconds=0.2)
    try:
        yield Reserving(app, fake, guard)
    finally:
        guard.close()
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        provider.shutdown()
        fake.stop()


@pytest.fixture
def reserving(collector: Collectors, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reserving]:
    with _guarded(collector, monkeypatch, "reserve") as guarded:
        yield guarded


def test_cached_guard_refuses_instrumented_calls_before_any_request(
    collector: Collectors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cached mode needs no ``check()`` by hand: the instrumented SDK call of a free user over
    $25 raises before a request is sent; other users' calls go through; closing the guard stops it."""
    with _guarded(collector, monkeypatch, "cached") as guarded:
        client = anthropic.Anthropic(base_url=guarded.fake.anthropic_base_url, api_key="test", max_retries=0)
        big = {**CALL, "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10_000_000,
               "gen_ai.usage.output_tokens": 1_000_000, "user.id": "u-9", "llmcost.user_tier": "free",
               "llmcost.team": "consumer"}  # fmt: skip
        export(guarded.app, spans(big))
        wait_for(lambda: guarded.guard._budgets and any(b.get("users_over") for b in guarded.guard._budgets))
        with otel_llmcost.attribute(team="consumer", user_id="u-9", user_tier="free"):
            with pytest.raises(otel_llmcost.BudgetExceededError, match=r"free-tier.*user_id=u-9"):
                guarded.ping()
            with pytest.raises(otel_llmcost.BudgetExceededError):
                client.messages.create(model="claude-3-5-haiku-latest", max_tokens=10, messages=PING)
            with pytest.raises(otel_llmcost.BudgetExceededError):
                client.messages.stream(model="claude-3-5-haiku-latest", max_tokens=10, messages=PING)
        assert guarded.fake.requests == []  # nothing left the process
        with otel_llmcost.attribute(team="consumer", user_id="u-2", user_tier="free"):
            guarded.ping()  # another free user, under their own $25
        assert len(guarded.fake.requests) == 1
        guarded.guard.close()
        with otel_llmcost.attribute(team="consumer", user_id="u-9", user_tier="free"):
            guarded.ping()  # no guard running: not checked
        assert len(guarded.fake.requests) == 2


def test_reserve_refuses_a_free_user_over_25_dollars_before_any_request(reserving: Reserving) -> None:
    # u-9 spent $35 of provider cost this month (10M input, 1M output of gpt-4o): $42 charged.
    big = {**CALL, "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10_000_000,
           "gen_ai.usage.output_tokens": 1_000_000, "user.id": "u-9", "llmcost.user_tier": "free",
           "llmcost.team": "consumer"}  # fmt: skip
    export(reserving.app, spans(big))
    with (
        otel_llmcost.attribute(team="consumer", user_id="u-9", user_tier="free"),
        pytest.raises(otel_llmcost.BudgetExceededError) as refused,
    ):
        reserving.ping()
    message = str(refused.value)
    assert "free-tier" in message and "spent $42.000000000" in message and "limit $25.000000000" in message
    assert "user_id=u-9" in message and "user_tier=free" in message
    assert reserving.fake.requests == []  # nothing left the process
    with otel_llmcost.attribute(team="consumer", user_id="u-2", user_tier="free"):
        reserving.ping()  # another free user, under their own $25
    assert len(reserving.fake.requests) == 1
    assert [(b, state, outcome) for b, state, outcome, _ in reserving.rows()] == [
        ("free-tier", "settled", "success")
    ]


def test_reserve_parallel_calls_never_exceed_the_cap(reserving: Reserving) -> None:
    """40 calls on 8 threads against a cap of 10.5 calls: exactly 10 are sent, spend <= cap."""
    granted, refused = [], []

    def worker() -> None:
        with otel_llmcost.attribute(team="search"):
            for _ in range(5):
                try:
                    granted.append(reserving.ping())
                except otel_llmcost.BudgetExceededError:
                    refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(granted), len(refused)) == (10, 30)
    assert len(reserving.fake.requests) == 10
    wait_for(lambda: team_requests(reserving.app, "search") == 10)
    (row,) = reserving.app.ledger.spend(0, FAR_FUTURE, filters={"team": "search"})
    assert row.contracted_nanos == 10 * MAX_CALL_NANOS  # the fake answered each call at its maximum
    assert row.contracted_nanos is not None and row.contracted_nanos <= CAP_NANOS < 11 * MAX_CALL_NANOS
    assert metric(reserving.app, "llmcost_budget_reservations_total", result="granted") == 10
    assert metric(reserving.app, "llmcost_budget_reservations_total", result="refused") == 30


def test_reserve_unpriced_model_fails_closed_without_a_ceiling(reserving: Reserving) -> None:
    with (
        otel_llmcost.attribute(team="search"),
        pytest.raises(otel_llmcost.BudgetExceededError, match="no price"),
    ):
        reserving.client.chat.completions.create(model="house-llm-1", messages=PING, max_tokens=10)
    assert reserving.fake.requests == []
    status, body = reserving.reserve(model="house-llm-1")
    assert status == 409 and body["reason"] == "unpriced"
    assert metric(reserving.app, "llmcost_budget_reservations_total", result="unpriced") == 2


def test_reserve_unpriced_calls_hold_the_ceiling_for_the_period(reserving: Reserving) -> None:
    """$0.002 per unpriced call against the $0.0063 cap: three calls, then refused, although the
    ledger has each of them at $0 (unpriced) the moment their spans land."""
    config_file(reserving.app).write_text(RESERVE_CONFIG + "enforcement: {unpriced_ceiling_usd: 0.002}\n")
    wait_for(lambda: reserving.app.config.enforcement.unpriced_ceiling_usd is not None)
    with otel_llmcost.attribute(team="search"):
        for _ in range(3):
            reserving.client.chat.completions.create(model="house-llm-1", messages=PING, max_tokens=10)
        wait_for(lambda: team_requests(reserving.app, "search") == 3)
        with pytest.raises(
            otel_llmcost.BudgetExceededError,
            match=r"reserved \$0\.006000000 \+ this call up to \$0\.002000000",
        ):
            reserving.client.chat.completions.create(model="house-llm-1", messages=PING, max_tokens=10)
    assert len(reserving.fake.requests) == 3
    assert reserving.rows() == [("search-cap", "unpriced", "success", 2_000_000)] * 3


def test_reserve_an_unpriced_call_that_landed_before_its_settlement_still_holds(reserving: Reserving) -> None:
    """The race the test above can lose under load, made certain: three unpriced holds whose
    spans reach the ledger (at $0, unpriced) before any settlement arrives keep counting, so the
    fourth call is refused."""
    config_file(reserving.app).write_text(RESERVE_CONFIG + "enforcement: {unpriced_ceiling_usd: 0.002}\n")
    wait_for(lambda: reserving.app.config.enforcement.unpriced_ceiling_usd is not None)
    for n in range(1, 4):
        landed = make_entry(n, team="search", nanos=None)  # unpriced: the ledger counts it as $0
        status, _ = reserving.reserve(model="house-llm-1", max_output_tokens=10, trace_id=landed.trace_id,
                                      span_id=landed.span_id)  # fmt: skip
        assert status == 200
        reserving.app.ledger.record([landed], [SpanLink()])
    status, body = reserving.reserve(model="house-llm-1", max_output_tokens=10)
    assert status == 409, body


def test_reserve_expiry_stops_holding_and_counts_a_leak(reserving: Reserving) -> None:
    status, body = reserving.reserve(max_output_tokens=7000, ttl_seconds=0.2)  # $0.0042 of $0.0063
    assert status == 200 and body["holds"][0]["amount_usd"] == "0.004200000"
    assert reserving.reserve(max_output_tokens=7000)[0] == 409  # held: no room for a second
    time.sleep(0.3)  # never settled: the holder died, say
    status, _ = reserving.reserve(max_output_tokens=7000)
    assert status == 200  # the expired hold no longer counts
    assert metric(reserving.app, "llmcost_budget_reservation_leaks_total", budget="search-cap") == 1
    assert [state for _, state, _, _ in reserving.rows()] == ["expired", "held"]


def test_reserve_settles_a_failed_call_and_releases_its_hold(reserving: Reserving) -> None:
    reserving.fake.push(Scenario(error_status=500))
    with otel_llmcost.attribute(team="search"), pytest.raises(openai.InternalServerError):
        reserving.ping()
    assert reserving.rows() == [("search-cap", "released", "error", 0)]  # an error answer costs nothing


def test_reserve_settles_a_cancelled_stream(reserving: Reserving) -> None:
    reserving.fake.push(Scenario(text="one two three four five six", stall_stream_after=3))

    async def read_then_cancel() -> None:
        async def consume() -> None:
            stream = await reserving.aclient.chat.completions.create(
                model="gpt-4o-mini", messages=PING, max_tokens=1000, stream=True
            )
            async for _ in stream:
                pass

        with otel_llmcost.attribute(team="search"):
            task = asyncio.create_task(consume())
            await asyncio.sleep(0.5)  # the stream stalls after three events
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(read_then_cancel())
    ((budget, state, outcome, held),) = reserving.rows()
    assert (budget, state, outcome) == ("search-cap", "settled", "cancelled")
    # what was consumed (the prompt, the text received; estimated) is held until its span lands
    assert 0 < held < MAX_CALL_NANOS
    wait_for(lambda: team_requests(reserving.app, "search") == 1)
    status, _ = reserving.reserve(max_output_tokens=10_000)  # $0.006 fits: the hold gave way to the ledger
    assert status == 200


def test_reserve_settles_a_stream_closed_early_as_partial(reserving: Reserving) -> None:
    reserving.fake.push(Scenario(text="one two three four five six"))
    with otel_llmcost.attribute(team="search"):
        stream = reserving.ping(stream=True)
        next(iter(stream))
        stream.close()
    ((_, state, outcome, held),) = reserving.rows()
    assert (state, outcome) == ("settled", "partial") and 0 < held < MAX_CALL_NANOS


def team_requests(app: CollectorApp, team: str) -> int:
    return sum(row.requests for row in app.ledger.spend(0, FAR_FUTURE, filters={"team": team}))


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"provider": "openai", "model": "gpt-4o-mini"}, "max_output_tokens"),
        ({"provider": "openai", "model": "gpt-4o-mini", "max_output_tokens": -1}, "max_output_tokens"),
        ({"provider": "openai", "model": "gpt-4o-mini", "max_output_tokens": 1, "region": "eu"}, "region"),
        ({"provider": "openai", "model": "gpt-4o-mini", "max_output_tokens": 1, "span_id": "xyz"}, "span_id"),
    ],
)
def test_reserve_requests_are_validated(reserving: Reserving, body: dict[str, Any], named: str) -> None:
    status, answer, _ = post(
        reserving.app.urls()["web"] + "api/v1/budgets/reserve",
        json.dumps(body).encode(),
        {"content-type": "application/json"},
    )
    assert status == 400 and named in json.loads(answer)["error"]


def test_reserve_fails_open_or_closed_when_the_collector_is_unreachable(reserving: Reserving) -> None:
    closed = otel_llmcost.guard("http://127.0.0.1:9", mode="reserve", fail_closed=True)
    try:
        with (
            otel_llmcost.attribute(team="search"),
            pytest.raises(otel_llmcost.BudgetExceededError, match="unreachable"),
        ):
            reserving.ping()
    finally:
        closed.close()
    assert reserving.fake.requests == []
    opened = otel_llmcost.guard("http://127.0.0.1:9", mode="reserve")  # fail-open, the default
    try:
        with otel_llmcost.attribute(team="search"):
            reserving.ping()
    finally:
        opened.close()
    assert len(reserving.fake.requests) == 1


@pytest.mark.parametrize("sdk_traces", [True, False], ids=["sdk-span", "our-span"])
def test_reserve_guards_anthropic_calls(
    reserving: Reserving, monkeypatch: pytest.MonkeyPatch, sdk_traces: bool
) -> None:
    """claude-haiku-4-5 at $1 / $5 per Mtok: a 1000-token answer costs $0.005008 of the $0.0063
    cap, so one call is sent and settled (from the SDK's own span or ours), the next refused."""
    if not sdk_traces:
        monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")  # read when the client is made
    claude = anthropic.Anthropic(base_url=reserving.fake.anthropic_base_url, api_key="test", max_retries=0)
    assert traces_itself(claude) is sdk_traces
    with otel_llmcost.attribute(team="search"):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=1000, messages=PING)
        wait_for(lambda: team_requests(reserving.app, "search") == 1)
        with pytest.raises(otel_llmcost.BudgetExceededError, match=r"search-cap.*spent \$0\.005008000"):
            claude.messages.create(model="claude-haiku-4-5", max_tokens=1000, messages=PING)
    assert len(reserving.fake.requests) == 1
    assert reserving.rows() == [("search-cap", "settled", "success", (PING_INPUT * 1000 + 1000 * 5000))]


def test_reserve_attributes_the_call_with_the_collectors_rules(reserving: Reserving) -> None:
    """No team in the service's attribution: the rule for service.name search-* puts the call in
    team search, at reservation as at ingest, so the team's cap holds."""
    assert reserving.reserve(max_output_tokens=10_000)[0] == 200  # $0.006 of the $0.0063 cap
    with pytest.raises(otel_llmcost.BudgetExceededError, match="search-cap"):
        reserving.ping()
    assert reserving.fake.requests == []


# --- access: tokens with roles, team-scoped reads ---------------------------------------------------

ACCESS_CONFIG = """
version: 1
teams:
  - {name: search, budgets: {monthly: 100}}
  - {name: support, budgets: {monthly: 100}}
  - {name: ads}
budgets:
  - {name: org, amount_usd: 1000, period: monthly}
access:
  tokens:
    - {name: exporter, role: ingest, token: ingest-t0ken}
    - {name: finance, role: read, token: read-t0ken}
    - {name: ops, role: admin, token: admin-t0ken}
    - {name: prometheus, role: metrics, token: metrics-t0ken}
    - {name: search-team, role: read, teams: [search], token: search-t0ken}
    - {name: two-teams, role: read, teams: [search, support], token: two-t0ken}
"""


def call(
    app: CollectorApp, path: str, token: str | None = None, *, method: str = "GET", basic: bool = False
) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body or text, headers) of a request to the API port with ``token`` (Bearer,
    or as the password of HTTP Basic, as a browser sends it)."""
    import base64

    headers = {}
    if token is not None:
        headers["Authorization"] = (
            "Basic " + base64.b64encode(f"me:{token}".encode()).decode() if basic else f"Bearer {token}"
        )
    request = urllib.request.Request(
        app.urls()["web"] + path.lstrip("/"),
        headers=headers,
        method=method,
        data=b"" if method == "POST" else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        raw, status, got = err.read(), err.code, dict(err.headers)
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text), got
    except ValueError:
        return status, text, got


def seed_teams(ledger: SqlLedger) -> None:
    """November 2026: search 3 calls (2 production in session s-search, 1 staging), support 2
    production calls in session s-support, ads 1 call in session s-ads; 1,000,001 nano-dollars each."""
    hour = 3_600 * 10**9
    rows = [
        make_entry(1, team="search", start_ns=NOV + hour, environment="production", session_id="s-search"),
        make_entry(
            2, team="search", start_ns=NOV + 2 * hour, environment="production", session_id="s-search"
        ),
        make_entry(3, team="search", start_ns=NOV + 3 * hour, environment="staging"),
        make_entry(
            4, team="support", start_ns=NOV + 4 * hour, environment="production", session_id="s-support"
        ),
        make_entry(
            5, team="support", start_ns=NOV + 5 * hour, environment="production", session_id="s-support"
        ),
        make_entry(6, team="ads", start_ns=NOV + 6 * hour, environment="production", session_id="s-ads"),
    ]
    assert all(ledger.insert(rows))


@pytest.fixture
def guarded(collector: Collectors) -> CollectorApp:
    app = collector(ACCESS_CONFIG)
    seed_teams(app.ledger)
    return app


def test_the_api_port_binds_loopback_unless_told(collector: Collectors) -> None:
    """By default the OTLP ports take every interface and the spend-bearing API port loopback;
    ``http_host`` (``--http-host``, ``LLMCOST_HTTP_HOST``) opens it."""
    default = collector(host="0.0.0.0")  # http_host left to its default
    assert default.hosts == {"otlp_http": "0.0.0.0", "http": "127.0.0.1"}
    opened = collector(host="0.0.0.0", http_host="0.0.0.0")
    assert opened.hosts["http"] == "0.0.0.0"
    assert get(f"http://127.0.0.1:{opened.ports['http']}/healthz")[0] == 200


def test_each_role_on_the_api_port(guarded: CollectorApp) -> None:
    """Probes are open; the API, page, static files and API reference need a read or admin token
    (401 with a Basic challenge without one, 403 for ingest or metrics); /metrics takes its own
    token, an unscoped read or admin token; only admin may close invoices and reload."""
    app = guarded
    assert call(app, "/healthz")[0] == 200
    assert call(app, "/readyz")[0] == 200
    spend = "/api/v1/spend?from=2026-11-01&to=2026-12-01"
    status, body, headers = call(app, spend)
    assert status == 401 and body == {"error": "missing or invalid token"}
    assert headers["www-authenticate"].startswith("Basic realm=")
    assert call(app, spend, "wrong")[0] == 401
    for token in ("ingest-t0ken", "metrics-t0ken"):
        status, body, _ = call(app, spend, token)
        assert status == 403 and token not in json.dumps(body)
    for token in ("read-t0ken", "admin-t0ken"):
        status, body, _ = call(app, spend, token)
        assert status == 200 and {r["team"] for r in body["rows"]} == {"search", "support", "ads"}
    assert call(app, spend, "read-t0ken", basic=True)[0] == 200  # what the browser sends
    for path in ("/", "/static/page/app.js", "/openapi.json", "/docs", "/api/v1/catalog", "/api/v1/sessions"):
        assert call(app, path)[0] == 401, path
        assert call(app, path, "ingest-t0ken")[0] == 403, path
        assert call(app, path, "read-t0ken", basic=True)[0] == 200, path

    assert call(app, "/metrics")[0] == 401
    assert call(app, "/metrics", "ingest-t0ken")[0] == 403
    assert call(app, "/metrics", "search-t0ken")[0] == 403  # every team's labels: not for a team token
    for token in ("metrics-t0ken", "read-t0ken", "admin-t0ken"):
        status, text, _ = call(app, "/metrics", token)
        assert status == 200 and "llmcost_collector_exports_refused" in text

    close = "/api/v1/invoices/close?period=2026-11"
    assert call(app, close, method="POST")[0] == 401
    assert call(app, close, "read-t0ken", method="POST")[0] == 403
    status, body, _ = call(app, close, "admin-t0ken", method="POST")
    assert status == 200 and sorted(i["team"] for i in body["invoices"]) == ["ads", "search", "support"]
    assert call(app, close, "admin-t0ken", method="POST")[0] == 409  # closed once
    status, body, _ = call(app, "/api/v1/invoices?period=2026-11", "read-t0ken")
    assert status == 200 and {i["status"] for i in body["invoices"]} == {"closed"}
    assert call(app, "/api/v1/config/reload", "read-t0ken", method="POST")[0] == 403
    status, body, _ = call(app, "/api/v1/config/reload", "admin-t0ken", method="POST")
    assert status == 200 and body == {"applied": True, "errors": []}
    assert call(app, "/api/v1/budgets/reserve", "read-t0ken", method="POST")[0] == 403


def test_a_team_token_never_sees_another_teams_numbers(guarded: CollectorApp) -> None:
    """A read token scoped to teams gets their rows only, through group_by, filters, the others
    row and totals, on costs, spend, sessions, the report, invoices and budget status; naming
    another team is 403, not an empty answer."""
    app = guarded
    month = "from=2026-11-01&to=2026-12-01"
    one_call = Decimal("0.001000001")  # contracted, per call

    def ok(path: str, token: str) -> Any:
        status, body, _ = call(app, path, token)
        assert status == 200, (path, body)
        return body

    costs_by_team = ok(f"/api/v1/costs?{month}&group_by=team", "search-t0ken")
    assert [r["team"] for r in costs_by_team["rows"]] == ["search"]
    assert Decimal(costs_by_team["totals"]["contracted_cost_usd"]) == 3 * one_call
    everyone = ok(f"/api/v1/costs?{month}&group_by=team", "admin-t0ken")
    assert Decimal(everyone["totals"]["contracted_cost_usd"]) == 6 * one_call
    folded = ok(f"/api/v1/costs?{month}&group_by=environment&order_by=-requests&limit=1", "search-t0ken")
    assert [(r["environment"], r["requests"]) for r in folded["rows"]] == [
        ("production", 2),
        ("__others__", 1),
    ]
    assert folded["totals"]["requests"] == 3
    negated = ok(f"/api/v1/costs?{month}&group_by=team&team!=support", "search-t0ken")
    assert [r["team"] for r in negated["rows"]] == ["search"]
    for path in (
        f"/api/v1/costs?{month}&team=support",
        f"/api/v1/costs?{month}&team=search,ads",
        f"/api/v1/spend?{month}&team=ads",
        f"/api/v1/sessions?{month}&team=support",
        "/api/v1/invoices?period=2026-11&team=support",
    ):
        status, body, _ = call(app, path, "search-t0ken")
        assert status == 403 and "team" in body["error"], path

    spend = ok(f"/api/v1/spend?{month}&group_by=environment", "two-t0ken")  # summed over its teams
    assert {r["environment"]: r["requests"] for r in spend["rows"]} == {"production": 4, "staging": 1}
    assert Decimal(spend["rows"][0]["cost_usd"]) == 4 * one_call
    assert [r["team"] for r in ok(f"/api/v1/spend?{month}", "search-t0ken")["rows"]] == ["search"]

    sessions = ok(f"/api/v1/sessions?{month}", "search-t0ken")["sessions"]
    assert {s["team"] for s in sessions} == {"search"}
    assert {s["session_id"] for s in ok(f"/api/v1/sessions?{month}", "read-t0ken")["sessions"]} >= {
        "s-search",
        "s-support",
        "s-ads",
    }

    def step_calls(summary: str, token: str) -> int:
        return sum(step["calls"] for kind in ok(summary, token)["types"] for step in kind["steps_by_path"])

    for summary in (
        f"/api/v1/sessions/summary?{month}",
        "/api/v1/sessions/summary?from=2026-11-01&to=2026-11-20",
    ):
        # a whole month (the steps rollup), then part of one (the calls): s-search's two calls only
        assert step_calls(summary, "search-t0ken") == 2, summary
        assert step_calls(summary, "read-t0ken") == 5, summary
    report = ok("/api/v1/reports/summary?period=2026-11", "search-t0ken")
    assert report["total"]["requests"] == 3 and Decimal(report["total"]["cost_usd"]) == 3 * one_call
    assert ok("/api/v1/reports/summary?period=2026-11", "read-t0ken")["total"]["requests"] == 6

    invoices = ok("/api/v1/invoices?period=2026-11", "two-t0ken")["invoices"]
    assert sorted(i["team"] for i in invoices) == ["search", "support"]
    assert call(app, "/api/v1/invoices?period=2026-11&team=search&format=md", "search-t0ken")[0] == 200

    budgets = ok("/api/v1/budgets/status", "search-t0ken")["budgets"]
    assert [b["budget"] for b in budgets] == ["search-monthly"]  # not support's, not the org's
    assert len(ok("/api/v1/budgets/status", "read-t0ken")["budgets"]) == 3

    # support joins search's session s-search: each team's view of it holds its own calls only
    joined = make_entry(7, team="support", start_ns=NOV + 7 * 3_600 * 10**9, session_id="s-search")
    assert app.ledger.insert([joined]) == [True]

    def session(path: str, token: str) -> tuple[int, Decimal]:
        (found,) = [s for s in ok(path, token)["sessions"] if s["session_id"] == "s-search"]
        return found["steps"], Decimal(found["cost_usd"])

    assert session(f"/api/v1/sessions?{month}", "search-t0ken") == (2, 2 * one_call)
    assert session(f"/api/v1/sessions?{month}&team=support", "read-t0ken") == (1, one_call)
    assert session(f"/api/v1/sessions?{month}", "read-t0ken") == (3, 3 * one_call)
    (doc,) = ok(f"/api/v1/sessions/summary?{month}", "search-t0ken")["types"]
    assert (doc["runs"], doc["steps"], Decimal(doc["total_usd"])) == (1, 2, 2 * one_call)


def test_the_guard_sends_its_token(guarded: CollectorApp) -> None:
    """The in-service guard passes ``token``: cached mode reads the status with a read token,
    reserve mode reserves with an ingest token; without the right one, failing closed refuses."""
    status_url = guarded.urls()["web"] + "api/v1/budgets/status"
    cached = otel_llmcost.guard(status_url, refresh_seconds=60, fail_closed=True, token="search-t0ken")
    try:
        cached.check(team="search")  # the status was read: nothing over budget
        assert [b["budget"] for b in cached._budgets or []] == []  # no hard limits configured
    finally:
        cached.close()
    refused = otel_llmcost.guard(status_url, refresh_seconds=60, fail_closed=True)
    try:
        with pytest.raises(otel_llmcost.BudgetExceededError, match="unreachable"):
            refused.check(team="search")
    finally:
        refused.close()
    for token, granted in (("ingest-t0ken", True), ("read-t0ken", False)):
        reserve = otel_llmcost.guard(status_url, mode="reserve", fail_closed=True, token=token)
        try:
            if granted:
                reserve.reserve(provider="openai", model="gpt-4o", input_tokens=10, team="search")
            else:
                with pytest.raises(otel_llmcost.BudgetExceededError, match="refused: 403"):
                    reserve.reserve(provider="openai", model="gpt-4o", input_tokens=10, team="search")
        finally:
            reserve.close()
    assert guarded.reservation_metrics.answers.labels("granted")._value.get() == 1


def test_a_reload_through_the_file_swaps_the_api_tokens(guarded: CollectorApp) -> None:
    """Rewriting the file (watched), or only a token file it names, replaces the tokens: the old
    one is refused from then on."""
    app = guarded
    path = "/api/v1/spend"
    assert call(app, path, "read-t0ken")[0] == 200
    config_file(app).write_text(ACCESS_CONFIG.replace("read-t0ken", "rotated-t0ken"))
    wait_for(lambda: call(app, path, "read-t0ken")[0] == 401, timeout=10)
    assert call(app, path, "rotated-t0ken")[0] == 200
    # a token kept in a file: rewriting the file alone (a rotated secret) reloads too
    secret = config_file(app).parent / "finance.token"
    secret.write_text("from-a-f1le\n")
    config_file(app).write_text(ACCESS_CONFIG.replace("token: read-t0ken", "token_file: finance.token"))
    wait_for(lambda: call(app, path, "from-a-f1le")[0] == 200, timeout=10)
    assert call(app, path, "rotated-t0ken")[0] == 401
    secret.write_text("r0tated-in-f1le\n")
    wait_for(lambda: call(app, path, "r0tated-in-f1le")[0] == 200, timeout=10)
    assert call(app, path, "from-a-f1le")[0] == 401


def test_a_ledger_password_never_appears_in_serve_output_or_logs(pg_url: str) -> None:  # noqa: F811
    """``llmcost serve`` on PostgreSQL with a password in the URL (the test cluster trusts any):
    the ready line shows the ledger with ``***``, and neither its logs (debug level) nor the
    error of a mistyped or unreachable URL ever print the password."""
    import re
    import subprocess
    import sys

    secret = "S3cret-pw"
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    assert secret in url
    args = [sys.executable, "-m", "llmcost_collector", "serve", "--host", "127.0.0.1", "--no-grpc",
            "--http-port", "0", "--otlp-http-port", "0", "--log-level", "DEBUG"]  # fmt: skip
    proc = subprocess.Popen(
        [*args, "--ledger-url", url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    seen = []
    ready = None
    deadline = time.monotonic() + 30
    while ready is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        ready = re.search(r"llmcost collector ready: (\{.*\})", line)
    try:
        assert ready is not None, "".join(seen)
        urls = json.loads(ready.group(1))
        assert urls["ledger"] == url.replace(secret, "***")
        assert get(urls["web"] + "readyz")[0] == 200
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=20)
    output = "".join(seen) + rest
    assert "collector listening" in output and secret not in output

    errors = []
    for bad in (
        url.replace("postgresql://", "postgres-sql://"),  # a typo in the scheme: the URL is quoted back
        re.sub(r"@127\.0\.0\.1:\d+/", "@127.0.0.1:1/", url),  # nothing listens there
    ):
        done = subprocess.run([*args, "--ledger-url", bad], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and done.stderr.startswith("Error: cannot start:"), done.stderr
        assert secret not in done.stdout + done.stderr
        errors.append(done.stderr)
    assert "unsupported ledger URL 'postgres-sql://postgres:***@127.0.0.1:" in errors[0]
    assert "port 1 failed" in errors[1]
