"""The ledger at real volume (issue 11): questions read the rollups, not the calls.

A month of calls (20 teams, 50 features, 10 models, 100,000 users, workflows of about ten steps)
is written once through ``Ledger.insert`` (so the rollups are built the way the collector builds
them) and cached outside the repository, at 1,000,000 calls; the 10,000,000-call month is that
month copied ten times with new ids, its rollups rebuilt by the ledger's migration (``scaled``). Each question is
asked through the collector's own web app (in process, FastAPI included), next to the same
question as a plain ``GROUP BY`` over the calls in the same run: the seed's design.

Invoices (issue 12) are also timed on the daily lines they used to be charged on, in the same
run, next to the rollup row counts that decide their cost. ``LLMCOST_BENCH_SIZES`` (comma
separated, default ``1000000,10000000``) picks the ledgers measured; ``LLMCOST_BENCH_CACHE`` is
where they are cached.
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
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.invoice.build import Invoicing, Period
from llmcost_collector.ledger import LedgerEntry, SqlLedger, open_ledger
from llmcost_collector.metrics.gauges import LedgerGauges
from llmcost_collector.settings import Settings
from llmcost_collector.web.api import make_web_app
from prometheus_client import CollectorRegistry

SIZES = tuple(int(size) for size in os.environ.get("LLMCOST_BENCH_SIZES", "1000000,10000000").split(","))
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
ENVIRONMENTS = ("production", "production", "production", "staging", "dev")
# Every dimension combination the generator can make, whatever the number of calls: a feature
# fixes its team and service, a model its provider and price status, and a user fixes the
# feature (user % 50) and the tier (user % 6); then environment and status (ok, error).
COMBINATIONS = (
    len({(user % 50, TIERS[user % 6]) for user in range(100_000)}) * len(MODELS) * len(set(ENVIRONMENTS)) * 2
)
INVOICES = "every team's invoice for the month (`Invoicing.invoices`, issue 12)"
# Every team's settings change mid-month (half on the 16th, half on the 21st): range lines cut twice.
CHANGES = "teams:\n" + "".join(
    f"  - name: {team}\n    chargeback_changes:\n"
    f"      - {{effective_from: 2026-11-{16 if i % 2 else 21}, model: cost_plus, markup_percent: 10}}\n"
    for i, team in enumerate(TEAMS)
)
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
        environment = ENVIRONMENTS[n % 5]
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


BASE = 1_000_000  # the ledger built row by row; larger ones are copies of its month


def ledger_of(count: int) -> Path:
    """The cached ledger of ``count`` calls: built through ``Ledger.insert`` up to ``BASE``
    calls; a multiple of ``BASE`` is that month copied (``scaled``)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # Keyed by the generator only: a ledger cached under an older schema is migrated when opened,
    # as a user's ledger is.
    path = CACHE / f"ledger-v{GENERATOR_VERSION}-{count}.db"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    for leftover in CACHE.glob(partial.name + "*"):
        leftover.unlink()
    if count > BASE and count % BASE == 0:
        return scaled(ledger_of(BASE), count // BASE, partial, path)
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


_HEX = "'0123456789abcdef'"


def _shifted(column: str, k: int) -> str:
    """A trace id with its first hex digit moved by ``k``: the copies' ids differ from each
    other and from the original, and a trace's spans stay one trace."""
    return f"substr({_HEX}, ((instr({_HEX}, substr({column}, 1, 1)) - 1 + {k}) % 16) + 1, 1) || substr({column}, 2)"


def scaled(base: Path, times: int, partial: Path, path: Path) -> Path:
    """A month of ``times`` x the base ledger's calls: its calls and call spans copied ``times - 1``
    times in SQL with new trace ids, session ids and response ids (the same users, teams,
    features and models), then the rollups rebuilt from the calls by the ledger's own migration
    (its rebuild, migration 9, is marked unapplied, so opening the ledger runs it again).
    Building 10,000,000 calls row by row through Python takes hours here; this takes minutes."""
    import shutil
    import sqlite3

    print(
        f"  building a ledger of {BASE * times:,} calls in {path} (once, copies of {base.name}) ...",
        flush=True,
    )
    shutil.copy(base, partial)
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        (version,) = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        assert version >= 9, "the base ledger is migrated to 9 or later when opened"
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('llm_calls', 'llm_call_spans')"
        ).fetchall()
        conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4000000;")
        for name, _ in indexes:  # built again once, after the copies: far faster than row by row
            conn.execute(f"DROP INDEX {name}")
        (calls,) = conn.execute("SELECT MAX(rowid) FROM llm_calls").fetchone()
        (spans,) = conn.execute("SELECT MAX(rowid) FROM llm_call_spans").fetchone()
        # every stored column (``start_time`` is generated: hidden 2 or 3 in table_xinfo)
        columns = [row[1] for row in conn.execute("PRAGMA table_xinfo(llm_calls)") if row[6] == 0]
        conn.execute("BEGIN")
        for k in range(1, times):
            picked = [
                _shifted("trace_id", k) if c == "trace_id"
                else f"CASE WHEN session_id = '' THEN '' ELSE session_id || '-{k}' END" if c == "session_id"
                else c
                for c in columns
            ]  # fmt: skip
            conn.execute(
                f"INSERT INTO llm_calls ({', '.join(columns)}) SELECT {', '.join(picked)} FROM llm_calls WHERE rowid <= ?",
                (calls,),
            )
            conn.execute(
                "INSERT INTO llm_call_spans (trace_id, span_id, parent_span_id, response_id, billed_trace_id, "
                f"billed_span_id, ingested_at_ns) SELECT {_shifted('trace_id', k)}, span_id, parent_span_id, "
                f"CASE WHEN response_id = '' THEN '' ELSE response_id || '-{k}' END, "
                f"{_shifted('billed_trace_id', k)}, billed_span_id, ingested_at_ns FROM llm_call_spans WHERE rowid <= ?",
                (spans,),
            )
        conn.execute("COMMIT")
        for _, sql in indexes:
            conn.execute(sql)
        # the rollups: rebuilt from every call by the migration that rebuilds them (version 9)
        conn.execute("DELETE FROM schema_migrations WHERE version = 9")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    open_ledger(f"sqlite:///{partial}").close()
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


