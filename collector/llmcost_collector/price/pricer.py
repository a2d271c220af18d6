"""Pricing: list cost (genai-prices, effective-dated) and contracted cost (the org price book).

``Pricer.price(call)`` is on the ingest hot path. Both layers' rates are resolved once per
(provider, response model, request model, API key) *and validity window*: the half-open interval
of time in which neither the list price (genai-prices' dated and time-of-day prices) nor the
matching price-book entry can change. A warm call is a dict lookup, a window check and a few
integer multiplications; a call outside every cached window is resolved afresh, so a cache warmed
by today's price never prices yesterday's call. An unknown model gives ``Cost.unpriced`` with the
reason, never $0.

The billed model is the response model when it resolves (a dated id such as
``gpt-4o-2024-08-06``), else the request model (an Azure deployment's response may carry a name
no list has, while its request carries the public one, or the other way round).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from decimal import Decimal

from llmcost_collector.model import PRICED, Cost, LlmCall, Usage
from llmcost_collector.price.catalog import FOREVER, NEVER, PROVIDER_IDS, ListPrices, day_start_ns, instant
from llmcost_collector.price.pricebook import PriceBook, PriceBookEntry
from llmcost_collector.price.rates import Rates
from llmcost_collector.providers import PRICE_IDS

HUNDRED = Decimal(100)
MAX_CACHED = 100_000  # model ids come from clients: bound the cache
API_KEY_PROPERTY = "api_key_id"  # llmcost.property.api_key_id selects key-scoped price-book entries


class AmbiguousProvider(ValueError):
    """Price-book entries for one model name several providers: the caller must choose."""

    def __init__(self, model: str, providers: list[str]) -> None:
        super().__init__(f"price-book entries for {model!r} name several providers: {', '.join(providers)}")
        self.providers = providers


class _Layers:
    """Both layers' rates for one cache key and window ``[lo, hi)``, compiled for the hot path."""

    __slots__ = ("contracted", "contracted_cost", "hi", "list_cost", "listed", "lo", "reason")

    def __init__(self, listed: Rates | None, contracted: Rates | None, lo: int, hi: int, reason: str) -> None:
        self.listed = listed
        self.contracted = contracted
        self.lo = lo
        self.hi = hi
        self.reason = reason
        self.contracted_cost: Callable[[Usage], int] | None = None
        self.list_cost: Callable[[Usage], int] | None = None
        if contracted is not None:
            self.contracted_cost = contracted.compile()
            # No list price (custom model): the book's rate is the only price, so both layers.
            self.list_cost = (
                self.contracted_cost if listed is None or listed is contracted else listed.compile()
            )

    def cost(self, usage: Usage) -> Cost:
        contracted_cost = self.contracted_cost
        rates = self.contracted
        if contracted_cost is None or rates is None:
            return Cost.unpriced(self.reason)
        contracted = contracted_cost(usage)
        listed = contracted if self.list_cost is contracted_cost else self.list_cost(usage)  # type: ignore[misc]
        return Cost(PRICED, listed, contracted, rates.source, rates.price_id, rates.effective_from)


