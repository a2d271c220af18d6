"""The collector's HTTP port: health, query API, web page; outcomes, cache hits and unpriced calls."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from llmcost_collector.app import CollectorApp
from llmcost_collector.config.schema import load_config
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.conftest import Collectors, export

pytestmark = pytest.mark.integration

CONFIG = """
version: 1
teams:
  - {name: support, budgets: {daily: 10, monthly: 100}}
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
    assert app.registry.get_sample_value("llmcost_budget_usd", {"team": "support", "period": "daily"}) == 10


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
