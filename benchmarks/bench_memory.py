"""Memory an export costs: the factors of the collector's RSS bound (README "Bounded memory").

Each shape of export is sent alone to a fresh ``llmcost serve`` process (after one warm-up
export), and the process's peak resident memory (``VmHWM`` in ``/proc/PID/status``) over its idle
RSS is divided by the body size (the decode expansion) and by the span count (the cost of a span
from read to committed). The constants of ``llmcost_collector.receive.admission`` are these
figures rounded up.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from google.protobuf import json_format
from llmcost_collector.receive import admission
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SDK_ATTRIBUTES = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.cache_read.input_tokens": 300, "gen_ai.usage.output_tokens": 200,
    "llmcost.team": "search", "llmcost.feature": "answers", "user.id": "user-1",
}  # fmt: skip
COMPACT_ATTRIBUTES = {
    "gen_ai.usage.input_tokens": 1,
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.provider.name": "openai",
}


def export(spans: int, attributes: dict[str, object], name: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for n in range(spans):
        span = scope.spans.add(
            trace_id=(7).to_bytes(16, "big"), span_id=(n + 1).to_bytes(8, "big"), name=name
        )
        span.start_time_unix_nano = 1_767_225_600_000_000_000 + n
        span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
        for key, value in attributes.items():
            any_value = (
                AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=str(value))
            )
            span.attributes.append(KeyValue(key=key, value=any_value))
    return request


def as_json(request: ExportTraceServiceRequest) -> bytes:
    doc = json_format.MessageToDict(request)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:  # OTLP/JSON ids are hex, not protobuf JSON's base64
                span["traceId"] = base64.b64decode(span["traceId"]).hex()
                span["spanId"] = base64.b64decode(span["spanId"]).hex()
    return json.dumps(doc).encode()


def status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        return response.status


def measure(body: bytes, content_type: str, workdir: Path) -> tuple[int, int]:
    """(idle RSS, peak RSS) of a collector process that took this one export."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmcost_collector", "serve", "--host", "127.0.0.1", "--no-grpc",
         "--otlp-http-port", "0", "--http-port", "0", "--ledger-url", f"sqlite:///{workdir / 'm.db'}",
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = json.loads(line.split(": ", 1)[1])["otlp_http"]
        warm = export(10, SDK_ATTRIBUTES, "warm-up")
        warm.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01" * 16
        assert post(url, warm.SerializeToString(), "application/x-protobuf") == 200
        time.sleep(1)
        idle = status(proc.pid, "VmRSS")
        assert post(url, body, content_type) == 200
        return idle, status(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        (workdir / "m.db").unlink(missing_ok=True)


def run() -> str:
    shapes = [
        ("protobuf, SDK spans", 30_000, export(30_000, SDK_ATTRIBUTES, "chat gpt-4o").SerializeToString(),
         "application/x-protobuf"),
        ("protobuf, most compact billable spans", 40_000, export(40_000, COMPACT_ATTRIBUTES, "").SerializeToString(),
         "application/x-protobuf"),
        ("OTLP/JSON, SDK spans", 15_000, as_json(export(15_000, SDK_ATTRIBUTES, "chat gpt-4o")), "application/json"),
    ]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, spans, body, content_type in shapes:
            idle, peak = measure(body, content_type, Path(tmp))
            grown = peak - idle
            rows.append(
                f"| {label} | {len(body) / 1e6:.1f} MB | {spans:,} | {idle / 1e6:.0f} MB | {peak / 1e6:.0f} MB "
                f"| {grown / len(body):.1f}x | {grown / spans / 1e3:.1f} kB |"
            )
    return (
        "## Memory per export (issue 17)\n\n"
        "One export at a time into a fresh `llmcost serve`: peak RSS (`VmHWM`) over idle RSS, per body byte\n"
        "(the decode expansion) and per span (read, decoded, priced, queued, committed).\n\n"
        "| export | body | spans | idle RSS | peak RSS | per body byte | per span |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"The RSS bound uses {admission.DECODE_EXPANSION}x per in-flight byte, "
        f"{admission.SPAN_BYTES // 1024} KiB per queued span and a {admission.BASELINE_BYTES // 2**20} MiB "
        "baseline (`receive/admission.py`), these figures rounded up.\n"
    )


if __name__ == "__main__":
    print(run())
