"""The collector's receivers over loopback, with the official OTLP exporters as clients."""

from __future__ import annotations

import gzip
import json
import socket
import time
from decimal import Decimal

import grpc
import pytest
from google.rpc import code_pb2, status_pb2
from llmcost_collector.app import CollectorApp
from llmcost_collector.config.schema import load_config
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.conftest import FAR_FUTURE, Collectors, metric, post, team_cost
from tests.pg import pg_cluster, pg_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

# gpt-4o list prices per million tokens: input $2.50, cached input $1.25, output $10.00.
# 1,000 input tokens (300 of them cached) and 200 output tokens:
#   700 * 2.50 / 1e6 + 300 * 1.25 / 1e6 + 200 * 10 / 1e6 = 0.00175 + 0.000375 + 0.002 = 0.004125
GPT4O_CALL_USD = Decimal("0.004125")


def llm_spans(count: int, team: str = "search", model: str = "gpt-4o") -> list[ReadableSpan]:
    """Real SDK spans carrying the contract attributes, captured in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "receiver-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for n in range(count):
        with tracer.start_as_current_span(f"chat {model}") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.cache_read.input_tokens": 300,
                    "gen_ai.usage.output_tokens": 200,
                    "llmcost.team": team,
                    "llmcost.feature": "answers",
                    "user.id": f"user-{n}",
                }
            )
        with tracer.start_as_current_span("GET /healthz"):  # not an LLM call: skipped cheaply
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


@pytest.fixture
def app(collector: Collectors) -> CollectorApp:
    """A collector with both receivers, OTLP/gRPC and OTLP/HTTP."""
    return collector(enable_grpc=True, otlp_grpc_port=0)


def test_http_protobuf_and_gzip_with_official_exporter(app: CollectorApp) -> None:
    url = app.urls()["otlp_http"]
    plain = HttpExporter(endpoint=url)
    assert plain.export(llm_spans(3)) is SpanExportResult.SUCCESS
    zipped = HttpExporter(endpoint=url, compression=Compression.Gzip)
    assert zipped.export(llm_spans(2)) is SpanExportResult.SUCCESS
    assert team_cost(app, "search") == 5 * GPT4O_CALL_USD
    assert metric(app, "llmcost_collector_spans_skipped_total") == 5
    labels = {
        "team": "search",
        "feature": "answers",
        "environment": "",
        "provider": "openai",
        "model": "gpt-4o",
    }
    assert metric(app, "llmcost_requests_total", **labels, status="ok") == 5
    assert metric(app, "llmcost_cost_usd_total", **labels) == pytest.approx(float(5 * GPT4O_CALL_USD))


def test_grpc_with_official_exporter(app: CollectorApp) -> None:
    exporter = GrpcExporter(endpoint=app.urls()["otlp_grpc"], insecure=True)
    assert exporter.export(llm_spans(4, team="support")) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert team_cost(app, "support") == 4 * GPT4O_CALL_USD


def test_duplicate_export_is_billed_once(app: CollectorApp) -> None:
    spans = llm_spans(3, team="marketing")
    exporter = HttpExporter(endpoint=app.urls()["otlp_http"])
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    counter_after_first = metric(
        app, "llmcost_requests_total", team="marketing", feature="answers", environment="",
        provider="openai", model="gpt-4o", status="ok",
    )  # fmt: skip
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # a client retry
    assert team_cost(app, "marketing") == 3 * GPT4O_CALL_USD
    assert app.ledger.count() == 3
    assert counter_after_first == 3
    assert metric(
        app, "llmcost_requests_total", team="marketing", feature="answers", environment="",
        provider="openai", model="gpt-4o", status="ok",
    ) == 3  # fmt: skip
    assert metric(app, "llmcost_collector_spans_duplicate_total") == 3


def test_one_call_seen_by_two_instrumentations_is_billed_once(app: CollectorApp) -> None:
    """A wrapper's span and the SDK span it wraps, exported separately (child first, as they end),
    then both retried: one row, one request in the metrics, one suppression counted. The inner
    span has the finer split but no team (the wrapper's own attribution reached only its span):
    the row bills the inner span's usage to the wrapper's team."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "receiver-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("wrapper")
    usage = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200, "llmcost.team": "marketing"}  # fmt: skip
    inner_usage = {k: v for k, v in usage.items() if k != "llmcost.team"}
    with (
        tracer.start_as_current_span("chat gpt-4o", attributes=usage),
        provider.get_tracer("sdk").start_as_current_span("chat gpt-4o", attributes=inner_usage) as inner,
    ):
        inner.set_attribute("gen_ai.usage.cache_read.input_tokens", 300)  # the finer split
    provider.shutdown()
    child, parent = exporter.get_finished_spans()
    http = HttpExporter(endpoint=app.urls()["otlp_http"])
    assert http.export([child]) is SpanExportResult.SUCCESS
    assert http.export([parent]) is SpanExportResult.SUCCESS
    assert http.export([parent, child]) is SpanExportResult.SUCCESS  # a retry of both
    assert app.ledger.count() == 1
    assert team_cost(app, "marketing") == GPT4O_CALL_USD  # 700 uncached + 300 cached + 200 output
    (row,) = app.ledger.entries(0, FAR_FUTURE)
    assert (row.team, row.team_source, row.cache_read_tokens) == ("marketing", "span", 300)
    # metrics keep what the first span said (the inner one, unattributed), never a second request
    assert metric(
        app, "llmcost_requests_total", team="unattributed", feature="", environment="",
        provider="openai", model="gpt-4o", status="ok",
    ) == 1  # fmt: skip
    assert metric(app, "llmcost_collector_spans_suppressed_total") == 1
    assert metric(app, "llmcost_collector_spans_duplicate_total") == 2


