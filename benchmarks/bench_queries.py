"""The ledger at real volume (issue 11): questions read the rollups, not the calls.

A month of calls (20 teams, 50 features, 10 models, 100,000 users, workflows of about ten steps)
is written once through ``Ledger.insert`` (so the rollups are built the way the collector builds
them) and cached outside the repository, at 1,000,000 and 10,000,000 calls. Each question is
asked through the collector's own web app (in process, FastAPI included), next to the same
question as a plain ``GROUP BY`` over the calls in the same run: the seed's design.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from fastapi.testclient import TestClient
from llmcost_collector.app import CollectorApp
from llmcost_collector.config.schema import Config
from llmcost_collector.invoice.build import Invoicing, Period
from llmcost_collector.ledger import LedgerEntry, SqlLedger, open_ledger
from llmcost_collector.metrics.gauges import LedgerGauges
from llmcost_collector.settings import Settings
from llmcost_collector.web.api import make_web_app
from prometheus_client import CollectorRegistry

SIZES = (1_000_000, 10_000_000)
GENERATOR_VERSION = 1  # bump when the generated rows change, so cached ledgers are rebuilt
CACHE = Path(os.environ.get("LLMCOST_BENCH_CACHE", Path.home() / ".cache" / "otel-llmcost-bench"))
NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)
NOV_NS = int(NOV.timestamp()) * 10**9
MONTH_NS = 30 * 86_400 * 10**9
SCRAPE_CLOCK = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)  # the gauges' "now": mid-month
TEAMS = [f"team-{i:02d}" for i in range(20)]
FEATURES = [(f"feature-{i:02d}", TEAMS[i % 20]) for i in range(50)]  # every feature has one owner
MODELS = [
    ("openai", "gpt-4o", 2_500, 10_000), ("openai", "gpt-4o-mini", 150, 600), ("openai", "o3-mini", 1_100, 4_400),
    ("openai", "gpt-4.1", 2_000, 8_000), ("openai", "text-embedding-3-small", 20, 0),
    ("anthropic", "claude-sonnet-4", 3_000, 15_000), ("anthropic", "claude-3-5-haiku", 800, 4_000),
    ("anthropic", "claude-opus-4", 15_000, 75_000), ("aws.bedrock", "amazon.nova-pro", 800, 3_200),
    ("azure.ai.openai", "acme-unpriced", 0, 0),
]  # fmt: skip  # (provider, model, nanos per 1k input tokens, per 1k output tokens)
TIERS = ("free", "free", "free", "pro", "pro", "enterprise")
WORKFLOWS = (("document-analysis", ("/analyze", "/analyze/extract", "/analyze/summarize")),
             ("support-ticket", ("/triage", "/triage/draft")), ("search", ("/query",)))  # fmt: skip
BATCH = 5_000


def _rows(count: int, seed: int = 7) -> list[LedgerEntry]:
    """``count`` calls over November 2026 in time order, as ingest writes them."""
    rng = random.Random(seed)
    step = MONTH_NS // count
    rows = []
    session = 0
    steps_left = 0
    user = workflow = None
    for n in range(count):
        if steps_left == 0:  # a new workflow run: about ten calls by one user
            session += 1
            steps_left = rng.randint(5, 15)
            user = rng.randrange(100_000)
            workflow = WORKFLOWS[user % 3]
        steps_left -= 1
        assert workflow is not None and user is not None
        feature, team = FEATURES[user % 50]
        provider, model, in_rate, out_rate = MODELS[rng.randrange(10)]
        start = NOV_NS + n * step + rng.randrange(step)
        tokens_in, tokens_out = rng.randint(200, 4_000), rng.randint(50, 1_500)
        cached = tokens_in // 4 if n % 3 == 0 else 0
        error = rng.random() < 0.02
        unpriced = model == "acme-unpriced"
        contracted = None if unpriced else (tokens_in * in_rate + tokens_out * out_rate) // 1_000
        environment = ("production", "production", "production", "staging", "dev")[n % 5]
        rows.append(
            LedgerEntry(
                f"{rng.getrandbits(128):032x}",
                f"{rng.getrandbits(64):016x}",
                start,
                start + 900_000_000,
                start,
                provider,
                "chat",
                model,
                model,
                "",
                "otel",
                team,
                "span",
                feature,
                "",
                f"user-{user:05d}",
                TIERS[user % 6],
                f"session-{session:08d}",
                workflow[0],
                workflow[1][steps_left % len(workflow[1])],
                environment,
                f"{team}-api",
                "{}",
                tokens_in - cached,
                cached,
                0,
                0,
                tokens_out,
                0,
                0,
                0,
                0,
                "error" if error else "ok",
                "APIError" if error else "",
                0,
                "",
                0,
                "unpriced" if unpriced else "priced",
                contracted and contracted + contracted // 10,
                contracted,
                contracted and contracted * 6 // 5,
                0,
                "USD",
                "" if unpriced else "genai-prices",
                "" if unpriced else f"{provider}/{model}",
                "",
                "unknown model" if unpriced else "",
            )
        )
    return rows


def ledger_of(count: int) -> Path:
    """The cached ledger of ``count`` calls, built through ``Ledger.insert`` when missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # Keyed by the generator only: a ledger cached under an older schema is migrated when opened,
    # as a user's ledger is.
    path = CACHE / f"ledger-v{GENERATOR_VERSION}-{count}.db"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    for leftover in CACHE.glob(partial.name + "*"):
        leftover.unlink()
    print(f"  building a ledger of {count:,} calls in {path} (once) ...", flush=True)
    ledger = open_ledger(f"sqlite:///{partial}?synchronous=normal")
    try:
        rows = _rows(count)
        for start in range(0, count, BATCH):
            ledger.insert(rows[start : start + BATCH])
    finally:
        ledger.close()
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    partial.rename(path)
    return path


