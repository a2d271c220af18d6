"""Our attribution processor stamps team/feature/user on third-party GenAI spans too.

Each third-party instrumentation (the official opentelemetry-instrumentation-openai-v2,
OpenInference, OpenLLMetry's opentelemetry-instrumentation-anthropic) instruments a real SDK client
against the fake provider on a provider set up as ``configure()`` does (our processor, no
instrumentor of ours); the span then goes through the collector's normalizer, proving the
collector prices it without double counting cached tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from llmcost_collector.model import SpanView
from llmcost_collector.normalize.span import normalize_span
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry.sdk.trace import ReadableSpan

import otel_llmcost

from .helpers import Otel

pytestmark = pytest.mark.integration


def to_view(span: ReadableSpan) -> SpanView:
    assert span.context is not None
    return SpanView(
        trace_id=f"{span.context.trace_id:032x}",
        span_id=f"{span.context.span_id:016x}",
        name=span.name,
        start_time_ns=span.start_time or 0,
        end_time_ns=span.end_time or 0,
        attributes=dict(span.attributes or {}),
        resource=dict(span.resource.attributes),
        status_code=span.status.status_code.value,
    )


def official_openai() -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()


def openinference_openai() -> Any:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def openllmetry_anthropic() -> Any:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    return AnthropicInstrumentor()


def call_openai(fake: FakeProvider) -> None:
    fake.push(Scenario(input_tokens=1000, cached_tokens=400, output_tokens=250))
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def call_anthropic(fake: FakeProvider) -> None:
    # Anthropic's own accounting: 600 uncached + 400 read = 1000 prompt tokens.
    fake.push(Scenario(input_tokens=600, cached_tokens=400, output_tokens=250))
    client = anthropic.Anthropic(
        base_url=fake.anthropic_base_url, api_key="x", max_retries=0, open_telemetry=False
    )  # the SDK's own spans off: only the third party's
    client.messages.create(
        model="claude-haiku-4-5", max_tokens=300, messages=[{"role": "user", "content": "hi"}]
    )


@pytest.mark.parametrize(
    ("make_instrumentor", "call", "model"),
    [
        (official_openai, call_openai, "gpt-4o-mini"),
        (openinference_openai, call_openai, "gpt-4o-mini"),
        (openllmetry_anthropic, call_anthropic, "claude-haiku-4-5"),
    ],
    ids=["openai-v2", "openinference", "openllmetry-anthropic"],
)
def test_third_party_spans_are_attributed_and_priced_once(
    make_instrumentor: Callable[[], Any],
    call: Callable[[FakeProvider], None],
    model: str,
    fake: FakeProvider,
    otel: Otel,
) -> None:
    instrumentor = make_instrumentor()
    instrumentor.instrument(tracer_provider=otel.provider)
    try:
        with otel_llmcost.attribute(team="marketing", feature="chat", user_id="u-7", session_path="/draft"):
            call(fake)
    finally:
        instrumentor.uninstrument()
    llm_spans = [s for s in otel.spans() if normalize_span(to_view(s)) is not None]
    assert len(llm_spans) == 1, [(s.name, dict(s.attributes or {})) for s in otel.spans()]
    attrs = llm_spans[0].attributes or {}
    assert (attrs["llmcost.team"], attrs["llmcost.feature"], attrs["user.id"], attrs["llmcost.session.path"]) == (
        "marketing", "chat", "u-7", "/draft",
    )  # fmt: skip
    priced = normalize_span(to_view(llm_spans[0]))
    assert priced is not None
    assert priced.model.startswith(model)
    assert priced.attribution.team == "marketing"
    assert priced.usage.output_tokens == 250
    # 1000 prompt tokens in all, whichever way the dialect splits them; never more.
    assert priced.usage.input_tokens + priced.usage.cache_read_tokens == 1000
    assert priced.usage.cache_read_tokens in (0, 400)
