"""Serve an ASGI application with uvicorn on a background thread, with deadlines for slow clients.

The collector runs two HTTP ports (OTLP/HTTP and the API/metrics/web port) beside the gRPC
server and the ledger writer in one process, so each uvicorn server gets a thread and an event
loop of its own; ``start`` returns once the socket is bound (port 0 picks a free one, which the
tests and the demo use).

uvicorn arms no timer while a client is still sending its request line and headers (its
keep-alive timer starts only after a response, and any byte resets it), so a client that
connects and says nothing, or trickles one header byte at a time, would keep a connection open
forever. ``_DeadlineH11Protocol`` gives every request ``header_timeout`` seconds, counted from the
connection (or the previous response) and not reset by data, to finish its headers. Bodies have
their own deadline in the application (``receive.otlp_http``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class _DeadlineH11Protocol(H11Protocol):
    header_timeout: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _cancel_header_deadline(self) -> None:
        deadline = self._header_deadline
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._cancel_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._cancel_header_deadline()
            self._arm_header_deadline()  # the next request on this connection gets its own

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("closing a connection that sent no complete request in %.0fs", self.header_timeout)
            self.transport.close()


class BackgroundServer:
    """One ASGI app on one port, served by uvicorn on its own thread."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        name: str,
        header_timeout: float = 10.0,
        max_connections: int = 1024,
    ) -> None:
        protocol = type("DeadlineH11Protocol", (_DeadlineH11Protocol,), {"header_timeout": header_timeout})
        self._config = uvicorn.Config(
            app,
            http=protocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            limit_concurrency=max_connections,
            timeout_keep_alive=max(5, int(header_timeout)),
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(self._config)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(1024)
        self.host: str = self._socket.getsockname()[0]
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"llmcost-{name}", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in progress finish (up to the graceful timeout)."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()
