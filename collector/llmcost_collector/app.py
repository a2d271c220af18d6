"""The collector as one object: wires configuration, pricing, ledger, metrics and the three ports.

``llmcost serve`` is a thin shell around ``CollectorApp``; tests and the demo start the same
object (with port 0 for free ports) so what they exercise is what production runs.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CollectorRegistry

from llmcost_collector.attribute.privacy import make_scrubber
from llmcost_collector.attribute.rules import AttributionRules
from llmcost_collector.chargeback.per_call import make_chargeback
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.config.watch import ConfigWatcher
from llmcost_collector.ledger import Ledger, open_ledger
from llmcost_collector.metrics.collector_health import SelfMetrics
from llmcost_collector.metrics.cost import CostMetrics
from llmcost_collector.metrics.gauges import LedgerGauges
from llmcost_collector.metrics.labels import LabelCaps
from llmcost_collector.metrics.sessions import SessionCostTracker
from llmcost_collector.pipeline import IngestPipeline
from llmcost_collector.price.pricer import Pricer
from llmcost_collector.receive.otlp_grpc import start_grpc_server
from llmcost_collector.receive.otlp_http import IngestSettings, make_handler
from llmcost_collector.web.api import make_api_handler

log = logging.getLogger(__name__)

DEFAULT_LEDGER_URL = "sqlite:///llmcost.db"


@dataclass
class Settings:
    """Process-level settings (ports, ledger, config path); the YAML config holds the rest."""

    host: str = "0.0.0.0"
    otlp_grpc_port: int = 4317
    otlp_http_port: int = 4318
    http_port: int = 9464
    ledger_url: str = DEFAULT_LEDGER_URL
    config_path: str | None = None
    enable_grpc: bool = True
    session_idle_seconds: float = 300.0
    watch_config: bool = True

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        settings = cls(
            host=env.get("LLMCOST_HOST", cls.host),
            otlp_grpc_port=int(env.get("LLMCOST_OTLP_GRPC_PORT", cls.otlp_grpc_port)),
            otlp_http_port=int(env.get("LLMCOST_OTLP_HTTP_PORT", cls.otlp_http_port)),
            http_port=int(env.get("LLMCOST_HTTP_PORT", cls.http_port)),
            ledger_url=env.get("LLMCOST_LEDGER_URL", cls.ledger_url),
            config_path=env.get("LLMCOST_CONFIG") or None,
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class CollectorApp:
    def __init__(self, settings: Settings, config: Config | None = None) -> None:
        self.settings = settings
        if config is None:
            config = load_config(Path(settings.config_path)) if settings.config_path else Config.default()
        self.config = config
        self.registry = CollectorRegistry()
        self.self_metrics = SelfMetrics(self.registry)
        self.caps = self._label_caps(config)
        self.cost_metrics = CostMetrics(self.registry, self.caps)
        self.sessions = SessionCostTracker(
            self.cost_metrics.session_cost, self.caps, idle_seconds=settings.session_idle_seconds
        )
        self.ledger: Ledger = open_ledger(settings.ledger_url)
        self.pricer = Pricer(config.price_book)
        self.gauges = LedgerGauges(self._team_spend, self._budgets, self.caps)
        self.registry.register(self.gauges)
        self.ingest_settings = [self._ingest_settings(config)]
        self.pipeline = IngestPipeline(
            ledger=self.ledger,
            pricer=self.pricer,
            resolve_attribution=AttributionRules(config.attribution).resolve,
            chargeback=make_chargeback(config),
            cost_metrics=self.cost_metrics,
            sessions=self.sessions,
            self_metrics=self.self_metrics,
            capacity_spans=config.ingest.queue_capacity_spans,
            scrub_identifiers=make_scrubber(config.privacy),
        )
        self.ports: dict[str, int] = {}
        self._servers: list[ThreadingHTTPServer] = []
        self._grpc = None
        self._watcher: ConfigWatcher | None = None
        self._stopped = threading.Event()
        self._sweeper: threading.Thread | None = None

    # --- configuration ------------------------------------------------------------------

    @staticmethod
    def _label_caps(config: Config) -> LabelCaps:
        labels = config.labels
        return LabelCaps(caps=labels.caps, allow=labels.allow, default_cap=labels.default_cap)

    @staticmethod
    def _ingest_settings(config: Config) -> IngestSettings:
        ingest = config.ingest
        return IngestSettings(
            tokens=frozenset(ingest.bearer_tokens),
            max_body_bytes=ingest.max_body_bytes,
            max_in_flight=ingest.max_in_flight,
        )

    def apply_config(self, config: Config) -> None:
        """Hot reload: swap rules, prices and limits; ledger, ports and counters stay."""
        self.pricer.reload(config.price_book)
        self.pipeline.resolve_attribution = AttributionRules(config.attribution).resolve
        self.pipeline.chargeback = make_chargeback(config)
        self.pipeline.capacity = config.ingest.queue_capacity_spans
        self.pipeline.scrub_identifiers = make_scrubber(config.privacy)
        labels = config.labels
        self.caps.reconfigure(caps=labels.caps, allow=labels.allow, default_cap=labels.default_cap)
        self.cost_metrics.forget_label_values()
        self.ingest_settings[0] = self._ingest_settings(config)
        self.config = config
        self.gauges.invalidate()
        self.self_metrics.config_reloads.labels("applied").inc()
        log.info("configuration applied: %d teams", len(config.team_names()))

    def _budgets(self) -> list[tuple[str, str, float]]:
        rows = []
        for team in self.config.team_names():
            for period in ("daily", "monthly"):
                budget = self.config.budget_for(team, period)
                if budget is not None:
                    rows.append((self.caps.value("team", team), period, float(budget)))
        return rows

    def _team_spend(self, start_ns: int, end_ns: int) -> list[tuple[str, int]]:
        return [
            (row.group["team"], row.chargeback_nanos or 0)
            for row in self.ledger.spend(start_ns, end_ns, group_by=("team",))
        ]

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> CollectorApp:
        settings = self.settings
        self.pipeline.start()
        otlp = _Server(
            (settings.host, settings.otlp_http_port), make_handler(self.pipeline, self.ingest_settings)
        )
        api = _Server(
            (settings.host, settings.http_port), make_api_handler(self.registry, self.ledger, self.ready)
        )
        for name, server in (("otlp_http", otlp), ("http", api)):
            self._servers.append(server)
            self.ports[name] = server.server_address[1]
            threading.Thread(target=server.serve_forever, name=f"llmcost-{name}", daemon=True).start()
        if settings.enable_grpc:
            self._grpc, self.ports["otlp_grpc"] = start_grpc_server(
                self.pipeline, self.ingest_settings, settings.host, settings.otlp_grpc_port
            )
        if settings.config_path and settings.watch_config:
            self._watcher = ConfigWatcher(
                Path(settings.config_path),
                self.apply_config,
                on_failure=lambda _error: self.self_metrics.config_reloads.labels("refused").inc(),
            )
            self._watcher.start()
        self._sweeper = threading.Thread(target=self._sweep_sessions, name="llmcost-sessions", daemon=True)
        self._sweeper.start()
        log.info("collector listening: %s", self.urls())
        return self

    def _sweep_sessions(self) -> None:
        interval = min(5.0, max(0.2, self.settings.session_idle_seconds / 4))
        while not self._stopped.wait(interval):
            self.sessions.sweep()

    def ready(self) -> tuple[bool, str]:
        try:
            self.ledger.ping()
        except Exception as exc:
            return False, f"ledger unavailable: {exc}"
        if self.pipeline.queued_spans >= self.pipeline.capacity:
            return False, "ingest queue full"
        return True, "ok"

    def urls(self) -> dict[str, str]:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "", "::") else self.settings.host
        urls = {
            "otlp_http": f"http://{host}:{self.ports.get('otlp_http')}/v1/traces",
            "metrics": f"http://{host}:{self.ports.get('http')}/metrics",
            "api": f"http://{host}:{self.ports.get('http')}/api/v1/spend",
            "web": f"http://{host}:{self.ports.get('http')}/",
        }
        if "otlp_grpc" in self.ports:
            urls["otlp_grpc"] = f"{host}:{self.ports['otlp_grpc']}"
        return urls

    def stop(self) -> None:
        """Stop receiving, commit what is queued, then close the ledger."""
        self._stopped.set()
        if self._watcher:
            self._watcher.stop()
        if self._grpc is not None:
            self._grpc.stop(grace=2).wait()
        for server in self._servers[:1]:  # OTLP first: no new exports
            server.shutdown()
            server.server_close()
        self.pipeline.stop()
        self.sessions.sweep()
        for server in self._servers[1:]:
            server.shutdown()
            server.server_close()
        self.ledger.close()

    def serve_forever(self) -> None:
        """Run until SIGINT/SIGTERM; SIGHUP reloads the configuration file."""
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        if self._watcher:
            self._watcher.install_sighup_handler()
        try:
            done.wait()
        finally:
            self.stop()
