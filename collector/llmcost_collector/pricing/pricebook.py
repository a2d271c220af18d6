"""The org price book: negotiated rates, discounts and custom models, each effective-dated.

The contracted cost of a call is computed from the first matching entry in force on the day the
call started: explicit per-million rates replace the list price (and price models that no public
list has, such as self-hosted ones); ``discount_percent`` reduces the list price. Entries are data,
validated like the rest of the config file (line-precise errors), and matched in file order.
"""

from __future__ import annotations

import fnmatch
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .rates import Rates


class PriceBookEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="label recorded as the price id (default: provider/model)")
    provider: str = Field("*", description="gen_ai.provider.name or genai-prices id; glob")
    model: str = Field(..., description="model id; glob, e.g. 'gpt-4o*'")
    api_key_id: str | None = Field(None, description="only calls carrying llmcost.property.api_key_id = this")
    effective_from: date | None = None
    effective_to: date | None = Field(None, description="exclusive")
    # Negotiated or custom rates, USD per million tokens.
    input: Decimal | None = Field(None, ge=0)
    output: Decimal | None = Field(None, ge=0)
    cache_read: Decimal | None = Field(None, ge=0)
    cache_write: Decimal | None = Field(None, ge=0)
    cache_write_1h: Decimal | None = Field(None, ge=0)
    # Or a discount on the list price.
    discount_percent: Decimal | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _rates_or_discount(self) -> PriceBookEntry:
        has_rates = self.input is not None or self.output is not None
        if has_rates and self.discount_percent is not None:
            raise ValueError("give either rates (input/output/...) or discount_percent, not both")
        if not has_rates and self.discount_percent is None:
            raise ValueError("give rates (at least input or output) or discount_percent")
        if self.effective_from and self.effective_to and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        return self

    def matches(self, provider: str, provider_id: str, model: str, api_key_id: str, day: date) -> bool:
        if self.effective_from and day < self.effective_from:
            return False
        if self.effective_to and day >= self.effective_to:
            return False
        if self.api_key_id is not None and self.api_key_id != api_key_id:
            return False
        if self.provider != "*" and not (
            fnmatch.fnmatchcase(provider, self.provider) or fnmatch.fnmatchcase(provider_id, self.provider)
        ):
            return False
        return fnmatch.fnmatchcase(model.lower(), self.model.lower())

    @property
    def label(self) -> str:
        return "price-book:" + (self.name or f"{self.provider}/{self.model}")

    def rates(self) -> Rates:
        return Rates(
            input=self.input,
            output=self.output,
            cache_read=self.cache_read,
            cache_write=self.cache_write,
            cache_write_1h=self.cache_write_1h,
            source="price-book",
            price_id=self.label,
            effective_from=self.effective_from.isoformat() if self.effective_from else "",
        )


class PriceBook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field("USD", pattern="^USD$")
    entries: list[PriceBookEntry] = Field(default_factory=list)

    def find(
        self, provider: str, provider_id: str, model: str, api_key_id: str, day: date
    ) -> PriceBookEntry | None:
        for entry in self.entries:
            if entry.matches(provider, provider_id, model, api_key_id, day):
                return entry
        return None
