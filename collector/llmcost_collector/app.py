"""The collector as one object: wires settings, configuration, pricing, ledger, metrics and ports.

``llmcost serve`` is a thin shell around ``CollectorApp``; tests and the demo start the same
object (with port 0 for free ports) so what they exercise is what production runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from fastapi import Depends
from prometheus_client import CollectorRegistry

from llmcost_collector.budget import BudgetStatus, budget_status, status_json
from llmcost_collector.budget.reserve import Estimate, Reservations
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.config.watch import ConfigWatcher
from llmcost_collector.ledger import Ledger, open_ledger
from llmcost_collector.metrics.collector_health import SelfMetrics
from llmcost_collector.metrics.cost import CostMetrics
from llmcost_collector.metrics.coverage import AttributionCoverage
from llmcost_collector.metrics.gauges import LedgerGauges
from llmcost_collector.metrics.labels import LabelCaps
from llmcost_collector.metrics.quotes import QuoteMetrics
from llmcost_collector.metrics.reservations import ReservationMetrics
from llmcost_collector.metrics.sessions import SessionCostTracker
from llmcost_collector.model import LlmCall
from llmcost_collector.pipeline import IngestPipeline
from llmcost_collector.policy import IngestLimits, IngestPolicy
from llmcost_collector.price.pricer import Pricer
from llmcost_collector.receive.admission import ByteBudget
from llmcost_collector.receive.otlp_grpc import start_grpc_server
from llmcost_collector.receive.otlp_http import OtlpHttpReceiver
from llmcost_collector.reconcile.gauge import CaptureGauge
from llmcost_collector.redact import redact
from llmcost_collector.serving import BackgroundServer
from llmcost_collector.settings import DEFAULT_LEDGER_URL, Settings
from llmcost_collector.web.access import WebAccess
from llmcost_collector.web.admin import admin_router
from llmcost_collector.web.api import make_web_app
from llmcost_collector.web.budgets import ReserveScope, budgets_router

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_LEDGER_URL", "CollectorApp", "Settings"]

RESERVATION_SWEEP_SECONDS = 5.0  # how often expired budget reservations are looked for


class CollectorApp:
    def __init__(
        self,
        settings: Settings,
        config: Config | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.settings = settings
        self.clock = clock  # "now" for budget periods; tests roll periods over with their own
        if config is None:
            config = load_config(Path(settings.config_path)) if settings.config_path else Config.default()
        self.config = config
        self.registry = CollectorRegistry()
        self.self_metrics = SelfMetrics(self.registry)
        labels = config.labels
        self.caps = LabelCaps(
            caps=labels.caps,
            allow=labels.allow,
            default_cap=labels.default_cap,
            max_length=labels.max_value_length,
            on_truncated=lambda label: self.self_metrics.label_values_truncated.labels(label).inc(),
        )
        self.cost_metrics = CostMetrics(
            self.registry,
            self.caps,
            max_label_sets=labels.max_label_sets,
            on_collapsed=self.self_metrics.label_sets_collapsed.inc,
        )
        self.ledger: Ledger = open_ledger(settings.ledger_url)
        self.sessions = SessionCostTracker(
            self.cost_metrics.session_cost,
            self.caps,
            idle_seconds=settings.session_idle_seconds,
            session_total=self.ledger.session_total,  # the histogram observes the ledger's totals
        )
        self.pricer = Pricer(config.price_book)
        self.quote_metrics = QuoteMetrics(self.registry)  # registered now: /metrics lists them from the start
        self.gauges = LedgerGauges(self._team_spend, self.budget_statuses, self.caps, clock=self.clock)
        self.registry.register(self.gauges)
        self.coverage = AttributionCoverage(self._source_spend)
        self.registry.register(self.coverage)
        self.capture = CaptureGauge(self.ledger)  # the last recorded `llmcost reconcile` run's ratios
        self.registry.register(self.capture)
        self.pipeline = IngestPipeline(
            ledger=self.ledger,
            pricer=self.pricer,
            policy=IngestPolicy.from_config(config),
            cost_metrics=self.cost_metrics,
            sessions=self.sessions,
            self_metrics=self.self_metrics,
        )
        self.reservation_metrics = ReservationMetrics(self.registry)
        self.reservations = Reservations(
            self.ledger, lambda: self.config.all_budgets(), self.clock, self.reservation_metrics.leaked
        )
        self.budget = ByteBudget(settings.max_inflight_bytes)  # in-flight export bytes, both receivers
        self.ports: dict[str, int] = {}
        self.hosts: dict[str, str] = {}  # the address each HTTP port is bound to
        self._servers: list[BackgroundServer] = []
        self._grpc = None
        self._watcher: ConfigWatcher | None = None
        self._stopped = threading.Event()
        self._sweeper: threading.Thread | None = None

    # --- configuration ------------------------------------------------------------------

    @property
    def limits(self) -> IngestLimits:
        """The receivers' limits under the configuration in force (read per export)."""
        return self.pipeline.policy.limits

    def apply_config(self, config: Config) -> None:
        """Hot reload: one new policy swapped in whole; ledger, ports and counters stay."""
        policy = IngestPolicy.from_config(config)
        self.pricer.reload(config.price_book)
        labels = config.labels
        self.caps.reconfigure(
            caps=labels.caps,
            allow=labels.allow,
            default_cap=labels.default_cap,
            max_length=labels.max_value_length,
        )
        self.cost_metrics.max_label_sets = labels.max_label_sets
        self.cost_metrics.forget_label_values()
        self.pipeline.policy = policy
        self.config = config
        self.gauges.invalidate()
        self.coverage.invalidate()
        self.self_metrics.config_reloads.labels("applied").inc()
        log.info("configuration applied: %d teams", len(config.team_names()))

    def budget_statuses(self, now: datetime | None = None, user_id: str | None = None) -> list[BudgetStatus]:
        """Every configured budget's status from the ledger (``now`` defaults to the app's clock)."""
        moment = now or self.clock()
        return [
            budget_status(b, self.ledger.costs, moment, user_id=user_id) for b in self.config.all_budgets()
        ]

    def estimate(self, call: LlmCall) -> Estimate:
        """A (hypothetical) call's provider cost and charge, as ingest would price and charge it."""
        cost = self.pricer.price(call)
        return Estimate(cost.contracted_nanos, self.pipeline.policy.chargeback(call, cost.contracted_nanos))

    def _attribute_scope(self, scope: ReserveScope) -> tuple[str, str]:
        """(team, feature) a call of ``scope`` gets at ingest: the attribution rules applied."""
        attrs = {"llmcost.team": scope.team, "llmcost.feature": scope.feature, "user.id": scope.user_id,
                 "llmcost.user_tier": scope.user_tier, "deployment.environment.name": scope.environment}  # fmt: skip
        resource = {"service.name": scope.service_name} if scope.service_name else {}
        team, _, feature = self.pipeline.policy.rules.resolve(
            {k: v for k, v in attrs.items() if v}, resource, scope.team, scope.feature
        )
        return team, feature

    def _stored_user_id(self, user_id: str) -> str:
        """A user id as the ledger stores it (the privacy section may hash it)."""
        scrub = self.pipeline.policy.scrub_identifiers
        return scrub(user_id, "")[0] if scrub is not None else user_id

    def _team_spend(self, start_ns: int, end_ns: int) -> list[tuple[str, int]]:
        return [
            (row.group["team"], row.chargeback_nanos or 0)
            for row in self.ledger.spend(start_ns, end_ns, group_by=("team",))
        ]

    def _source_spend(self, start_ns: int, end_ns: int) -> list[tuple[str, int]]:
        return [
            (row.group["team_source"], row.contracted_nanos or 0)
            for row in self.ledger.spend(start_ns, end_ns, group_by=("team_source",))
        ]

    def _refresh_gauges(self) -> None:
        self.gauges.refresh()
        self.coverage.refresh()
        self.capture.refresh()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> CollectorApp:
        settings = self.settings
        self.pipeline.start()
        receiver = OtlpHttpReceiver(
            self.pipeline,
            lambda: self.limits,
            body_timeout=settings.body_timeout_seconds,
            body_min_rate=settings.body_min_bytes_per_second,
            budget=self.budget,
        )
        if settings.config_path:  # started below only if watching; the admin route reloads through it
            self._watcher = ConfigWatcher(
                Path(settings.config_path),
                self.apply_config,
                on_failure=lambda _error: self.self_metrics.config_reloads.labels("refused").inc(),
            )
        access = WebAccess(lambda: self.limits.access)  # the tokens of the policy in force
        web = make_web_app(
            self.registry,
            self.ledger,
            self.ready,
            self._refresh_gauges,
            lambda user: [status_json(s) for s in self.budget_statuses(user_id=user)],
            pricer=self.pricer,
            config=lambda: self.config,
            grafana_url=settings.grafana_url,
            quote_metrics=self.quote_metrics,
            routers=[
                budgets_router(
                    self.reservations,
                    self.estimate,
                    lambda: self.config.enforcement,
                    self._stored_user_id,
                    self._attribute_scope,
                    self.clock,
                    lambda result: self.reservation_metrics.answers.labels(result).inc(),
                    dependencies=[Depends(access.reserve)],
                )
            ],
            access=access,
            admin_routers=[
                admin_router(
                    self.ledger,
                    lambda: self.config,
                    lambda: self.pricer,
                    self._reload if self._watcher else None,
                )
            ],
        )
        for name, asgi_app, host, port in (
            ("otlp_http", receiver.app(), settings.host, settings.otlp_http_port),
            ("http", web, settings.http_host, settings.http_port),
        ):
            server = BackgroundServer(
                asgi_app,
                host,
                port,
                name=name,
                header_timeout=settings.header_timeout_seconds,
                max_connections=settings.max_connections,
            )
            self._servers.append(server.start())
            self.ports[name] = server.port
            self.hosts[name] = server.host
        if settings.enable_grpc:
            self._grpc, self.ports["otlp_grpc"] = start_grpc_server(
                self.pipeline,
                lambda: self.limits,
                settings.host,
                settings.otlp_grpc_port,
                workers=settings.grpc_workers,
                max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
                budget=self.budget,
            )
        if self._watcher is not None and settings.watch_config:
            self._watcher.start()
        self._sweeper = threading.Thread(target=self._sweep_sessions, name="llmcost-sessions", daemon=True)
        self._sweeper.start()
        log.info("collector listening: %s", self.urls())
        return self

    def _reload(self) -> tuple[bool, list[str]]:
        """Reload the file now (the admin route); the refused file's errors, file:line:col."""
        assert self._watcher is not None
        applied = self._watcher.reload("api")
        error = self._watcher.last_error
        return applied, [] if applied or error is None else [error.format(i) for i in error.errors]

    def _sweep_sessions(self) -> None:
        interval = min(5.0, max(0.2, self.settings.session_idle_seconds / 4))
        expired_at = time.monotonic()
        while not self._stopped.wait(interval):
            self.sessions.sweep()
            if time.monotonic() - expired_at >= RESERVATION_SWEEP_SECONDS:
                expired_at = time.monotonic()
                try:  # leaks are counted even when no call reserves (each reservation marks them too)
                    self.reservations.expire()
                except Exception:
                    log.exception("expiring budget reservations failed")

    def ready(self) -> tuple[bool, str]:
        try:
            self.ledger.ping()
        except Exception as exc:
            return False, f"ledger unavailable: {redact(str(exc))}"
        if self.pipeline.queued_spans >= self.limits.queue_capacity_spans:
            return False, "ingest queue full"
        return True, "ok"

    def urls(self) -> dict[str, str]:
        def local(bound: str) -> str:
            return "127.0.0.1" if bound in ("0.0.0.0", "", "::") else bound

        host, http = local(self.settings.host), local(self.settings.http_host)
        http = f"[{http}]" if ":" in http else http
        urls = {
            "otlp_http": f"http://{host}:{self.ports.get('otlp_http')}/v1/traces",
            "metrics": f"http://{http}:{self.ports.get('http')}/metrics",
            "api": f"http://{http}:{self.ports.get('http')}/api/v1/spend",
            "web": f"http://{http}:{self.ports.get('http')}/",
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
            server.stop()
        self.pipeline.stop()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)  # it reads the ledger, which closes below
        self.sessions.sweep()
        for server in self._servers[1:]:
            server.stop()
        self.ledger.close()

    def serve_forever(self) -> None:
        """Run until SIGINT/SIGTERM; SIGHUP reloads the configuration file."""
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        if self._watcher and self.settings.watch_config:
            self._watcher.install_sighup_handler()
        try:
            done.wait()
        finally:
            self.stop()