class DailyGrain(Invoicing):
    """Invoices charged on daily lines of every dimension: the grain before range lines."""

    def range_lines(self, period: Period) -> list:  # type: ignore[type-arg]
        return self.ledger.usage_lines(period.start_ns, period.end_ns)


def invoice_grain(ledger: SqlLedger) -> dict[str, float]:
    """What invoices cost and read: timings (ms) and row counts of the month."""
    month = Period.parse("2026-11")
    default, changing = Config.default(), load_config("changes.yaml", text=CHANGES)
    bounds = [month.start_ns, month.end_ns]

    def rows(table: str, column: str = "start_ns") -> int:
        return int(
            ledger._read(f"SELECT COUNT(*) FROM {table} WHERE {column} >= ? AND {column} < ?", bounds)[0][0]
        )

    ours = Invoicing(ledger, default).invoices(month)
    before = DailyGrain(ledger, default).invoices(month)
    return {
        "daily grain ms": best(lambda: DailyGrain(ledger, default).invoices(month), repeat=1),
        "range lines ms": best(lambda: Invoicing(ledger, default).invoices(month), repeat=5),
        "seats read ms": best(lambda: ledger.active_users(month.start_ns, month.end_ns), repeat=5),
        "with changes ms": best(lambda: Invoicing(ledger, changing).invoices(month), repeat=3),
        "same totals": float([d["total_nanos"] for d in ours] == [d["total_nanos"] for d in before]),
        "calls": rows("llm_calls", "start_time_ns"),
        "daily rows": rows("llm_rollup_daily"),
        "monthly rows": rows("llm_rollup_monthly"),
        "user rows": rows("llm_rollup_users", "month_ns"),
        "range lines with changes": len(Invoicing(ledger, changing).range_lines(month)),
        "load": os.getloadavg()[0],  # other work on the machine makes single runs noisy
    }


