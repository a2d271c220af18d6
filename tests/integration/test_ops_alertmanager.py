"""Alertmanager configuration: valid for the real binaries, and it routes and inhibits as documented.

The routing test starts a real Alertmanager on loopback with a copy of ``alertmanager/alertmanager.yml``
whose webhook receivers point at an HTTP server in this test (and whose ``group_wait`` is short),
posts the alerts Prometheus would send, and checks who is notified of what: FinOps gets budget
alerts, the owning team its own, and inhibition keeps only the highest crossed threshold.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import require_binary

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "alertmanager" / "alertmanager.yml"

pytestmark = [pytest.mark.integration, pytest.mark.needs_alertmanager]


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True, timeout=30)


def test_amtool_check_config() -> None:
    result = _amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "4 inhibit rules" in result.stdout


BUDGET = {"alertname": "LLMCostBudgetThreshold"}


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({**BUDGET, "team": "marketing", "period": "monthly", "threshold": "50", "severity": "info"},
         {"finops", "team-marketing"}),
        ({**BUDGET, "team": "marketing", "period": "daily", "threshold": "100", "severity": "critical"},
         {"finops-urgent", "team-marketing"}),
        ({**BUDGET, "team": "support", "period": "monthly", "threshold": "95", "severity": "critical"},
         {"finops-urgent", "team-support"}),
        ({**BUDGET, "team": "unowned", "period": "monthly", "threshold": "80", "severity": "warning"},
         {"finops"}),
        ({**BUDGET, "team": "unowned", "period": "monthly", "threshold": "100", "severity": "critical"},
         {"finops-urgent", "platform-oncall"}),
        ({"alertname": "LLMCostBudgetForecast", "team": "support", "period": "daily", "severity": "warning"},
         {"finops", "team-support"}),
        ({"alertname": "LLMCostUnpricedModel", "provider": "openai", "model": "gpt-9", "severity": "warning"},
         {"finops"}),
        ({"alertname": "LLMCostHighErrorRate", "team": "marketing", "provider": "openai", "model": "gpt-4o",
          "severity": "warning"}, {"team-marketing"}),
        ({"alertname": "LLMCostHighErrorRate", "team": "unowned", "provider": "openai", "model": "gpt-4o",
          "severity": "warning"}, {"platform-default"}),
    ],
)  # fmt: skip
def test_routing_tree(labels: dict[str, str], receivers: set[str]) -> None:
    result = _amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", *(f"{k}={v}" for k, v in labels.items())
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(result.stdout.strip().split(",")) == receivers


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


def _test_config(sink_url: str) -> dict[str, Any]:
    """The repository's config with webhooks aimed at the sink and a short group_wait."""
    config = yaml.safe_load(CONFIG.read_text())
    for receiver in config["receivers"]:
        hooks = receiver["webhook_configs"]
        assert len(hooks) == 1 and hooks[0]["url"].endswith("/" + receiver["name"]), receiver
        hooks[0]["url"] = f"{sink_url}/{receiver['name']}"
    config["route"].update(group_wait="300ms", group_interval="1m", repeat_interval="1h")
    return config


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
    config_file = tmp_path / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(_test_config(sink.url)))
    am = start_alertmanager(config_file, tmp_path / "data")
    yield am
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
    assert status["cluster"]["status"] == "disabled"


def _alert(**labels: str) -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": f"test {labels['alertname']}"}}


def test_budget_alerts_reach_the_right_receivers_and_lower_thresholds_are_inhibited(
    alertmanager: Alertmanager, sink: WebhookSink
) -> None:
    marketing = {"alertname": "LLMCostBudgetThreshold", "team": "marketing", "period": "monthly"}
    alerts = [
        _alert(**marketing, threshold="100", severity="critical"),
        _alert(**marketing, threshold="80", severity="warning"),  # inhibited by 100
        _alert(**marketing, threshold="50", severity="info"),  # inhibited by 100
        _alert(
            alertname="LLMCostBudgetForecast", team="marketing", period="monthly", severity="warning"
        ),  # moot
        _alert(
            alertname="LLMCostBudgetThreshold",
            team="support",
            period="daily",
            threshold="80",
            severity="warning",
        ),
        _alert(
            alertname="LLMCostUnpricedModel", provider="openai", model="gpt-9-preview", severity="warning"
        ),
        _alert(
            alertname="LLMCostHighErrorRate",
            team="search",
            provider="openai",
            model="gpt-4o",
            severity="warning",
        ),
    ]
    alertmanager.post_alerts(alerts)

    expected = {
        ("finops-urgent", (("LLMCostBudgetThreshold", "marketing", "100"),)),
        ("team-marketing", (("LLMCostBudgetThreshold", "marketing", "100"),)),
        ("finops", (("LLMCostBudgetThreshold", "support", "80"),)),
        ("team-support", (("LLMCostBudgetThreshold", "support", "80"),)),
        ("finops", (("LLMCostUnpricedModel", "", ""),)),
        ("platform-default", (("LLMCostHighErrorRate", "search", ""),)),
    }
    sink.wait_for(len(expected), timeout=10)
    time.sleep(1.0)  # anything else (an inhibited alert, a wrong receiver) would have arrived by now

    got = set()
    for path, body in sink.received:
        assert body["receiver"] == path and body["status"] == "firing"
        got.add(
            (
                path,
                tuple(
                    sorted(
                        (
                            a["labels"]["alertname"],
                            a["labels"].get("team", ""),
                            a["labels"].get("threshold", ""),
                        )
                        for a in body["alerts"]
                    )
                ),
            )
        )
    assert len(sink.received) == len(expected), sink.received
    assert got == expected

    # Alertmanager itself reports the lower thresholds and the forecast as suppressed by inhibition.
    states = {
        (a["labels"]["alertname"], a["labels"].get("team"), a["labels"].get("threshold")): a["status"]
        for a in alertmanager.get("/api/v2/alerts")
    }
    assert states[("LLMCostBudgetThreshold", "marketing", "80")]["inhibitedBy"]
    assert states[("LLMCostBudgetThreshold", "marketing", "50")]["inhibitedBy"]
    assert states[("LLMCostBudgetForecast", "marketing", None)]["inhibitedBy"]
    assert not states[("LLMCostBudgetThreshold", "marketing", "100")]["inhibitedBy"]
    assert not states[("LLMCostBudgetThreshold", "support", "80")]["inhibitedBy"]
