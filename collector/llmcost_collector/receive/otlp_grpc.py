"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Same semantics as the HTTP receiver: partial success for bad spans, INVALID_ARGUMENT for an
undecodable request, UNAUTHENTICATED without a valid token,
PERMISSION_DENIED for a token without the ingest role, UNAVAILABLE (retryable by OTLP
exporters) when overloaded or when the ledger cannot commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmcost_collector.pipeline import IngestPipeline, LedgerUnavailable, Overloaded
from llmcost_collector.policy import Denied, IngestLimits
from llmcost_collector.receive.decode import decode_request


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, pipeline: IngestPipeline, limits: Callable[[], IngestLimits]) -> None:
        self._pipeline = pipeline
        self._limits = limits

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        metadata: Sequence[tuple[str, str | bytes]] = context.invocation_metadata() or ()
        auth = next((str(value) for key, value in metadata if key == "authorization"), None)
        try:
            self._limits().ingest_grant(auth)
        except Denied as denied:
            code = (
                grpc.StatusCode.UNAUTHENTICATED if denied.status == 401 else grpc.StatusCode.PERMISSION_DENIED
            )
            context.abort(code, denied.message)
        try:
            result = self._pipeline.ingest(decode_request(request), "grpc")
        except (Overloaded, LedgerUnavailable) as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.error_message
        return response


def start_grpc_server(
    pipeline: IngestPipeline, limits: Callable[[], IngestLimits], host: str, port: int, workers: int = 8
) -> tuple[grpc.Server, int]:
    """Start the server; returns it and the bound port (``port=0`` picks a free one). The message
    size and concurrency limits are fixed at start (grpcio cannot change them on a running server)."""
    at_start = limits()
    max_bytes = at_start.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmcost-grpc"),
        options=[("grpc.max_receive_message_length", max_bytes)],
        maximum_concurrent_rpcs=at_start.max_in_flight,
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(pipeline, limits), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC on {host}:{port}")
    server.start()
    return server, bound
