"""Usage normalization: every dialect in docs/reference.md gives one canonical usage; bad usage is rejected.

One call throughout: 2000 prompt tokens in total, of which 500 read from the prompt cache and 250
written to it; 700 output tokens, of which 300 reasoning. Canonical (uncached) input is
2000 - 500 - 250 = 1250.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmcost_collector.model import SpanView, Usage
from llmcost_collector.normalize.span import MAX_TOKENS, SpanRejected, normalize_span

CANONICAL = Usage(
    input_tokens=1250, cache_read_tokens=500, cache_write_tokens=250, output_tokens=700, reasoning_tokens=300
)
# dialect name -> (attributes as that instrumentation emits them, expected LlmCall.dialect)
DIALECTS: dict[str, tuple[dict[str, object], str]] = {
    "otel current": ({
        "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.cache_read.input_tokens": 500,
        "gen_ai.usage.cache_creation.input_tokens": 250, "gen_ai.usage.output_tokens": 700,
        "gen_ai.usage.reasoning.output_tokens": 300,
    }, "otel"),
    "otel deprecated": ({
        "gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.prompt_tokens": 2000, "gen_ai.usage.completion_tokens": 700,
        "gen_ai.usage.cache_read.input_tokens": 500, "gen_ai.usage.cache_creation.input_tokens": 250,
        "gen_ai.usage.reasoning.output_tokens": 300,
    }, "otel-deprecated"),
    "openllmetry": ({
        "gen_ai.system": "openai", "llm.request.type": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 700, "llm.usage.total_tokens": 2700,
        "gen_ai.usage.cache_read_input_tokens": 500, "gen_ai.usage.cache_creation_input_tokens": 250,
        "gen_ai.usage.reasoning_tokens": 300,
        "traceloop.association.properties.team": "search",
        "traceloop.association.properties.user_id": "u-42",
        "traceloop.association.properties.tenant": "acme",
    }, "openllmetry"),
    "openinference": ({
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.system": "openai",
        "llm.model_name": "gpt-4o", "llm.token_count.prompt": 2000, "llm.token_count.completion": 700,
        "llm.token_count.total": 2700, "llm.token_count.prompt_details.cache_read": 500,
        "llm.token_count.prompt_details.cache_write": 250, "llm.token_count.completion_details.reasoning": 300,
    }, "openinference"),
    "openlit": ({
        "gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 700,
        "gen_ai.usage.cache_read.input_tokens": 500, "gen_ai.usage.cache_creation.input_tokens": 250,
        "gen_ai.usage.reasoning.output_tokens": 300, "gen_ai.usage.cost": 0.0123,
    }, "openlit"),
}  # fmt: skip


def view(attributes: dict[str, object], resource: dict[str, object] | None = None) -> SpanView:
    return SpanView(
        trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331", name="chat",
        start_time_ns=1_700_000_000 * 10**9, end_time_ns=1_700_000_001 * 10**9,
        attributes=attributes, resource=resource or {},
    )  # fmt: skip


def usage_of(attributes: dict[str, object]) -> Usage:
    call = normalize_span(view(attributes))
    assert call is not None
    return call.usage


@pytest.mark.parametrize("name", DIALECTS)
def test_every_dialect_gives_the_same_canonical_usage(name: str) -> None:
    attributes, dialect = DIALECTS[name]
    call = normalize_span(view(dict(attributes)))
    assert call is not None
    assert call.usage == CANONICAL
    assert call.usage.total_input_tokens == 2000 and call.usage.total_tokens == 2700
    assert (call.provider, call.model, call.dialect) == ("openai", "gpt-4o", dialect)


def test_openllmetry_association_properties_carry_attribution() -> None:
    call = normalize_span(view(dict(DIALECTS["openllmetry"][0])))
    assert call is not None
    assert (call.attribution.team, call.attribution.user_id) == ("search", "u-42")
    assert call.attribution.properties == {"tenant": "acme"}


def test_llmcost_team_wins_over_traceloop_team() -> None:
    attributes = {**DIALECTS["openllmetry"][0], "llmcost.team": "payments"}
    call = normalize_span(view(attributes))
    assert call is not None and call.attribution.team == "payments"


def test_openinference_span_kind_becomes_the_operation() -> None:
    call = normalize_span(view(dict(DIALECTS["openinference"][0])))
    assert call is not None and call.operation == "llm"


def test_openlit_is_recorded_as_its_own_dialect() -> None:
    attributes, _ = DIALECTS["openlit"]
    call = normalize_span(view(dict(attributes), {"telemetry.sdk.name": "openlit"}))
    assert call is not None and call.dialect == "openlit"


# --- Anthropic-style usage, where input excludes cache tokens ---------------------------------


@pytest.mark.parametrize("provider", ["anthropic", "aws.bedrock", "gcp.vertex_ai"])
def test_anthropic_native_usage_is_not_double_counted(provider: str) -> None:
    """input_tokens 120 excludes 9000 cache reads + 600 writes: 120 uncached, 9720 in all (not 120 - 9600)."""
    usage = usage_of({
        "gen_ai.provider.name": provider, "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 120, "gen_ai.usage.cache_read.input_tokens": 9000,
        "gen_ai.usage.cache_creation.input_tokens": 600, "gen_ai.usage.output_tokens": 80,
    })  # fmt: skip
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (120, 9000, 600)
    assert usage.total_input_tokens == 120 + 9000 + 600


def test_the_same_cache_excess_from_a_non_anthropic_provider_is_rejected() -> None:
    with pytest.raises(
        SpanRejected, match=r"cache tokens \(9000 read \+ 600 written\) exceed input tokens \(120\)"
    ):
        normalize_span(view({
            "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 120, "gen_ai.usage.cache_read.input_tokens": 9000,
            "gen_ai.usage.cache_creation.input_tokens": 600, "gen_ai.usage.output_tokens": 80,
        }))  # fmt: skip


def test_anthropic_sdk_own_attribute_names() -> None:
    """The anthropic SDK's tracing: input = 300 + 4000 + 1500 (it adds cache in); writes split 5m/1h."""
    usage = usage_of({
        "gen_ai.provider.name": "anthropic", "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-opus-4-1", "gen_ai.usage.input_tokens": 5800,
        "gen_ai.usage.cache_read.input_tokens": 4000, "gen_ai.usage.cache_write.input_tokens": 1500,
        "anthropic.usage.cache_creation.ephemeral_5m_input_tokens": 1000,
        "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 500,
        "gen_ai.usage.output_tokens": 90, "gen_ai.usage.reasoning.output_tokens": 40,
    })  # fmt: skip
    assert usage == Usage(input_tokens=300, cache_read_tokens=4000, cache_write_tokens=1500,
                          cache_write_1h_tokens=500, output_tokens=90, reasoning_tokens=40)  # fmt: skip
    assert (usage.cache_write_5m_tokens, usage.total_input_tokens) == (1000, 5800)