def measure(count: int) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """Per question: (ours ms, plain GROUP BY over the calls ms); and ``invoice_grain``."""
    path = ledger_of(count)
    app = CollectorApp(Settings(ledger_url=f"sqlite:///{path}"))
    try:
        registry = CollectorRegistry()
        gauges = LedgerGauges(app._team_spend, lambda now: [], app.caps, ttl=0.0, clock=lambda: SCRAPE_CLOCK)
        registry.register(gauges)
        web = make_web_app(registry, app.ledger, app.ready, gauges.refresh)
        ledger = app.ledger
        day_ns = int(SCRAPE_CLOCK.replace(hour=0).timestamp()) * 10**9
        now_ns = int(SCRAPE_CLOCK.timestamp()) * 10**9
        month = {"from": "2026-11-01", "to": "2026-12-01"}
        sums = "SUM(COALESCE(chargeback_nanos, 0)), SUM(COALESCE(contracted_cost_nanos, 0)), COUNT(*), SUM(input_tokens)"
        where = f"start_time_ns >= {NOV_NS} AND start_time_ns < {NOV_NS + MONTH_NS}"
        grain = invoice_grain(ledger)
        with TestClient(web) as client:

            def get(path: str, **params: str) -> Callable[[], object]:
                def call() -> object:
                    response = client.get(path, params=params)
                    assert response.status_code == 200, response.text
                    return response

                return call

            answers = {
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
                "one team's sessions summary of the month (`team=team-00`, as its scoped token asks)": (
                    best(get("/api/v1/sessions/summary", group_by="session_name", period="2026-11", team="team-00"),
                         repeat=3),
                    best(lambda: _percentiles(ledger._read(
                        f"SELECT session_name, SUM(COALESCE(contracted_cost_nanos, 0)) FROM llm_calls "
                        f"WHERE {where} AND session_id <> '' AND team = 'team-00' GROUP BY session_id, session_name")),
                         repeat=3),
                ),
                INVOICES: (
                    grain["range lines ms"],  # best of 5, timed by invoice_grain
                    best(raw(ledger, f"SELECT team, {sums} FROM llm_calls WHERE {where} GROUP BY team"), repeat=1),
                ),
                "top 5 users of the month (`group_by=user_id&limit=5`)": (
                    best(get("/api/v1/costs", group_by="user_id", limit="5", **month)),
                    best(raw(ledger, f"SELECT user_id, {sums} FROM llm_calls WHERE {where} GROUP BY user_id "
                                     "ORDER BY 2 DESC LIMIT 5")),
                ),
            }  # fmt: skip
        return answers, grain
    finally:
        app.ledger.close()


def run() -> str:
    measured = {count: measure(count) for count in SIZES}
    results = {count: answers for count, (answers, _) in measured.items()}
    small, large = min(SIZES), max(SIZES)
    growth = len(SIZES) > 1
    lines = [
        "## The ledger at real volume (issue 11)\n",
        f"One month of calls (20 teams, 50 features, 10 models, 100,000 users, workflows of 5-15 steps) "
        f"written through `Ledger.insert` into SQLite (larger months: that month copied with new trace, "
        f"session and response ids, rollups rebuilt by the ledger's migration) and cached in `{CACHE}`; "
        "each question asked through "
        "the collector's web app in process, next to the same question as a plain `GROUP BY` over the "
        "calls in the same run; best of 5 (the invoices' `GROUP BY` once), milliseconds.\n",
    ]
    if not growth:
        lines.append(
            f"This run measured the {large:,}-call ledger only (`LLMCOST_BENCH_SIZES={large}`); the "
            "10,000,000-call figures of the previous runs are in this file's history.\n"
        )
    head = " | ".join(f"ours, {count:,}" for count in sorted(SIZES))
    lines += [
        f"| question | {head} |{' growth |' if growth else ''} GROUP BY, {large:,} | ours vs GROUP BY |",
        "|---|" + "---:|" * (len(SIZES) + (3 if growth else 2)),
    ]
    for question in results[large]:
        ours, scan = results[large][question]
        cells = " | ".join(f"{results[count][question][0]:,.1f}" for count in sorted(SIZES))
        change = f" {ours / results[small][question][0]:.2f}x |" if growth else ""
        lines.append(f"| {question} | {cells} |{change} {scan:,.0f} | **{scan / ours:,.0f}x** faster |")
    scrape_small, _ = results[small]["`/metrics` scrape (gauges' cache expired)"]
    scrape, _ = results[large]["`/metrics` scrape (gauges' cache expired)"]
    worst = max(
        ours for question, (ours, _) in results[large].items() if ours != scrape and question != INVOICES
    )
    queries = {q: v for q, v in results[large].items() if q != INVOICES}  # the API's questions
    least = min(scan / ours for ours, scan in queries.values())
    flat = (
        f" and flat from {small:,} ({scrape / scrape_small:.2f}x of the {small:,} figure)" if growth else ""
    )
    at = (
        f"Goals at {large:,} calls"
        if large == 10_000_000
        else f"At {large:,} calls (the goals are for 10,000,000)"
    )
    lines.append(
        f"\n{at}: scrape under 50 ms{flat}: **{scrape:.1f} ms**; each query under 200 ms "
        f"(slowest: **{worst:,.0f} ms**) and at least 20x faster than the scan (least: **{least:,.0f}x**). "
        f"Median of the large ledger's answers: {statistics.median(o for o, _ in queries.values()):.1f} ms.\n"
    )
    lines += ["### Invoices: range lines, not daily lines (issue 12)\n", *_invoice_lines(measured)]
    return "\n".join(lines)


