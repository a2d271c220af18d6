"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies, optionally gzip.

A Starlette application (served by uvicorn, see ``llmcost_collector.serving``). Answers follow
the OTLP/HTTP specification so that standard exporters, and an OpenTelemetry Collector's
``otlphttp`` exporter, retry exactly when they should:

* 200 with ``partial_success`` (rejected span count and a message) when some spans were bad;
* 400 for an undecodable body (including absurd nesting), 413 over the size cap (checked from
  ``Content-Length`` before the body is read, and while reading a chunked one), 415 for an
  unknown content type, 408 when the body falls behind its deadline (a grace period, then a
  minimum data rate);
* 401 when bearer tokens are configured and the request has none of them;
* 429 (too many exports in flight, or the in-flight byte budget cannot take this body) and 503
  (queue full, ledger cannot commit) with ``Retry-After``.

Admission comes before work: the queue is checked before the body is read and again before it is
decoded; the body's ``Content-Length`` is checked against the shared in-flight budget
(``receive.admission``) before a byte is read, its bytes are charged as they arrive (a stalled
upload holds only what it sent), and gzip is charged step by step as it inflates; the charge is
returned when the answer is sent.

Error bodies are ``google.rpc.Status`` in the request's content type (protobuf or JSON), as the
specification asks. Decompressing, decoding, pricing and waiting for the ledger commit run on a
worker thread, never on the event loop, so one large export does not stall the others.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable
from http import HTTPStatus

import anyio
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from llmcost_collector.pipeline import IngestPipeline, IngestResult, LedgerUnavailable, Overloaded
from llmcost_collector.policy import Denied, IngestLimits
from llmcost_collector.receive.admission import BudgetExhausted, ByteBudget, Charge
from llmcost_collector.receive.decode import DecodeError, decode_json, decode_protobuf

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# HTTP status -> google.rpc.Code for the Status body.
_RPC_CODES = {
    HTTPStatus.BAD_REQUEST: code_pb2.INVALID_ARGUMENT,
    HTTPStatus.UNAUTHORIZED: code_pb2.UNAUTHENTICATED,
    HTTPStatus.FORBIDDEN: code_pb2.PERMISSION_DENIED,
    HTTPStatus.NOT_FOUND: code_pb2.NOT_FOUND,
    HTTPStatus.METHOD_NOT_ALLOWED: code_pb2.UNIMPLEMENTED,
    HTTPStatus.REQUEST_TIMEOUT: code_pb2.DEADLINE_EXCEEDED,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: code_pb2.RESOURCE_EXHAUSTED,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: code_pb2.INVALID_ARGUMENT,
    HTTPStatus.TOO_MANY_REQUESTS: code_pb2.RESOURCE_EXHAUSTED,
    HTTPStatus.SERVICE_UNAVAILABLE: code_pb2.UNAVAILABLE,
}


class BodyTooLarge(Exception):
    pass


# Gzip is inflated this many bytes at a time, each step charged before the next is made.
INFLATE_STEP = 1024 * 1024


