"""A response-cache hit's latency and CPU per call, per backend (issue 14), next to a bare SDK call.

One run, one openai client, a non-streaming chat completion (temperature 0) against the loopback
fake provider, inside ``attribute(...)``:

* ``bare``: the SDK alone, uninstrumented, over HTTP to the fake provider;
* ``instrumented``: with ``OpenAIInstrumentor``, no cache (the call every hit replaces);
* ``hit: memory`` / ``hit: SQLite`` / ``hit: Redis``: with ``OpenAIInstrumentor`` inside
  ``otel_llmcost.cache(backend=...)``, the answer already stored: no HTTP request (checked), a
  span with ``llmcost.cache.hit=true`` (checked), the SDK's ``ChatCompletion`` rebuilt from JSON.
  Redis is a real ``redis-server`` on a loopback port, started for the run.

Variants are interleaved as in ``bench_instrumentation``: each cycle visits them in rotating
order; a variant is set up just before its turn, makes one untimed call, then ``PER_TURN`` timed
calls. A variant's figure is the median over cycles of its median call in the cycle; the ratio to
the bare call is taken cycle by cycle. CPU is the calling thread's (the cache lookup, the rebuild
and the span run there; the fake provider's thread does not).
"""

from __future__ import annotations

import contextlib
import gc
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
from bench_instrumentation import timed_each  # the same per-call timing as the overhead bench
from llmcost_demo.fake_provider import FakeProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_llmcost
from otel_llmcost import AttributionSpanProcessor, attribute
from otel_llmcost.cache import Backend, MemoryBackend, RedisBackend, SQLiteBackend
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor

CYCLES = 300
PER_TURN = 5  # timed calls per variant per cycle: 300 x 5 = 1,500 per variant
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "How do I reset my password?"}]


class HitCounter(SpanExporter):
    """Counts spans, and those that say they were answered from the cache; drops them."""

    def __init__(self) -> None:
        self.spans = 0
        self.hits = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        self.hits += sum(1 for s in spans if (s.attributes or {}).get("llmcost.cache.hit") is True)
        return SpanExportResult.SUCCESS


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port, no persistence; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: the Redis backend cannot be measured")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"redis://127.0.0.1:{port}/0"
            import redis

            client = redis.Redis.from_url(url)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            client.close()
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def run() -> str:
    counter = HitCounter()
    provider = TracerProvider()
    provider.add_span_processor(AttributionSpanProcessor(defaults={}))
    provider.add_span_processor(SimpleSpanProcessor(counter))
    ours = OpenAIInstrumentor()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        redis_server() as redis_url,
        FakeProvider() as fake,
        attribute(team="bench", feature="faq", user_id="u-1"),
    ):
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)
        backends: dict[str, Backend] = {
            "hit: memory": MemoryBackend(),
            "hit: SQLite": SQLiteBackend(Path(tmp) / "cache.db"),
            "hit: Redis": RedisBackend(redis_url),
        }

        def call() -> Any:
            return client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0)  # type: ignore[arg-type]

        def cached(backend: Backend) -> Callable[[], Any]:
            def hit() -> Any:
                with otel_llmcost.cache(ttl=86400, backend=backend):
                    return call()

            return hit

        instrumented = [False]

        def on() -> None:
            if not instrumented[0]:
                ours.instrument(tracer_provider=provider)
                instrumented[0] = True

        def off() -> None:
            if instrumented[0]:
                ours.uninstrument()
                instrumented[0] = False

        variants: dict[str, tuple[Callable[[], None], Callable[[], Any]]] = {
            "bare": (off, call),
            "instrumented": (on, call),
            **{name: (on, cached(backend)) for name, backend in backends.items()},
        }
        names = list(variants)
        on()
        answers = {name: cached(backend)() for name, backend in backends.items()}  # fills each backend
        for setup, fn in variants.values():  # warm-up: connection, SDK caches, type adapters
            setup()
            timed_each(fn, 30)
        gc.collect()
        per_cycle: dict[str, list[tuple[float, float]]] = {n: [] for n in names}  # (cpu, wall) medians
        requests = dict.fromkeys(names, 0)
        hits = dict.fromkeys(names, 0)
        for cycle in range(CYCLES):
            k = cycle % len(names)
            for name in names[k:] + names[:k]:
                setup, fn = variants[name]
                setup()
                fn()  # untimed
                before_requests, before_hits = len(fake.requests), counter.hits
                cpu, wall = timed_each(fn, PER_TURN)
                requests[name] += len(fake.requests) - before_requests
                hits[name] += counter.hits - before_hits
                per_cycle[name].append((statistics.median(cpu), statistics.median(wall)))
        on()
        replayed = {name: cached(backend)() for name, backend in backends.items()}
        off()
    elapsed = time.perf_counter() - started
    timed = CYCLES * PER_TURN
    cache_names = list(backends)
    # the bare and instrumented calls reached the provider each time; every hit never did, and said so
    assert requests == {"bare": timed, "instrumented": timed, **dict.fromkeys(cache_names, 0)}, requests
    assert hits == {"bare": 0, "instrumented": 0, **dict.fromkeys(cache_names, timed)}, hits
    assert all(replayed[n] == answers[n] for n in cache_names)

    def typical(name: str, clock: int) -> float:
        return statistics.median(v[clock] for v in per_cycle[name])

    def ratio(name: str, clock: int) -> float:
        return statistics.median(
            v[clock] / b[clock] for v, b in zip(per_cycle[name], per_cycle["bare"], strict=True)
        )

    labels = {
        "bare": "bare SDK call (HTTP to the fake provider)",
        "instrumented": "with otel_llmcost, no cache (HTTP)",
        "hit: memory": "hit, memory LRU (no HTTP)",
        "hit: SQLite": "hit, SQLite file (no HTTP)",
        "hit: Redis": "hit, Redis on loopback (no HTTP)",
    }
    rows = "".join(
        f"| {labels[n]} | {typical(n, 1):.0f} | {typical(n, 0):.0f} | "
        + ("1 | 1" if n == "bare" else f"{ratio(n, 1):.2f} | {ratio(n, 0):.2f}")
        + " |\n"
        for n in names
    )
    slowest = max(cache_names, key=lambda n: ratio(n, 1))
    return (
        "## Response-cache hits (issue 14)\n\n"
        "Non-streaming chat completion (temperature 0) through the real openai SDK (one client), inside "
        f"`attribute(...)`. {CYCLES} cycles; in each, every variant in rotating order makes one untimed call "
        f"and {PER_TURN} timed calls ({timed:,} per variant). Checked: the bare and instrumented calls "
        "each reached the fake provider, no hit did, and every hit's span says `llmcost.cache.hit=true`; "
        "a replayed answer equals the stored one. Redis is a real `redis-server` on loopback. Figures are "
        "medians over cycles of each cycle's median call; ratios to the bare call are taken per cycle. "
        f"CPU is the calling thread's. Run took {elapsed:.0f} s.\n\n"
        "| variant | wall µs/call | CPU µs/call | wall / bare | CPU / bare |\n"
        "|---|---:|---:|---:|---:|\n"
        f"{rows}\n"
        f"- slowest backend's hit ({slowest}) / bare SDK call, wall: **{ratio(slowest, 1):.2f}x** "
        f"(goal < 1x: {'met' if ratio(slowest, 1) < 1 else '**not met**'}): a hit is cheaper than the "
        "loopback call it replaces, before any real provider latency (hundreds of ms) is counted\n"
    )


if __name__ == "__main__":
    print(run())
