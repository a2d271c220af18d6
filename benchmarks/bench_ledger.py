"""Ledger insert throughput (issue 5): batched, idempotent inserts vs the seed's per-call design."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from llmcost_collector.ledger import LedgerEntry, open_ledger
from llmcost_collector.model import PRICED, Attribution, Cost, LlmCall, Usage
from seed_reference import seed_reference

BATCH = 512
BATCHES = 40


def entries(offset: int) -> list[LedgerEntry]:
    now = time.time_ns()
    out = []
    for n in range(offset, offset + BATCH):
        call = LlmCall(
            f"{n:032x}", f"{n:016x}", now, now, "openai", "chat", "gpt-4o-mini", "", Usage(800, 200, 0, 0, 300),
            Attribution(team=("search", "support")[n % 2], feature="chat", user_id=f"u{n % 97}"),
        )  # fmt: skip
        out.append(
            LedgerEntry.from_call(
                call, Cost(PRICED, 435_000, 435_000, "genai-prices", "openai/gpt-4o-mini"), 522_000, now
            )
        )
    return out


def ours(url: str) -> float:
    ledger = open_ledger(url)
    batches = [entries(i * BATCH) for i in range(BATCHES)]
    started = time.perf_counter()
    for batch in batches:
        assert all(ledger.insert(batch))
    elapsed = time.perf_counter() - started
    ledger.close()
    return BATCHES * BATCH / elapsed


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        full = ours(f"sqlite:///{root / 'full.db'}")
        normal = ours(f"sqlite:///{root / 'normal.db'}?synchronous=normal")
        seed = seed_reference(root / "seed.db")
    return (
        "## Ledger inserts (issue 5)\n\n"
        f"{BATCHES * BATCH:,} rows (49 columns: every token class, cost layer, attribution field and provenance) "
        f"in batches of {BATCH}, each batch one committed transaction that reports which rows were new.\n\n"
        "| design | rows/s | vs seed |\n|---|---:|---:|\n"
        f"| seed reference: connect + INSERT + commit + close per call | {seed:,.0f} | 1x |\n"
        f"| **ours**, SQLite WAL, synchronous=FULL (default) | {full:,.0f} | **{full / seed:,.0f}x** |\n"
        f"| ours, SQLite WAL, `?synchronous=normal` | {normal:,.0f} | {normal / seed:,.0f}x |\n\n"
        f"Goal: at least 100x the seed design: {'met' if full / seed >= 100 else 'NOT met'} at the default durability.\n"
    )
