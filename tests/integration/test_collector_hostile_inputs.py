"""The corpus of hostile inputs (``hostile/``), each sent as raw bytes to a collector's OTLP/HTTP
port: every case gets the answer its file expects, the good span beside a bad one is billed, and
the port still serves afterwards. A case is one file: an ``# expect`` line, then the request."""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from llmcost_collector.app import CollectorApp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.integration.conftest import Collectors
from tests.integration.test_collector_receivers import still_serving
from tests.support import IN_CI

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent / "hostile"
CASES = sorted(CORPUS.glob("*.http"))


def expected(line: bytes) -> dict[str, int]:
    """``# expect 200 rejected=1 billed=1`` -> {"status": 200, "rejected": 1, "billed": 1}."""
    words = line.decode().split()
    assert words[:2] == ["#", "expect"], line
    answer = {"status": int(words[2])}
    answer.update({key: int(value) for key, value in (word.split("=") for word in words[3:])})
    return answer


def exchange(port: int, raw: bytes) -> tuple[int, str, bytes]:
    """Send the request as it is; (status, content type, body) of the first answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered before all of it was sent: the answer is still there to read
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.getheader("content-type", ""), response.read()


def rejected_spans(content_type: str, body: bytes) -> int:
    if content_type.startswith("application/json"):
        return int(json.loads(body).get("partialSuccess", {}).get("rejectedSpans", 0))
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(body)
    return answer.partial_success.rejected_spans


@pytest.fixture
def app(collector: Collectors) -> CollectorApp:
    return collector(header_timeout_seconds=2, body_timeout_seconds=1)


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=lambda path: path.stem)
def test_hostile_input_gets_its_expected_answer(app: CollectorApp, case: Path) -> None:
    first_line, raw = case.read_bytes().split(b"\n", 1)
    want = expected(first_line)
    status, content_type, body = exchange(app.ports["otlp_http"], raw)
    got = {"status": status}
    if status == 200:
        got["rejected"] = rejected_spans(content_type, body)
        got["billed"] = app.ledger.count()
    assert got == want, body[:300]
    still_serving(app)


def test_coverage_guided_fuzzing_of_decoding_finds_no_crash(tmp_path: Path) -> None:
    """atheris (libFuzzer) mutates the corpus's bodies for 200,000 inputs or a minute, following
    the decoder's branches: every input decodes or is refused as undecodable, and every decoded
    span normalizes or is rejected alone (``hostile/fuzz_decode.py``)."""
    if importlib.util.find_spec("atheris") is None:
        if IN_CI:
            pytest.fail("atheris is required in CI (requirements-dev.txt)")
        pytest.skip("atheris not installed")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for case in CASES:
        (seeds / case.stem).write_bytes(case.read_bytes().partition(b"\r\n\r\n")[2])
    run = subprocess.run(
        [sys.executable, str(CORPUS / "fuzz_decode.py"), str(seeds), "-runs=200000", "-max_total_time=60",
         "-max_len=65536", "-rss_limit_mb=2048", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Done" in run.stderr or "stat::number_of_executed_units" in run.stderr, run.stderr[-2000:]
