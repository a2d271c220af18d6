"""The demo behind `make run`: collector + fake provider + traffic through the real SDKs.

Everything runs in one process but over the real wire: the `openai` and `anthropic` SDKs call
the loopback fake provider, `otel_llmcost` instruments them and exports OTLP/HTTP to the
collector, which prices the spans into a SQLite ledger. The live summary is read back from the
ledger, exactly as the API and invoices will read it.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmcost_collector.app import CollectorApp, Settings
from llmcost_collector.periods import epoch_ns, named_period
from llmcost_collector.report.render import to_markdown
from llmcost_collector.report.summary import build_report

from llmcost_demo.fake_provider import FakeProvider

DEMO_CONFIG = Path(__file__).with_name("demo-config.yaml")


@dataclass(frozen=True)
class Workload:
    team: str
    feature: str
    environment: str
    session_name: str
    steps: tuple[str, ...]
    call: str  # which SDK call to make: openai-chat | openai-faq | openai-stream | openai-responses | openai-embed | anthropic | anthropic-stream
    model: str
    weight: int
    outcome: str = ""


WORKLOADS = (
    Workload("marketing", "chat", "production", "Campaign Chat", ("/chat",), "openai-chat", "gpt-4o-mini", 6),
    Workload("marketing", "copywriting", "production", "Ad Copy", ("/draft", "/draft/review"),
             "openai-stream", "gpt-4o", 2),
    Workload("marketing", "chat", "development", "Campaign Chat", ("/chat",), "openai-chat", "gpt-4o-mini", 2),
    Workload("support", "ticket-triage", "production", "Ticket Resolution", ("/triage", "/triage/answer"),
             "anthropic", "claude-haiku-4-5", 5, "ticket_resolved"),
    # The same few questions again and again, through the response cache: repeats cost $0.
    Workload("support", "faq", "production", "FAQ", ("/faq",), "openai-faq", "gpt-4o-mini", 4),
    Workload("support", "document-analysis", "production", "Document Analysis", ("/analyze", "/analyze/extract"),
             "anthropic-stream", "claude-sonnet-4-5", 3),
    Workload("search", "semantic-search", "production", "Search", ("/embed",), "openai-embed",
             "text-embedding-3-small", 4),
    Workload("search", "answers", "staging", "Search", ("/answer",), "openai-responses", "gpt-4.1-mini", 2),
    Workload("platform", "evals", "development", "Nightly Evals", ("/eval",), "openai-chat", "o4-mini", 1),
)  # fmt: skip
FAQ = (
    "How do I reset my password?",
    "Where can I download my invoice?",
    "How do I add a teammate?",
    "Which plans include single sign-on?",
    "How do I cancel my subscription?",
)
USERS = {
    "free": [f"user-{n:03d}" for n in range(100, 112)],
    "premium": [f"user-{n:03d}" for n in range(200, 206)],
}


def _scenario(rng: random.Random, workload: Workload) -> dict[str, int]:
    """Token counts for one call, shaped like the workload (Anthropic: cache-heavy)."""
    prompt = rng.randint(200, 4000)
    scenario: dict[str, int] = {"input_tokens": prompt, "output_tokens": rng.randint(20, 800)}
    if workload.call.startswith("anthropic"):
        if rng.random() < 0.6:
            scenario["cached_tokens"] = rng.randint(1000, 8000)
        elif rng.random() < 0.5:
            scenario["cache_creation_5m"] = rng.randint(1000, 4000)
    elif workload.call != "openai-embed" and rng.random() < 0.3:
        scenario["cached_tokens"] = prompt // 2
    if workload.model.startswith("o"):
        scenario["reasoning_tokens"] = scenario["output_tokens"] // 2
    if workload.call == "openai-embed":
        scenario["output_tokens"] = 0
    return scenario


class TrafficGenerator:
    """Drives the real SDKs with attributed calls until stopped."""

    def __init__(self, provider_url: str, rate_per_second: float, seed: int = 7) -> None:
        import anthropic
        import openai

        self.rng = random.Random(seed)
        self.rate = rate_per_second
        self.openai = openai.OpenAI(base_url=provider_url + "/v1", api_key="demo", max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=provider_url, api_key="demo", max_retries=0)
        self.calls = 0
        self.errors = 0
        from otel_llmcost.cache import MemoryBackend

        self.faq_cache = MemoryBackend()  # per team (the default key scope), shared by its users
        self._stop = threading.Event()
        self._weights = [w.weight for w in WORKLOADS]

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        import otel_llmcost

        while not self._stop.is_set():
            workload = self.rng.choices(WORKLOADS, self._weights)[0]
            tier = "premium" if self.rng.random() < 0.35 else "free"
            user = self.rng.choice(USERS[tier])
            session_id = f"sess-{self.rng.getrandbits(40):010x}"
            with otel_llmcost.attribute(
                team=workload.team,
                feature=workload.feature,
                environment=workload.environment,
                user_id=user,
                user_tier=tier,
                session_id=session_id,
                session_name=workload.session_name,
            ):
                for step in workload.steps:
                    with otel_llmcost.attribute(session_path=step):
                        self._call(workload)
                    if self._stop.wait(1.0 / self.rate):
                        return
                if workload.outcome:  # the business result the calls bought (cost per outcome)
                    otel_llmcost.record_outcome(workload.outcome)

    def _call(self, workload: Workload) -> None:
        scenario = _scenario(self.rng, workload)
        if self.rng.random() < 0.02:
            scenario["error_status"] = self.rng.choice([429, 500])
        headers = {"x-fake-scenario": json.dumps(scenario)}
        messages: Any = [{"role": "user", "content": "Summarize the attached quarterly report."}]
        try:
            if workload.call == "openai-chat":
                self.openai.chat.completions.create(
                    model=workload.model, messages=messages, extra_headers=headers
                )
            elif workload.call == "openai-faq":
                import otel_llmcost

                question: Any = [{"role": "user", "content": self.rng.choice(FAQ)}]
                with otel_llmcost.cache(ttl=86400, backend=self.faq_cache):
                    self.openai.chat.completions.create(
                        model=workload.model, messages=question, temperature=0, extra_headers=headers
                    )
            elif workload.call == "openai-stream":
                stream = self.openai.chat.completions.create(
                    model=workload.model, messages=messages, stream=True,
                    stream_options={"include_usage": True}, extra_headers=headers,
                )  # fmt: skip
                for _ in stream:
                    pass
            elif workload.call == "openai-responses":
                self.openai.responses.create(
                    model=workload.model, input="What changed?", extra_headers=headers
                )
            elif workload.call == "openai-embed":
                self.openai.embeddings.create(
                    model=workload.model, input=["quarterly report"], extra_headers=headers
                )
            elif workload.call == "anthropic":
                self.anthropic.messages.create(
                    model=workload.model, max_tokens=1024, messages=messages, extra_headers=headers
                )
            else:
                with self.anthropic.messages.stream(
                    model=workload.model, max_tokens=1024, messages=messages, extra_headers=headers
                ) as message_stream:
                    message_stream.get_final_message()
            self.calls += 1
        except Exception:  # the fake provider's injected 429/500: the span records the error
            self.errors += 1


def summarize(app: CollectorApp) -> str:
    """The live summary: this month's spend report (environment -> feature tree, top users, cache,
    sessions, outcomes, user tiers), through the same code as ``llmcost report``."""
    start, end = named_period("this_month", datetime.now(timezone.utc))
    return "\n" + to_markdown(build_report(app.ledger, epoch_ns(start), epoch_ns(end), label="this month"))


class DemoStack:
    """Collector + fake provider + instrumentation + traffic threads, started and stopped together."""

    def __init__(
        self, settings: Settings, rate: float = 20.0, threads: int = 2, send_to: str | None = None
    ) -> None:
        self.settings = settings
        # An OTLP/HTTP traces endpoint to export to instead of an embedded collector: the compose
        # stack's traffic service sends through the OpenTelemetry Collector to the replicas.
        self.send_to = send_to
        self.rate = rate
        self.thread_count = threads
        self.app: CollectorApp | None = None
        self.provider: FakeProvider | None = None
        self.generator: TrafficGenerator | None = None
        self._threads: list[threading.Thread] = []
        self._tracer_provider: Any = None

    def start(self) -> DemoStack:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> DemoStack:
        import otel_llmcost

        if self.send_to is None:
            self.app = CollectorApp(self.settings).start()
        self.provider = FakeProvider(host="127.0.0.1").start()
        self._tracer_provider = otel_llmcost.configure(
            endpoint=self.app.urls()["otlp_http"] if self.app else self.send_to,
            service_name="llmcost-demo",
            export_interval_seconds=1.0,
        )
        otel_llmcost.instrument()
        self.generator = TrafficGenerator(self.provider.base_url, self.rate)
        self._threads = [
            threading.Thread(target=self.generator.run, name=f"demo-traffic-{n}", daemon=True)
            for n in range(self.thread_count)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop traffic, flush the last spans into the ledger, then stop the collector."""
        import otel_llmcost

        if self.generator:
            self.generator.stop()
        for thread in self._threads:
            thread.join(5)
        if self._tracer_provider is not None:
            self._tracer_provider.force_flush()
            otel_llmcost.uninstrument()
            self._tracer_provider.shutdown()
        if self.provider:
            self.provider.stop()
        if self.app:
            self.app.stop()


