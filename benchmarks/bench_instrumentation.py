"""Per-call overhead of the instrumentation (issue 3), against the loopback fake provider.

One run measures a non-streaming chat completion through the real openai SDK, one client reused,
inside ``attribute(...)`` as in a real service:

* ``bare``: the SDK alone;
* ``ours``: with ``OpenAIInstrumentor`` (otel_llmcost);
* ``openai-v2``: with the official ``opentelemetry-instrumentation-openai-v2``;
* ``manual span``: the SDK call wrapped by hand in one bare OTel SDK span carrying the same 12
  attributes (started with the 5 request attributes, the 7 response ones set after the call), the
  floor any instrumentation that records a span pays;

plus the cost of that bare span alone in a tight loop. Every variant uses the same TracerProvider:
our AttributionSpanProcessor and a SimpleSpanProcessor whose exporter counts and drops spans.

On a shared machine a call's time drifts by more than the instrumentation costs, so the variants
are interleaved finely: each cycle visits the four in rotating order; a variant is instrumented
just before its turn (``instrument()``), makes one untimed call, then ``PER_TURN`` timed calls, and
is uninstrumented (``uninstrument()``) right after. A variant's added cost is the median over
cycles of (its median call in the cycle - the bare median call in the same cycle). Each call is
timed on the calling thread's CPU clock (the instrumentation runs there; the fake provider's
thread and the scheduler's noise do not) and on the wall clock.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import openai
from llmcost_demo.fake_provider import FakeProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_llmcost import AttributionSpanProcessor, attribute
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

CYCLES = 440
PER_TURN = 5  # timed calls per variant per cycle: 440 x 5 = 2,200 per variant
SPAN_LOOPS = 7
SPAN_REPEATS = 3000
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "hi"}]
REQUEST_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": MODEL,
    "server.address": "127.0.0.1", "server.port": 1,
}  # fmt: skip
RESPONSE_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.response.model": MODEL, "gen_ai.response.id": "chatcmpl-1", "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 8, "llmcost.team": "bench",
    "llmcost.feature": "overhead",
}  # fmt: skip


class DropExporter(SpanExporter):
    """Counts spans and drops them (the benchmark checks that each variant really traced)."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def timed_each(fn: Callable[[], object], n: int) -> tuple[list[float], list[float]]:
    """Per call: (thread CPU µs list, wall µs list)."""
    cpu: list[float] = []
    wall: list[float] = []
    thread_time, perf_counter = time.thread_time, time.perf_counter
    for _ in range(n):
        w, c = perf_counter(), thread_time()
        fn()
        cpu.append((thread_time() - c) * 1e6)
        wall.append((perf_counter() - w) * 1e6)
    return cpu, wall


