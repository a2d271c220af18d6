"""Fixtures for the instrumentation tests: the loopback fake provider, a real SDK TracerProvider
with our attribution processor and an in-memory exporter, and each SDK instrumented on it.

The provider is set up the way ``otel_llmcost.configure()`` sets one up; the instrumentors only
wrap, so every fixture checks that ``instrument()`` left the provider's processors alone and that
``uninstrument()`` put back exactly the SDK's own methods.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from llmcost_demo.fake_provider import FakeProvider
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost import AttributionSpanProcessor
from otel_llmcost.instrumentation.anthropic import AnthropicInstrumentor
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

from .helpers import Otel

OPENAI_METHODS = (
    ("openai.resources.chat.completions.completions", "Completions", "create"),
    ("openai.resources.chat.completions.completions", "AsyncCompletions", "create"),
    ("openai.resources.responses.responses", "Responses", "create"),
    ("openai.resources.responses.responses", "AsyncResponses", "create"),
    ("openai.resources.embeddings", "Embeddings", "create"),
    ("openai.resources.embeddings", "AsyncEmbeddings", "create"),
)
ANTHROPIC_METHODS = tuple(
    ("anthropic.resources.messages.messages", cls, name)
    for cls in ("Messages", "AsyncMessages")
    for name in ("create", "stream")
)


def methods(targets: tuple[tuple[str, str, str], ...]) -> list[object]:
    """The functions stored on the SDK classes right now (``vars``: no descriptor binding)."""
    return [vars(getattr(importlib.import_module(m), c))[n] for m, c, n in targets]


@pytest.fixture(scope="package")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def otel(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    fake.reset()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # record_outcome(), the anthropic SDK's own tracing and third-party peers use the global provider
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    monkeypatch.delenv("ANTHROPIC_OPEN_TELEMETRY", raising=False)
    yield Otel(provider, exporter)
    provider.shutdown()


def _instrumented(
    otel: Otel, instrumentor: type, targets: tuple[tuple[str, str, str], ...]
) -> Iterator[Otel]:
    originals = methods(targets)
    processors = otel.processors()
    instrumentor().instrument(tracer_provider=otel.provider)
    assert all(now is not before for now, before in zip(methods(targets), originals, strict=True))  # wrapped
    assert otel.processors() == processors  # instrumentors only wrap: no processor added
    yield otel
    instrumentor().uninstrument()
    assert all(now is before for now, before in zip(methods(targets), originals, strict=True))


@pytest.fixture
def oai(otel: Otel) -> Iterator[Otel]:
    """Our OpenAI instrumentor on the test provider."""
    yield from _instrumented(otel, OpenAIInstrumentor, OPENAI_METHODS)


@pytest.fixture
def ant(otel: Otel) -> Iterator[Otel]:
    """Our Anthropic instrumentor, with the SDK's own tracing left on (its default)."""
    yield from _instrumented(otel, AnthropicInstrumentor, ANTHROPIC_METHODS)


@pytest.fixture
def ours_only(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    """The anthropic SDK's own tracing off (set before the client and instrument()): our spans."""
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    yield from _instrumented(otel, AnthropicInstrumentor, ANTHROPIC_METHODS)
