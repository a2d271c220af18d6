"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies, optionally gzip.

Answers follow the OTLP/HTTP spec so that standard exporters (and an OpenTelemetry Collector's
``otlphttp`` exporter) retry exactly when they should:

* 200 with ``partial_success`` (rejected span count and a message) when some spans were bad;
* 400 for an undecodable body, 413 over the size cap, 415 for an unknown content type;
* 401 when a bearer token is configured and missing or wrong;
* 429 / 503 with ``Retry-After`` under overload or while the ledger cannot commit.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmcost_collector.pipeline import IngestPipeline, IngestResult, LedgerUnavailable, Overloaded
from llmcost_collector.receive.decode import DecodedExport, DecodeError, decode_json, decode_protobuf

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class BodyTooLarge(Exception):
    pass


class IngestSettings:
    """What the receivers need besides the pipeline; swapped whole on config reload."""

    def __init__(
        self,
        tokens: frozenset[str] = frozenset(),
        max_body_bytes: int = 16 * 1024 * 1024,
        max_in_flight: int = 64,
    ) -> None:
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight

    def authorized(self, header: str | None) -> bool:
        if not self.tokens:
            return True
        if not header or not header.lower().startswith("bearer "):
            return False
        presented = header[7:].strip().encode()
        return any(hmac.compare_digest(presented, token.encode()) for token in self.tokens)


def gunzip_capped(body: bytes, limit: int) -> bytes:
    """Decompress gzip without letting a small bomb expand past ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise DecodeError(f"invalid gzip body: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge()
    return out


def response_body(result: IngestResult, content_type: str) -> bytes:
    if content_type == JSON:
        doc: dict = {}
        if result.rejected:
            doc["partialSuccess"] = {
                "rejectedSpans": str(result.rejected),
                "errorMessage": result.error_message,
            }
        return json.dumps(doc).encode()
    response = ExportTraceServiceResponse()
    if result.rejected:
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = result.error_message
    return response.SerializeToString()


class InFlight:
    """Exports being processed, against a limit read per request (so a config reload applies it
    at once; a semaphore's size would be fixed at startup)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def enter(self, limit: int) -> bool:
        with self._lock:
            if self._count >= max(1, limit):
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1


def make_handler(
    pipeline: IngestPipeline, settings_ref: list[IngestSettings]
) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to one pipeline; ``settings_ref[0]`` is read per request."""
    in_flight = InFlight()

    class OtlpHttpHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "llmcost-otlp"

        def log_message(self, format: str, *args: object) -> None:
            log.debug("otlp-http %s", format % args)

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/v1/traces":
                self._error(HTTPStatus.NOT_FOUND, "only /v1/traces is served here")
                return
            settings = settings_ref[0]
            if not settings.authorized(self.headers.get("Authorization")):
                self._error(HTTPStatus.UNAUTHORIZED, "missing or invalid bearer token", drain=True)
                return
            if not in_flight.enter(settings.max_in_flight):
                pipeline.self_metrics.exports_refused.labels("too_many_requests").inc()
                self._error(
                    HTTPStatus.TOO_MANY_REQUESTS, "too many exports in flight", retry_after=1, drain=True
                )
                return
            try:
                self._export(settings)
            finally:
                in_flight.leave()

        def _export(self, settings: IngestSettings) -> None:
            content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if content_type not in (PROTOBUF, JSON):
                self._error(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    f"unsupported content type {content_type!r}",
                    drain=True,
                )
                return
            try:
                body = self._read_body(settings.max_body_bytes)
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    body = gunzip_capped(body, settings.max_body_bytes)
                decoded: DecodedExport = decode_json(body) if content_type == JSON else decode_protobuf(body)
            except BodyTooLarge:
                pipeline.self_metrics.exports_refused.labels("too_large").inc()
                self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {settings.max_body_bytes} bytes")
                return
            except DecodeError as exc:
                pipeline.self_metrics.exports_refused.labels("undecodable").inc()
                self._error(HTTPStatus.BAD_REQUEST, str(exc), content_type=content_type)
                return
            try:
                result = pipeline.ingest(decoded, "http")
            except Overloaded as exc:
                self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), retry_after=exc.retry_after)
                return
            except LedgerUnavailable as exc:
                pipeline.self_metrics.exports_refused.labels("ledger_unavailable").inc()
                self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), retry_after=5)
                return
            self._send(HTTPStatus.OK, response_body(result, content_type), content_type)

        def _read_body(self, limit: int) -> bytes:
            length_header = self.headers.get("Content-Length")
            if length_header is not None:
                try:
                    length = int(length_header)
                except ValueError as exc:
                    raise DecodeError("invalid Content-Length") from exc
                if length > limit:
                    self.close_connection = True  # do not read (or keep) an oversized body
                    raise BodyTooLarge()
                return self.rfile.read(length)
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return self._read_chunked(limit)
            raise DecodeError("missing Content-Length")

        def _read_chunked(self, limit: int) -> bytes:
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise DecodeError("invalid chunked encoding") from exc
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > limit:
                    self.close_connection = True
                    raise BodyTooLarge()
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)

        def _error(
            self,
            status: HTTPStatus,
            message: str,
            *,
            retry_after: float | None = None,
            content_type: str = JSON,
            drain: bool = False,
        ) -> None:
            if drain:
                self._discard_body()
            headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else {}
            if content_type == PROTOBUF:
                # OTLP/HTTP error bodies are google.rpc.Status; a JSON message is what people read.
                content_type = JSON
            body = json.dumps({"code": int(status), "message": message}).encode()
            self._send(status, body, content_type, headers)

        def _discard_body(self) -> None:
            length = self.headers.get("Content-Length")
            if length and length.isdigit() and int(length) <= settings_ref[0].max_body_bytes:
                self.rfile.read(int(length))
            else:
                self.close_connection = True

        def _send(
            self, status: HTTPStatus, body: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

    return OtlpHttpHandler


__all__ = ["IngestSettings", "gunzip_capped", "make_handler", "response_body"]