def run() -> str:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OfficialInstrumentor

    exporter = DropExporter()
    provider = TracerProvider()
    provider.add_span_processor(AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def bare_span() -> None:
        span = tracer.start_span(f"chat {MODEL}", attributes=REQUEST_ATTRIBUTES)
        span.set_attributes(RESPONSE_ATTRIBUTES)
        span.end()

    ours, official = OpenAIInstrumentor(), OfficialInstrumentor()
    nothing: Callable[[], None] = lambda: None  # noqa: E731
    started = time.perf_counter()
    with FakeProvider() as fake, attribute(team="bench", feature="overhead", user_id="u-1"):
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)

        def call() -> object:
            return client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

        def manual_span_call() -> object:
            span = tracer.start_span(f"chat {MODEL}", attributes=REQUEST_ATTRIBUTES)
            result = call()
            span.set_attributes(RESPONSE_ATTRIBUTES)
            span.end()
            return result

        variants: dict[str, tuple[Callable[[], None], Callable[[], object], Callable[[], None]]] = {
            "bare": (nothing, call, nothing),
            "ours": (lambda: ours.instrument(tracer_provider=provider), call, ours.uninstrument),
            "openai-v2": (lambda: official.instrument(tracer_provider=provider), call, official.uninstrument),
            "manual span": (nothing, manual_span_call, nothing),
        }
        names = list(variants)
        per_cycle: dict[str, list[tuple[float, float]]] = {n: [] for n in names}  # (cpu, wall) medians
        traced = dict.fromkeys(names, 0)
        for name in names:  # warm-up: connection, SDK caches, each instrumentation's first calls
            on, fn, off = variants[name]
            on()
            timed_each(fn, 50)
            off()
        gc.collect()
        for cycle in range(CYCLES):
            k = cycle % len(names)
            for name in names[k:] + names[:k]:
                on, fn, off = variants[name]
                on()
                fn()  # untimed: the first call after instrumenting
                before = exporter.count
                cpu, wall = timed_each(fn, PER_TURN)
                traced[name] += exporter.count - before
                off()
                per_cycle[name].append((statistics.median(cpu), statistics.median(wall)))
        span_cpu: list[float] = []
        for _ in range(SPAN_LOOPS):
            gc.collect()
            c = time.thread_time()
            for _ in range(SPAN_REPEATS):
                bare_span()
            span_cpu.append((time.thread_time() - c) / SPAN_REPEATS * 1e6)
    elapsed = time.perf_counter() - started
    timed_calls = CYCLES * PER_TURN
    # each traced variant made exactly one span per call; the bare SDK none
    assert traced == {"bare": 0, "ours": timed_calls, "openai-v2": timed_calls, "manual span": timed_calls}, (
        traced
    )

    def added(name: str, clock: int) -> float:
        return statistics.median(
            v[clock] - b[clock] for v, b in zip(per_cycle[name], per_cycle["bare"], strict=True)
        )

    def typical(name: str, clock: int) -> float:
        return statistics.median(v[clock] for v in per_cycle[name])

    cpu_added = {n: added(n, 0) for n in names if n != "bare"}
    wall_added = {n: added(n, 1) for n in names if n != "bare"}
    ours_q = statistics.quantiles(
        [v[0] - b[0] for v, b in zip(per_cycle["ours"], per_cycle["bare"], strict=True)], n=4
    )
    span_alone = statistics.median(span_cpu)
    vs_span = cpu_added["ours"] / span_alone
    vs_manual = cpu_added["ours"] / cpu_added["manual span"]
    vs_official = cpu_added["ours"] / cpu_added["openai-v2"]

    def met(ratio: float, goal: float) -> str:
        return "met" if ratio <= goal else "**not met**"

    rows = "".join(
        f"| {label} | {typical(n, 1):.0f} | {typical(n, 0):.0f} | "
        + ("|" if n == "bare" else f"{wall_added[n]:+.1f} | **{cpu_added[n]:+.1f}**")
        + " |\n"
        for n, label in (
            ("bare", "bare SDK call"),
            ("ours", "with otel_llmcost"),
            ("openai-v2", "with opentelemetry-instrumentation-openai-v2"),
            ("manual span", "wrapped by hand in one bare span (same 12 attributes)"),
        )
    )
    return (
        "## Instrumentation overhead (issue 3)\n\n"
        "Non-streaming chat completion through the real openai SDK (one client) against the loopback fake "
        f"provider, inside `attribute(...)`. {CYCLES} cycles; in each, every variant in rotating order is "
        f"instrumented, makes one untimed call and {PER_TURN} timed calls ({timed_calls:,} per variant, each "
        "traced: checked), and is uninstrumented. Spans go to a no-op exporter. *Added* is the median over "
        "cycles of the difference to the bare calls of the same cycle; CPU is the calling thread's "
        f"(steadier than the wall clock on a shared machine). Run took {elapsed:.0f} s.\n\n"
        "| variant | wall µs/call | CPU µs/call | added, wall µs | added, CPU µs |\n"
        "|---|---:|---:|---:|---:|\n"
        f"{rows}"
        f"| one bare span alone (start with 5 attributes, set 7, end), tight loop | | {span_alone:.1f} | | |\n\n"
        f"Our added CPU per call, interquartile range over cycles: {ours_q[0]:+.0f} to {ours_q[2]:+.0f} µs.\n\n"
        f"- ours / one bare span alone: **{vs_span:.2f}x** (goal <= 1.5x: {met(vs_span, 1.5)})\n"
        f"- ours / the same bare span around the real call: **{vs_manual:.2f}x** (like for like: a span in "
        "the middle of an SDK call costs more than in a tight loop, for ours and any other)\n"
        f"- ours / openai-v2: **{vs_official:.2f}x** (goal <= 1x: {met(vs_official, 1.0)})\n"
    )


if __name__ == "__main__":
    print(run())