def gunzip_capped(body: bytes, limit: int, charge: Charge | None = None) -> bytearray:
    """Decompress gzip without letting a small bomb expand past ``limit`` bytes, charging each
    inflated step to ``charge`` (``BudgetExhausted`` when the in-flight budget cannot take it)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    data = body
    try:
        while True:
            piece = inflater.decompress(data, min(INFLATE_STEP, limit + 1 - len(out)))
            data = inflater.unconsumed_tail
            if len(out) + len(piece) > limit:
                raise BodyTooLarge()
            if charge is not None:
                charge.add(len(piece))
            out += piece
            if inflater.eof or not piece:
                break
    except zlib.error as exc:
        raise DecodeError(f"invalid gzip body: {exc}") from exc
    if not inflater.eof:
        if data:  # output stopped at the cap with input left: more than ``limit`` bytes
            raise BodyTooLarge()
        raise DecodeError("invalid gzip body: truncated")
    return out


def response_body(result: IngestResult, content_type: str) -> bytes:
    """``ExportTraceServiceResponse``, with ``partial_success`` when spans were rejected."""
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


def status_response(
    status: HTTPStatus, message: str, content_type: str = JSON, retry_after: float | None = None
) -> Response:
    """An error answer: ``google.rpc.Status`` encoded like the request (protobuf, else JSON)."""
    rpc = status_pb2.Status(code=_RPC_CODES.get(status, code_pb2.UNKNOWN), message=message)
    if content_type == PROTOBUF:
        body, media_type = rpc.SerializeToString(), PROTOBUF
    else:
        body, media_type = json_format.MessageToJson(rpc, indent=None).encode(), JSON
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return Response(body, status_code=int(status), media_type=media_type, headers=headers)


class OtlpHttpReceiver:
    """The ``/v1/traces`` endpoint bound to one pipeline; the limits are read per request, so a
    configuration reload applies to the next export."""

    def __init__(
        self,
        pipeline: IngestPipeline,
        limits: Callable[[], IngestLimits],
        *,
        body_timeout: float = 30.0,
        body_min_rate: float = 16 * 1024,
        budget: ByteBudget | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.limits = limits
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate
        self.budget = budget if budget is not None else ByteBudget(64 * 1024 * 1024)
        self.in_flight = 0  # touched on the event loop only
        self._workers: anyio.CapacityLimiter | None = None

    def app(self) -> Starlette:
        async def not_found(request: Request, exc: Exception) -> Response:
            code = exc.status_code if isinstance(exc, HTTPException) else 404
            return status_response(
                HTTPStatus(code), f"{request.method} {request.url.path}: only POST /v1/traces"
            )

        return Starlette(
            routes=[Route("/v1/traces", self.export, methods=["POST"])],
            exception_handlers={404: not_found, 405: not_found},
        )

    def _refused(self, reason: str) -> None:
        self.pipeline.self_metrics.exports_refused.labels(reason).inc()

    async def export(self, request: Request) -> Response:
        limits = self.limits()
        content_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        try:
            limits.ingest_grant(request.headers.get("authorization"))
        except Denied as denied:
            self._refused("unauthorized")
            return status_response(denied.status, denied.message, content_type)
        if content_type not in (PROTOBUF, JSON):
            self._refused("unsupported_media_type")
            return status_response(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"unsupported content type {content_type!r}: send {PROTOBUF} or {JSON}",
            )
        if self.in_flight >= max(1, limits.max_in_flight):
            self._refused("too_many_requests")
            return status_response(
                HTTPStatus.TOO_MANY_REQUESTS, "too many exports in flight", content_type, retry_after=1
            )
        try:
            self.pipeline.check_capacity()  # a full queue refuses before the body is read
        except Overloaded as exc:
            return status_response(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), content_type, exc.retry_after)
        self.in_flight += 1
        try:
            with Charge(self.budget) as charge:
                return await self._export(request, limits, content_type, charge)
        finally:
            self.in_flight -= 1

    def _over_budget(self, content_type: str) -> Response:
        self._refused("over_budget")
        return status_response(
            HTTPStatus.TOO_MANY_REQUESTS,
            f"in-flight body bytes over the budget of {self.budget.limit}",
            content_type,
            retry_after=BudgetExhausted.retry_after,
        )

    async def _export(
        self, request: Request, limits: IngestLimits, content_type: str, charge: Charge
    ) -> Response:
        too_large = f"body over {limits.max_body_bytes} bytes"
        try:
            body = await self._read_body(request, limits.max_body_bytes, charge)
        except BodyTooLarge:
            self._refused("too_large")
            return status_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large, content_type)
        except BudgetExhausted:
            return self._over_budget(content_type)
        except ClientDisconnect:  # gone before its body arrived: nothing to bill, nobody to answer
            self._refused("client_disconnected")
            return Response(status_code=int(HTTPStatus.BAD_REQUEST))
        except TimeoutError:
            self._refused("body_timeout")
            return status_response(
                HTTPStatus.REQUEST_TIMEOUT, f"body not received within {self.body_timeout:g}s", content_type
            )
        gzipped = (request.headers.get("content-encoding") or "").lower() == "gzip"
        if self._workers is None:
            self._workers = anyio.CapacityLimiter(max(1, limits.max_in_flight))
        self._workers.total_tokens = max(1, limits.max_in_flight)
        try:
            result = await anyio.to_thread.run_sync(
                self._ingest,
                body,
                content_type,
                gzipped,
                limits.max_body_bytes,
                charge,
                limiter=self._workers,
            )
        except BodyTooLarge:
            self._refused("too_large")
            return status_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large, content_type)
        except BudgetExhausted:
            return self._over_budget(content_type)
        except DecodeError as exc:
            self._refused("undecodable")
            return status_response(HTTPStatus.BAD_REQUEST, str(exc), content_type)
        except Overloaded as exc:
            return status_response(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), content_type, exc.retry_after)
        except LedgerUnavailable as exc:
            self._refused("ledger_unavailable")
            return status_response(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), content_type, retry_after=5)
        return Response(response_body(result, content_type), media_type=content_type)

    async def _read_body(self, request: Request, limit: int, charge: Charge) -> bytes:
        """The body, refused unread when ``Content-Length`` is over the cap or the in-flight
        budget, cut off as soon as it passes either while it streams, and bounded in time.

        The time bound is a minimum data rate after a grace period, as Kestrel's
        ``MinRequestBodyDataRate``: a body has ``body_timeout`` seconds, extended while it keeps
        arriving at ``body_min_rate`` bytes a second on average. A silent or trickling client is cut
        off after the grace period, while a large export on a slow link, or one read slowly because
        this process is busy, is not refused for its size alone (a fixed deadline 408s every 4 MiB
        body on a link under ~1 Mbit/s, and an OTLP exporter does not retry a 408).
        """
        length = request.headers.get("content-length")
        if length is not None:  # h11 has already checked it is a number
            if int(length) > limit:
                raise BodyTooLarge()
            if not self.budget.fits(int(length)):  # before a byte of the body is read
                raise BudgetExhausted()
        chunks: list[bytes] = []
        total = 0
        started = anyio.current_time()
        with anyio.CancelScope(deadline=started + self.body_timeout) as deadline:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise BodyTooLarge()
                charge.add(len(chunk))  # as it arrives: a stalled upload holds what it sent
                chunks.append(chunk)
                deadline.deadline = started + max(self.body_timeout, total / self.body_min_rate)
        if deadline.cancelled_caught:
            raise TimeoutError
        return b"".join(chunks)

    def _ingest(
        self, body: bytes, content_type: str, gzipped: bool, limit: int, charge: Charge
    ) -> IngestResult:
        """Worker thread: decompress, decode, then bill (returns after the ledger commit)."""
        self.pipeline.check_capacity()  # the queue may have filled while the body was read
        data: bytes | bytearray = gunzip_capped(body, limit, charge) if gzipped else body
        decoded = decode_json(data) if content_type == JSON else decode_protobuf(data)
        del data
        return self.pipeline.ingest(decoded, "http")
