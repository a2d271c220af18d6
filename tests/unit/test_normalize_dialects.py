"""Every dialect in the field normalizes to the same canonical usage; bad usage is rejected."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmcost_collector.model import SpanView, Usage
from llmcost_collector.normalize.span import SpanRejected, normalize_span

# One call: 1000 prompt tokens of which 300 cached reads and 100 cache writes, 400 output of
# which 150 reasoning; expressed the way each instrumentation reports it.
CANONICAL = Usage(
    input_tokens=600, cache_read_tokens=300, cache_write_tokens=100, output_tokens=400, reasoning_tokens=150
)
DIALECTS = {
    "otel": {
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cache_read.input_tokens": 300,
        "gen_ai.usage.cache_creation.input_tokens": 100, "gen_ai.usage.output_tokens": 400,
        "gen_ai.usage.reasoning.output_tokens": 150,
    },
    "otel-deprecated": {
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.prompt_tokens": 1000, "gen_ai.usage.completion_tokens": 400,
        "gen_ai.usage.cache_read_input_tokens": 300, "gen_ai.usage.cache_creation_input_tokens": 100,
        "gen_ai.usage.reasoning_tokens": 150,
    },
    "openllmetry": {
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "traceloop.span.kind": "llm",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 400,
        "gen_ai.usage.cache_read_input_tokens": 300, "gen_ai.usage.cache_creation_input_tokens": 100,
        "gen_ai.usage.reasoning_tokens": 150,
        "traceloop.association.properties.team": "search", "traceloop.association.properties.customer": "acme",
    },
    "openinference": {
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o",
        "llm.token_count.prompt": 1000, "llm.token_count.completion": 400,
        "llm.token_count.prompt_details.cache_read": 300, "llm.token_count.prompt_details.cache_write": 100,
        "llm.token_count.completion_details.reasoning": 150,
    },
    "openlit": {
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 400, "gen_ai.usage.cache_read.input_tokens": 300,
        "gen_ai.usage.cache_creation.input_tokens": 100, "gen_ai.usage.reasoning.output_tokens": 150,
        "gen_ai.usage.cost": 0.0123,
    },
}  # fmt: skip


def view(
    attributes: dict[str, object], resource: dict[str, object] | None = None, status: int = 0, scope: str = ""
) -> SpanView:
    return SpanView(
        trace_id="a" * 32, span_id="b" * 16, name="chat", start_time_ns=1, end_time_ns=2,
        attributes=attributes, resource=resource or {}, status_code=status, scope_name=scope,
    )  # fmt: skip


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialect_gives_the_canonical_usage(dialect: str) -> None:
    call = normalize_span(view(dict(DIALECTS[dialect])))
    assert call is not None
    assert call.usage == CANONICAL
    assert (call.provider, call.model) == ("openai", "gpt-4o")


def test_dialect_and_traceloop_attribution() -> None:
    call = normalize_span(view(dict(DIALECTS["openllmetry"])))
    assert call is not None
    assert call.dialect == "openllmetry"
    assert call.attribution.team == "search"
    assert call.attribution.properties == {"customer": "acme"}
    assert normalize_span(view(dict(DIALECTS["openinference"]))).dialect == "openinference"  # type: ignore[union-attr]


def test_attribution_from_span_then_resource() -> None:
    call = normalize_span(
        view(
            {**DIALECTS["otel"], "llmcost.feature": "chat", "user.id": "u-1", "gen_ai.conversation.id": "conv-9",
             "llmcost.property.tenant": "acme"},
            {"service.name": "api", "deployment.environment": "staging", "llmcost.team": "search"},
        )
    )  # fmt: skip
    assert call is not None
    a = call.attribution
    assert (a.team, a.feature, a.user_id, a.session_id, a.environment, a.service_name) == (
        "search", "chat", "u-1", "conv-9", "staging", "api",
    )  # fmt: skip
    assert a.properties == {"tenant": "acme"}


def test_anthropic_native_usage_is_not_double_counted() -> None:
    # The anthropic SDK's own spans and raw Anthropic usage: input EXCLUDES cache tokens
    # (input 50 < cache read 2000) -- taken as uncached, not rejected, not added twice.
    call = normalize_span(
        view({
            "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-haiku-4-5",
            "gen_ai.usage.input_tokens": 50, "gen_ai.usage.cache_read.input_tokens": 2000,
            "gen_ai.usage.cache_write.input_tokens": 400,
            "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 400, "gen_ai.usage.output_tokens": 10,
        })
    )  # fmt: skip
    assert call is not None
    assert (call.usage.input_tokens, call.usage.cache_read_tokens, call.usage.cache_write_tokens) == (
        50,
        2000,
        400,
    )
    assert call.usage.cache_write_1h_tokens == 400


# The anthropic SDK's own span: input 1900 = 500 uncached + 1000 read + 400 written.
ANTHROPIC_SDK_SPAN = {
    "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-haiku-4-5",
    "gen_ai.usage.input_tokens": 1900, "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.cache_write.input_tokens": 400, "gen_ai.usage.output_tokens": 80,
}  # fmt: skip


def test_an_openlit_resource_does_not_make_other_spans_openlit() -> None:
    """openlit.init() puts telemetry.sdk.name=openlit on every span's resource: the SDK's span is
    still read as what it is (input includes cache), not billed 1900 uncached + 1400 cached."""
    call = normalize_span(view(dict(ANTHROPIC_SDK_SPAN), {"telemetry.sdk.name": "openlit"},
                               scope="com.anthropic.sdk.python"))  # fmt: skip
    assert call is not None and call.dialect == "otel"
    assert (call.usage.input_tokens, call.usage.total_input_tokens) == (500, 1900)


def test_openlit_is_recognised_by_its_scope_or_its_span_attribute() -> None:
    native = {**ANTHROPIC_SDK_SPAN, "gen_ai.usage.input_tokens": 500}  # OpenLIT: Anthropic's native input
    by_scope = normalize_span(view(dict(native), scope="openlit.instrumentation.anthropic"))
    by_attribute = normalize_span(view({**native, "telemetry.sdk.name": "openlit"}))
    for call in (by_scope, by_attribute):
        assert call is not None and call.dialect == "openlit"
        assert (call.usage.input_tokens, call.usage.total_input_tokens) == (500, 1900)


def test_the_cache_write_names_are_never_added_together() -> None:
    both = {**ANTHROPIC_SDK_SPAN, "gen_ai.usage.cache_creation.input_tokens": 400}
    call = normalize_span(view(both))
    assert call is not None and call.usage.cache_write_tokens == 400


LITELLM_SPAN = {
    "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-haiku-4-5", "llm.request.type": "completion",
    "litellm.call_id": "c-1", "gen_ai.usage.input_tokens": 1900, "gen_ai.usage.output_tokens": 80,
    "gen_ai.response.id": "chatcmpl-1",
    "metadata.usage_object": (
        "{'completion_tokens': 80, 'prompt_tokens': 1900, 'completion_tokens_details': {'reasoning_tokens': 0}, "
        "'prompt_tokens_details': {'cached_tokens': 1000, 'cache_creation_tokens': 400, "
        "'cache_creation_token_details': {'ephemeral_5m_input_tokens': 300, 'ephemeral_1h_input_tokens': 100}}, "
        "'cache_creation_input_tokens': 400, 'cache_read_input_tokens': 1000}"
    ),
    "metadata.user_api_key_team_alias": "", "metadata.user_api_key_team_id": "team-7",
    "metadata.user_api_key_end_user_id": "u-9",
}  # fmt: skip


def test_litellm_usage_block_and_key_team_are_read() -> None:
    call = normalize_span(view(dict(LITELLM_SPAN), scope="litellm"))
    assert call is not None and call.dialect == "litellm"  # not OpenLLMetry, despite llm.request.type
    assert call.usage == Usage(input_tokens=500, cache_read_tokens=1000, cache_write_tokens=400,
                               cache_write_1h_tokens=100, output_tokens=80)  # fmt: skip
    assert (call.attribution.team, call.attribution.user_id) == ("team-7", "u-9")


@pytest.mark.parametrize("usage_object", ["{'prompt_tokens': __import__('os')}", "{" * 5000, "not a dict", 7])
def test_a_malformed_litellm_usage_block_is_ignored(usage_object: object) -> None:
    call = normalize_span(view({**LITELLM_SPAN, "metadata.usage_object": usage_object}, scope="litellm"))
    assert call is not None and call.usage == Usage(input_tokens=1900, output_tokens=80)


def test_openinference_metadata_tags_and_response_id() -> None:
    call = normalize_span(view({
        **DIALECTS["openinference"], "metadata": '{"team": "finance", "feature": "invoices", "tenant": "acme"}',
        "tag.tags": ["beta", "eu"], "user.id": "u-3",
        "output.value": '{"id":"chatcmpl-42","choices":[{"message":{"content":"secret"}}]}',
    }))  # fmt: skip
    assert call is not None
    a = call.attribution
    assert (a.team, a.feature, a.user_id) == ("finance", "invoices", "u-3")
    assert a.properties == {"tenant": "acme", "tags": "beta,eu"}
    assert call.response_id == "chatcmpl-42"


def test_the_call_id_is_read_beside_the_response_id() -> None:
    """otel_llmcost's llmcost.call.id is a key of its own: a span may have it, a response id, both."""
    timed_out = normalize_span(view({**DIALECTS["openinference"], "llmcost.call.id": "c0ffee"}))
    answered = normalize_span(view({**DIALECTS["openinference"], "llmcost.call.id": "c0ffee",
                                    "gen_ai.response.id": "chatcmpl-7"}))  # fmt: skip
    assert timed_out is not None and (timed_out.response_id, timed_out.call_id) == ("", "c0ffee")
    assert answered is not None and (answered.response_id, answered.call_id) == ("chatcmpl-7", "c0ffee")