def test_ttl_split_alone_gives_the_total_cache_writes() -> None:
    usage = usage_of({
        "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-opus-4-1",
        "gen_ai.usage.input_tokens": 1000, "anthropic.usage.cache_creation.ephemeral_5m_input_tokens": 200,
        "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 300, "gen_ai.usage.output_tokens": 1,
    })  # fmt: skip
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (500, 500, 300)


# --- rejections ---------------------------------------------------------------------------------

BASE = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 50}  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("gen_ai.usage.input_tokens", -1, r"gen_ai.usage.input_tokens is negative \(-1\)"),
        ("gen_ai.usage.output_tokens", MAX_TOKENS + 1, r"absurd \(1000000001 > 10\^9 tokens\)"),
        ("gen_ai.usage.input_tokens", 10**12, r"absurd"),
        ("gen_ai.usage.input_tokens", math.nan, r"must be an integer, got nan"),
        ("gen_ai.usage.output_tokens", math.inf, r"must be an integer, got inf"),
        ("gen_ai.usage.input_tokens", 10.5, r"must be an integer, got 10.5"),
        ("gen_ai.usage.input_tokens", "100", r"must be an integer, got str '100'"),
        ("gen_ai.usage.output_tokens", True, r"must be an integer, got bool True"),
        ("gen_ai.usage.input_tokens", [100], r"must be an integer, got list"),
        ("gen_ai.usage.cache_read.input_tokens", 101, r"cache tokens \(101 read \+ 0 written\) exceed input"),
        ("gen_ai.usage.cache_read.input_tokens", -5, r"negative"),
        ("gen_ai.usage.reasoning.output_tokens", 51, r"reasoning tokens \(51\) exceed output tokens \(50\)"),
        ("llm.token_count.prompt", -3, r"negative"),
    ],
)
def test_bad_usage_is_rejected_with_a_reason(key: str, value: object, reason: str) -> None:
    attributes = dict(BASE)
    if key.startswith("llm."):  # OpenInference spelling: only that dialect's names
        attributes = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                      "llm.token_count.completion": 5}  # fmt: skip
    attributes[key] = value
    with pytest.raises(SpanRejected, match=reason):
        normalize_span(view(attributes))