def demo_settings(
    host: str = "127.0.0.1",
    otlp_http_port: int = 4318,
    otlp_grpc_port: int = 4317,
    http_port: int = 9464,
    ledger_url: str | None = None,
) -> Settings:
    """Embedded defaults: the demo config, a fresh SQLite ledger in a temp directory."""
    workdir = Path(tempfile.mkdtemp(prefix="llmcost-demo-"))
    return Settings(
        host=host,
        http_host=host,
        otlp_http_port=otlp_http_port,
        otlp_grpc_port=otlp_grpc_port,
        http_port=http_port,
        ledger_url=ledger_url or f"sqlite:///{workdir / 'ledger.db'}",
        config_path=str(DEMO_CONFIG),
        session_idle_seconds=10.0,
        watch_config=False,
    )


def run_demo(
    settings: Settings,
    *,
    rate: float = 20.0,
    duration: float | None = None,
    summary_every: float = 5.0,
    out: Callable[[str], None] = print,
    send_to: str | None = None,
) -> None:
    """Run until Ctrl-C (or ``duration`` seconds), printing the live summary (or, with
    ``send_to``, only the call counts: the spend then lives in the collectors behind it)."""
    stack = DemoStack(settings, rate, send_to=send_to).start()
    assert stack.provider and stack.generator
    if stack.app is None:
        out(
            "otel-llmcost demo traffic is running (Ctrl-C to stop)\n"
            f"  spans to      {send_to}\n"
            f"  fake provider {stack.provider.base_url}"
        )
    else:
        urls = stack.app.urls()
        out(
            "otel-llmcost demo is running (Ctrl-C to stop)\n"
            f"  web page      {urls['web']}\n"
            f"  metrics       {urls['metrics']}\n"
            f"  spend API     {urls['api']}?group_by=team,feature\n"
            f"  OTLP/HTTP in  {urls['otlp_http']}\n"
            f"  fake provider {stack.provider.base_url}\n"
            f"  ledger        {settings.ledger_url}"
        )
    started = time.monotonic()
    try:
        while duration is None or time.monotonic() - started < duration:
            remaining = summary_every if duration is None else duration - (time.monotonic() - started)
            time.sleep(max(0.1, min(summary_every, remaining)))
            counts = f"({stack.generator.calls} calls, {stack.generator.errors} provider errors)"
            out(counts if stack.app is None else summarize(stack.app) + "\n" + counts)
    except KeyboardInterrupt:
        out("\nstopping ...")
    finally:
        stack.stop()