def test_our_own_attribution_wins_over_a_tools_metadata() -> None:
    call = normalize_span(
        view({**DIALECTS["openinference"], "llmcost.team": "search", "metadata": '{"team": "x"}'})
    )
    assert call is not None and call.attribution.team == "search"


def test_openlit_custom_attributes_fill_attribution() -> None:
    call = normalize_span(view({**ANTHROPIC_SDK_SPAN, "team": "legal", "user.id": "u-5", "experiment": "v2"},
                               scope="openlit.instrumentation.anthropic"))  # fmt: skip
    assert call is not None and (call.attribution.team, call.attribution.user_id) == ("legal", "u-5")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("gen_ai.usage.input_tokens", -1, "negative"),
        ("gen_ai.usage.input_tokens", 10**9 + 1, "absurd"),
        ("gen_ai.usage.output_tokens", math.nan, "integer"),
        ("gen_ai.usage.output_tokens", 1.5, "integer"),
        ("gen_ai.usage.output_tokens", "12", "integer"),
        ("gen_ai.usage.output_tokens", True, "integer"),
        ("gen_ai.usage.cache_read.input_tokens", 5000, "exceed"),
        ("gen_ai.usage.reasoning.output_tokens", 500, "exceed"),
    ],
)
def test_bad_usage_is_rejected_with_a_reason(key: str, value: object, reason: str) -> None:
    with pytest.raises(SpanRejected, match=reason):
        normalize_span(view({**DIALECTS["otel"], key: value}))