def test_limits_themselves_are_accepted() -> None:
    usage = usage_of({**BASE, "gen_ai.usage.input_tokens": MAX_TOKENS, "gen_ai.usage.output_tokens": 0})
    assert usage.input_tokens == 10**9
    whole_float = usage_of({**BASE, "gen_ai.usage.input_tokens": 100.0})  # OTLP double with an integer value
    assert whole_float.input_tokens == 100 and isinstance(whole_float.input_tokens, int)


def test_one_h_writes_above_all_writes_are_rejected() -> None:
    with pytest.raises(SpanRejected, match=r"1h cache writes \(300\) exceed cache writes \(200\)"):
        normalize_span(view({**BASE, "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cache_creation.input_tokens": 200,
                             "llmcost.usage.cache_creation.1h.input_tokens": 300}))  # fmt: skip


# --- spans that are not billable LLM calls ----------------------------------------------------


@pytest.mark.parametrize(
    "attributes",
    [
        {"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 10},  # no model
        {"http.method": "POST", "http.route": "/v1/chat"},
        {**BASE, "gen_ai.operation.name": "invoke_agent"},
        {**BASE, "gen_ai.operation.name": "execute_tool"},
        {**BASE, "gen_ai.operation.name": "create_agent"},
        {"openinference.span.kind": "CHAIN", "llm.model_name": "gpt-4o", "llm.token_count.prompt": 10},
        {"openinference.span.kind": "AGENT", "llm.model_name": "gpt-4o", "llm.token_count.prompt": 10},
        {"openinference.span.kind": "TOOL", "llm.model_name": "gpt-4o"},
        {"openinference.span.kind": "RETRIEVER", "llm.model_name": "text-embedding-3-small"},
    ],
    ids=[
        "no-model",
        "http",
        "invoke_agent",
        "execute_tool",
        "create_agent",
        "oi-chain",
        "oi-agent",
        "oi-tool",
        "oi-retriever",
    ],
)
def test_non_llm_spans_give_none(attributes: dict[str, object]) -> None:
    assert normalize_span(view(attributes)) is None


def test_agent_span_with_absurd_usage_is_skipped_not_rejected() -> None:
    """An orchestration span is never billed, so its aggregated (even odd) counts are not validated."""
    assert normalize_span(view({**BASE, "gen_ai.operation.name": "invoke_agent",
                                "gen_ai.usage.input_tokens": -1})) is None  # fmt: skip


def test_openinference_embedding_span_is_a_call() -> None:
    usage = usage_of({"openinference.span.kind": "EMBEDDING", "llm.model_name": "text-embedding-3-small",
                      "llm.token_count.prompt": 64})  # fmt: skip
    assert (usage.input_tokens, usage.output_tokens) == (64, 0)


# --- properties -----------------------------------------------------------------------------------

TOKENS = st.integers(min_value=0, max_value=MAX_TOKENS)


@st.composite
def otel_usage(draw: st.DrawFn) -> dict[str, object]:
    """Valid OTel GenAI usage: input includes cache reads and writes, output includes reasoning."""
    total_input = draw(TOKENS)
    cache_read = draw(st.integers(0, total_input))
    cache_write = draw(st.integers(0, total_input - cache_read))
    write_1h = draw(st.integers(0, cache_write))
    output = draw(TOKENS)
    reasoning = draw(st.integers(0, output))
    provider = draw(
        st.sampled_from(["openai", "anthropic", "aws.bedrock", "gcp.vertex_ai", "azure.ai.openai"])
    )
    attrs: dict[str, object] = {
        "gen_ai.provider.name": provider, "gen_ai.request.model": "m",
        "gen_ai.usage.input_tokens": total_input, "gen_ai.usage.output_tokens": output,
    }  # fmt: skip
    # absent and zero must mean the same thing
    for key, value in (("gen_ai.usage.cache_read.input_tokens", cache_read),
                       ("gen_ai.usage.cache_creation.input_tokens", cache_write),
                       ("llmcost.usage.cache_creation.1h.input_tokens", write_1h),
                       ("gen_ai.usage.reasoning.output_tokens", reasoning)):  # fmt: skip
        if value or draw(st.booleans()):
            attrs[key] = float(value) if draw(st.booleans()) and value < 2**53 else value
    return attrs


@settings(max_examples=300, deadline=None)
@given(otel_usage())
def test_invariants_hold_for_any_valid_otel_usage(attrs: dict[str, object]) -> None:
    usage = usage_of(attrs)
    assert usage.input_tokens >= 0
    assert usage.cache_read_tokens + usage.cache_write_tokens <= usage.total_input_tokens
    assert 0 <= usage.cache_write_1h_tokens <= usage.cache_write_tokens
    assert 0 <= usage.reasoning_tokens <= usage.output_tokens
    assert usage.total_input_tokens == attrs["gen_ai.usage.input_tokens"]  # never double counted
    assert usage.output_tokens == attrs["gen_ai.usage.output_tokens"]
    assert all(isinstance(v, int) for v in (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens))


@settings(max_examples=200, deadline=None)
@given(
    native_input=st.integers(0, 10**6), cache_read=st.integers(0, 10**6), cache_write=st.integers(0, 10**6),
    provider=st.sampled_from(["anthropic", "aws.bedrock", "gcp.vertex_ai"]),
)  # fmt: skip
def test_anthropic_native_input_is_never_double_counted(
    native_input: int, cache_read: int, cache_write: int, provider: str
) -> None:
    """Whenever native input is visibly exclusive (smaller than the cache tokens), it is taken as uncached."""
    if native_input >= cache_read + cache_write:
        return  # indistinguishable from OTel's inclusive input: read as inclusive (the contract)
    usage = usage_of({
        "gen_ai.provider.name": provider, "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.usage.input_tokens": native_input, "gen_ai.usage.cache_read.input_tokens": cache_read,
        "gen_ai.usage.cache_creation.input_tokens": cache_write, "gen_ai.usage.output_tokens": 1,
    })  # fmt: skip
    assert usage.input_tokens == native_input
    assert usage.total_input_tokens == native_input + cache_read + cache_write


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(DIALECTS)), st.integers(0, 10**6), st.integers(0, 10**6), st.data())
def test_dialects_agree_for_any_counts(name: str, total_input: int, output: int, data: st.DataObject) -> None:
    """The same counts spelled in any dialect give the same usage as the current OTel spelling."""
    read = data.draw(st.integers(0, total_input))
    write = data.draw(st.integers(0, total_input - read))
    reasoning = data.draw(st.integers(0, output))
    values = {2000: total_input, 500: read, 250: write, 700: output, 300: reasoning}
    otel = {k: values.get(v, v) if "usage" in k else v for k, v in DIALECTS["otel current"][0].items()}  # type: ignore[call-overload]
    other = {
        k: values.get(v, v) if ("usage" in k or "token_count" in k) and k != "gen_ai.usage.cost" else v  # type: ignore[call-overload]
        for k, v in DIALECTS[name][0].items()
    }
    assert usage_of(other) == usage_of(otel)
