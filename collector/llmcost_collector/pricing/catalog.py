"""List prices from ``genai-prices``, resolved once per (provider, model, day) and cached.

``genai_prices.calc_price`` costs ~200 µs a call (model matching, unit registry, Decimal
bookkeeping). Prices change at most daily (``StartDateConstraint`` is a UTC date), so the rates in
force are resolved once per model and UTC day and the per-call work is a dict lookup plus a few
Decimal multiplications. Models with time-of-day prices (off-peak discounts) are resolved per
call instead, so a cached rate is never applied outside its window.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from decimal import Decimal

from genai_prices import data_snapshot
from genai_prices import types as gp

from .rates import Rate, Rates, Tiered

NS_PER_DAY = 86_400 * 10**9

# OTel `gen_ai.provider.name` (and aliases) -> genai-prices provider id.
PROVIDER_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "aws.bedrock": "aws",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
    "together": "together",
    "fireworks": "fireworks",
}


def _rate(value: object) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, gp.TieredPrices):
        return Tiered(Decimal(value.base), tuple((tier.start, Decimal(tier.price)) for tier in value.tiers))
    if isinstance(value, Decimal):
        return value
    return None


def _has_time_of_day_prices(model: gp.ModelInfo) -> bool:
    return isinstance(model.prices, list) and any(
        isinstance(p.constraint, gp.TimeOfDateConstraint) for p in model.prices
    )


def _effective_from(model: gp.ModelInfo, when: datetime) -> str:
    if not isinstance(model.prices, list):
        return ""
    for conditional in reversed(model.prices):
        constraint = conditional.constraint
        if constraint is None or constraint.active(when):
            return constraint.start_date.isoformat() if isinstance(constraint, gp.StartDateConstraint) else ""
    return ""


class ListPrices:
    """Thread-safe cache in front of the genai-prices snapshot."""

    def __init__(self) -> None:
        self._snapshot = data_snapshot.get_snapshot()
        self._models: dict[tuple[str, str], tuple[gp.Provider, gp.ModelInfo] | None] = {}
        self._rates: dict[tuple[str, str, int], Rates | None] = {}
        self._lock = threading.Lock()

    def resolve(self, provider: str, model: str) -> tuple[gp.Provider, gp.ModelInfo] | None:
        """genai-prices' provider and model for a span's provider name and model id, or None."""
        key = (provider, model)
        if key in self._models:
            return self._models[key]
        found = self._lookup(provider, model)
        with self._lock:
            if len(self._models) >= 100_000:  # model ids come from clients: bound the cache
                self._models.clear()
            self._models[key] = found
        return found

    def _lookup(self, provider: str, model: str) -> tuple[gp.Provider, gp.ModelInfo] | None:
        if not model:
            return None
        provider_id = PROVIDER_IDS.get(provider, provider or None)
        refs = [model]
        if "/" in model:  # gateway style "openai/gpt-4o" or "models/gemini-2.0-flash"
            refs.append(model.rsplit("/", 1)[1])
        for ref in refs:
            for candidate in (provider_id, None) if provider_id else (None,):
                try:
                    return self._snapshot.find_provider_model(ref, None, candidate, None)
                except LookupError:
                    continue
        return None

    def rates(self, provider: str, model: str, start_time_ns: int) -> Rates | None:
        """List rates in force when the call started, or None when the model is unknown."""
        day = start_time_ns // NS_PER_DAY
        key = (provider, model, day)
        cached = self._rates.get(key, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        found = self.resolve(provider, model)
        if found is None:
            rates = None
        else:
            when = datetime.fromtimestamp(start_time_ns / 1e9, timezone.utc)
            rates = self._build(found[0], found[1], when)
            if _has_time_of_day_prices(found[1]):
                return rates  # valid for this instant only: not cached
        with self._lock:
            if len(self._rates) >= 100_000:
                self._rates.clear()
            self._rates[key] = rates
        return rates

    @staticmethod
    def _build(provider: gp.Provider, model: gp.ModelInfo, when: datetime) -> Rates:
        price = model.get_prices(when)
        values = price.__dict__
        return Rates(
            input=_rate(values.get("input_mtok")),
            output=_rate(values.get("output_mtok")),
            cache_read=_rate(values.get("cache_read_mtok")),
            cache_write=_rate(values.get("cache_write_mtok") or values.get("cache_write_5m_mtok")),
            cache_write_1h=_rate(values.get("cache_write_1h_mtok")),
            input_audio=_rate(values.get("input_audio_mtok")),
            output_audio=_rate(values.get("output_audio_mtok")),
            source="genai-prices",
            price_id=f"{provider.id}/{model.id}",
            effective_from=_effective_from(model, when),
        )

    def models(self, search: str = "", provider: str = "") -> list[tuple[str, str, Rates]]:
        """(provider id, model id, rates today) for listing; filtered by substring."""
        now = datetime.now(timezone.utc)
        wanted = PROVIDER_IDS.get(provider, provider)
        out = []
        for prov in self._snapshot.providers:
            if wanted and prov.id != wanted:
                continue
            for info in prov.models:
                if (
                    search
                    and search.lower() not in info.id.lower()
                    and search.lower() not in (info.name or "").lower()
                ):
                    continue
                out.append((prov.id, info.id, self._build(prov, info, now)))
        return out
