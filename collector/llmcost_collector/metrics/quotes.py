"""What people ask the chargeback calculator: each ``POST /api/v1/quote`` as Prometheus metrics
and as a summary the API returns (``GET /api/v1/quote/stats``).

Labels stay bounded: the model is capped (``__other__`` past ``MODEL_CAP`` distinct models, as
``metrics.labels`` caps every label), the chargeback model is one of four and the volume is a
band of five. The amounts are the quote's, for trends only: metrics are floats, never money of
record (the ledger and invoices are).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from llmcost_collector.metrics.labels import LabelCaps

MODEL_CAP = 50
# Monthly tokens: the upper bounds (exclusive) of each band, and the last one open.
VOLUME_BANDS = (
    ("under_1m", 1_000_000),
    ("1m_10m", 10_000_000),
    ("10m_100m", 100_000_000),
    ("100m_1b", 1_000_000_000),
)
TOP_BAND = "1b_and_over"
COST_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, float("inf"))
DELTA_BUCKETS = (
    -100_000,
    -10_000,
    -1_000,
    -100,
    -10,
    -1,
    0,
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    float("inf"),
)
LABELS = ("model", "chargeback_model", "volume_band")


def volume_band(tokens: int) -> str:
    for name, below in VOLUME_BANDS:
        if tokens < below:
            return name
    return TOP_BAND


class QuoteMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._caps = LabelCaps(caps={"model": MODEL_CAP})
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self._charged: dict[tuple[str, str, str], Decimal] = {}
        self._deltas: dict[tuple[str, str, str], Decimal] = {}
        self.quotes = Counter(
            "llmcost_quotes",
            "Models quoted by the chargeback calculator, by model, chargeback model and volume band",
            LABELS,
            registry=registry,
        )
        self.monthly = Histogram(
            "llmcost_quote_monthly_charge_usd",
            "Calculated monthly charge of each quoted model, USD",
            LABELS,
            buckets=COST_BUCKETS,
            registry=registry,
        )
        self.delta = Histogram(
            "llmcost_quote_comparison_delta_usd",
            "Monthly charge of each compared model minus the first choice's, USD (negative: cheaper)",
            LABELS,
            buckets=DELTA_BUCKETS,
            registry=registry,
        )

    def record(self, answer: dict[str, Any]) -> None:
        """One quote's selections, monthly charges and deltas (``quote.quote``'s answer)."""
        chargeback = answer["chargeback_model"]
        base = Decimal(answer["quotes"][0]["charge_usd"])
        for index, item in enumerate(answer["quotes"]):
            model = self._caps.value("model", f"{item['provider']}/{item['model']}")
            key = (model, chargeback, volume_band(item["volume_tokens"]))
            charge = Decimal(item["charge_usd"])
            self.quotes.labels(*key).inc()
            self.monthly.labels(*key).observe(float(charge))
            with self._lock:
                self._counts[key] = self._counts.get(key, 0) + 1
                self._charged[key] = self._charged.get(key, Decimal(0)) + charge
            if index:
                self.delta.labels(*key).observe(float(charge - base))
                with self._lock:
                    self._deltas[key] = self._deltas.get(key, Decimal(0)) + charge - base

    def summary(self) -> list[dict[str, Any]]:
        """Per selection: quotes, summed monthly charge and summed delta (exact decimal strings)."""
        with self._lock:
            keys = sorted(self._counts, key=lambda k: (-self._counts[k], k))
            return [
                {
                    **dict(zip(LABELS, key, strict=True)),
                    "quotes": self._counts[key],
                    "monthly_charge_usd": str(self._charged[key]),
                    "comparison_delta_usd": str(self._deltas.get(key, Decimal(0))),
                }
                for key in keys
            ]
