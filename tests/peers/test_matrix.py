"""The compatibility matrix: every instrumentation users already run, every call kind, one bill.

Each setup (``tests/peers/service.py``) runs as a service process of its own: the real peer
packages (this venv, ``.venv-peers``, built by ``make peers``), ``otel_llmcost.configure()`` and
``otel_llmcost.instrument()`` on top, the real ``openai`` / ``anthropic`` / ``litellm`` clients
against the fake provider, and the standard OTLP/HTTP exporter into a running collector. Per call
kind the ledger must hold exactly one row, charged to the caller's team, with every token class
the spans carry, priced exactly to the nano-dollar.

Where no span of a call carries a token class, the row cannot have it: ``LOST`` says which class
each setup loses for which call kind, the expected usage is the exact one with those classes
folded back (cache reads into uncached input, the 1-hour share of cache writes into the 5-minute
rate, reasoning into plain output), and the README's compatibility table must say the same
(``test_the_readme_table_matches_the_matrix``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.app import CollectorApp
from llmcost_collector.ledger import LedgerEntry
from llmcost_demo.fake_provider import FakeProvider

from otel_llmcost.estimate import estimate_tokens
from otel_llmcost.instrumentation._common import messages_text
from tests.integration.conftest import FAR_FUTURE, Collectors
from tests.peers.service import ABANDONED_CALLS, LITELLM_CALLS, MESSAGES, SDK_CALLS, TEAM

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

# List prices, USD per million tokens (genai-prices), written out so the bill is checked by hand.
RATES = {
    "gpt-4o-mini": {"input": "0.15", "cache_read": "0.075", "output": "0.6"},
    "claude-haiku-4-5": {"input": "1", "cache_read": "0.1", "cache_write": "1.25", "cache_write_1h": "2",
                         "output": "5"},
}  # fmt: skip


@dataclass(frozen=True)
class Tokens:
    input: int  # uncached
    cache_read: int = 0
    cache_write: int = 0  # all writes; cache_write_1h of them at the 1-hour rate
    cache_write_1h: int = 0
    output: int = 0  # including reasoning
    reasoning: int = 0

    def without(self, lost: frozenset[str]) -> Tokens:
        """What is billed when no span reports the ``lost`` classes."""
        t = self
        if "cache_read" in lost:
            t = Tokens(t.input + t.cache_read, 0, t.cache_write, t.cache_write_1h, t.output, t.reasoning)
        if "cache_write" in lost:
            t = Tokens(t.input + t.cache_write, t.cache_read, 0, 0, t.output, t.reasoning)
        if "cache_write_1h" in lost:
            t = Tokens(t.input, t.cache_read, t.cache_write, 0, t.output, t.reasoning)
        if "reasoning" in lost:
            t = Tokens(t.input, t.cache_read, t.cache_write, t.cache_write_1h, t.output, 0)
        return t

    def nanos(self, model: str) -> int:
        r = {k: Decimal(v) for k, v in RATES[model].items()}
        usd = (
            self.input * r["input"] + self.cache_read * r["cache_read"] + self.output * r["output"]
            + (self.cache_write - self.cache_write_1h) * r.get("cache_write", 0)
            + self.cache_write_1h * r.get("cache_write_1h", 0)
        ) / 1_000_000  # fmt: skip
        return int(usd * 10**9)


# service.py's scenarios: OpenAI 1200 prompt (200 cached), 300 completion (100 reasoning);
# Anthropic 500 uncached + 1000 read + 300 (5m) + 100 (1h) written, 80 out.
OPENAI = ("gpt-4o-mini", Tokens(input=1000, cache_read=200, output=300, reasoning=100))
ANTHROPIC = (
    "claude-haiku-4-5",
    Tokens(input=500, cache_read=1000, cache_write=400, cache_write_1h=100, output=80),
)
EXACT = {
    "openai-chat": OPENAI, "openai-chat-stream": OPENAI, "openai-responses": OPENAI,
    "anthropic-messages": ANTHROPIC, "anthropic-stream": ANTHROPIC,
    "litellm-openai-chat": OPENAI, "litellm-openai-stream": OPENAI,
    "litellm-anthropic": ANTHROPIC,
}  # fmt: skip
SETUPS = (
    "ours",
    "openai-v2",
    "openllmetry",
    "openinference",
    "openinference-hidden",
    "openlit",
    "litellm",
    "all",
)
# What each setup's spans do not carry, per call kind (absent: exact). The README table says why.
LOST: dict[tuple[str, str], frozenset[str]] = {
    # openai-v2 2.4b0 puts only the prompt and completion totals on chat spans, and wraps
    # Completions.create, so our instrumentor stands aside for it.
    ("openai-v2", "openai-chat"): frozenset({"cache_read", "reasoning"}),
    ("openai-v2", "openai-chat-stream"): frozenset({"cache_read", "reasoning"}),
    # OpenLLMetry 0.62.4 reports no reasoning tokens for streamed chat completions.
    ("openllmetry", "openai-chat-stream"): frozenset({"reasoning"}),
    # OpenLIT 1.45 reports no reasoning tokens on chat-completion spans.
    ("openlit", "openai-chat"): frozenset({"reasoning"}),
    ("openlit", "openai-chat-stream"): frozenset({"reasoning"}),
}
CASES = [(setup, kind) for setup in SETUPS for kind in (LITELLM_CALLS if setup == "litellm" else SDK_CALLS)]


CONFIG = "attribution:\n  from_attributes:\n    app.owner_team: team\n"
# Calls attributed by the tool's own mechanism (service.TOOL_ATTRIBUTION): team -> (user, feature, call)
TOOL_TEAMS = {
    "openinference": {"oi-team": ("u-2", "oi-metadata", "openai-chat")},
    "openlit": {"openlit-team": ("u-2", "", "anthropic-messages"), "mapped-team": ("", "", "openai-chat")},
    "litellm": {"litellm-team": ("", "", "litellm-openai-chat")},
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


class Matrix:
    """Runs each setup's service once, against a collector of its own, and keeps the ledger."""

    def __init__(self, collectors: Collectors, fake: FakeProvider) -> None:
        self.collectors = collectors
        self.fake = fake
        self.apps: dict[str, CollectorApp] = {}

    def ledger_of(self, setup: str) -> CollectorApp:
        if setup not in self.apps:
            app = self.collectors(CONFIG)
            base = app.urls()["otlp_http"].removesuffix("/v1/traces")
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OTEL_SERVICE_NAME": f"peer-{setup}"}
            command = [sys.executable, "-m", "tests.peers.service", setup, base, self.fake.base_url]
            if setup == "all":  # zero code: every installed instrumentor, our distro configures
                env.update(OTEL_EXPORTER_OTLP_ENDPOINT=base, OTEL_TRACES_EXPORTER="otlp",
                           OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")  # fmt: skip
                command = [str(Path(sys.executable).with_name("opentelemetry-instrument")), *command]
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
            assert done.returncode == 0 and "done" in done.stdout, done.stdout + done.stderr
            self.apps[setup] = app
        return self.apps[setup]

    def rows(self, setup: str, kind: str) -> list[LedgerEntry]:
        app = self.ledger_of(setup)
        return [e for e in app.ledger.entries(0, FAR_FUTURE) if e.feature == kind]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, fake: FakeProvider) -> Iterator[Matrix]:
    collectors = Collectors(tmp_path_factory.mktemp("peers"))
    try:
        yield Matrix(collectors, fake)
    finally:
        collectors.stop_all()


