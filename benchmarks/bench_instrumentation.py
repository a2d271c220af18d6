"""Per-call overhead of the instrumentation (issue 3), against the loopback fake provider.

One run measures, interleaved, a non-streaming chat completion through the real openai SDK:
bare, with otel_llmcost, and with the official opentelemetry-instrumentation-openai-v2; plus the
cost of one bare OTel SDK span carrying the same attributes. Spans go to a no-op exporter so only
instrumentation cost is measured.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import openai
from llmcost_collector.fake_provider import FakeProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_llmcost import AttributionSpanProcessor, attribute
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

CALLS = 400
ROUNDS = 7
IN_PROCESS_SLICES = 40
SLICE = 250


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def tracer_provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(DropExporter()))
    return provider


def timed(fn: Callable[[], object], n: int = CALLS, clock: Callable[[], float] = time.perf_counter) -> float:
    started = clock()
    for _ in range(n):
        fn()
    return (clock() - started) / n * 1e6


def cpu_timed(fn: Callable[[], object], n: int) -> float:
    """CPU time of this thread: everything in-process runs here, other processes don't count."""
    return timed(fn, n, time.thread_time)


def in_process_client() -> openai.OpenAI:
    """The same SDK and wire format without sockets: the fake provider's own handler answers
    through httpx's in-process transport, so run-to-run network noise no longer hides the
    microseconds that instrumentation adds."""
    import json

    import httpx
    from llmcost_collector.fake_provider import Scenario
    from llmcost_collector.fake_provider.openai_wire import handle

    def answer(request: httpx.Request) -> httpx.Response:
        reply = handle(request.url.path, json.loads(request.content), Scenario())
        return httpx.Response(reply.status, json=reply.body, headers=reply.headers)

    http_client = httpx.Client(transport=httpx.MockTransport(answer))
    return openai.OpenAI(base_url="http://fake.local/v1", api_key="x", max_retries=0, http_client=http_client)


def isolated_overhead(provider: TracerProvider, span_attributes: dict[str, Any]) -> tuple[float, float]:
    """Our wrapper around a call that returns a real parsed ChatCompletion at once, vs. one bare span.

    Removes the SDK's ~1 ms of request building and parsing, whose jitter dwarfs the difference.
    """
    from otel_llmcost.instrumentation.openai import _wrapper

    local = in_process_client()
    messages = [{"role": "user", "content": "hi"}]
    canned = local.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    wrapper = _wrapper(provider.get_tracer("otel_llmcost.instrumentation.openai"), "chat")
    tracer = provider.get_tracer("bench")

    def answer(*args: object, **kwargs: object) -> object:
        return canned

    def ours() -> None:
        wrapper(answer, local.chat.completions, (), {"model": "gpt-4o-mini", "messages": messages})

    def span() -> None:
        tracer.start_span("chat gpt-4o-mini", attributes=span_attributes).end()

    runs: dict[str, list[float]] = {"ours": [], "span": [], "noop": []}
    for _ in range(15):
        runs["noop"].append(cpu_timed(lambda: answer(model="gpt-4o-mini", messages=messages), 3000))
        runs["ours"].append(cpu_timed(ours, 3000))
        runs["span"].append(cpu_timed(span, 3000))
    med = {k: statistics.median(v) for k, v in runs.items()}
    return med["ours"] - med["noop"], med["span"]