class Pricer:
    """Prices calls; thread-safe; ``reload`` swaps the price book without stopping ingest."""

    def __init__(self, price_book: PriceBook | None = None, list_prices: ListPrices | None = None) -> None:
        self.list_prices = list_prices or ListPrices()
        self._lock = threading.Lock()
        self._install(price_book)

    def _install(self, price_book: PriceBook | None) -> None:
        book = price_book or PriceBook()
        edges: set[int] = set()
        for entry in book.entries:
            for day in (entry.effective_from, entry.effective_to):
                if day is not None:
                    edges.add(day_start_ns(day))
        self._book = book
        self._book_edges = sorted(edges)
        self._cache: dict[tuple[str, str, str, str], list[_Layers]] = {}
        self._cached = 0

    def reload(self, price_book: PriceBook | None) -> None:
        """Swap the price book (config hot reload); cached resolutions are dropped."""
        with self._lock:
            self._install(price_book)

    @property
    def price_book(self) -> PriceBook:
        return self._book

    def price(self, call: LlmCall, usage: Usage | None = None) -> Cost:
        """The call's cost layers; ``usage`` prices other token counts for the same call (what its
        prompt-cache reads would have cost as plain input, ``price.billing``)."""
        if usage is None:
            usage = call.usage
        if call.is_outcome_record:  # an outcome record, not a provider call: costs nothing
            return Cost(
                status=PRICED, list_nanos=0, contracted_nanos=0, price_source="none", price_id="outcome"
            )
        properties = call.attribution.properties
        api_key_id = properties.get(API_KEY_PROPERTY, "") if properties else ""
        key = (call.provider, call.response_model, call.request_model, api_key_id)
        start = call.start_time_ns
        cache = self._cache
        windows = cache.get(key)
        if windows is not None:
            for layers in windows:
                if layers.lo <= start < layers.hi:
                    return layers.cost(usage)
        layers = self._resolve(call.provider, (call.response_model, call.request_model), api_key_id, start)
        with self._lock:
            if cache is self._cache:  # not swapped by a reload meanwhile
                if self._cached >= MAX_CACHED:
                    cache.clear()
                    self._cached = 0
                cache.setdefault(key, []).append(layers)
                self._cached += 1
        return layers.cost(usage)

    def layers(
        self, provider: str, model: str, start_time_ns: int, api_key_id: str = ""
    ) -> tuple[Rates | None, Rates | None]:
        """(list rates, contracted rates) in force at ``start_time_ns``; uncached (for the CLI)."""
        resolved = self._resolve(provider, (model,), api_key_id, start_time_ns)
        return resolved.listed, resolved.contracted

    def infer_provider(self, model: str, start_time_ns: int) -> tuple[str, str]:
        """(provider, where it came from) for a model named without one (``llmcost price``).

        A call without a provider matches only the price book's ``provider: "*"`` entries, so a
        provider-scoped contract would silently not apply. The price book is asked first: when the
        entries in force that name this model (``model: "*"`` names none) name one provider, that
        is it (a custom model is in no catalogue); several are ambiguous (``AmbiguousProvider``). Else the list-price catalogue's
        provider of the model, by its ``gen_ai.provider.name``. ("", "") when neither knows it.
        """
        day = instant(start_time_ns).date()
        named = sorted(
            {
                entry.provider
                for entry in self._book.entries
                if entry.provider != "*"
                and entry.model != "*"
                and entry.in_force(day)
                and entry.covers_model(model)
            }
        )
        if len(named) > 1:
            raise AmbiguousProvider(model, named)
        if named:
            return named[0], "price book"
        found = self.list_prices.resolve("", model)
        if found is None:
            return "", ""
        price_id = found[0].id
        return next(
            (name for name, pid in PRICE_IDS.items() if pid == price_id), price_id
        ), "genai-prices catalogue"

    def _book_window(self, start_time_ns: int) -> tuple[int, int]:
        edges = self._book_edges
        index = bisect.bisect_right(edges, start_time_ns)
        return (edges[index - 1] if index else NEVER), (edges[index] if index < len(edges) else FOREVER)

    def _resolve(
        self, provider: str, models: tuple[str, ...], api_key_id: str, start_time_ns: int
    ) -> _Layers:
        lo, hi = self._book_window(start_time_ns)
        day = instant(start_time_ns).date()
        provider_id = PROVIDER_IDS.get(provider, provider)
        tried: list[str] = []
        for model in models:
            if not model or model in tried:
                continue
            tried.append(model)
            list_rates, list_lo, list_hi = self.list_prices.rates_window(provider, model, start_time_ns)
            lo, hi = max(lo, list_lo), min(hi, list_hi)
            entry = self._book.find(provider, provider_id, model, api_key_id, day)
            alias = entry.catalogue_alias if entry is not None and list_rates is None else None
            if alias:  # a name no catalogue knows, aliased to one it does: that model's list price
                list_rates, list_lo, list_hi = self.list_prices.rates_window(provider, alias, start_time_ns)
                lo, hi = max(lo, list_lo), min(hi, list_hi)
            contracted = _contracted(entry, list_rates)
            if contracted is not None:
                return _Layers(list_rates, contracted, lo, hi, "")
        shown = " / ".join(repr(model) for model in tried) or "(none)"
        reason = f"no list or price-book price for model {shown} (provider {provider!r})"
        return _Layers(None, None, lo, hi, reason)


def _contracted(entry: PriceBookEntry | None, list_rates: Rates | None) -> Rates | None:
    if entry is None or entry.is_pure_alias:
        return list_rates
    if entry.discount_percent is None:
        return entry.rates(list_rates)
    if list_rates is None:
        return None  # a discount on an unknown list price is still unknown
    factor = (HUNDRED - entry.discount_percent) / HUNDRED
    effective = entry.effective_from.isoformat() if entry.effective_from else list_rates.effective_from
    return list_rates.scaled(factor, source="price-book", price_id=entry.label, effective_from=effective)


__all__ = ["AmbiguousProvider", "PriceBook", "PriceBookEntry", "Pricer", "Rates"]