@pytest.mark.parametrize(("setup", "kind"), CASES, ids=[f"{s}:{k}" for s, k in CASES])
def test_one_row_the_team_every_token_class_and_exact_dollars(matrix: Matrix, setup: str, kind: str) -> None:
    rows = matrix.rows(setup, kind)
    assert len(rows) == 1, [(r.span_id, r.dialect, r.input_tokens, r.contracted_cost_nanos) for r in rows]
    (row,) = rows
    model, exact = EXACT[kind]
    expected = exact.without(LOST.get((setup, kind), frozenset()))
    assert (row.team, row.team_source, row.user_id) == (TEAM, "span", "u-1")
    billed = Tokens(row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.cache_write_1h_tokens,
                    row.output_tokens, row.reasoning_tokens)  # fmt: skip
    assert billed == expected, row.dialect
    assert row.response_model.startswith(model) or row.request_model.endswith(model)
    assert row.contracted_cost_nanos == expected.nanos(model)


# A call given up on after sending reports no usage; the provider still bills its prompt.
PROMPT_ESTIMATE = estimate_tokens(messages_text(MESSAGES))  # as otel_llmcost counts it offline
ABANDONED = {"openai-chat-timeout": "gpt-4o-mini", "anthropic-timeout": "claude-haiku-4-5"}
ABANDONED_CASES = [(setup, kind) for setup in SETUPS if setup != "litellm" for kind in ABANDONED_CALLS]


