"""Per-million-token rates and the exact cost of a usage at those rates.

Rates are Decimal dollars per million tokens (as providers publish them); a cost is computed
exactly as a Decimal and rounded once, half-even, to integer nano-dollars. Tiered ("long
context") prices follow the providers' cliff model, as genai-prices does: once the request's
total input crosses a tier's start, that tier's rate applies to all of its tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from llmcost_collector.model import Usage
from llmcost_collector.money import picos_to_nanos, round_nanos

NANOS_PER_USD_PER_MTOK = Decimal(1000)  # tokens * ($ / 1e6 tokens) * 1e9 nano-$/$
PICOS_PER_USD_PER_MTOK = Decimal(1_000_000)  # $/1e6 tokens -> pico-$ per token


@dataclass(frozen=True, slots=True)
class Tiered:
    """A base rate with cliff tiers: ``tiers`` is ``((start_tokens, rate), ...)`` ascending."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...]

    def at(self, total_input_tokens: int) -> Decimal:
        rate = self.base
        for start, tier_rate in self.tiers:
            if total_input_tokens > start:
                rate = tier_rate
        return rate


Rate = Decimal | Tiered


def _rate(rate: Rate | None, total_input: int) -> Decimal | None:
    if rate is None or isinstance(rate, Decimal):
        return rate
    return rate.at(total_input)


@dataclass(frozen=True, slots=True)
class Rates:
    """The prices of one model as in force on one day, with where they came from."""

    input: Rate | None
    output: Rate | None
    cache_read: Rate | None = None
    cache_write: Rate | None = None  # 5-minute TTL writes (or writes of unknown TTL)
    cache_write_1h: Rate | None = None
    input_audio: Rate | None = None
    output_audio: Rate | None = None
    source: str = ""  # genai-prices | price-book
    price_id: str = ""
    effective_from: str = ""

    def cost_nanos(self, usage: Usage) -> int:
        """Exact cost of ``usage`` in integer nano-dollars (one half-even rounding)."""
        total_input = usage.total_input_tokens
        input_rate = _rate(self.input, total_input) or Decimal(0)
        output_rate = _rate(self.output, total_input) or Decimal(0)
        # Classes without their own price fall back to the nearest one a provider would charge.
        read_rate = _rate(self.cache_read, total_input)
        write_rate = _rate(self.cache_write, total_input)
        write_1h_rate = _rate(self.cache_write_1h, total_input)
        audio_in_rate = _rate(self.input_audio, total_input)
        audio_out_rate = _rate(self.output_audio, total_input)
        total = (
            (usage.input_tokens - usage.input_audio_tokens) * input_rate
            + usage.input_audio_tokens * (input_rate if audio_in_rate is None else audio_in_rate)
            + usage.cache_read_tokens * (input_rate if read_rate is None else read_rate)
            + usage.cache_write_5m_tokens * (input_rate if write_rate is None else write_rate)
            + usage.cache_write_1h_tokens
            * (
                write_1h_rate
                if write_1h_rate is not None
                else (input_rate if write_rate is None else write_rate)
            )
            + (usage.output_tokens - usage.output_audio_tokens) * output_rate
            + usage.output_audio_tokens * (output_rate if audio_out_rate is None else audio_out_rate)
        )
        return round_nanos(total * NANOS_PER_USD_PER_MTOK)

    def compile(self) -> Callable[[Usage], int]:
        """A faster ``cost_nanos`` for the hot path, with the same result.

        When every rate is a whole number of pico-dollars per token (any published price with at
        most six decimals per million tokens), the cost is summed in Python integers and rounded
        half-even once; tiered or finer-grained rates keep the exact Decimal path.
        """
        rates = (self.input, self.output, self.cache_read, self.cache_write, self.cache_write_1h,
                 self.input_audio, self.output_audio)  # fmt: skip
        if any(isinstance(rate, Tiered) for rate in rates):
            return self.cost_nanos
        picos = []
        for rate in rates:
            value = None if not isinstance(rate, Decimal) else rate * PICOS_PER_USD_PER_MTOK
            if value is not None and value != value.to_integral_value():
                return self.cost_nanos
            picos.append(None if value is None else int(value))
        i, o, read, write, write_1h, audio_in, audio_out = picos
        i = i or 0
        o = o or 0
        read = i if read is None else read
        write_1h = (i if write is None else write) if write_1h is None else write_1h
        write = i if write is None else write
        audio_in = i if audio_in is None else audio_in
        audio_out = o if audio_out is None else audio_out

        def cost(usage: Usage) -> int:
            total = (
                (usage.input_tokens - usage.input_audio_tokens) * i
                + usage.input_audio_tokens * audio_in
                + usage.cache_read_tokens * read
                + (usage.cache_write_tokens - usage.cache_write_1h_tokens) * write
                + usage.cache_write_1h_tokens * write_1h
                + (usage.output_tokens - usage.output_audio_tokens) * o
                + usage.output_audio_tokens * audio_out
            )
            return picos_to_nanos(total)

        return cost

    def scaled(self, factor: Decimal, *, source: str, price_id: str, effective_from: str) -> Rates:
        """These rates times ``factor`` (a percent discount is ``1 - pct/100``)."""

        def scale(rate: Rate | None) -> Rate | None:
            if rate is None:
                return None
            if isinstance(rate, Decimal):
                return rate * factor
            return Tiered(rate.base * factor, tuple((start, r * factor) for start, r in rate.tiers))

        return Rates(
            input=scale(self.input),
            output=scale(self.output),
            cache_read=scale(self.cache_read),
            cache_write=scale(self.cache_write),
            cache_write_1h=scale(self.cache_write_1h),
            input_audio=scale(self.input_audio),
            output_audio=scale(self.output_audio),
            source=source,
            price_id=price_id,
            effective_from=effective_from,
        )
