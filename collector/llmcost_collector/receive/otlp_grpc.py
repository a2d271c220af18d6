"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Same semantics as the HTTP receiver: partial success for bad spans, INVALID_ARGUMENT for an
undecodable request, UNAUTHENTICATED without a valid token,
PERMISSION_DENIED for a token without the ingest role, UNAVAILABLE (retryable by OTLP
exporters) when overloaded or when the ledger cannot commit.

Bounded like the HTTP side: a fixed pool of worker threads, at most ``max_concurrent_rpcs`` calls
at once (grpcio answers RESOURCE_EXHAUSTED past it, before reading the message, and OTLP exporters
retry that), each request's encoded size charged to the shared in-flight byte budget before it is
decoded, and the client's deadline honoured: a call whose deadline has passed before its spans
are queued gets DEADLINE_EXCEEDED with nothing of it committed (a call already queued commits
whole or not at all, and its retry is a no-op on the ledger's idempotency key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmcost_collector.pipeline import DeadlineExceeded, IngestPipeline, LedgerUnavailable, Overloaded
from llmcost_collector.policy import Denied, IngestLimits
from llmcost_collector.receive.admission import BudgetExhausted, ByteBudget, Charge
from llmcost_collector.receive.decode import decode_request


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(
        self, pipeline: IngestPipeline, limits: Callable[[], IngestLimits], budget: ByteBudget | None = None
    ) -> None:
        self._pipeline = pipeline
        self._limits = limits
        self._budget = budget if budget is not None else ByteBudget(64 * 1024 * 1024)

    def _refused(self, reason: str) -> None:
        self._pipeline.self_metrics.exports_refused.labels(reason).inc()

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        metadata: Sequence[tuple[str, str | bytes]] = context.invocation_metadata() or ()
        auth = next((str(value) for key, value in metadata if key == "authorization"), None)
        try:
            self._limits().ingest_grant(auth)
        except Denied as denied:
            self._refused("unauthorized")
            code = (
                grpc.StatusCode.UNAUTHENTICATED if denied.status == 401 else grpc.StatusCode.PERMISSION_DENIED
            )
            context.abort(code, denied.message)
        remaining = context.time_remaining()  # None when the client set no deadline
        deadline = None if remaining is None else time.monotonic() + remaining
        if remaining is not None and remaining <= 0:
            self._refused("deadline_exceeded")
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the export was read")
        with Charge(self._budget) as charge:
            try:
                self._pipeline.check_capacity()
                charge.add(request.ByteSize())
                result = self._pipeline.ingest(decode_request(request), "grpc", deadline)
            except BudgetExhausted:
                self._refused("over_budget")
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"in-flight export bytes over the budget of {self._budget.limit}",
                )
            except DeadlineExceeded as exc:
                self._refused("deadline_exceeded")
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
            except (Overloaded, LedgerUnavailable) as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.error_message
        return response


def start_grpc_server(
    pipeline: IngestPipeline,
    limits: Callable[[], IngestLimits],
    host: str,
    port: int,
    *,
    workers: int = 8,
    max_concurrent_rpcs: int = 16,
    budget: ByteBudget | None = None,
) -> tuple[grpc.Server, int]:
    """Start the server; returns it and the bound port (``port=0`` picks a free one). The message
    size and concurrency limits are fixed at start (grpcio cannot change them on a running server):
    ``workers`` threads run calls, and at most ``max_concurrent_rpcs`` calls are admitted at once
    (the ones past ``workers`` wait for a thread), so at most that many messages are held."""
    at_start = limits()
    max_bytes = at_start.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmcost-grpc"),
        options=[("grpc.max_receive_message_length", max_bytes)],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(pipeline, limits, budget), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC on {host}:{port}")
    server.start()
    return server, bound