def best(action: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time of ``repeat`` runs, in milliseconds (the least disturbed run)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def _percentiles(rows: list[tuple]) -> dict[str, tuple[int, int]]:
    """The raw baseline's p50 and p95 (nearest rank) per session name, from per-session sums."""
    by_name: dict[str, list[int]] = {}
    for name, cost in rows:
        by_name.setdefault(name, []).append(int(cost))
    out = {}
    for name, costs in by_name.items():
        costs.sort()
        out[name] = (costs[(len(costs) + 1) // 2 - 1], costs[-(-95 * len(costs) // 100) - 1])
    return out


def raw(ledger: SqlLedger, sql: str) -> Callable[[], object]:
    return lambda: ledger._read(sql)


def measure(count: int) -> dict[str, tuple[float, float]]:
    """Per question: (ours ms, plain GROUP BY over the calls ms)."""
    path = ledger_of(count)
    app = CollectorApp(Settings(ledger_url=f"sqlite:///{path}"))
    try:
        registry = CollectorRegistry()
        gauges = LedgerGauges(app._team_spend, list, app.caps, ttl=0.0, clock=lambda: SCRAPE_CLOCK)
        registry.register(gauges)
        web = make_web_app(registry, app.ledger, app.ready, gauges.refresh)
        ledger = app.ledger
        day_ns = int(SCRAPE_CLOCK.replace(hour=0).timestamp()) * 10**9
        now_ns = int(SCRAPE_CLOCK.timestamp()) * 10**9
        month = {"from": "2026-11-01", "to": "2026-12-01"}
        sums = "SUM(COALESCE(chargeback_nanos, 0)), SUM(COALESCE(contracted_cost_nanos, 0)), COUNT(*), SUM(input_tokens)"
        where = f"start_time_ns >= {NOV_NS} AND start_time_ns < {NOV_NS + MONTH_NS}"
        with TestClient(web) as client:

            def get(path: str, **params: str) -> Callable[[], object]:
                def call() -> object:
                    response = client.get(path, params=params)
                    assert response.status_code == 200, response.text
                    return response

                return call

            return {
                "`/metrics` scrape (gauges' cache expired)": (
                    best(get("/metrics")),
                    best(lambda: (raw(ledger, f"SELECT team, {sums} FROM llm_calls WHERE start_time_ns >= {NOV_NS} "
                                              f"AND start_time_ns <= {now_ns} GROUP BY team")(),
                                  raw(ledger, f"SELECT team, {sums} FROM llm_calls WHERE start_time_ns >= {day_ns} "
                                              f"AND start_time_ns <= {now_ns} GROUP BY team")())),
                ),
                "`/api/v1/costs?group_by=team,feature` for the month": (
                    best(get("/api/v1/costs", group_by="team,feature", **month)),
                    best(raw(ledger, f"SELECT team, feature, {sums} FROM llm_calls WHERE {where} GROUP BY team, feature")),
                ),
                "`/api/v1/costs?group_by=team&bucket=day` for the month": (
                    best(get("/api/v1/costs", group_by="team", bucket="day", **month)),
                    best(raw(ledger, f"SELECT start_time_ns / 86400000000000, team, {sums} FROM llm_calls "
                                     f"WHERE {where} GROUP BY 1, 2")),
                ),
                "sessions summary of the month (`/api/v1/sessions/summary`)": (
                    best(get("/api/v1/sessions/summary", group_by="session_name", period="2026-11"), repeat=3),
                    best(lambda: _percentiles(ledger._read(
                        f"SELECT session_name, SUM(COALESCE(contracted_cost_nanos, 0)) FROM llm_calls "
                        f"WHERE {where} AND session_id <> '' GROUP BY session_id, session_name")), repeat=3),
                ),
                "every team's invoice for the month (`Invoicing.invoices`, issue 12)": (
                    best(lambda: Invoicing(ledger, Config.default()).invoices(Period.parse("2026-11")), repeat=1),
                    best(raw(ledger, f"SELECT team, {sums} FROM llm_calls WHERE {where} GROUP BY team"), repeat=1),
                ),
                "top 5 users of the month (`group_by=user_id&limit=5`)": (
                    best(get("/api/v1/costs", group_by="user_id", limit="5", **month)),
                    best(raw(ledger, f"SELECT user_id, {sums} FROM llm_calls WHERE {where} GROUP BY user_id "
                                     "ORDER BY 2 DESC LIMIT 5")),
                ),
            }  # fmt: skip
    finally:
        app.ledger.close()


def run() -> str:
    results = {count: measure(count) for count in SIZES}
    small, large = SIZES
    lines = [
        "## The ledger at real volume (issue 11)\n",
        f"One month of calls (20 teams, 50 features, 10 models, 100,000 users, workflows of 5-15 steps) "
        f"written through `Ledger.insert` into SQLite and cached in `{CACHE}`; each question asked through "
        "the collector's web app in process, next to the same question as a plain `GROUP BY` over the "
        "calls in the same run; best of 5, milliseconds.\n",
        f"| question | ours, {small:,} | ours, {large:,} | growth | GROUP BY, {large:,} | ours vs GROUP BY |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for question in results[large]:
        ours_small, _ = results[small][question]
        ours, scan = results[large][question]
        lines.append(
            f"| {question} | {ours_small:,.1f} | {ours:,.1f} | {ours / ours_small:.2f}x | {scan:,.0f} | "
            f"**{scan / ours:,.0f}x** faster |"
        )
    scrape_small, _ = results[small]["`/metrics` scrape (gauges' cache expired)"]
    scrape, _ = results[large]["`/metrics` scrape (gauges' cache expired)"]
    invoices = "every team's invoice for the month (`Invoicing.invoices`, issue 12)"
    worst = max(
        ours for question, (ours, _) in results[large].items() if ours != scrape and question != invoices
    )
    queries = {q: v for q, v in results[large].items() if q != invoices}  # the API's questions
    least = min(scan / ours for ours, scan in queries.values())
    lines.append(
        f"\nGoals at {large:,} calls: scrape under 50 ms and flat from {small:,} (**{scrape:.1f} ms**, "
        f"{scrape / scrape_small:.2f}x of the {small:,} figure); each query under 200 ms (slowest: "
        f"**{worst:,.0f} ms**) and at least 20x faster than the scan (least: **{least:,.0f}x**). "
        f"Median of the large ledger's answers: {statistics.median(o for o, _ in queries.values()):.1f} ms. "
        f"Invoices for all teams (goal under 1 s at {large:,}): **{results[large][invoices][0] / 1000:,.1f} s** "
        "(best of 1; they read daily usage lines of every dimension).\n"
    )
    return "\n".join(lines)