def otlp_json(trace_id: str, span_id: str, input_tokens: object = 1000) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-client"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": str(time.time_ns() - 1_000_000),
                                "endTimeUnixNano": str(time.time_ns()),
                                "attributes": [
                                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": str(input_tokens)},
                                    },
                                    {
                                        "key": "gen_ai.usage.cache_read.input_tokens",
                                        "value": {"intValue": "300"},
                                    },
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "200"}},
                                    {"key": "llmcost.team", "value": {"stringValue": "json-team"}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_json_ids_are_hex_and_partial_success_rejects_bad_spans(app: CollectorApp) -> None:
    url = app.urls()["otlp_http"]
    good = otlp_json("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    bad = otlp_json("5b8efff798038103d269b633813fc60d", "eee19b7ec3c1b175", input_tokens=-5)
    good["resourceSpans"].extend(bad["resourceSpans"])
    status, body, _ = post(url, json.dumps(good).encode(), {"Content-Type": "application/json"})
    assert status == 200
    answer = json.loads(body)
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    assert "eee19b7ec3c1b175" in answer["partialSuccess"]["errorMessage"]
    rows = app.ledger.spend(0, time.time_ns() + 10**12, group_by=("team",))
    assert [(r.group["team"], r.requests) for r in rows] == [("json-team", 1)]
    assert team_cost(app, "json-team") == GPT4O_CALL_USD
    # Ids were read as hex: the same span sent as gzip JSON is a duplicate, not a new row.
    status, _, _ = post(
        url,
        gzip.compress(json.dumps(otlp_json("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")).encode()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200
    assert app.ledger.count() == 1


def test_protobuf_partial_success_message(app: CollectorApp) -> None:
    payload = json.dumps(
        otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", input_tokens=10**12)
    )
    status, body, _ = post(app.urls()["otlp_http"], payload.encode(), {"Content-Type": "application/json"})
    assert status == 200
    assert json.loads(body)["partialSuccess"]["rejectedSpans"] == "1"
    assert app.ledger.count() == 0


def test_malformed_bodies_are_400(app: CollectorApp) -> None:
    url = app.urls()["otlp_http"]
    assert post(url, b"\xff\x00garbage", {"Content-Type": "application/x-protobuf"})[0] == 400
    assert post(url, b"{not json", {"Content-Type": "application/json"})[0] == 400
    assert post(url, b"not gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"})[0] == 400
    assert post(url, b"{}", {"Content-Type": "text/plain"})[0] == 415


def test_oversized_body_is_413(collector: Collectors) -> None:
    app = collector("ingest: {max_body_bytes: 1024}\n")
    big = json.dumps(otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).encode() * 20
    status, _, _ = post(app.urls()["otlp_http"], big, {"Content-Type": "application/json"})
    assert status == 413
    bomb = gzip.compress(b"{" + b" " * 100_000 + b"}")
    status, _, _ = post(
        app.urls()["otlp_http"], bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert status == 413


def test_full_queue_answers_503_with_retry_after(app: CollectorApp) -> None:
    app.apply_config(load_config("c.yaml", text="ingest: {queue_capacity_spans: 512}\n"))
    app.pipeline._queued = 512  # as if exports were waiting for the writer
    try:
        payload = json.dumps(otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).encode()
        status, _, headers = post(app.urls()["otlp_http"], payload, {"Content-Type": "application/json"})
    finally:
        app.pipeline._queued = 0
    assert status == 503
    assert int(headers["Retry-After"]) >= 1
    assert app.ledger.count() == 0


def test_bearer_token_required_when_configured(app: CollectorApp) -> None:
    app.apply_config(load_config("c.yaml", text="ingest: {bearer_tokens: [s3cret]}\n"))
    url = app.urls()["otlp_http"]
    payload = json.dumps(otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).encode()
    assert post(url, payload, {"Content-Type": "application/json"})[0] == 401
    status, body, _ = post(
        url, payload, {"Content-Type": "application/json", "Authorization": "Bearer s3cret"}
    )
    assert status == 200 and json.loads(body) == {}
    assert app.ledger.count() == 1


ROLES_CONFIG = """
access:
  tokens:
    - {name: exporter, role: ingest, token: ingest-t0ken}
    - {name: analyst, role: read, token: read-t0ken}
    - {name: ops, role: admin, token: admin-t0ken}
    - {name: prometheus, role: metrics, token: metrics-t0ken}
"""


def test_only_an_ingest_token_may_export_over_http_and_grpc(app: CollectorApp) -> None:
    """With access tokens configured, OTLP/HTTP answers 401 without a valid token and 403 for a
    read, admin or metrics token; the official gRPC exporter fails (UNAUTHENTICATED /
    PERMISSION_DENIED, not retried) with them and succeeds with the ingest token."""
    app.apply_config(load_config("c.yaml", text=ROLES_CONFIG))
    url = app.urls()["otlp_http"]
    payload = json.dumps(otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).encode()
    plain = {"Content-Type": "application/json"}
    assert post(url, payload, plain)[0] == 401
    assert post(url, payload, {**plain, "Authorization": "Bearer wrong"})[0] == 401
    for token in ("read-t0ken", "admin-t0ken", "metrics-t0ken"):
        status, body, _ = post(url, payload, {**plain, "Authorization": f"Bearer {token}"})
        assert status == 403, token
        assert token not in body.decode()  # the message names the token's name, never its value
    assert app.ledger.count() == 0
    assert post(url, payload, {**plain, "Authorization": "Bearer ingest-t0ken"})[0] == 200
    assert app.ledger.count() == 1

    endpoint = f"localhost:{app.ports['otlp_grpc']}"
    request = encode_spans(llm_spans(1))
    with grpc.insecure_channel(endpoint) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for metadata, code in (((), grpc.StatusCode.UNAUTHENTICATED),
                               ((("authorization", "Bearer read-t0ken"),), grpc.StatusCode.PERMISSION_DENIED)):  # fmt: skip
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(request, metadata=metadata, timeout=10)
            assert refused.value.code() is code and "read-t0ken" not in (refused.value.details() or "")
    for token, expected in (("read-t0ken", SpanExportResult.FAILURE), ("nope", SpanExportResult.FAILURE)):
        exporter = GrpcExporter(
            endpoint=endpoint, insecure=True, headers={"authorization": f"Bearer {token}"}
        )
        started = time.monotonic()
        assert exporter.export(llm_spans(1)) is expected
        assert time.monotonic() - started < 5  # refused, not retried as if unavailable
    assert app.ledger.count() == 1
    exporter = GrpcExporter(
        endpoint=endpoint, insecure=True, headers={"authorization": "Bearer ingest-t0ken"}
    )
    assert exporter.export(llm_spans(2)) is SpanExportResult.SUCCESS
    assert app.ledger.count() == 3


def test_a_reload_swaps_the_tokens_at_once(app: CollectorApp) -> None:
    """The old token stops working and the new one works from the next export on."""
    app.apply_config(load_config("c.yaml", text="ingest: {bearer_tokens: [old-t0ken]}\n"))
    url = app.urls()["otlp_http"]
    payload = json.dumps(otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).encode()
    headers = {"Content-Type": "application/json"}
    assert post(url, payload, {**headers, "Authorization": "Bearer old-t0ken"})[0] == 200
    new = "access: {tokens: [{name: exporter, role: ingest, token: new-t0ken}]}\n"
    app.apply_config(load_config("c.yaml", text=new))
    assert post(url, payload, {**headers, "Authorization": "Bearer old-t0ken"})[0] == 401
    assert post(url, payload, {**headers, "Authorization": "Bearer new-t0ken"})[0] == 200


def test_protobuf_response_is_an_export_response(app: CollectorApp) -> None:
    body = encode_spans(llm_spans(1)).SerializeToString()
    status, raw, headers = post(app.urls()["otlp_http"], body, {"Content-Type": "application/x-protobuf"})
    assert status == 200
    assert headers["Content-Type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse()
    response.ParseFromString(raw)
    assert response.partial_success.rejected_spans == 0


def test_in_flight_limit_answers_429_and_a_reload_raises_it(app: CollectorApp) -> None:
    """One export blocked in the ledger holds the only slot: the next gets 429 with Retry-After;
    after a config reload allows two, the same export goes through while the first still waits."""
    from concurrent.futures import ThreadPoolExecutor

    app.apply_config(load_config("c.yaml", text="ingest: {max_in_flight: 1}\n"))
    url = app.urls()["otlp_http"]
    headers = {"Content-Type": "application/json"}
    first = json.dumps(otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).encode()
    second = json.dumps(otlp_json("1af7651916cd43dd8448eb211c80319c", "c7ad6b7169203331")).encode()
    app.ledger._write_lock.acquire()  # the writer blocks: the first export stays in flight
    held = True
    try:
        with ThreadPoolExecutor(2) as pool:
            blocked = pool.submit(post, url, first, headers)
            deadline = time.monotonic() + 10
            while app.pipeline.queued_spans == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            status, _, answer_headers = post(url, second, headers)
            assert status == 429 and int(answer_headers["Retry-After"]) >= 1
            assert metric(app, "llmcost_collector_exports_refused_total", reason="too_many_requests") == 1
            app.apply_config(load_config("c.yaml", text="ingest: {max_in_flight: 2}\n"))
            unblocked = pool.submit(post, url, second, headers)
            while app.pipeline.queued_spans < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert app.pipeline.queued_spans == 2  # both exports are in flight now
            app.ledger._write_lock.release()
            held = False
            assert blocked.result(10)[0] == 200 and unblocked.result(10)[0] == 200
    finally:
        if held:
            app.ledger._write_lock.release()
    assert app.ledger.count() == 2


def raw_exchange(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send raw bytes and read until the server answers and closes (or ``wait`` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        if data:
            sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


@pytest.fixture
def strict_app(collector: Collectors) -> CollectorApp:
    """A collector with one-second header and body deadlines."""
    return collector("ingest: {max_body_bytes: 4096}\n", header_timeout_seconds=1, body_timeout_seconds=1)


def still_serving(app: CollectorApp) -> None:
    body = encode_spans(llm_spans(1)).SerializeToString()
    status, _, _ = post(app.urls()["otlp_http"], body, {"Content-Type": "application/x-protobuf"})
    assert status == 200


def test_hostile_framing_gets_an_answer_and_the_receiver_keeps_serving(strict_app: CollectorApp) -> None:
    port = strict_app.ports["otlp_http"]
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    # A negative length is a framing error: 400 at once, not a handler waiting for -1 bytes.
    assert raw_exchange(port, head + b"Content-Length: -1\r\n\r\n{}").startswith(b"HTTP/1.1 400")
    # An oversized length is refused from the header, before the body is sent.
    started = time.monotonic()
    answer = raw_exchange(port, head + b"Content-Length: 1000000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 1
    # A chunked body is cut off as soon as it passes the cap.
    chunk = b"1000\r\n" + b" " * 4096 + b"\r\n"
    assert raw_exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 3).startswith(
        b"HTTP/1.1 413"
    )
    still_serving(strict_app)


def test_absurd_nesting_is_a_400_in_the_request_encoding(collector: Collectors) -> None:
    app = collector()
    url = app.urls()["otlp_http"]
    status, body, headers = post(url, b"[" * 200_000, {"Content-Type": "application/json"})
    assert status == 400 and headers["Content-Type"] == "application/json"
    error = json.loads(body)
    assert error["code"] == code_pb2.INVALID_ARGUMENT and "nested too deeply" in error["message"]
    # A protobuf request gets a protobuf google.rpc.Status.
    status, body, headers = post(url, b"\xff\x00garbage", {"Content-Type": "application/x-protobuf"})
    assert status == 400 and headers["Content-Type"] == "application/x-protobuf"
    rpc = status_pb2.Status()
    rpc.ParseFromString(body)
    assert rpc.code == code_pb2.INVALID_ARGUMENT and "invalid OTLP protobuf" in rpc.message
    status, body, _ = post(url.replace("/v1/traces", "/v1/logs"), b"{}", {"Content-Type": "application/json"})
    assert status == 404 and json.loads(body)["code"] == code_pb2.NOT_FOUND
    still_serving(app)


def test_silent_and_trickling_clients_are_cut_off(strict_app: CollectorApp) -> None:
    port = strict_app.ports["otlp_http"]
    # Connects and says nothing: closed after the header deadline, not held forever.
    started = time.monotonic()
    assert raw_exchange(port, b"", wait=10) == b""
    assert 0.5 < time.monotonic() - started < 5
    # Trickles its headers one byte at a time: the deadline is not reset by each byte.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        closed = False
        for byte in b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > 4:
                break
        closed = closed or sock.recv(100) == b""
    assert closed and time.monotonic() - started < 4
    # Sends headers, then too little of the body: 408 after the body deadline.
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    answer = raw_exchange(port, head, wait=10)
    assert answer.startswith(b"HTTP/1.1 408")
    # Hangs up halfway through its body: counted, nothing billed, and the port still serves.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
    deadline = time.monotonic() + 5
    while not metric(strict_app, "llmcost_collector_exports_refused_total", reason="client_disconnected"):
        assert time.monotonic() < deadline, "the disconnect was not counted"
        time.sleep(0.05)
    assert strict_app.ledger.count() == 0
    still_serving(strict_app)


def test_a_body_that_keeps_arriving_outlives_the_grace_period(collector: Collectors) -> None:
    """The body deadline is a grace period, then a minimum rate: an export trickled in steady
    pieces for longer than the grace period, faster than the rate, is billed; one that sends a
    byte and stops is cut off with 408 after the grace period."""
    app = collector("ingest: {max_body_bytes: 4096}\n", body_timeout_seconds=1, body_min_bytes_per_second=100)
    body = encode_spans(llm_spans(1)).SerializeToString()
    head = (
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    pieces = [body[i : i + 50] for i in range(0, len(body), 50)]  # 250 bytes a second
    assert len(pieces) * 0.2 > 2, "the body must take longer than the grace period to send"
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", app.ports["otlp_http"]), timeout=10) as sock:
        sock.sendall(head)
        for piece in pieces:
            time.sleep(0.2)
            sock.sendall(piece)
        answer = sock.recv(65536)
    assert time.monotonic() - started > 1 and answer.startswith(b"HTTP/1.1 200"), answer
    assert app.ledger.count() == 1
    started = time.monotonic()
    assert raw_exchange(app.ports["otlp_http"], head + body[:1], wait=10).startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 3
    assert metric(app, "llmcost_collector_exports_refused_total", reason="body_timeout") == 1


# --- no blast radius: a poison span is rejected alone ------------------------------------------

POISON_SPANS = {
    "start_time_2_63": lambda span: span.update(startTimeUnixNano=str(2**63)),
    "start_time_1e23": lambda span: span.update(startTimeUnixNano=1e23),
    "end_time_negative": lambda span: span.update(endTimeUnixNano="-1"),
    "lone_surrogate": lambda span: span["attributes"].append(
        {"key": "llmcost.feature", "value": {"stringValue": "\ud800"}}
    ),
    "nul_byte": lambda span: span["attributes"].append(
        {"key": "llmcost.feature", "value": {"stringValue": "a\x00b"}}
    ),
    "huge_session_id": lambda span: span["attributes"].append(
        {"key": "session.id", "value": {"stringValue": "s" * 1_000_000}}
    ),
}


def test_poison_spans_are_rejected_alone(collector: Collectors, ledger_url: str) -> None:
    """Each poison span costs itself only: the good span beside it in the same export, and
    innocent exports committed in the same group commit, are billed; the answer is a permanent
    partial success (200), never a retryable 503."""
    from concurrent.futures import ThreadPoolExecutor

    app = collector(ledger_url=ledger_url)
    url = app.urls()["otlp_http"]
    doc = otlp_json("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    for n, poison in enumerate(POISON_SPANS.values()):
        bad = otlp_json("0af7651916cd43dd8448eb211c80319c", f"{n + 1:016x}")
        poison(bad["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
        doc["resourceSpans"].extend(bad["resourceSpans"])
    poisoned = json.dumps(doc).encode()

    def innocent(n: int) -> int:
        body = json.dumps(otlp_json("1af7651916cd43dd8448eb211c80319c", f"{n + 100:016x}")).encode()
        return post(url, body, {"Content-Type": "application/json"})[0]

    with ThreadPoolExecutor(8) as pool:
        innocents = [pool.submit(innocent, n) for n in range(16)]
        status, body, _ = post(url, poisoned, {"Content-Type": "application/json"})
        assert [f.result() for f in innocents] == [200] * 16
    assert status == 200, body
    answer = json.loads(body)["partialSuccess"]
    assert answer["rejectedSpans"] == str(len(POISON_SPANS))
    assert app.ledger.count() == 17


def test_a_batch_that_fails_to_commit_is_split_and_only_the_offender_rejected(
    collector: Collectors, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the checks (as a future decoding bug would let it), a span the ledger refuses is
    isolated by splitting the group commit: its neighbours commit, it is rejected for good."""
    from llmcost_collector import pipeline
    from llmcost_collector.model import DecodedExport
    from llmcost_collector.receive.decode import decode_json

    monkeypatch.setattr(pipeline, "storage_fault", lambda entry: None)  # the pre-commit check misses it
    app = collector(ledger_url=ledger_url)
    spans = []
    for n in range(8):
        spans += decode_json(
            json.dumps(otlp_json("2af7651916cd43dd8448eb211c80319c", f"{n + 1:016x}")).encode()
        ).spans
    spans[5].start_time_ns = 2**63  # out of int64: both databases refuse the row
    result = app.pipeline.ingest(DecodedExport(spans=spans), "http")
    assert (result.accepted, result.duplicates, result.rejected) == (7, 0, 1)
    assert "0000000000000006" in result.error_message
    assert app.ledger.count() == 7
    assert metric(app, "llmcost_collector_spans_rejected_total", reason="ledger_refused") == 1


# --- admission before work ------------------------------------------------------------------


def test_a_body_over_the_in_flight_budget_is_refused_before_it_is_read(collector: Collectors) -> None:
    """With the budget taken by another export, a body's Content-Length is refused at once
    (429, Retry-After) before any of it is sent; a chunked body is cut off as it passes the
    budget, a gzip body as it inflates past it; once the budget is free the same bodies pass."""
    app = collector("ingest: {max_body_bytes: 8000000}\n", max_inflight_bytes=8192)
    port = app.ports["otlp_http"]
    assert app.budget.try_charge(4096)  # as if another export were being read
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    started = time.monotonic()
    answer = raw_exchange(port, head + b"Content-Length: 5000\r\n\r\n")  # no body sent at all
    assert answer.startswith(b"HTTP/1.1 429") and b"retry-after: 1" in answer.lower()
    assert time.monotonic() - started < 1
    chunk = b"1000\r\n" + b" " * 4096 + b"\r\n"
    assert raw_exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 2).startswith(
        b"HTTP/1.1 429"
    )
    bomb = gzip.compress(b"{" + b" " * 100_000 + b"}")  # 100 kB inflated from a few hundred bytes
    gzip_headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, _, headers = post(app.urls()["otlp_http"], bomb, gzip_headers)
    assert status == 429 and headers["Retry-After"] == "1"
    # A client that sends its whole (large) body anyway reads the answer: no reset.
    assert post(app.urls()["otlp_http"], b" " * 4_000_000, {"Content-Type": "application/json"})[0] == 429
    assert metric(app, "llmcost_collector_exports_refused_total", reason="over_budget") == 4
    assert app.budget.used == 4096  # every refused export returned its charge
    app.budget.release(4096)
    assert post(app.urls()["otlp_http"], bomb, gzip_headers)[0] == 200  # alone, it is admitted
    still_serving(app)
    assert app.budget.used == 0


def test_stalled_uploads_hold_only_what_they_sent(collector: Collectors) -> None:
    """Uploads that announce a large body and stall do not take the budget they announced: an
    export beside them still goes through (the body is charged as it arrives)."""
    app = collector("ingest: {max_body_bytes: 8000000}\n", max_inflight_bytes=8192, body_timeout_seconds=5)
    port = app.ports["otlp_http"]
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        for sock in stalled:
            sock.sendall(head + b"Content-Length: 6000\r\n\r\n" + b"\x0a")  # 1 byte of 6,000
        time.sleep(0.3)
        body = encode_spans(llm_spans(8)).SerializeToString()
        assert 3000 < len(body) < 8192
        status, _, _ = post(app.urls()["otlp_http"], body, {"Content-Type": "application/x-protobuf"})
        assert status == 200
        assert app.budget.used <= 3  # the stalled uploads' bytes, no more
    finally:
        for sock in stalled:
            sock.close()
    assert app.ledger.count() == 8


def test_a_full_queue_refuses_before_the_body_is_read(app: CollectorApp) -> None:
    app.apply_config(load_config("c.yaml", text="ingest: {queue_capacity_spans: 512}\n"))
    app.pipeline._queued = 512  # as if exports were waiting for the writer
    try:
        head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        started = time.monotonic()
        answer = raw_exchange(app.ports["otlp_http"], head + b"Content-Length: 5000\r\n\r\n")
    finally:
        app.pipeline._queued = 0
    assert answer.startswith(b"HTTP/1.1 503") and b"retry-after:" in answer.lower()
    assert time.monotonic() - started < 1  # not waiting for a body that never comes
    assert app.budget.used == 0


def grpc_stub(app: CollectorApp):  # type: ignore[no-untyped-def]
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    channel = grpc.insecure_channel(app.urls()["otlp_grpc"])
    return channel, trace_service_pb2_grpc.TraceServiceStub(channel)


def test_grpc_admits_a_bounded_number_of_calls(collector: Collectors) -> None:
    """One worker, one call admitted: while a call waits in the ledger, the next is refused at
    once with RESOURCE_EXHAUSTED (which OTLP exporters retry); with the budget taken, too."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    app = collector(enable_grpc=True, otlp_grpc_port=0, grpc_workers=1, grpc_max_concurrent_rpcs=1)
    channel, stub = grpc_stub(app)
    first, second = encode_spans(llm_spans(1)), encode_spans(llm_spans(1, team="other"))
    app.ledger._write_lock.acquire()
    held = True
    try:
        with ThreadPoolExecutor(1) as pool:
            blocked = pool.submit(stub.Export, first, timeout=10)
            deadline = time.monotonic() + 10
            while app.pipeline.queued_spans == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(second, timeout=5)
            assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            app.ledger._write_lock.release()
            held = False
            blocked.result(10)
    finally:
        if held:
            app.ledger._write_lock.release()
    assert app.budget.try_charge(app.budget.limit)  # as if HTTP exports held all of the budget
    with pytest.raises(grpc.RpcError) as over_budget:
        stub.Export(second, timeout=5)
    assert over_budget.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert metric(app, "llmcost_collector_exports_refused_total", reason="over_budget") == 1
    app.budget.release(app.budget.limit)
    stub.Export(second, timeout=5)
    channel.close()
    assert app.ledger.count() == 2


def many_spans(count: int):  # type: ignore[no-untyped-def]
    """One export of ``count`` LLM spans (copies of one SDK span with distinct span ids)."""
    request = encode_spans(llm_spans(1))
    spans = request.resource_spans[0].scope_spans[0].spans
    template = next(span for span in spans if span.name.startswith("chat"))
    del spans[:]
    for n in range(count):
        span = spans.add()
        span.CopyFrom(template)
        span.span_id = (n + 1).to_bytes(8, "big")
    return request


def test_grpc_call_past_its_deadline_is_not_committed(collector: Collectors) -> None:
    """A call whose deadline passes while it is decoded and priced (20,000 spans in 0.3 s) is
    refused before any of it is queued: the client saw DEADLINE_EXCEEDED, and the ledger agrees."""
    import grpc

    app = collector(enable_grpc=True, otlp_grpc_port=0)
    channel, stub = grpc_stub(app)
    with pytest.raises(grpc.RpcError) as late:
        stub.Export(many_spans(20_000), timeout=0.3)
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 10
    while not metric(app, "llmcost_collector_exports_refused_total", reason="deadline_exceeded"):
        assert time.monotonic() < deadline, "the late call was never refused"
        time.sleep(0.05)
    assert app.pipeline.queued_spans == 0
    assert app.ledger.count() == 0
    stub.Export(many_spans(10), timeout=10)  # an export in time is billed
    channel.close()
    assert app.ledger.count() == 10
