"""The org price book: negotiated rates, discounts and custom models, each effective-dated.

The contracted cost of a call is computed from the first matching entry in force on the UTC day
the call started (so put specific entries before broad ones): explicit per-million rates replace
the list price (and price models that no public list has, such as self-hosted ones);
``discount_percent`` reduces the list price (per model, or per provider with ``model: "*"``).
Entries are data, validated like the rest of the config file (line-precise errors).

Rates are ``Decimal``: YAML/JSON numbers are read from their source text by ``yamlconfig`` and
strings are accepted too, so ``0.15`` is exactly ``Decimal("0.15")``, never a binary float.

A negotiated entry that leaves out a token class (say ``cache_read``) does not bill that class at
the full input rate: it keeps the list price's ratio to input (list cache read x negotiated input /
list input), so a contract that only states input/output still discounts cache reads as the
provider does. A custom model with no list price bills such classes at its input (output) rate.
"""

from __future__ import annotations

import fnmatch
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmcost_collector.price.rates import Rate, Rates, Tiered


def _ratio(negotiated: Decimal | None, listed: Rate | None) -> tuple[Decimal, Decimal] | None:
    if negotiated is None or not isinstance(listed, Decimal) or listed <= 0:
        return None
    return negotiated, listed


def _scale(rate: Rate, ratio: tuple[Decimal, Decimal]) -> Rate:
    """``rate * num / den``, multiplying first so that exact ratios stay exact decimals."""
    num, den = ratio
    if isinstance(rate, Decimal):
        return rate * num / den
    return Tiered(rate.base * num / den, tuple((start, tier * num / den) for start, tier in rate.tiers))


class PriceBookEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="label recorded as the price id (default: provider/model)")
    provider: str = Field("*", description="gen_ai.provider.name or genai-prices id; glob")
    model: str = Field("*", description="model id; glob, e.g. 'gpt-4o*' ('*': every model of the provider)")
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
        if not self.in_force(day):
            return False
        if self.api_key_id is not None and self.api_key_id != api_key_id:
            return False
        if self.provider != "*" and not (
            fnmatch.fnmatchcase(provider, self.provider) or fnmatch.fnmatchcase(provider_id, self.provider)
        ):
            return False
        return self.covers_model(model)

    def in_force(self, day: date) -> bool:
        """Whether the entry applies to calls made on this UTC day."""
        if self.effective_from and day < self.effective_from:
            return False
        return not (self.effective_to and day >= self.effective_to)

    def covers_model(self, model: str) -> bool:
        """Whether ``model`` is the entry's model (its glob, case-insensitive)."""
        return fnmatch.fnmatchcase(model.lower(), self.model.lower())

    @property
    def label(self) -> str:
        return "price-book:" + (self.name or f"{self.provider}/{self.model}")

    def rates(self, list_rates: Rates | None = None) -> Rates:
        """The negotiated rates; classes not given follow ``list_rates`` in proportion (see above)."""
        input_factor = _ratio(self.input, list_rates.input if list_rates else None)
        output_factor = _ratio(self.output, list_rates.output if list_rates else None)

        def fill(
            given: Decimal | None, listed: Rate | None, ratio: tuple[Decimal, Decimal] | None
        ) -> Rate | None:
            if given is not None or listed is None or ratio is None:
                return given
            return _scale(listed, ratio)

        listed = list_rates or Rates(input=None, output=None)
        return Rates(
            input=self.input,
            output=self.output,
            cache_read=fill(self.cache_read, listed.cache_read, input_factor),
            cache_write=fill(self.cache_write, listed.cache_write, input_factor),
            cache_write_1h=fill(self.cache_write_1h, listed.cache_write_1h, input_factor),
            input_audio=fill(None, listed.input_audio, input_factor),
            output_audio=fill(None, listed.output_audio, output_factor),
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
