"""Shared test helpers: processes, tables, waiting, and ledger rows priced as the pipeline does.

Tests that need a real system binary (prometheus, promtool, alertmanager, PostgreSQL) call
``require_binary``: locally they skip when it is absent; in CI (``CI=true``) they fail instead,
because CI must exercise the real parts.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from llmcost_collector.chargeback.per_call import make_chargeback
from llmcost_collector.config.schema import Config
from llmcost_collector.ledger import LedgerEntry
from llmcost_collector.model import Attribution, LlmCall, Usage
from llmcost_collector.periods import epoch_ns
from llmcost_collector.price.pricer import Pricer

IN_CI = os.environ.get("CI", "").lower() == "true"


def find_binary(name: str) -> str | None:
    """Locate a binary on PATH or in Debian's PostgreSQL bin directory."""
    path = shutil.which(name)
    if path:
        return path
    matches = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return matches[-1] if matches else None


def require_binary(name: str) -> str:
    path = find_binary(name)
    if path:
        return path
    if IN_CI:
        pytest.fail(f"{name} is required in CI but is not installed (make test installs it)")
    pytest.skip(f"{name} not installed")
    raise AssertionError("unreachable")


def start_process(
    args: list[str], ready: re.Pattern[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start a server process and wait (30 s at most) for the line ``ready`` matches; returns the
    process and the pattern's first group (the URL it printed)."""
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + 30
    seen = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = ready.search(line)
        if match:
            # keep reading what it prints, so a chatty server never blocks on a full pipe
            threading.Thread(target=deque, args=(proc.stdout, 0), daemon=True).start()
            return proc, match.group(1)
    proc.kill()
    raise AssertionError(f"{args[:3]} did not become ready:\n{''.join(seen)}")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def table_rows(text: str) -> list[list[str]]:
    """The lines ``llmcost`` printed, each split into its cells; a table's header rule is dropped.

    Table columns are separated by at least two spaces and cells never contain two in a row, so
    a row splits back into exactly its cells; a line of prose stays one cell.
    """
    lines = (line.strip() for line in text.splitlines())
    return [re.split(r" {2,}", line) for line in lines if line and set(line) != {"─"}]


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def priced_entry(
    config: Config,
    n: int,
    *,
    team: str,
    day: date,
    usage: Usage | None = None,
    model: str = "house-model",
    provider: str = "openai",
    status: str = "ok",
    outcome: str = "",
    outcome_count: int = 0,
    **attribution: Any,
) -> LedgerEntry:
    """Call ``n`` (ids from n) at noon UTC on ``day``, priced and charged as the pipeline would
    under ``config``: the real ``Pricer`` and per-call chargeback. With ``outcome`` and no usage,
    an outcome record (``record_outcome``) instead of a provider call."""
    start = epoch_ns(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)) + n
    call = LlmCall(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time_ns=start, end_time_ns=start + 10**9,
        provider=provider, operation="outcome" if outcome and usage is None else "chat",
        request_model="" if outcome and usage is None else model, response_model="", usage=usage or Usage(),
        attribution=Attribution(team=team, **attribution), status=status, outcome=outcome,
        outcome_count=outcome_count,
    )  # fmt: skip
    cost = Pricer(config.price_book).price(call)
    return LedgerEntry.from_call(call, cost, make_chargeback(config)(call, cost.contracted_nanos), start)


def free_port() -> int:
    """A loopback TCP port nothing listens on (for servers that cannot bind port 0 themselves)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_prometheus(config: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """A real Prometheus on loopback with ``config`` (its prometheus.yml as a dict), ready to
    answer; yields its base URL and stops it afterwards."""
    binary = require_binary("prometheus")
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is valid YAML
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "Prometheus did not start"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(10)
