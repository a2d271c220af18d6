"""`llmcost demo` (what `make run` starts): real SDK traffic shows up as costs within seconds."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

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
    last = out.rsplit("cost by team / environment / feature", 1)[1]
    teams = {
        m.group(1): float(m.group(2).replace(",", ""))
        for m in re.finditer(r"^(\w+)\s+\d+\s+\$([\d,.]+)", last, re.M)
    }
    assert {"marketing", "support", "search"} <= set(teams), last
    assert all(cost > 0 for cost in teams.values()), teams
    assert "top users by cost:" in last and "1. user-" in last
    assert re.search(r"prompt-cache hit rate: [1-9]\d*\.\d%", last), last
    assert "unpriced calls: 0" in last