def _invoice_lines(measured: dict[int, tuple[dict[str, tuple[float, float]], dict[str, float]]]) -> list[str]:
    """The invoice paragraph: the grain's timings and the row counts behind them, per ledger."""
    out = [
        "Invoices are charged on range lines: the month cut only where a team's settings or a model's "
        "rates change, so a month without changes reads the monthly rollup, one row per dimension "
        "combination. Both grains below are timed in this run on the same ledger with the same engine "
        "(`DailyGrain` feeds it the daily lines invoices read before; best of 1, range lines best of 5); "
        '"with changes" gives all 20 teams a settings change on the 16th or the 21st. The machine\'s '
        f"1-minute load average after the timings: {max(m[1]['load'] for m in measured.values()):.1f} "
        f"(on {os.cpu_count()} CPUs).\n",
        "| calls | daily rollup rows | monthly rows (combinations) | per-user rows | daily grain | "
        "range lines | range lines with changes (lines) | same totals |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for count in sorted(measured):
        g = measured[count][1]
        out.append(
            f"| {int(g['calls']):,} | {int(g['daily rows']):,} | {int(g['monthly rows']):,} | "
            f"{int(g['user rows']):,} | {g['daily grain ms']:,.0f} ms | **{g['range lines ms']:,.0f} ms** | "
            f"{g['with changes ms']:,.0f} ms ({int(g['range lines with changes']):,}) | "
            f"{'yes' if g['same totals'] else 'no'} |"
        )
    largest = max(measured)
    g = measured[largest][1]
    text = (
        f"\nWhat drives the cost is the number of monthly rows (dimension combinations), not calls: the "
        f"generator can make at most {COMBINATIONS:,} combinations whatever the number of calls, and "
        f"{largest:,} calls already realize {int(g['monthly rows']):,} of them."
    )
    if 10_000_000 not in measured:
        # The seats read (distinct users: at most 100,000 per-user rows) grows with the users, the
        # rest (the monthly rows, the engine, the documents) with the combinations.
        rows_factor = COMBINATIONS / g["monthly rows"]
        users_factor = 100_000 / g["user rows"]
        seats = g["seats read ms"]
        projected = (g["range lines ms"] - seats) * rows_factor + seats * users_factor
        text += (
            f" Not measured here, extrapolated: at 10,000,000 calls the month holds at most {COMBINATIONS:,} "
            f"monthly rows ({rows_factor:.2f}x this ledger's) and 100,000 per-user rows ({users_factor:.2f}x), "
            f"so invoices for all teams should take about ({g['range lines ms']:,.0f} - {seats:,.0f} ms of "
            f"seats read) x {rows_factor:.2f} + {seats:,.0f} ms x {users_factor:.2f} = **{projected:,.0f} ms** "
            "if each part is linear in the rows it reads (goal under 1 s)."
        )
    return [*out, text, ""]
