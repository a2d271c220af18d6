"""The whole wire, end to end, with separate processes (issue 2's thin vertical slice).

fake provider process  <-  client process (real openai SDK, otel_llmcost, OTLP/HTTP exporter)
                                   |
                                   v
                        `llmcost serve` process -> SQLite ledger -> /metrics and /api/v1/spend
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support import start_process, stop_process

pytestmark = pytest.mark.integration

# gpt-4o-mini list prices per million tokens (OpenAI pricing page): input $0.15,
# cached input $0.075, output $0.60. The call below reports 1,000 prompt tokens of which 200 were
# cached, and 500 completion tokens:
#   800 * 0.15 / 1e6 + 200 * 0.075 / 1e6 + 500 * 0.60 / 1e6 = 0.00012 + 0.000015 + 0.0003
EXPECTED_USD = Decimal("0.000435")

CLIENT = textwrap.dedent(
    """
    import json, sys
    import openai
    from opentelemetry import trace
    import otel_llmcost

    provider_url, endpoint = sys.argv[1], sys.argv[2]
    otel_llmcost.configure(endpoint=endpoint, service_name="e2e-client")
    otel_llmcost.instrument()
    client = openai.OpenAI(base_url=provider_url + "/v1", api_key="test", max_retries=0)
    scenario = {"input_tokens": 1000, "cached_tokens": 200, "output_tokens": 500}
    with otel_llmcost.attribute(team="marketing", feature="chat", user_id="user-123", environment="production"):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-fake-scenario": json.dumps(scenario)},
        )
    assert trace.get_tracer_provider().force_flush(10_000)
    trace.get_tracer_provider().shutdown()
    print("client done", flush=True)
    """
)


def _serve(ledger: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    proc, urls = start_process(
        [sys.executable, "-m", "llmcost_collector", "serve", "--host", "127.0.0.1", "--no-grpc",
         "--otlp-http-port", "0", "--http-port", "0", "--ledger-url", f"sqlite:///{ledger}"],
        re.compile(r"llmcost collector ready: (\{.*\})"),
    )  # fmt: skip
    return proc, json.loads(urls)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def _metric(metrics: str, name: str, **labels: str) -> float | None:
    for line in metrics.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def _wait_for_metric(url: str, name: str, **labels: str) -> float:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        value = _metric(_get(url), name, **labels)
        if value is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{name}{labels} never appeared on {url}")


def test_openai_call_is_priced_into_ledger_and_metrics(fake_provider: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    collector, urls = _serve(ledger)
    try:
        client = subprocess.run(
            [sys.executable, "-c", CLIENT, fake_provider, urls["otlp_http"]],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert client.returncode == 0, client.stdout + client.stderr
        cost = _wait_for_metric(
            urls["metrics"], "llmcost_cost_usd_total",
            team="marketing", feature="chat", environment="production", provider="openai", model="gpt-4o-mini",
        )  # fmt: skip
        assert cost == pytest.approx(float(EXPECTED_USD), rel=1e-9)
        tokens = _metric(
            _get(urls["metrics"]), "llmcost_tokens_total", team="marketing", token_type="cache_read"
        )
        assert tokens == 200
        spend = json.loads(_get(urls["api"] + "?group_by=team,feature,user_id"))
        (row,) = spend["rows"]
        assert (row["team"], row["feature"], row["user_id"]) == ("marketing", "chat", "user-123")
        assert Decimal(row["cost_usd"]) == EXPECTED_USD  # exact, from the ledger
        assert row["requests"] == 1
    finally:
        stop_process(collector)

    # A restart keeps the ledger: the same total is served by a new process.
    collector, urls = _serve(ledger)
    try:
        spend = json.loads(_get(urls["api"] + "?group_by=team"))
        assert [Decimal(r["cost_usd"]) for r in spend["rows"]] == [EXPECTED_USD]
    finally:
        stop_process(collector)