@pytest.mark.parametrize(("setup", "kind"), ABANDONED_CASES, ids=[f"{s}:{k}" for s, k in ABANDONED_CASES])
def test_a_call_abandoned_after_sending_is_one_estimated_row(matrix: Matrix, setup: str, kind: str) -> None:
    """A client timeout: whichever tracer's spans reach the collector (a peer's, the SDK's own,
    ours), one row, the caller's team, the prompt's offline estimate at the input rate, flagged
    estimated; never $0 and never twice."""
    rows = matrix.rows(setup, kind)
    assert len(rows) == 1, [(r.span_id, r.dialect, r.input_tokens, r.contracted_cost_nanos) for r in rows]
    (row,) = rows
    assert (row.team, row.team_source, row.status, row.usage_estimated) == (TEAM, "span", "error", True)
    assert (row.input_tokens, row.output_tokens) == (PROMPT_ESTIMATE, 0)
    assert row.contracted_cost_nanos == Tokens(input=PROMPT_ESTIMATE).nanos(ABANDONED[kind])


@pytest.mark.parametrize("setup", TOOL_TEAMS)
def test_calls_are_attributed_by_the_tools_own_mechanism(matrix: Matrix, setup: str) -> None:
    """OpenInference's using_attributes(metadata=...), OpenLIT's using_attributes({...}) (directly
    and through attribution.from_attributes), LiteLLM's key team: no otel_llmcost.attribute()."""
    app = matrix.ledger_of(setup)
    for team, (user, feature, kind) in TOOL_TEAMS[setup].items():
        rows = [e for e in app.ledger.entries(0, FAR_FUTURE) if e.team == team]
        assert len(rows) == 1, team
        (row,) = rows
        model, exact = EXACT[kind]
        expected = exact.without(LOST.get((setup, kind), frozenset()))
        assert (row.team_source, row.user_id, row.feature) == ("span", user, feature)
        assert row.contracted_cost_nanos == expected.nanos(model)


def readme_table() -> dict[tuple[str, str], str]:
    """(setup, call kind) -> the README cell, from its compatibility table."""
    text = (ROOT / "README.md").read_text()
    start = text.index("### Compatibility")
    section = text[start : text.index("\n#", start + 1)]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip(" `") for cell in lines[0].strip("|").split("|")]
    table = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        setup = re.sub(r"[`*]", "", cells[0]).split(" ")[0]
        for kind, cell in zip(header[1:], cells[1:], strict=True):
            table[(setup, kind)] = cell
    return table


def test_the_readme_table_matches_the_matrix() -> None:
    table = readme_table()
    assert {k for k, cell in table.items() if cell != "n/a"} == set(CASES)
    for case in CASES:
        lost = LOST.get(case, frozenset())
        cell = table[case]
        if not lost:
            assert cell == "exact" or cell.startswith("exact ("), case
        else:
            assert cell.startswith("loses"), case
            assert {
                name for name in re.findall(r"[a-z_0-9]+", cell) if name in Tokens.__dataclass_fields__
            } == lost
