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

``aliases`` are other names of an entry's model: an entry written for the seed's ``haiku-3.5``
with ``aliases: [claude-3-5-haiku-20241022]`` prices the calls naming either, and a call naming
``haiku-3.5`` (which no catalogue knows) gets the aliased model's list price as its list layer
(and, for an entry with neither rates nor a discount, as its price). ``include`` lists price-book
files (the shape of ``examples/model-catalog.json``) whose entries come after these; the
configuration loader reads them (``config.includes``).
"""

from __future__ import annotations

import fnmatch
import re
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmcost_collector.price.rates import Rate, Rates, Tiered

_GLOB = re.compile(r"[*?\[]")


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
    aliases: list[str] = Field(
        default_factory=list,
        description="other names of the model, ids or globs (calls naming them match); the first id "
        "that is no glob is the catalogue model whose list price a call naming ``model`` gets",
    )
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
        if not has_rates and self.discount_percent is None and self.catalogue_alias is None:
            raise ValueError(
                "give rates (at least input or output), discount_percent, or aliases naming a catalogue model"
            )
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
        """Whether ``model`` is the entry's model or one of its aliases (globs, case-insensitive)."""
        lowered = model.lower()
        return any(fnmatch.fnmatchcase(lowered, name.lower()) for name in (self.model, *self.aliases))

    @property
    def catalogue_alias(self) -> str | None:
        """The first alias that is a model id (no glob): the catalogue model this entry stands for."""
        return next((name for name in self.aliases if not _GLOB.search(name)), None)

    @property
    def is_pure_alias(self) -> bool:
        """Neither rates nor a discount: the entry only names a model, priced at its list price."""
        return self.input is None and self.output is None and self.discount_percent is None

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
    include: list[str] = Field(
        default_factory=list,
        description="price-book files (YAML/JSON, e.g. model-catalog.json) whose entries follow these, "
        "relative to the file that includes them",
    )

    @field_validator("include", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def find(
        self, provider: str, provider_id: str, model: str, api_key_id: str, day: date
    ) -> PriceBookEntry | None:
        for entry in self.entries:
            if entry.matches(provider, provider_id, model, api_key_id, day):
                return entry
        return None
