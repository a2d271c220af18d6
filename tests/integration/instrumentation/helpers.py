"""Scenarios, clients and span readers shared by the instrumentation tests.

Expected token counts are derived by hand from the Scenario:

* OpenAI reports ``prompt_tokens`` INCLUDING cached tokens and ``completion_tokens`` INCLUDING
  reasoning tokens; the span says the same (OTel GenAI semantics), so the numbers pass through.
* Anthropic reports ``input_tokens`` EXCLUDING cache reads and writes; the span's input includes
  them: 500 + 1000 read + (300 + 100) written = 1900.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
from llmcost_demo.fake_provider import FakeProvider, Scenario
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

MODEL = "gpt-4o"
SNAPSHOT = "gpt-4o-2024-08-06"  # the fake answers with this response model
EMBED_MODEL = "text-embedding-3-small"
MESSAGES = [{"role": "user", "content": "Write a haiku about quarterly invoices."}]
TEXT = "Hello from the fake provider."  # the fake's default answer

OPENAI_SCENARIO = Scenario(
    input_tokens=1200, cached_tokens=200, output_tokens=300, reasoning_tokens=100, model=SNAPSHOT
)
OPENAI_USAGE = {
    "gen_ai.usage.input_tokens": 1200,  # prompt_tokens, which already includes the 200 cached
    "gen_ai.usage.cache_read.input_tokens": 200,
    "gen_ai.usage.output_tokens": 300,  # completion_tokens, which already includes the 100 reasoning
    "gen_ai.usage.reasoning.output_tokens": 100,
}
EMBEDDINGS_USAGE = {
    "gen_ai.usage.input_tokens": 1200,  # embeddings report prompt_tokens only; no cache, no output
    "gen_ai.usage.output_tokens": 0,
}

CLAUDE = "claude-haiku-4-5"
ANTHROPIC_SCENARIO = Scenario(
    input_tokens=500, cached_tokens=1000, cache_creation_5m=300, cache_creation_1h=100, output_tokens=80
)
ANTHROPIC_USAGE = {
    "gen_ai.usage.input_tokens": 1900,  # 500 uncached + 1000 cache read + 400 cache written
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.cache_write.input_tokens": 400,  # 300 (5m) + 100 (1h)
    "llmcost.usage.cache_creation.5m.input_tokens": 300,
    "llmcost.usage.cache_creation.1h.input_tokens": 100,
    "gen_ai.usage.output_tokens": 80,
}


@dataclass
class Otel:
    """A real SDK TracerProvider (our attribution processor + an in-memory exporter)."""

    provider: TracerProvider
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def only(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [(s.name, s.instrumentation_scope) for s in spans]
        return spans[0]

    def processors(self) -> tuple[object, ...]:
        return tuple(self.provider._active_span_processor._span_processors)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def usage_of(span: ReadableSpan) -> dict[str, Any]:
    return {k: v for k, v in attrs(span).items() if k.startswith(("gen_ai.usage.", "llmcost.usage."))}


def client(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)


def aclient(fake: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)


def claude(fake: FakeProvider, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0, **options)


def aclaude(fake: FakeProvider, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=fake.anthropic_base_url, api_key="test", max_retries=0, **options
    )


def openai_request(op: str, stream: bool, include_usage: bool = True) -> dict[str, Any]:
    if op == "chat":
        kwargs: dict[str, Any] = {"model": MODEL, "messages": MESSAGES}
        if stream:
            kwargs["stream"] = True
            if include_usage:
                kwargs["stream_options"] = {"include_usage": True}
        return kwargs
    if op == "responses":
        return {"model": MODEL, "input": MESSAGES[0]["content"], **({"stream": True} if stream else {})}
    return {"model": EMBED_MODEL, "input": [MESSAGES[0]["content"], "second input"]}


def resource(c: Any, op: str) -> Any:
    return {"chat": c.chat.completions, "responses": c.responses, "embeddings": c.embeddings}[op]


def chunk_contents(chunks: list[Any]) -> list[dict[str, Any]]:
    """What a caller sees in each chunk, minus the per-response random id and timestamp."""
    return [c.model_dump(exclude={"id", "created"}) for c in chunks]


@contextmanager
def openai_paused(otel: Otel) -> Iterator[None]:
    """Run a block against the bare SDK (for what-the-caller-gets comparisons)."""
    OpenAIInstrumentor().uninstrument()
    try:
        yield
    finally:
        OpenAIInstrumentor().instrument(tracer_provider=otel.provider)
