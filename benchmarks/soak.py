"""Soak: ``llmcost serve`` at a steady rate for ten minutes (``make soak``; not part of ``make bench``).

What a long run shows that the short benchmarks cannot: whether resident memory keeps growing
(a leak shows as RSS still rising in the last minutes), whether export latency drifts as the
ledger and its indexes grow, and the ledger's commit latency over the whole run. The sender is
open-loop, as services are: an export of ``BATCH`` calls is due every ``BATCH / RATE`` seconds
whatever the previous answer took, and a late export is sent at once and counted late. Each
call is a distinct span, so the ledger grows by every one; at the end the ledger must hold every
call sent, exactly.

``LLMCOST_SOAK_SECONDS`` (600) and ``LLMCOST_SOAK_RATE`` (1,000 calls a second, about an eighth
of one process's measured capacity) change the run.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench_memory import SDK_ATTRIBUTES, export, post, status
from llmcost_collector.ledger import open_ledger
from prometheus_client.parser import text_string_to_metric_families

SECONDS = int(os.environ.get("LLMCOST_SOAK_SECONDS", "600"))
RATE = int(os.environ.get("LLMCOST_SOAK_RATE", "1000"))
BATCH = 100
COMMIT_HISTOGRAM = "llmcost_collector_ledger_commit_seconds"


def batch_body(number: int) -> bytes:
    """Export ``number``: BATCH calls of trace ``number + 1``, started now."""
    request = export(BATCH, SDK_ATTRIBUTES, "chat gpt-4o")
    now = time.time_ns()
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.trace_id = (number + 1).to_bytes(16, "big")
        span.start_time_unix_nano = now
        span.end_time_unix_nano = now + 1_000_000
    return request.SerializeToString()


def commit_quantiles(metrics_text: str) -> dict[str, float]:
    """p50 and p99 of the commit histogram: the upper bound of the bucket holding that rank."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name != COMMIT_HISTOGRAM:
            continue
        buckets = sorted(
            (float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")
        )
        total = buckets[-1][1]
        out = {}
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            out[name] = next(le for le, count in buckets if count >= q * total)
        out["commits"] = total
        return out
    raise AssertionError(f"no {COMMIT_HISTOGRAM} in /metrics")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def run() -> str:
    interval = BATCH / RATE
    with tempfile.TemporaryDirectory() as tmp:
        ledger_url = f"sqlite:///{Path(tmp) / 'soak.db'}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmcost_collector", "serve", "--host", "127.0.0.1", "--no-grpc",
             "--otlp-http-port", "0", "--http-port", "0", "--ledger-url", ledger_url, "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            urls = json.loads(proc.stdout.readline().split(": ", 1)[1])
            rss: list[tuple[float, int]] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(5):
                    rss.append((time.monotonic(), status(proc.pid, "VmRSS")))

            sampler = threading.Thread(target=sample, daemon=True)
            started = time.monotonic()
            sampler.start()
            latencies: list[tuple[float, float]] = []  # (seconds since start, latency)
            late = 0
            number = 0
            while (due := started + number * interval) < started + SECONDS:
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -interval:
                    late += 1
                body = batch_body(number)
                sent_at = time.monotonic()
                assert post(urls["otlp_http"], body, "application/x-protobuf") == 200
                latencies.append((sent_at - started, time.monotonic() - sent_at))
                number += 1
            elapsed = time.monotonic() - started
            stop.set()
            sampler.join()
            with urllib.request.urlopen(urls["metrics"], timeout=30) as response:
                commits = commit_quantiles(response.read().decode())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        ledger = open_ledger(ledger_url)
        try:
            stored = ledger.count()
        finally:
            ledger.close()
    sent = number * BATCH
    assert stored == sent, (stored, sent)
    return report(elapsed, sent, late, latencies, rss, started, commits)


def report(
    elapsed: float,
    sent: int,
    late: int,
    latencies: list[tuple[float, float]],
    rss: list[tuple[float, int]],
    started: float,
    commits: dict[str, float],
) -> str:
    minutes = max(1, round(elapsed / 60))
    rows = []
    for minute in range(minutes):
        window = [lat for at, lat in latencies if minute * 60 <= at < (minute + 1) * 60]
        memory = [value for at, value in rss if minute * 60 <= at - started < (minute + 1) * 60]
        if not window:
            continue
        peak = f"{max(memory) / 2**20:.0f}" if memory else ""
        rows.append(
            f"| {minute + 1} | {len(window) * BATCH:,} | {statistics.median(window) * 1e3:.1f} "
            f"| {percentile(window, 0.99) * 1e3:.1f} | {max(window) * 1e3:.1f} | {peak} |"
        )
    all_latencies = [lat for _, lat in latencies]
    first_minute = [value for at, value in rss if at - started < 60] or [rss[0][1]]
    last_minute = [value for at, value in rss if at - started >= elapsed - 60] or [rss[-1][1]]
    return (
        "## Soak (issue 17)\n\n"
        f"`make soak`: one `llmcost serve` (SQLite ledger, synchronous=FULL) fed {RATE:,} calls a second "
        f"in OTLP/HTTP protobuf exports of {BATCH}, open-loop, for {elapsed / 60:.1f} minutes: "
        f"{sent:,} calls, every one in the ledger at the end (checked); {late} exports were sent late. "
        "Export latency is from the request to the answer, which comes after the ledger commit.\n\n"
        "| minute | calls | export p50 ms | p99 ms | max ms | RSS MiB (max) |\n"
        "|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        f"Whole run: export latency p50 **{statistics.median(all_latencies) * 1e3:.1f} ms**, "
        f"p99 **{percentile(all_latencies, 0.99) * 1e3:.1f} ms**; ledger commit p50 <= {commits['p50'] * 1e3:g} ms, "
        f"p99 <= {commits['p99'] * 1e3:g} ms over {commits['commits']:,.0f} group commits (histogram buckets); "
        f"RSS {max(first_minute) / 2**20:.0f} MiB in the first minute, {max(last_minute) / 2**20:.0f} MiB in the "
        f"last (peak {max(v for _, v in rss) / 2**20:.0f} MiB).\n"
    )


if __name__ == "__main__":
    print(run())
