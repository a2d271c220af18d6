"""The loopback HTTP server that answers like OpenAI and Anthropic, driven by scenarios.

Stdlib only (`ThreadingHTTPServer`): HTTP/1.1 keep-alive with Content-Length for plain replies,
chunked transfer for SSE streams. Each request is answered from a scenario, taken from the push()
queue, else the `x-fake-scenario` JSON header, else the provider's default.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from llmcost_demo.fake_provider import anthropic_wire, openai_wire
from llmcost_demo.fake_provider.scenario import RecordedRequest, Reply, Scenario

SCENARIO_HEADER = "x-fake-scenario"
STALL_LIMIT_S = 60.0  # a stalled stream is dropped after this long if its client never leaves


class FakeProvider:
    """A fake LLM provider on a loopback port; use as a context manager or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, default: Scenario | None = None) -> None:
        self.host = host
        self.port = port
        self.default = default
        self._lock = threading.Lock()
        self._queue: deque[Scenario] = deque()
        self._recorded: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-provider",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed handlers, close open keep-alive connections and free the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    # --- scenarios and recordings ---------------------------------------------------------------

    def push(self, *scenarios: Scenario) -> None:
        """Queue scenarios; the next requests to an LLM endpoint consume them in order."""
        with self._lock:
            self._queue.extend(scenarios)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._recorded)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._recorded.clear()

    def _choose(self, headers: dict[str, str], consume: bool) -> Scenario:
        with self._lock:
            if consume and self._queue:
                return self._queue.popleft()
        if SCENARIO_HEADER in headers:
            return Scenario.from_json(headers[SCENARIO_HEADER])
        return self.default or Scenario()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._recorded.append(request)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], provider: FakeProvider
    ):
        self.provider = provider
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping connections (timeouts, cut streams, closed pools) is normal here: stay quiet."""
        if isinstance(sys.exc_info()[1], ConnectionError) or self.provider._stopping.is_set():
            return
        super().handle_error(request, client_address)


def _route(path: str) -> Any:
    if path in openai_wire.PATHS:
        return openai_wire
    if path in anthropic_wire.PATHS:
        return anthropic_wire
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm-provider/1"
    sys_version = ""

    @property
    def provider(self) -> FakeProvider:
        return cast(_Server, self.server).provider

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.provider._track(self.connection, add=True)

    def finish(self) -> None:
        self.provider._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and benchmarks own stdout
        pass

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self._read_body()
        wire = _route(path) if self.command == "POST" else None
        try:
            body = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
            if wire is not None:
                self._send(wire.error(400, "The request body is not valid JSON."))
                return
        try:
            scenario = self.provider._choose(headers, consume=wire is not None)
        except (ValueError, TypeError) as exc:
            self._send((wire or openai_wire).error(400, f"fake provider: {exc}"))
            return
        recorded_body = body if isinstance(body, dict) else None
        self.provider._record(RecordedRequest(self.command, path, headers, recorded_body, scenario))
        if wire is None:
            self._send(Reply(404, {"error": {"message": f"Unknown request URL: {self.command} {path}",
                                             "type": "invalid_request_error", "param": None,
                                             "code": "unknown_url"}}))  # fmt: skip
            return
        if scenario.delay_s > 0 and self.provider._stopping.wait(scenario.delay_s):
            self.close_connection = True
            return
        self._send(
            wire.handle(path, recorded_body or {}, scenario),
            scenario.cut_stream_after,
            scenario.stall_stream_after,
        )

    def _send(self, reply: Reply, cut_after: int | None = None, stall_after: int | None = None) -> None:
        try:
            if reply.events is None:
                payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self._headers(reply, "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_response(reply.status)
            self._headers(reply, "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for n, event in enumerate(reply.events):
                if cut_after is not None and n >= cut_after:
                    self._drop()
                    return
                if stall_after is not None and n >= stall_after:
                    self.provider._stopping.wait(STALL_LIMIT_S)  # the client times out meanwhile
                    self._drop()
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _headers(self, reply: Reply, content_type: str) -> None:
        self.send_header("Content-Type", content_type)
        for name, value in (reply.headers or {}).items():
            self.send_header(name, value)

    def _drop(self) -> None:
        """End the TCP connection mid-body: the client sees an incomplete chunked response."""
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
