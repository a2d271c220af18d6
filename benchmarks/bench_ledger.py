"""Ledger insert throughput (issue 5): batched, idempotent, durable inserts vs the seed's per-call design.

Measured in one run, interleaved so that a busy machine slows every design alike:
* seed: the seed document's reference design (benchmarks/seed_reference.py): a new SQLite
  connection, one INSERT, a commit and a close per call;
* ours: ``Ledger.insert`` of 512-row batches (every token class, cost layer, attribution field
  and provenance column), one committed transaction per batch that reports which rows were new,
  with random trace/span ids as real traces have;
* ours on a retried batch (every row a duplicate: the ``RETURNING`` path);
* ours on PostgreSQL 15 with fsync on, when PostgreSQL is installed (a private throwaway cluster).

Each design's best of ``ROUNDS`` rounds is reported (the least disturbed run of each).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from llmcost_collector.ledger import LedgerEntry, open_ledger
from llmcost_collector.model import PRICED, UNPRICED, Attribution, Cost, LlmCall, Usage
from seed_reference import seed_reference

BATCH = 512
BATCHES = 40
ROUNDS = 3
TEAMS = ("search", "support", "marketing", "platform")
FEATURES = ("chat", "ticket-triage", "semantic-search", "document-analysis")
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-20241022")


def make_batches(seed: int, batches: int = BATCHES) -> list[list[LedgerEntry]]:
    """Distinct batches of realistic rows: random ids, varied attribution, 1 in 50 unpriced."""
    rng = random.Random(seed)
    now = time.time_ns()
    out = []
    for b in range(batches):
        batch = []
        for i in range(BATCH):
            n = b * BATCH + i
            call = LlmCall(
                f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}", now + n, now + n + 900_000_000,
                "openai", "chat", MODELS[n % 3], "", Usage(800 + n % 400, 200, 0, 0, 300, n % 50),
                Attribution(team=TEAMS[n % 4], feature=FEATURES[n % 4], user_id=f"user-{n % 997}",
                            session_id=f"s-{n // 8}", environment="production", service_name="bench"),
            )  # fmt: skip
            if n % 50 == 0:
                cost, chargeback = Cost(UNPRICED, None, None, reason="unknown model"), None
            else:
                cost, chargeback = (
                    Cost(PRICED, 435_000, 391_500, "genai-prices", "openai/gpt-4o-mini"),
                    469_800,
                )
            batch.append(LedgerEntry.from_call(call, cost, chargeback, now))
        out.append(batch)
    return out


def measure(url: str, batches: list[list[LedgerEntry]]) -> tuple[float, float, float]:
    """(rows/s new, median ms per new batch, rows/s for the same batches retried)."""
    ledger = open_ledger(url)
    try:
        times = []
        for batch in batches:
            started = time.perf_counter()
            flags = ledger.insert(batch)
            times.append(time.perf_counter() - started)
            assert all(flags)
        started = time.perf_counter()
        for batch in batches[:10]:
            assert not any(ledger.insert(batch))
        retried = 10 * BATCH / (time.perf_counter() - started)
    finally:
        ledger.close()
    return len(batches) * BATCH / sum(times), statistics.median(times) * 1000, retried


def postgres_rows_per_second() -> str:
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    try:
        from tests.pg import PostgresCluster, available_initdb
    except ImportError as exc:
        return f"PostgreSQL: not measured ({exc})"
    initdb = available_initdb()
    if initdb is None:
        return "PostgreSQL: not measured (not installed)"
    with PostgresCluster(initdb, durable=True) as cluster:
        best = max(measure(cluster.create_database(), make_batches(100 + r, 20))[0] for r in range(2))
    return f"PostgreSQL 15 (local, fsync on, synchronous commit): **{best:,.0f} rows/s** in the same 512-row batches."


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seeds, ours, normal = [], [], []
        for r in range(ROUNDS):  # interleaved: load on the machine hits every design alike
            seeds.append(seed_reference(root / f"seed{r}.db"))
            ours.append(measure(f"sqlite:///{root / f'full{r}.db'}", make_batches(r)))
            normal.append(measure(f"sqlite:///{root / f'normal{r}.db'}?synchronous=normal", make_batches(r)))
    seed = max(seeds)
    full_rate, full_ms, retry_rate = max(ours)
    normal_rate, normal_ms, _ = max(normal)
    ratio = full_rate / seed
    return (
        "## Ledger inserts (issue 5)\n\n"
        f"{BATCHES * BATCH:,} rows (49 columns: every token class, cost layer, attribution field and provenance; "
        f"random trace/span ids) in batches of {BATCH}, each batch one committed transaction that reports "
        f"which rows were new. Best of {ROUNDS} interleaved rounds per design.\n\n"
        "| design | rows/s | ms per 512-row batch | vs seed |\n|---|---:|---:|---:|\n"
        f"| seed reference: connect + INSERT + commit + close per call | {seed:,.0f} | {BATCH / seed * 1000:,.0f} | 1x |\n"
        f"| **ours**, SQLite WAL, synchronous=FULL (default) | {full_rate:,.0f} | {full_ms:.2f} | **{ratio:,.0f}x** |\n"
        f"| ours, SQLite WAL, `?synchronous=normal` | {normal_rate:,.0f} | {normal_ms:.2f} | {normal_rate / seed:,.0f}x |\n"
        f"| ours, a retried batch (all duplicates, nothing written) | {retry_rate:,.0f} | {BATCH / retry_rate * 1000:.1f} | "
        f"{retry_rate / seed:,.0f}x |\n\n"
        f"{postgres_rows_per_second()}\n\n"
        f"Goal: at least 100x the seed design at the default durability: {'met' if ratio >= 100 else 'NOT met'} "
        f"({ratio:,.0f}x); a 512-row batch well under 10 ms: {'met' if full_ms < 10 else 'NOT met'} ({full_ms:.2f} ms).\n"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(run())
