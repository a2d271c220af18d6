"""Fixtures shared by the collector's integration tests: one way to run a collector on loopback
ports (always stopped after the test), and the helpers that talk to it."""

from __future__ import annotations

import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from llmcost_collector.app import CollectorApp, Settings
from llmcost_collector.config.schema import Config
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.support import start_process, stop_process

FAR_FUTURE = time.time_ns() + 10**15


class Collectors:
    """Starts collectors on ephemeral loopback ports, each with its own SQLite ledger in tmp_path
    unless ``ledger_url`` says otherwise; every one still running is stopped at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._started = 0
        self._running: list[CollectorApp] = []

    def __call__(
        self, config_yaml: str | None = None, *, config: Config | None = None, **settings: Any
    ) -> CollectorApp:
        """``config_yaml`` is written to a file the collector loads and watches; ``config`` is
        handed over in memory (no file); ``settings`` override the loopback defaults."""
        n = self._started
        self._started += 1
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "otlp_http_port": 0,
            "http_port": 0,
            "enable_grpc": False,
            "ledger_url": f"sqlite:///{self._tmp_path / f'ledger{n}.db'}",
        }
        if config_yaml is not None:
            path = self._tmp_path / f"llmcost{n}.yaml"
            path.write_text(config_yaml)
            values["config_path"] = str(path)
        values.update(settings)
        app = CollectorApp(Settings(**values), config=config).start()
        self._running.append(app)
        return app

    def stop(self, app: CollectorApp) -> None:
        """Stop one collector before the test ends (a restart, say)."""
        self._running.remove(app)
        app.stop()

    def stop_all(self) -> None:
        while self._running:
            self._running.pop().stop()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collectors]:
    collectors = Collectors(tmp_path)
    try:
        yield collectors
    finally:
        collectors.stop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty ledger per test, once on SQLite and once on PostgreSQL (a fresh ``pg_url``
    database: the module imports ``pg_cluster`` and ``pg_url`` from ``tests.pg``), because the two
    backends must give the same answers."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


def config_file(app: CollectorApp) -> Path:
    """The file a collector started with ``config_yaml`` watches."""
    assert app.settings.config_path is not None
    return Path(app.settings.config_path)


def export(app: CollectorApp, spans: list[ReadableSpan]) -> None:
    """Send spans with the official OTLP/HTTP exporter; the collector must acknowledge them."""
    exporter = OTLPSpanExporter(endpoint=app.urls()["otlp_http"])
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    """POST raw bytes; (status, body, title-cased headers), also for error statuses."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), {k.title(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, err.read(), {k.title(): v for k, v in err.headers.items()}


def metric(app: CollectorApp, name: str, **labels: str) -> float:
    """A sample from the collector's registry; 0 when it was never recorded."""
    value = app.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def team_cost(app: CollectorApp, team: str) -> Decimal:
    """The team's contracted cost in USD, read back from the ledger."""
    rows = app.ledger.spend(0, FAR_FUTURE, group_by=("team",), filters={"team": team})
    return sum((Decimal(r.contracted_nanos or 0) for r in rows), Decimal(0)).scaleb(-9)


@pytest.fixture
def fake_provider() -> Iterator[str]:
    """The fake LLM provider as its own process (as in production, the SDK talks HTTP to it)."""
    proc, url = start_process(
        [sys.executable, "-m", "llmcost_demo.fake_provider", "--host", "127.0.0.1", "--port", "0"],
        re.compile(r"listening on (http://\S+)"),
    )
    yield url
    stop_process(proc)