def run() -> str:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OfficialInstrumentor

    provider = tracer_provider()
    tracer = provider.get_tracer("bench")
    attributes = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "server.address": "127.0.0.1", "server.port": 1, "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.id": "chatcmpl-1", "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 8, "llmcost.team": "t", "llmcost.feature": "f",
    }  # fmt: skip

    def bare_span() -> None:
        span = tracer.start_span("chat gpt-4o-mini", attributes=attributes)
        span.end()

    results: dict[str, list[float]] = {"bare": [], "ours": [], "official": [], "span": []}
    with FakeProvider() as fake, attribute(team="bench", feature="overhead"):
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)

        def call() -> object:
            return client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )

        timed(call, 50)  # warm-up: connections, SDK caches
        for _ in range(ROUNDS):
            results["bare"].append(timed(call))
            OpenAIInstrumentor().instrument(tracer_provider=provider)
            timed(call, 20)
            results["ours"].append(timed(call))
            OpenAIInstrumentor().uninstrument()
            OfficialInstrumentor().instrument(tracer_provider=provider)
            timed(call, 20)
            results["official"].append(timed(call))
            OfficialInstrumentor().uninstrument()
            results["span"].append(cpu_timed(bare_span, 5000))
        local = in_process_client()

        def local_call() -> object:
            return local.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )

        timed(local_call, 200)
        # Fine-grained interleaving (A, B, C, A, B, C, ...) cancels drift in the process (heap
        # growth, GC generations, CPU frequency) that coarse rounds would attribute to a variant.
        totals = {"local_bare": 0.0, "local_ours": 0.0, "local_official": 0.0}
        for _ in range(IN_PROCESS_SLICES):
            totals["local_bare"] += cpu_timed(local_call, SLICE)
            OpenAIInstrumentor().instrument(tracer_provider=provider)
            totals["local_ours"] += cpu_timed(local_call, SLICE)
            OpenAIInstrumentor().uninstrument()
            OfficialInstrumentor().instrument(tracer_provider=provider)
            totals["local_official"] += cpu_timed(local_call, SLICE)
            OfficialInstrumentor().uninstrument()
        for name, total in totals.items():
            results[name] = [total / IN_PROCESS_SLICES]
        iso_ours, iso_span = isolated_overhead(provider, attributes)
    med = {name: statistics.median(values) for name, values in results.items()}
    med["span"] = min(results["span"])  # CPU-time rounds only err upwards: the minimum is stable
    local_ours = med["local_ours"] - med["local_bare"]
    local_official = med["local_official"] - med["local_bare"]
    ours = med["ours"] - med["bare"]
    official = med["official"] - med["bare"]
    return (
        "## Instrumentation overhead (issue 3)\n\n"
        f"Non-streaming chat completion through the real openai SDK against the loopback fake provider; "
        f"{ROUNDS} interleaved rounds of {CALLS} calls, medians; spans to a no-op exporter.\n\n"
        "| variant | µs per call | added vs bare |\n|---|---:|---:|\n"
        f"| bare SDK call | {med['bare']:.0f} | |\n"
        f"| with otel_llmcost | {med['ours']:.0f} | {ours:+.1f} µs |\n"
        f"| with opentelemetry-instrumentation-openai-v2 | {med['official']:.0f} | {official:+.1f} µs |\n"
        f"| one bare OTel SDK span with the same 12 attributes | {med['span']:.1f} | |\n\n"
        f"Over loopback a call costs ~{med['bare'] / 1000:.1f} ms and run-to-run noise is of the same order as the "
        "instrumentation, so the goals are judged on the in-process measurement below.\n\n"
        f"In process (the fake provider's wire handler behind `httpx.MockTransport`; {IN_PROCESS_SLICES} interleaved "
        f"slices of {SLICE} calls per variant; CPU time of the calling thread, which runs all of it):\n\n"
        "| variant | µs per call | added vs bare |\n|---|---:|---:|\n"
        f"| bare SDK call | {med['local_bare']:.1f} | |\n"
        f"| with otel_llmcost | {med['local_ours']:.1f} | {local_ours:+.1f} µs |\n"
        f"| with opentelemetry-instrumentation-openai-v2 | {med['local_official']:.1f} | {local_official:+.1f} µs |\n\n"
        f"Ours / official: **{local_ours / local_official:.2f}x** (goal <= 1x). Ours / one bare span: "
        f"{local_ours / med['span']:.2f}x, but at this scale SDK jitter dominates; isolated below.\n\n"
        "Isolated (our wrapper around a call that returns the SDK's real parsed ChatCompletion at once, "
        "15 interleaved runs of 3000, medians; both with the attribution processor and a no-op exporter): "
        f"ours adds **{iso_ours:.1f} µs**, one bare span with the same 12 attributes costs {iso_span:.1f} µs: "
        f"**{iso_ours / iso_span:.2f}x** (goal <= 1.5x). The difference is making the span current for "
        "the request (context attach/detach) and a second attribute write once the response is known.\n"
    )
