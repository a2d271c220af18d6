"""`llmcost demo` (what `make run` starts): real SDK traffic shows up as costs within seconds."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

import pytest

from tests.integration.conftest import FAR_FUTURE

pytestmark = pytest.mark.integration


def test_demo_prints_costs_per_team_and_stops_cleanly() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "llmcost_collector", "demo", "--duration", "8", "--summary-every", "3",
         "--otlp-http-port", "0", "--otlp-grpc-port", "0", "--http-port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "web page      http://127.0.0.1:" in out
    last = out.rsplit("# LLM spend this month:", 1)[1]  # the last summary, printed by the report code
    total = re.search(r"^Total costs: \$([\d,.]+) \([\d,]+ calls, [\d,]+ errors, 0 unpriced\)$", last, re.M)
    assert total and Decimal(total.group(1).replace(",", "")) > 0, last
    environments = {
        m.group(1): Decimal(m.group(2).replace(",", ""))
        for m in re.finditer(r"^[├└]── (\w+): \$([\d,.]+) \(\d+%\)$", last, re.M)
    }
    assert {"production", "development"} <= set(environments), last
    assert all(cost > 0 for cost in environments.values()), environments
    assert "## Top 5 users by cost" in last and re.search(
        r"^1\. user-\d+: \$[\d.]+ \((free|premium) tier\)", last, re.M
    )
    assert re.search(r"Prompt cache: [1-9]\d*% of input tokens", last), last
    # repeated FAQ questions go through the response cache: some are answered from it, for $0
    assert re.search(r"^- Hit rate: [1-9]\d*% of [\d,]+ response-cache lookups", last, re.M), last
    saved = re.search(r"^- Savings: \$([\d,.]+)$", last, re.M)
    assert saved and Decimal(saved.group(1).replace(",", "")) > 0, last
    assert re.search(r"^\| Document Analysis \| \d+ \| \$", last, re.M), last  # average cost per session name


def test_demo_send_to_exports_its_traffic_to_a_collector_it_did_not_start(collector) -> None:
    """`llmcost demo --send-to URL` (the compose stack's traffic service) starts no collector of its
    own: every call it makes lands, priced, in the ledger of the collector at URL."""
    app = collector()
    proc = subprocess.run(
        [sys.executable, "-m", "llmcost_collector", "demo", "--duration", "5", "--summary-every", "2",
         "--send-to", app.urls()["otlp_http"]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert f"spans to      {app.urls()['otlp_http']}" in out and "web page" not in out, out
    calls = int(re.findall(r"\((\d+) calls, \d+ provider errors\)", out)[-1])
    assert calls > 0, out
    rows = app.ledger.spend(0, FAR_FUTURE, group_by=("team",))
    assert sum(r.requests for r in rows) >= calls  # the last count printed is before the final flush
    assert sum(r.contracted_nanos or 0 for r in rows) > 0
