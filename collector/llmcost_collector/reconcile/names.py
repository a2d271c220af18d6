"""One name per model on both sides: the bill's spelling and the response's, mapped alike.

A bill names the dated snapshot (``claude-sonnet-4-20250514``), a CUR usage type part
(``Claude3.5Sonnet``) or an Azure deployment, while the ledger holds whatever the response said
(``claude-sonnet-4-0``). Both go through the same resolution the pricer uses: a price-book entry
naming the model or one of its ``aliases`` stands for its model (or, when no catalogue knows the
entry's model, its catalogue alias), and the genai-prices catalogue maps snapshots and aliases to
one model id. A name neither knows is compared as written, lowercased.
"""

from __future__ import annotations

import re
from datetime import date

from llmcost_collector.price.catalog import PROVIDER_IDS, ListPrices
from llmcost_collector.price.pricebook import PriceBook

_GLOB = re.compile(r"[*?\[]")


class ModelNames:
    def __init__(self, price_book: PriceBook | None = None, list_prices: ListPrices | None = None) -> None:
        self.book = price_book or PriceBook()
        self.list_prices = list_prices or ListPrices()
        self._cache: dict[tuple[str, str, date], str] = {}

    def canonical(self, provider: str, model: str, day: date) -> str:
        """The name ``model`` of ``provider`` is compared under, on ``day`` (entries are dated)."""
        if not model:
            return ""
        key = (provider, model, day)
        if key not in self._cache:
            self._cache[key] = self._resolve(provider, model, day)
        return self._cache[key]

    def _resolve(self, provider: str, model: str, day: date) -> str:
        name = model
        entry = self.book.find(provider, PROVIDER_IDS.get(provider, provider), model, "", day)
        if entry is not None and not _GLOB.search(entry.model):
            known = self.list_prices.resolve(provider, entry.model) is not None
            name = entry.model if known else (entry.catalogue_alias or entry.model)
        found = self.list_prices.resolve(provider, name)
        return found[1].id if found is not None else name.lower()