@pytest.mark.parametrize(
    "attributes",
    [
        {"http.method": "GET"},
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 9,
        },
        {"gen_ai.operation.name": "execute_tool", "gen_ai.request.model": "gpt-4o"},
        {"openinference.span.kind": "CHAIN", "llm.model_name": "gpt-4o", "llm.token_count.prompt": 5},
    ],
    ids=["http", "agent", "tool", "openinference-chain"],
)
def test_spans_that_are_not_calls_are_skipped(attributes: dict[str, object]) -> None:
    assert normalize_span(view(attributes)) is None


def test_errors_and_flags() -> None:
    call = normalize_span(
        view({**DIALECTS["otel"], "error.type": "RateLimitError", "llmcost.usage.estimated": True})
    )
    assert call is not None and call.status == "error" and call.error_type == "RateLimitError"
    assert call.usage.estimated is True
    outcome = normalize_span(view({"llmcost.outcome": "ticket_resolved", "llmcost.outcome.count": 2}))
    assert outcome is not None and (outcome.operation, outcome.outcome, outcome.outcome_count) == (
        "outcome",
        "ticket_resolved",
        2,
    )


tokens = st.integers(min_value=0, max_value=10**9)


@given(tokens, tokens, tokens, tokens, tokens)
def test_invariants_hold_for_any_valid_usage(
    total_in: int, read: int, write: int, out: int, reasoning: int
) -> None:
    attributes = {
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
        "gen_ai.usage.input_tokens": total_in, "gen_ai.usage.cache_read.input_tokens": read,
        "gen_ai.usage.cache_creation.input_tokens": write, "gen_ai.usage.output_tokens": out,
        "gen_ai.usage.reasoning.output_tokens": reasoning,
    }  # fmt: skip
    valid = read + write <= total_in and reasoning <= out
    if not valid:
        with pytest.raises(SpanRejected):
            normalize_span(view(attributes))
        return
    call = normalize_span(view(attributes))
    assert call is not None
    usage = call.usage
    assert usage.input_tokens >= 0
    assert usage.cache_read_tokens + usage.cache_write_tokens <= usage.total_input_tokens
    assert usage.reasoning_tokens <= usage.output_tokens
    assert usage.total_input_tokens == total_in
