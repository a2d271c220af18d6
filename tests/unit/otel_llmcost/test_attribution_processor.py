"""``AttributionSpanProcessor``: which spans it stamps, what it never overwrites, service-wide
defaults from ``OTEL_LLMCOST_*``, and outcome spans attributed like calls."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_llmcost
from otel_llmcost import AttributionSpanProcessor, attribute
from otel_llmcost.context import env_defaults

from .helpers import GENAI, Traced

# --- which spans --------------------------------------------------------------------------------


def test_non_genai_spans_are_untouched() -> None:
    t = Traced(defaults={"llmcost.team": "platform"})
    with attribute(team="t", user_id="u"):
        t.tracer.start_span("GET /health", attributes={"http.request.method": "GET"}).end()
        t.tracer.start_span("db query").end()
    http_span, db_span = t.exporter.get_finished_spans()
    assert dict(http_span.attributes or {}) == {"http.request.method": "GET"}
    assert dict(db_span.attributes or {}) == {}


@pytest.mark.parametrize(
    "scope",
    [
        "opentelemetry.instrumentation.openai_v2",
        "openinference.instrumentation.openai",
        "opentelemetry.instrumentation.anthropic",  # OpenLLMetry
        "com.anthropic.sdk.python",
    ],
)
def test_genai_scope_alone_makes_a_genai_span(scope: str) -> None:
    """Some instrumentations start their span bare and add gen_ai.* later: the scope decides."""
    t = Traced()
    with attribute(team="t", feature="f"):
        t.provider.get_tracer(scope).start_span("chat").end()
    (span,) = t.exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"llmcost.team": "t", "llmcost.feature": "f"}


@pytest.mark.parametrize("prefix_attr", ["gen_ai.system", "llm.model_name", "openinference.span.kind"])
def test_genai_attribute_prefixes_are_recognized(prefix_attr: str) -> None:
    t = Traced()
    with attribute(feature="f"):
        t.tracer.start_span("call", attributes={prefix_attr: "x"}).end()
    (span,) = t.exporter.get_finished_spans()
    assert t.stamped(span) == {"llmcost.feature": "f"}


def test_never_overwrites_an_attribute_the_instrumentation_set() -> None:
    t = Traced(defaults={"deployment.environment.name": "production"})
    with attribute(team="ctx-team", user_id="ctx-user", session_id="ctx-session", feature="chat"):
        span = t.llm_span(
            **{"llmcost.team": "explicit", "user.id": "explicit-user", "deployment.environment.name": "dev"}
        )
    assert t.stamped(span) == {
        "llmcost.team": "explicit",
        "user.id": "explicit-user",
        "deployment.environment.name": "dev",  # nor a default
        "session.id": "ctx-session",  # what was missing is still added
        "llmcost.feature": "chat",
    }


# --- service-wide defaults ------------------------------------------------------------------------


def test_env_defaults_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {
        "OTEL_LLMCOST_TEAM": "platform",
        "OTEL_LLMCOST_FEATURE": "batch",
        "OTEL_LLMCOST_USE_CASE": "nightly",
        "OTEL_LLMCOST_USER_TIER": "internal",
        "OTEL_LLMCOST_ENVIRONMENT": "staging",
        "OTEL_LLMCOST_USER_ID": "not-a-default",  # user ids are never service-wide defaults
        "OTEL_LLMCOST_FEATURE_X": "ignored",
        "OTEL_LLMCOST_TEAM_EMPTY": "",
    }
    expected = {
        "llmcost.team": "platform",
        "llmcost.feature": "batch",
        "llmcost.use_case": "nightly",
        "llmcost.user_tier": "internal",
        "deployment.environment.name": "staging",
    }
    assert env_defaults(environ) == expected
    assert env_defaults({"OTEL_LLMCOST_TEAM": ""}) == {}  # empty means unset
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert env_defaults() == expected  # the process environment when none is given


def test_processor_applies_defaults_where_context_has_none() -> None:
    t = Traced(
        defaults=env_defaults({"OTEL_LLMCOST_TEAM": "platform", "OTEL_LLMCOST_ENVIRONMENT": "staging"})
    )
    bare = t.llm_span()
    with attribute(team="override", user_id="u"):
        scoped = t.llm_span()
    # exactly: the defaults and nothing else are added
    assert dict(bare.attributes or {}) == {
        **GENAI,
        "llmcost.team": "platform",
        "deployment.environment.name": "staging",
    }
    assert t.stamped(scoped) == {
        "llmcost.team": "override",  # context wins over the default
        "user.id": "u",
        "deployment.environment.name": "staging",
    }


def test_processor_reads_environment_when_no_defaults_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LLMCOST_TEAM", "from-env")
    monkeypatch.setenv("OTEL_LLMCOST_FEATURE", "env-feature")
    monkeypatch.setenv("OTEL_LLMCOST_ENVIRONMENT", "staging")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(AttributionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("x")
    tracer.start_span("chat m", attributes=GENAI).end()
    with attribute(feature="chat"):
        tracer.start_span("chat m", attributes=GENAI).end()
    bare, scoped = (dict(s.attributes or {}) for s in exporter.get_finished_spans())
    assert (bare["llmcost.team"], bare["llmcost.feature"], bare["deployment.environment.name"]) == (
        "from-env", "env-feature", "staging",
    )  # fmt: skip
    assert (scoped["llmcost.team"], scoped["llmcost.feature"], scoped["deployment.environment.name"]) == (
        "from-env", "chat", "staging",
    )  # fmt: skip


# --- outcomes -------------------------------------------------------------------------------------


def test_record_outcome_is_its_own_attributed_span(traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", traced.provider)
    with attribute(team="support", feature="triage", user_id="u-5", session_id="s-1"):
        otel_llmcost.record_outcome("ticket_resolved", 2, channel="email")
    with pytest.raises(ValueError):
        otel_llmcost.record_outcome("ticket_resolved", 0)
    (span,) = traced.exporter.get_finished_spans()
    assert span.name == "outcome ticket_resolved"
    assert dict(span.attributes or {}) == {
        "llmcost.outcome": "ticket_resolved", "llmcost.outcome.count": 2, "llmcost.property.channel": "email",
        "llmcost.team": "support", "llmcost.feature": "triage", "user.id": "u-5", "session.id": "s-1",
    }  # fmt: skip
