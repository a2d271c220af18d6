"""Alertmanager configuration: rendered from the config, valid for the real binaries, and it
routes, inhibits and formats as documented.

``alertmanager/alertmanager.yml`` is what ``llmcost alertmanager-config`` renders for
``examples/llmcost.yaml`` (checked here, so the two cannot drift). ``amtool`` checks the rendered
files, tests the routing tree for label sets and renders the notification templates. The
routing test starts a real Alertmanager on loopback with the rendered config whose webhook
receivers point at an HTTP server in this test (and whose ``group_wait`` is short), posts the
alerts Prometheus would send, and checks who is notified of what: FinOps gets budget alerts, the
owning team its own, and inhibition keeps only the highest crossed threshold.

The end-to-end test runs the whole chain with real Prometheus and Alertmanager processes: real
calls push a team's spend past 50, 80, 95 and 100 % of its budget, the webhook gets one
notification per step in that order, and a resolved notice when the collector's clock (the one
part the test controls) moves into the next period.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmcost_collector.app import CollectorApp, Settings
from llmcost_collector.budget.alertmanager import template_text

from tests.support import require_binary, running_prometheus

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
TEMPLATES = ROOT / "alertmanager" / "llmcost.tmpl"
EXAMPLE = ROOT / "examples" / "llmcost.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.needs_alertmanager]


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True, timeout=30)


def _render(config: Path, out: Path | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``llmcost alertmanager-config`` as a real process."""
    command = [sys.executable, "-m", "llmcost_collector", "alertmanager-config", "--config", str(config)]
    return subprocess.run(
        command + (["--out", str(out)] if out else []), cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_shipped_config_is_the_rendered_example() -> None:
    """alertmanager/alertmanager.yml and llmcost.tmpl are the command's output for the example."""
    done = _render(EXAMPLE.relative_to(ROOT))
    assert done.returncode == 0, done.stderr
    assert CONFIG.read_text() == done.stdout, (
        "alertmanager/alertmanager.yml is stale: run `llmcost alertmanager-config --config "
        "examples/llmcost.yaml --out alertmanager/alertmanager.yml`"
    )
    assert TEMPLATES.read_text() == template_text()


def test_amtool_check_config() -> None:
    result = _amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    # 80, 95, 100, 110 and 120 (the organisation's and platform's extra steps) each inhibit the lower
    assert "5 inhibit rules" in result.stdout
    assert "5 receivers" in result.stdout
    assert "1 templates" in result.stdout


CUSTOM = """
teams:
  - {name: web, contact: "#web, web@example.com, http://127.0.0.1:9/web"}
  - {name: data}
budgets:
  - {name: web-daily, amount_usd: 10, period: daily, scope: {team: web, environment: production}, thresholds: [25, 75]}
alerting:
  finops_contact: http://127.0.0.1:9/finops
  slack_api_url_file: /run/secrets/slack
  smtp: {smarthost: "localhost:25", from: a@example.com, require_tls: false}
"""


def test_amtool_accepts_a_rendered_custom_config(tmp_path: Path) -> None:
    (tmp_path / "llmcost.yaml").write_text(CUSTOM)
    done = _render(tmp_path / "llmcost.yaml", tmp_path / "alertmanager.yml")
    assert done.returncode == 0, done.stderr
    result = _amtool("check-config", str(tmp_path / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout and "3 receivers" in result.stdout
    routes = _amtool("config", "routes", "test", f"--config.file={tmp_path / 'alertmanager.yml'}",
                     "alertname=LLMCostBudgetThreshold", "budget=web-daily", "team=web", "threshold=75",
                     "severity=warning")  # fmt: skip
    assert routes.stdout.strip() == "finops,team-web"
    data = _amtool("config", "routes", "test", f"--config.file={tmp_path / 'alertmanager.yml'}",
                   "alertname=LLMCostHighErrorRate", "team=data", "severity=warning")  # fmt: skip
    assert data.stdout.strip() == "default"


BUDGET = {"alertname": "LLMCostBudgetThreshold", "basis": "charged"}


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({**BUDGET, "budget": "marketing-monthly", "scope": "team=marketing", "team": "marketing",
          "period": "monthly", "threshold": "50", "severity": "info"}, {"finops", "team-marketing"}),
        ({**BUDGET, "budget": "marketing-daily", "scope": "team=marketing", "team": "marketing",
          "period": "daily", "threshold": "100", "severity": "critical"}, {"finops", "team-marketing"}),
        ({**BUDGET, "budget": "support-triage-weekly", "scope": "team=support,feature=ticket-triage",
          "team": "support", "period": "weekly", "threshold": "95", "severity": "critical"},
         {"finops", "team-support"}),
        # a team without a contact: FinOps, and the on-call for critical ones
        ({**BUDGET, "budget": "search-daily", "scope": "team=search", "team": "search", "period": "daily",
          "threshold": "80", "severity": "warning"}, {"finops"}),
        ({**BUDGET, "budget": "search-production-daily", "scope": "team=search,environment=production",
          "team": "search", "period": "daily", "threshold": "100", "severity": "critical"},
         {"finops", "oncall"}),
        # the organisation's budget has no team
        ({**BUDGET, "budget": "organisation-monthly", "scope": "organisation", "period": "monthly",
          "threshold": "110", "severity": "critical"}, {"finops", "oncall"}),
        ({"alertname": "LLMCostBudgetForecast", "budget": "support-daily", "scope": "team=support",
          "team": "support", "period": "daily", "severity": "warning"}, {"finops", "team-support"}),
        ({"alertname": "LLMCostUnpricedModel", "provider": "openai", "model": "gpt-9", "severity": "warning"},
         {"finops"}),
        ({"alertname": "LLMCostHighErrorRate", "team": "marketing", "provider": "openai", "model": "gpt-4o",
          "severity": "warning"}, {"team-marketing"}),
        ({"alertname": "LLMCostHighErrorRate", "team": "unowned", "provider": "openai", "model": "gpt-4o",
          "severity": "warning"}, {"default"}),
    ],
)  # fmt: skip
def test_routing_tree(labels: dict[str, str], receivers: set[str]) -> None:
    result = _amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", *(f"{k}={v}" for k, v in labels.items())
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(result.stdout.strip().split(",")) == receivers


def _notification(status: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    """Alertmanager's template data for one group, as it passes it to a receiver."""
    common = {k: v for k, v in alerts[0]["labels"].items() if all(a["labels"].get(k) == v for a in alerts)}
    return {
        "receiver": "team-marketing",
        "status": status,
        "alerts": [{"status": status, "startsAt": "2026-12-03T07:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "", "fingerprint": str(i), **a} for i, a in enumerate(alerts)],
        "groupLabels": {k: common[k] for k in ("alertname", "budget", "scope", "period") if k in common},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com",
    }  # fmt: skip


THRESHOLD_95 = {
    "labels": {"alertname": "LLMCostBudgetThreshold", "budget": "marketing-monthly", "scope": "team=marketing",
               "team": "marketing", "period": "monthly", "basis": "charged", "threshold": "95",
               "severity": "critical"},
    "annotations": {
        "summary": "Budget marketing-monthly (team=marketing) has used 96% of its monthly amount: the 95% threshold is crossed.",
        "description": "Period-to-date charged spend in team=marketing is $4800.00 of the monthly budget marketing-monthly of $5000.00 (96%, threshold 95%).",
        "scope": "team=marketing", "spend_usd": "4800.00", "budget_usd": "5000.00", "percent": "96%",
        "dashboard_url": "http://localhost:3000/d/llmcost-chargeback/llmcost-team-chargeback?var-team=marketing",
        "runbook_url": "https://github.com/otel-llmcost/otel-llmcost/blob/main/docs/runbook.md#llmcostbudgetthreshold",
    },
}  # fmt: skip


def _template(tmp_path: Path, name: str, data: dict[str, Any], kind: str = "text") -> str:
    (tmp_path / "data.json").write_text(json.dumps(data))
    result = _amtool("template", "render", f"--template.glob={TEMPLATES}", f"--template.type={kind}",
                     f"--template.data={tmp_path / 'data.json'}", f'--template.text={{{{ template "{name}" . }}}}')  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_templates_read_well_in_slack_and_mail(tmp_path: Path) -> None:
    firing = _notification("firing", THRESHOLD_95)
    title = "[CRITICAL] LLMCostBudgetThreshold marketing-monthly at 95% (monthly)"
    assert _template(tmp_path, "llmcost.title", firing) == title
    assert _template(tmp_path, "llmcost.email.subject", firing) == title
    assert _template(tmp_path, "llmcost.slack.color", firing) == "danger"
    slack = _template(tmp_path, "llmcost.slack.text", firing).splitlines()
    assert slack[0] == f":rotating_light: *{THRESHOLD_95['annotations']['summary']}*"
    assert slack[2] == ">*Scope:* `team=marketing`  *Period:* monthly  *Spent:* $4800.00 of $5000.00 (96%)"
    assert slack[3] == (
        "<http://localhost:3000/d/llmcost-chargeback/llmcost-team-chargeback?var-team=marketing|Dashboard>"
        " | <https://github.com/otel-llmcost/otel-llmcost/blob/main/docs/runbook.md#llmcostbudgetthreshold|Runbook>"
    )
    text = _template(tmp_path, "llmcost.email.text", firing)
    assert "  Spent:    $4800.00 of $5000.00 (96%)\n" in text
    assert (
        "  Runbook:   https://github.com/otel-llmcost/otel-llmcost/blob/main/docs/runbook.md#llmcostbudgetthreshold"
        in text
    )
    html = _template(tmp_path, "llmcost.email.html", firing, kind="html")
    assert "<td>$4800.00 of $5000.00 (96%)</td>" in html
    assert (
        '<a href="https://github.com/otel-llmcost/otel-llmcost/blob/main/docs/runbook.md#llmcostbudgetthreshold">Runbook</a>'
        in html
    )
    resolved = _notification("resolved", THRESHOLD_95)
    assert _template(tmp_path, "llmcost.title", resolved).startswith("[RESOLVED] LLMCostBudgetThreshold")
    assert _template(tmp_path, "llmcost.slack.color", resolved) == "good"
    assert _template(tmp_path, "llmcost.slack.text", resolved).startswith(
        ":white_check_mark: *Resolved:* *Budget"
    )


# --- a real Alertmanager ------------------------------------------------------------------------


@dataclass
class WebhookSink:
    """Records Alertmanager's webhook notifications: (receiver path, alert label sets)."""

    server: ThreadingHTTPServer
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def wait_for(self, count: int, timeout: float) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.received) >= count, timeout), self.received


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    holder: list[WebhookSink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with holder[0].cond:
                holder[0].received.append((self.path.lstrip("/"), body))
                holder[0].cond.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(WebhookSink(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


def _test_config(sink_url: str, tmp_path: Path, source: Path = EXAMPLE) -> Path:
    """The config rendered for ``source`` (templates next to it), every receiver a webhook to the
    sink at ``/<receiver name>`` (Slack and mail left out: nothing here can receive them) and a
    short ``group_wait``."""
    done = _render(source, tmp_path / "alertmanager.yml")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        receiver.pop("slack_configs", None)
        receiver.pop("email_configs", None)
        receiver["webhook_configs"] = [{"url": f"{sink_url}/{receiver['name']}", "send_resolved": True}]
    config["global"] = {"resolve_timeout": "5m"}
    config["route"].update(group_wait="300ms", group_interval="1s", repeat_interval="1h")
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path / "alertmanager.yml"


@dataclass
class Alertmanager:
    process: subprocess.Popen[str]
    url: str
    log: list[str]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body.strip().startswith((b"{", b"[")) else body.decode()

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            self.url + "/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200


def start_alertmanager(config_file: Path, storage: Path) -> Alertmanager:
    """Start Alertmanager on 127.0.0.1 port 0 (clustering off) and wait until it is ready."""
    process = subprocess.Popen(
        [
            require_binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={storage}",
            "--web.listen-address=127.0.0.1:0",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    log: list[str] = []
    address: list[str] = []
    found = threading.Event()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            match = re.search(r'msg="Listening on" address=(127\.0\.0\.1:\d+)', line)
            if match and not address:
                address.append(match.group(1))
                found.set()

    threading.Thread(target=read_log, daemon=True).start()
    if not found.wait(15):
        process.kill()
        raise AssertionError("Alertmanager did not start listening:\n" + "".join(log))
    am = Alertmanager(process, f"http://{address[0]}", log)
    deadline = time.monotonic() + 15
    while True:
        try:
            am.get("/-/ready")
            return am
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError("Alertmanager never became ready:\n" + "".join(log)) from None
            time.sleep(0.05)


@pytest.fixture
def alertmanager(tmp_path: Path, sink: WebhookSink) -> Iterator[Alertmanager]:
    am = start_alertmanager(_test_config(sink.url, tmp_path), tmp_path / "data")
    yield am
    stop(am)


def stop(am: Alertmanager) -> None:
    am.process.terminate()
    try:
        am.process.wait(10)
    except subprocess.TimeoutExpired:
        am.process.kill()
        am.process.wait()


def test_real_alertmanager_loads_the_config(alertmanager: Alertmanager) -> None:
    status = alertmanager.get("/api/v2/status")
    loaded = yaml.safe_load(status["config"]["original"])
    ours = yaml.safe_load(CONFIG.read_text())
    assert [r["name"] for r in loaded["receivers"]] == [r["name"] for r in ours["receivers"]]
    assert len(loaded["inhibit_rules"]) == len(ours["inhibit_rules"])
    assert loaded["templates"] and loaded["templates"][0].endswith("llmcost.tmpl")
    assert status["cluster"]["status"] == "disabled"


def test_the_shipped_config_starts_a_real_alertmanager(tmp_path: Path) -> None:
    """As compose mounts it: templates next to it, secret files (absent here) read only to send."""
    am = start_alertmanager(CONFIG, tmp_path / "data")
    try:
        status = am.get("/api/v2/status")
        assert yaml.safe_load(status["config"]["original"])["global"]["slack_api_url_file"]
    finally:
        stop(am)


def _alert(**labels: str) -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": f"test {labels['alertname']}"}}


def _budget(budget: str, scope: str, period: str, threshold: str, **extra: str) -> dict[str, Any]:
    severity = "info" if int(threshold) < 80 else "warning" if int(threshold) < 95 else "critical"
    team = scope.split(",")[0].removeprefix("team=") if scope.startswith("team=") else None
    labels = {"alertname": "LLMCostBudgetThreshold", "budget": budget, "scope": scope, "period": period,
              "basis": "charged", "threshold": threshold, "severity": severity, **extra}  # fmt: skip
    if team:
        labels["team"] = team
    return _alert(**labels)


def _received(sink: WebhookSink) -> set[tuple[str, tuple[tuple[str, str, str], ...]]]:
    got = set()
    for path, body in sink.received:
        assert body["receiver"] == path and body["status"] == "firing"
        alerts = sorted(
            (a["labels"]["alertname"], a["labels"].get("budget", a["labels"].get("team", "")),
             a["labels"].get("threshold", ""))
            for a in body["alerts"]
        )  # fmt: skip
        got.add((path, tuple(alerts)))
    return got


def test_budget_alerts_reach_the_right_receivers_and_lower_thresholds_are_inhibited(
    alertmanager: Alertmanager, sink: WebhookSink
) -> None:
    marketing = ("marketing-monthly", "team=marketing", "monthly")
    alerts = [
        _budget(*marketing, "100"),
        _budget(*marketing, "95"),  # inhibited by 100
        _budget(*marketing, "80"),  # inhibited by 95 and 100
        _budget(*marketing, "50"),  # inhibited by 80, 95 and 100
        # another budget of the same team and period is not inhibited by marketing-monthly's 100
        _budget("marketing-prod-monthly", "team=marketing,environment=production", "monthly", "50"),
        _budget("support-daily", "team=support", "daily", "80"),
        # the organisation's custom 110 inhibits its 100 (and the rest)
        _budget("organisation-monthly", "organisation", "monthly", "110"),
        _budget("organisation-monthly", "organisation", "monthly", "100"),
        _alert(alertname="LLMCostUnpricedModel", provider="openai", model="gpt-9-preview", severity="warning"),
        _alert(alertname="LLMCostHighErrorRate", team="search", provider="openai", model="gpt-4o",
               severity="warning"),
    ]  # fmt: skip
    alertmanager.post_alerts(alerts)

    expected = {
        ("finops", (("LLMCostBudgetThreshold", "marketing-monthly", "100"),)),
        ("team-marketing", (("LLMCostBudgetThreshold", "marketing-monthly", "100"),)),
        ("finops", (("LLMCostBudgetThreshold", "marketing-prod-monthly", "50"),)),
        ("team-marketing", (("LLMCostBudgetThreshold", "marketing-prod-monthly", "50"),)),
        ("finops", (("LLMCostBudgetThreshold", "support-daily", "80"),)),
        ("team-support", (("LLMCostBudgetThreshold", "support-daily", "80"),)),
        ("finops", (("LLMCostBudgetThreshold", "organisation-monthly", "110"),)),
        ("oncall", (("LLMCostBudgetThreshold", "organisation-monthly", "110"),)),
        ("finops", (("LLMCostUnpricedModel", "", ""),)),
        ("default", (("LLMCostHighErrorRate", "search", ""),)),
    }
    sink.wait_for(len(expected), timeout=10)
    time.sleep(1.5)  # anything else (an inhibited alert, a wrong receiver) would have arrived by now
    assert len(sink.received) == len(expected), sink.received
    assert _received(sink) == expected

    # Alertmanager itself reports the lower thresholds as suppressed by inhibition.
    states = {
        (a["labels"]["alertname"], a["labels"].get("budget"), a["labels"].get("threshold")): a["status"]
        for a in alertmanager.get("/api/v2/alerts")
    }
    for threshold in ("95", "80", "50"):
        assert states[("LLMCostBudgetThreshold", "marketing-monthly", threshold)]["inhibitedBy"]
    assert states[("LLMCostBudgetThreshold", "organisation-monthly", "100")]["inhibitedBy"]
    assert not states[("LLMCostBudgetThreshold", "marketing-monthly", "100")]["inhibitedBy"]
    assert not states[("LLMCostBudgetThreshold", "marketing-prod-monthly", "50")]["inhibitedBy"]


# --- end to end: collector, Prometheus, Alertmanager, webhook -------------------------------------

# One call at a time through the real openai SDK (instrumented by otel_llmcost) to the fake
# provider: each stdin line is the call's input tokens; "sent" once its span is exported.
CLIENT = textwrap.dedent(
    """
    import json, sys
    import openai
    from opentelemetry import trace
    import otel_llmcost

    provider_url, endpoint = sys.argv[1], sys.argv[2]
    otel_llmcost.configure(endpoint=endpoint, service_name="budget-e2e")
    otel_llmcost.instrument()
    client = openai.OpenAI(base_url=provider_url + "/v1", api_key="test", max_retries=0)
    for line in sys.stdin:
        scenario = {"input_tokens": int(line), "output_tokens": 1}
        with otel_llmcost.attribute(team="e2e", feature="chat"):
            client.chat.completions.create(
                model="e2e-model",
                messages=[{"role": "user", "content": "hello"}],
                extra_headers={"x-fake-scenario": json.dumps(scenario)},
            )
        assert trace.get_tracer_provider().force_flush(10_000)
        print("sent", flush=True)
    """
)

# $1000 per million input tokens: 1,000 tokens are $1.00 of the $100 daily budget, charged at cost.
E2E_CONFIG = """
teams:
  - {{name: e2e, contact: "{sink}/team-e2e", budgets: {{daily: 100}}}}
alerting:
  finops_contact: "{sink}/finops"
  default_contact: "{sink}/default"
  oncall_contact: "{sink}/oncall"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
price_book:
  entries:
    - {{name: e2e-rate, provider: openai, model: e2e-model, input: 1000, output: 0}}
"""


@contextmanager
def _prometheus(tmp_path: Path, collector: str, alertmanager: str) -> Iterator[str]:
    """A real Prometheus with the repository's rules, scraping and evaluating every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "prometheus/rules/llmcost.rules.yml"),
                       str(ROOT / "prometheus/rules/llmcost.alerts.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "llmcost", "static_configs": [{"targets": [collector]}]}],
    }  # fmt: skip
    with running_prometheus(config, tmp_path) as base:
        yield base


def _team_notifications(sink: WebhookSink, receiver: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(status, [(threshold, severity, alert status)]) of each notification ``receiver`` got."""
    with sink.cond:
        bodies = [body for path, body in sink.received if path == receiver]
    return [
        (body["status"], sorted((a["labels"]["threshold"], a["labels"]["severity"], a["status"])
                                for a in body["alerts"]))
        for body in bodies
    ]  # fmt: skip


@pytest.mark.needs_prometheus
def test_a_budget_alerts_from_info_to_critical_then_resolves_at_the_period_end(
    tmp_path: Path, sink: WebhookSink, fake_provider: str
) -> None:
    """Real processes but the collector: the client (openai SDK) -> fake provider, spans -> the
    collector (in this process, for a clock the test controls) -> Prometheus with the shipped rules
    -> Alertmanager with the config `llmcost alertmanager-config` renders -> the webhook here.

    The team's spend is pushed to exactly 50, 80, 95 and 100 % of its daily budget; each step
    notifies the team (and FinOps) of that threshold alone, the lower ones inhibited, in order.
    Then the collector's clock moves to the next day: the budget's spend is 0 and a resolved
    notice arrives."""
    now = datetime.now(timezone.utc)
    if (now + timedelta(minutes=5)).date() != now.date():
        pytest.skip("too close to UTC midnight: the real calls would fall in two days")
    config_path = tmp_path / "llmcost.yaml"
    config_path.write_text(E2E_CONFIG.format(sink=sink.url))
    shift = [timedelta(0)]
    app = CollectorApp(
        Settings(host="127.0.0.1", otlp_http_port=0, http_port=0, enable_grpc=False,
                 ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", config_path=str(config_path)),
        clock=lambda: datetime.now(timezone.utc) + shift[0],
    ).start()  # fmt: skip
    am_dir = tmp_path / "alertmanager"
    am_dir.mkdir()
    done = _render(config_path, am_dir / "alertmanager.yml")
    assert done.returncode == 0, done.stderr
    am = start_alertmanager(am_dir / "alertmanager.yml", am_dir / "data")
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, fake_provider, app.urls()["otlp_http"]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert client.stdin is not None and client.stdout is not None
    try:
        with _prometheus(tmp_path, f"127.0.0.1:{app.ports['http']}", am.url.removeprefix("http://")):
            expected: list[tuple[str, list[tuple[str, str, str]]]] = []
            for tokens, threshold, severity in (
                (50_000, "50", "info"), (30_000, "80", "warning"),
                (15_000, "95", "critical"), (5_000, "100", "critical"),
            ):  # fmt: skip
                client.stdin.write(f"{tokens}\n")
                client.stdin.flush()
                assert client.stdout.readline().strip() == "sent", client.stderr.read()
                expected.append(("firing", [(threshold, severity, "firing")]))
                for receiver in ("team-e2e", "finops"):
                    _wait_until(lambda r=receiver: len(_team_notifications(sink, r)) >= len(expected), 60)
                    assert _team_notifications(sink, receiver) == expected, receiver
            # the spend is exact: $100.00 of $100.00 in the ledger and on the gauge
            (status,) = app.budget_statuses()
            assert (status.spent_nanos, status.crossed) == (100 * 10**9, 100)

            # The period rolls over: tomorrow nothing is spent yet and every threshold resolves.
            midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
            shift[0] = midnight - datetime.now(timezone.utc) + timedelta(minutes=1)
            app.gauges.invalidate()
            _wait_until(lambda: len(_team_notifications(sink, "team-e2e")) > len(expected), 60)
            status_after, alerts_after = _team_notifications(sink, "team-e2e")[len(expected)]
            assert status_after == "resolved"
            every = [("50", "info"), ("80", "warning"), ("95", "critical"), ("100", "critical")]
            assert alerts_after == sorted((t, s, "resolved") for t, s in every)
        assert not any(path in ("default", "oncall") for path, _ in sink.received), sink.received
    finally:
        client.stdin.close()
        client.wait(30)
        stop(am)
        app.stop()


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
