"""Anthropic usage from real emitters, normalized without double counting cached tokens.

Anthropic's wire ``input_tokens`` EXCLUDES cache reads and writes. Each emitter below is run for
real (the real ``anthropic`` SDK against the loopback FakeProvider, which answers with Anthropic's
own accounting) or, for OpenLIT (not installed), spelled exactly as its source sets the attributes:

* the anthropic SDK's own tracing adds cache into ``gen_ai.usage.input_tokens``;
* OpenLLMetry's ``opentelemetry-instrumentation-anthropic`` adds cache into it too (run for real in
  ``tests/peers/test_peer_spans.py``: the peers live in their own venv);
* OpenLIT sets Anthropic's native input as ``gen_ai.usage.input_tokens`` (cache left out).

The same call must come out as the same canonical usage from all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam
from llmcost_collector.model import SpanView, Usage
from llmcost_collector.normalize.span import SpanRejected, normalize_span
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

MODEL = "claude-haiku-4-5"
MESSAGES: list[MessageParam] = [{"role": "user", "content": "Summarise the attached contract."}]
# Anthropic wire usage: input_tokens 8000 (uncached only), cache read 5000, cache writes 1000 + 500
SCENARIO = Scenario(input_tokens=8000, cached_tokens=5000, cache_creation_5m=1000, cache_creation_1h=500,
                    output_tokens=300)  # fmt: skip
# canonical: uncached 8000, read 5000, written 1500 (500 of them 1h); total input 14500
CANONICAL = Usage(input_tokens=8000, cache_read_tokens=5000, cache_write_tokens=1500, cache_write_1h_tokens=500,
                  output_tokens=300)  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


def as_view(span: ReadableSpan) -> SpanView:
    context = span.get_span_context()
    assert context is not None
    return SpanView(
        trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}", name=span.name,
        start_time_ns=span.start_time or 0, end_time_ns=span.end_time or 0,
        attributes=dict(span.attributes or {}), resource=dict(span.resource.attributes),
        status_code=span.status.status_code.value, scope_name=span.instrumentation_scope.name if span.instrumentation_scope else "",
    )  # fmt: skip


def llm_calls(exporter: InMemorySpanExporter) -> list[Any]:
    calls = [normalize_span(as_view(span)) for span in exporter.get_finished_spans()]
    return [call for call in calls if call is not None]


def test_anthropic_sdk_own_tracing(fake: FakeProvider) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake.push(SCENARIO)
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0,
                                 open_telemetry={"tracer_provider": provider})  # fmt: skip
    client.messages.create(model=MODEL, max_tokens=400, messages=MESSAGES)
    (call,) = llm_calls(exporter)
    attributes = exporter.get_finished_spans()[0].attributes or {}
    assert attributes["gen_ai.usage.input_tokens"] == 14500  # the SDK folds cache into input
    assert call.usage == CANONICAL


def openlit_span(system: str, input_tokens: int, read: int, write: int) -> SpanView:
    """Attributes as OpenLIT's instrumentation/anthropic/utils.py (and openai) sets them."""
    return SpanView(
        trace_id="c" * 32, span_id="d" * 16, name=f"chat {MODEL}", start_time_ns=1, end_time_ns=2,
        attributes={
            "gen_ai.operation.name": "chat", "gen_ai.system": system, "gen_ai.request.model": MODEL,
            "gen_ai.response.model": MODEL, "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": read,
            "gen_ai.usage.cache_creation.input_tokens": write, "gen_ai.usage.cost": 0.0123,
            "gen_ai.client.token.usage": input_tokens + 300,
        },
        resource={"telemetry.sdk.name": "openlit", "service.name": "contracts"},
    )  # fmt: skip


def test_openlit_anthropic_native_input_is_taken_as_uncached() -> None:
    call = normalize_span(openlit_span("anthropic", 8000, 5000, 1500))
    assert call is not None and call.dialect == "openlit"
    # input 8000 >= cache 6500, so arithmetic alone would have guessed "includes": 1500 uncached
    assert (call.usage.input_tokens, call.usage.total_input_tokens) == (8000, 14500)


def test_openlit_openai_input_still_includes_cache() -> None:
    call = normalize_span(openlit_span("openai", 8000, 5000, 0))
    assert call is not None and (call.usage.input_tokens, call.usage.cache_read_tokens) == (3000, 5000)


@pytest.mark.parametrize(
    ("trace_id", "span_id"),
    [("", "d" * 16), ("0" * 32, "d" * 16), ("c" * 32, "0" * 16), ("c" * 31, "d" * 16)],
)
def test_llm_span_without_ids_is_rejected(trace_id: str, span_id: str) -> None:
    span = openlit_span("openai", 10, 0, 0)
    span.trace_id, span.span_id = trace_id, span_id
    with pytest.raises(SpanRejected, match="trace/span id"):
        normalize_span(span)


def test_non_llm_span_without_ids_is_just_skipped() -> None:
    span = SpanView(trace_id="", span_id="", name="GET /", start_time_ns=1, end_time_ns=2,
                    attributes={"http.request.method": "GET"}, resource={})  # fmt: skip
    assert normalize_span(span) is None


def test_cached_audio_is_not_billed_as_uncached_audio() -> None:
    span = openlit_span("openai", 1000, 900, 0)
    span.attributes["gen_ai.usage.input_audio_tokens"] = 400  # 400 audio of 1000 input, 900 of it cached
    call = normalize_span(span)
    assert call is not None
    # uncached = 1000 - 900 = 100, so at most 100 audio tokens can be uncached
    assert (call.usage.input_tokens, call.usage.input_audio_tokens, call.usage.cache_read_tokens) == (
        100,
        100,
        900,
    )


def test_openinference_embedding_span_is_billed_under_its_embedding_model() -> None:
    span = SpanView(trace_id="c" * 32, span_id="d" * 16, name="CreateEmbeddings", start_time_ns=1, end_time_ns=2,
                    attributes={"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small",
                                "llm.token_count.prompt": 1200, "llm.token_count.total": 1200}, resource={})  # fmt: skip
    call = normalize_span(span)
    assert call is not None
    assert (call.request_model, call.operation, call.usage) == (
        "text-embedding-3-small",
        "embedding",
        Usage(1200),
    )
