"""Pricing: list cost (genai-prices, effective-dated) and contracted cost (the org price book).

``Pricer.price(call)`` is on the ingest hot path: both layers' rates are resolved once per
(provider, model, API key, UTC day) and cached, so a warm call is a dict lookup and a handful of
Decimal multiplications. An unknown model gives ``Cost.unpriced`` with the reason, never $0.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from decimal import Decimal

from ..model import PRICED, Cost, LlmCall
from .catalog import NS_PER_DAY, PROVIDER_IDS, ListPrices
from .pricebook import PriceBook, PriceBookEntry
from .rates import Rates

HUNDRED = Decimal(100)
MAX_CACHED = 100_000  # model ids come from clients: bound the cache


class Pricer:
    def __init__(self, price_book: PriceBook | None = None, list_prices: ListPrices | None = None) -> None:
        self.list_prices = list_prices or ListPrices()
        self._book = price_book or PriceBook()
        self._layers: dict[tuple[str, str, str, int], _Layers] = {}
        self._lock = threading.Lock()

    def reload(self, price_book: PriceBook | None) -> None:
        """Swap the price book (config hot reload); cached resolutions are dropped."""
        with self._lock:
            self._book = price_book or PriceBook()
            self._layers = {}

    def price(self, call: LlmCall) -> Cost:
        if call.operation == "outcome":  # an outcome record, not a provider call: costs nothing
            return Cost(
                status=PRICED, list_nanos=0, contracted_nanos=0, price_source="none", price_id="outcome"
            )
        model = call.model
        api_key_id = call.attribution.properties.get("api_key_id", "") if call.attribution.properties else ""
        day = call.start_time_ns // NS_PER_DAY
        key = (call.provider, model, api_key_id, day)
        layers = self._layers.get(key)
        if layers is None:
            layers = _Layers(*self._resolve(call.provider, model, api_key_id, call.start_time_ns))
            with self._lock:
                if len(self._layers) >= MAX_CACHED:
                    self._layers.clear()
                self._layers[key] = layers
        contracted_rates = layers.contracted
        if contracted_rates is None or layers.contracted_cost is None:
            return Cost.unpriced(
                f"no list or price-book price for model {model!r} (provider {call.provider!r})"
            )
        contracted = layers.contracted_cost(call.usage)
        listed = contracted if layers.list_cost is None else layers.list_cost(call.usage)
        return Cost(
            status=PRICED,
            list_nanos=listed,
            contracted_nanos=contracted,
            price_source=contracted_rates.source,
            price_id=contracted_rates.price_id,
            price_effective_from=contracted_rates.effective_from,
        )

    def layers(
        self, provider: str, model: str, start_time_ns: int, api_key_id: str = ""
    ) -> tuple[Rates | None, Rates | None]:
        """(list rates, contracted rates) in force at ``start_time_ns``; uncached (for the CLI)."""
        return self._resolve(provider, model, api_key_id, start_time_ns)

    def _resolve(
        self, provider: str, model: str, api_key_id: str, start_time_ns: int
    ) -> tuple[Rates | None, Rates | None]:
        list_rates = self.list_prices.rates(provider, model, start_time_ns)
        day = datetime.fromtimestamp(start_time_ns / 1e9, timezone.utc).date()
        provider_id = PROVIDER_IDS.get(provider, provider)
        entry = self._book.find(provider, provider_id, model, api_key_id, day)
        return list_rates, _contracted(entry, list_rates)


class _Layers:
    """Both layers' rates for one (provider, model, key, day), compiled for the hot path."""

    __slots__ = ("contracted", "contracted_cost", "list_cost", "listed")

    def __init__(self, listed: Rates | None, contracted: Rates | None) -> None:
        self.listed = listed
        self.contracted = contracted
        self.list_cost = listed.compile() if listed is not None else None
        self.contracted_cost = contracted.compile() if contracted is not None else None


def _contracted(entry: PriceBookEntry | None, list_rates: Rates | None) -> Rates | None:
    if entry is None:
        return list_rates
    if entry.discount_percent is None:
        return entry.rates()
    if list_rates is None:
        return None  # a discount on an unknown list price is still unknown
    factor = (HUNDRED - entry.discount_percent) / HUNDRED
    effective = entry.effective_from.isoformat() if entry.effective_from else list_rates.effective_from
    return list_rates.scaled(factor, source="price-book", price_id=entry.label, effective_from=effective)


__all__ = ["PriceBook", "PriceBookEntry", "Pricer", "Rates"]
