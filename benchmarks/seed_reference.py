"""The seed document's reference design (seed 000), the baseline the ledger benchmarks beat:
a new SQLite connection, one INSERT, a commit and a close for every call, with float money."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path


def seed_reference(path: Path, calls: int = 2000) -> float:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE usage_logs (id INTEGER PRIMARY KEY AUTOINCREMENT, team_id TEXT NOT NULL, use_case TEXT NOT NULL, "
        "model TEXT NOT NULL, provider TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, "
        "cost REAL NOT NULL, timestamp TEXT NOT NULL, metadata TEXT)"
    )
    conn.close()
    started = time.perf_counter()
    for _ in range(calls):
        conn = sqlite3.connect(path)
        conn.execute(
            "INSERT INTO usage_logs (team_id, use_case, model, provider, input_tokens, output_tokens, cost, timestamp, "
            "metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("search", "chat", "gpt-4o-mini", "OpenAI", 1000, 300, 1000 / 1e6 * 0.15 + 300 / 1e6 * 0.6,
             datetime.now(timezone.utc).isoformat(), None),
        )  # fmt: skip
        conn.commit()
        conn.close()
    return calls / (time.perf_counter() - started)
