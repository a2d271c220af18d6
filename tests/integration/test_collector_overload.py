"""``llmcost serve`` as a real process under load above its capacity, and killed mid-stream.

Two proofs of the receive side's admission (README "Bounded memory"): the process's resident
memory, sampled from ``/proc/PID/status``, stays under the bound its limits give
(``rss_bound_bytes``) under a mix of large concurrent HTTP and gRPC exports, slow clients and
gzip bombs; and offered load above capacity gets only answers a client retries on (200, 429,
503 with ``Retry-After``; gRPC OK, RESOURCE_EXHAUSTED, UNAVAILABLE), never a dropped
connection or a 500, while every acknowledged span ends up in the ledger exactly once. And the
proof of "acknowledged only after the commit": ``kill -9`` in the middle of a stream from the
official exporters, then a restart on the same ports, leaves the ledger equal to what was sent.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from llmcost_collector.ledger import open_ledger
from llmcost_collector.receive.admission import rss_bound_bytes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.integration.conftest import FAR_FUTURE
from tests.integration.test_collector_receivers import llm_spans
from tests.pg import pg_cluster, pg_url  # noqa: F401  (fixtures)
from tests.support import free_port, start_process, stop_process

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
RETRYABLE_GRPC = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


class Served:
    """One ``llmcost serve`` process on loopback ports, with its SQLite ledger."""

    def __init__(self, proc, urls: dict[str, str], ledger_url: str) -> None:  # type: ignore[no-untyped-def]
        self.proc = proc
        self.urls = urls
        self.ledger_url = ledger_url

    def status(self, field: str) -> int:
        """A ``/proc/PID/status`` size (VmRSS, VmHWM) in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def ledger_span_ids(self) -> list[tuple[str, str]]:
        ledger = open_ledger(self.ledger_url)
        try:
            return [(row.trace_id, row.span_id) for row in ledger.entries(0, FAR_FUTURE)]
        finally:
            ledger.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(config_yaml: str, *flags: str, env: dict[str, str] | None = None) -> Served:
        config = tmp_path / "llmcost.yaml"
        config.write_text(config_yaml)
        ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
        proc, urls = start_process(
            [sys.executable, "-m", "llmcost_collector", "serve", "--host", "127.0.0.1", "--config", str(config),
             "--otlp-http-port", "0", "--otlp-grpc-port", "0", "--http-port", "0", "--ledger-url", ledger_url,
             "--log-level", "WARNING", *flags],
            re.compile(r"llmcost collector ready: (\{.*\})"),
            env=env,
        )  # fmt: skip
        served = Served(proc, json.loads(urls), ledger_url)
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            stop_process(served.proc)


def export_of(spans: int, trace: int, attribute_bytes: int = 0) -> ExportTraceServiceRequest:
    """One export of ``spans`` LLM spans of trace number ``trace`` (distinct span ids), each with
    an extra ``attribute_bytes``-long attribute when asked (a large prompt, say)."""
    request = encode_spans(llm_spans(1))
    scope = request.resource_spans[0].scope_spans[0]
    template = next(span for span in scope.spans if span.name.startswith("chat"))
    if attribute_bytes:
        extra = template.attributes.add()
        extra.key, extra.value.string_value = "gen_ai.prompt", "p" * attribute_bytes
    del scope.spans[:]
    for n in range(spans):
        span = scope.spans.add()
        span.CopyFrom(template)
        span.trace_id = trace.to_bytes(16, "big")
        span.span_id = (n + 1).to_bytes(8, "big")
    return request


def span_ids(request: ExportTraceServiceRequest) -> set[tuple[str, str]]:
    return {
        (span.trace_id.hex(), span.span_id.hex())
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    }


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """POST once: (status, headers). A dropped connection raises (and fails the test)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status, {k.title(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as err:
        err.read()
        return err.code, {k.title(): v for k, v in err.headers.items()}


def http_until_acknowledged(url: str, body: bytes, answers: list[object], give_up: float) -> bool:
    """Send until a 200, as an OTLP exporter retries: every answer is recorded; only 429 and
    503 with Retry-After are retried."""
    headers = {"Content-Type": "application/x-protobuf"}
    while time.monotonic() < give_up:
        try:
            status, response_headers = post(url, body, headers)
        except OSError as exc:
            answers.append(f"dropped: {exc!r}")
            return False
        answers.append(status if status == 200 or "Retry-After" in response_headers else f"{status} bare")
        if status == 200:
            return True
        if status not in (429, 503):
            return False
        time.sleep(0.1)
    return False


def grpc_until_acknowledged(
    target: str, request: ExportTraceServiceRequest, answers: list[object], give_up: float
) -> bool:
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 * MiB)]) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        while time.monotonic() < give_up:
            try:
                stub.Export(request, timeout=60)
            except grpc.RpcError as exc:
                answers.append(exc.code())
                if exc.code() not in RETRYABLE_GRPC:
                    return False
                time.sleep(0.1)
                continue
            answers.append(grpc.StatusCode.OK)
            return True
    return False


class RssSampler:
    """Samples the process's RSS every 20 ms on a thread; ``peak`` is the largest seen."""

    def __init__(self, served: Served) -> None:
        self._served = served
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._served.status("VmRSS"))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def slow_client(port: int, started: threading.Event) -> None:
    """Announces a 4 MiB body, then trickles a byte a second until it is cut off."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 4194304\r\n\r\n"
        )
        started.set()
        try:
            for _ in range(15):
                sock.sendall(b"\x0a")
                time.sleep(1)
        except OSError:
            pass  # cut off by the body deadline, as it should be


LIMITS = {"max_inflight_bytes": 16 * MiB, "max_body_bytes": 4 * MiB, "queue_capacity_spans": 20_000,
          "grpc_max_concurrent_rpcs": 4, "max_connections": 256}  # fmt: skip


def test_rss_stays_under_the_documented_bound_under_hostile_load(serve: Callable[..., Served]) -> None:
    served = serve(
        "ingest: {max_body_bytes: 4194304, queue_capacity_spans: 20000, max_in_flight: 32}\n",
        "--max-inflight-bytes", str(LIMITS["max_inflight_bytes"]), "--grpc-workers", "4",
        "--grpc-max-concurrent-rpcs", str(LIMITS["grpc_max_concurrent_rpcs"]),
        env={"LLMCOST_MAX_CONNECTIONS": "256", "LLMCOST_BODY_TIMEOUT_SECONDS": "5"},
    )  # fmt: skip
    bound = rss_bound_bytes(**LIMITS)
    url, port = served.urls["otlp_http"], int(served.urls["otlp_http"].rsplit(":", 1)[1].split("/")[0])
    compact = [export_of(6_000, trace) for trace in range(1, 13)]  # ~2.4 MB, 6,000 spans each
    prompts = [export_of(36, trace, attribute_bytes=100_000) for trace in range(13, 21)]  # 3.6 MB, 36 spans
    bomb = gzip.compress(b"\x00" * (256 * MiB))  # inflates far past the 4 MiB cap
    answers: list[object] = []
    give_up = time.monotonic() + 240
    with RssSampler(served) as rss, ThreadPoolExecutor(32) as pool:
        slow_started = [threading.Event() for _ in range(8)]
        slow = [pool.submit(slow_client, port, started) for started in slow_started]
        for started in slow_started:
            started.wait(10)
        bombs = [
            pool.submit(
                post, url, bomb, {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
            )
            for _ in range(4)
        ]
        http = [
            pool.submit(http_until_acknowledged, url, r.SerializeToString(), answers, give_up)
            for r in compact[:8] + prompts
        ]
        target = served.urls["otlp_grpc"]
        grpc_calls = [pool.submit(grpc_until_acknowledged, target, r, answers, give_up) for r in compact[8:]]
        acknowledged = [f.result() for f in http + grpc_calls]
        bomb_answers = [f.result()[0] for f in bombs]
        for f in slow:
            f.result()
    peak = max(rss.peak, served.status("VmHWM"))
    print(
        f"peak RSS {peak / MiB:.0f} MiB, bound {bound / MiB:.0f} MiB, answers {sorted(map(str, set(answers)))}"
    )
    assert all(acknowledged), answers
    assert set(bomb_answers) <= {413, 429}  # over the cap, or refused before inflating by the budget
    assert peak < bound
    assert len(served.ledger_span_ids()) == 12 * 6_000 + 8 * 36


def test_overload_gets_only_retryable_answers_and_every_acknowledged_span_is_billed_once(
    serve: Callable[..., Served],
) -> None:
    """A small queue and budget, offered 24 clients at once: refusals are 429/503 with
    Retry-After (gRPC RESOURCE_EXHAUSTED/UNAVAILABLE), never a reset or a 500; each client
    retries until acknowledged, and the ledger then holds every span exactly once."""
    served = serve(
        "ingest: {queue_capacity_spans: 1000, max_in_flight: 4}\n",
        "--max-inflight-bytes", str(MiB), "--grpc-workers", "2", "--grpc-max-concurrent-rpcs", "2",
    )  # fmt: skip
    exports = [export_of(400, trace) for trace in range(1, 97)]  # 96 exports, ~160 kB each
    answers: list[object] = []
    give_up = time.monotonic() + 180
    url, target = served.urls["otlp_http"], served.urls["otlp_grpc"]

    def client(n: int) -> bool:
        request = exports[n]
        if n % 3 == 2:
            return grpc_until_acknowledged(target, request, answers, give_up)
        return http_until_acknowledged(url, request.SerializeToString(), answers, give_up)

    with ThreadPoolExecutor(24) as pool:
        acknowledged = list(pool.map(client, range(len(exports))))
    refusals = [a for a in answers if a not in (200, grpc.StatusCode.OK)]
    print(f"{len(answers)} answers, {len(refusals)} refusals: {sorted(map(str, set(answers)))}")
    assert set(answers) <= {200, 429, 503, grpc.StatusCode.OK, *RETRYABLE_GRPC}, set(answers)
    assert refusals, "the load was not above capacity"
    assert all(acknowledged)
    stop_process(served.proc)  # the ledger is read after the process committed and closed it
    rows = served.ledger_span_ids()
    sent = set().union(*(span_ids(r) for r in exports))
    assert len(rows) == len(sent) == 96 * 400
    assert set(rows) == sent


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_kill_9_mid_stream_leaves_the_ledger_equal_to_what_was_sent(ledger_url: str, transport: str) -> None:
    """The official exporter (its own retries, a 60 s deadline) streams 40 exports of 100 calls;
    after the tenth is acknowledged the collector is killed with SIGKILL, whatever it was doing,
    and restarted on the same ports and ledger. Every export ends acknowledged, and the ledger
    holds each sent call exactly once: none acknowledged and lost, none billed twice for having
    been committed, unacknowledged, and sent again."""
    ports = {"otlp_http": free_port(), "otlp_grpc": free_port(), "http": free_port()}

    def start():  # type: ignore[no-untyped-def]
        proc, _ = start_process(
            [sys.executable, "-m", "llmcost_collector", "serve", "--host", "127.0.0.1",
             "--otlp-http-port", str(ports["otlp_http"]), "--otlp-grpc-port", str(ports["otlp_grpc"]),
             "--http-port", str(ports["http"]), "--ledger-url", ledger_url, "--log-level", "WARNING"],
            re.compile(r"llmcost collector ready: (\{.*\})"),
        )  # fmt: skip
        return proc

    batches = [llm_spans(100) for _ in range(40)]  # each call's span, and a skipped non-LLM span
    sent = {
        (f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}")
        for batch in batches
        for span in batch
        if span.name.startswith("chat")
    }
    exporter = (
        HttpExporter(endpoint=f"http://127.0.0.1:{ports['otlp_http']}/v1/traces", timeout=60)
        if transport == "http"
        else GrpcExporter(endpoint=f"127.0.0.1:{ports['otlp_grpc']}", insecure=True, timeout=60)
    )
    results: list[SpanExportResult] = []
    proc = start()
    sender = threading.Thread(target=lambda: results.extend(exporter.export(b) for b in batches), daemon=True)
    try:
        sender.start()
        deadline = time.monotonic() + 60
        while len(results) < 10:
            assert time.monotonic() < deadline, "the first exports were not acknowledged"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert len(results) < len(batches), "the stream had ended before the kill"
        proc = start()
        sender.join(240)
        assert not sender.is_alive(), "the exporter did not finish"
    finally:
        exporter.shutdown()
        stop_process(proc)
    assert results == [SpanExportResult.SUCCESS] * len(batches)
    ledger = open_ledger(ledger_url)
    try:
        rows = [(row.trace_id, row.span_id) for row in ledger.entries(0, FAR_FUTURE)]
    finally:
        ledger.close()
    assert len(rows) == len(sent) == 40 * 100
    assert set(rows) == sent
