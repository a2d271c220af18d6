"""List prices from ``genai-prices``: model resolution, and the rates in force at an instant.

``genai_prices.calc_price`` costs ~100-200 µs a call (model matching, unit registry, Decimal
bookkeeping). The price of a model is piecewise constant in time: it changes only at the UTC
midnights where a ``StartDateConstraint`` starts, and (for off-peak prices) at the daily
``TimeOfDateConstraint`` edges. ``ListPrices.rates_window`` returns the rates in force at an
instant together with the half-open window ``[lo_ns, hi_ns)`` in which they stay in force, so the
``Pricer`` can cache them without ever applying a price outside its window.

Resolution: the span's provider name is mapped to genai-prices' provider id; a model unknown
under that provider (an OpenAI-compatible gateway, Azure deployment with a public model name,
unknown provider) is matched by model id alone, except for self-hosted servers, whose models
only the price book can price. Gateway-style ids (``openai/gpt-4o``, ``publishers/google/
models/gemini-2.0-flash``, Bedrock ARNs) are also tried by their last path segment.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from genai_prices import data_snapshot
from genai_prices import types as gp

from llmcost_collector.price.rates import Rate, Rates, Tiered
from llmcost_collector.providers import ALIASES, PRICE_IDS, SELF_HOSTED

NS_PER_DAY = 86_400 * 10**9
NEVER = -(2**63)  # window bounds for "no change before / after"
FOREVER = 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EPOCH_DAY = date(1970, 1, 1)
ANTHROPIC_1H_WRITE_FACTOR = Decimal(2)  # Anthropic: 1h cache writes cost 2x base input, every model
# OTel `gen_ai.provider.name` -> genai-prices provider id, with the aliases other conventions use.
PROVIDER_IDS = {**{alias: PRICE_IDS[name] for alias, name in ALIASES.items()}, **PRICE_IDS}


def instant(start_time_ns: int) -> datetime:
    """Exact UTC datetime of a nanosecond timestamp, truncated to the microsecond (never rounded up
    across a midnight, as ``datetime.fromtimestamp(ns / 1e9)`` can)."""
    return EPOCH + timedelta(microseconds=start_time_ns // 1000)


def day_start_ns(day: date) -> int:
    return (day - EPOCH_DAY).days * NS_PER_DAY


def _rate(value: object) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, gp.TieredPrices):
        return Tiered(Decimal(value.base), tuple((tier.start, Decimal(tier.price)) for tier in value.tiers))
    if isinstance(value, Decimal):
        return value
    return None


def _seconds_of_day_utc(value: time) -> int:
    if value.tzinfo is not None:
        value = datetime.combine(EPOCH_DAY, value).astimezone(timezone.utc).time()
    return value.hour * 3600 + value.minute * 60 + value.second


def price_window(model: gp.ModelInfo, start_time_ns: int) -> tuple[int, int]:
    """``[lo, hi)`` around ``start_time_ns`` in which ``model``'s price in force cannot change."""
    if not isinstance(model.prices, list):
        return NEVER, FOREVER
    day = start_time_ns // NS_PER_DAY
    edges: list[int] = []
    for conditional in model.prices:
        constraint = conditional.constraint
        if isinstance(constraint, gp.StartDateConstraint):
            edges.append(day_start_ns(constraint.start_date))
        elif isinstance(constraint, gp.TimeOfDateConstraint):
            for edge in (constraint.start_time, constraint.end_time):
                offset = _seconds_of_day_utc(edge) * 10**9
                edges.extend((d * NS_PER_DAY + offset) for d in (day - 1, day, day + 1))
    lo = max((edge for edge in edges if edge <= start_time_ns), default=NEVER)
    hi = min((edge for edge in edges if edge > start_time_ns), default=FOREVER)
    return lo, hi


def _effective_from(model: gp.ModelInfo, when: datetime) -> str:
    """The start date of the dated price in force (empty when the model has had one price)."""
    if not isinstance(model.prices, list):
        return ""
    for conditional in reversed(model.prices):
        constraint = conditional.constraint
        if isinstance(constraint, gp.StartDateConstraint) and constraint.active(when):
            return constraint.start_date.isoformat()
    return ""


def _one_hour_write(values: dict[str, object], model: gp.ModelInfo, input_rate: Rate | None) -> Rate | None:
    explicit = _rate(values.get("cache_write_1h_mtok"))
    if explicit is not None or values.get("cache_write_mtok") is None or "claude" not in model.id:
        return explicit
    # genai-prices lacks the 1h rate for some Claude ids (mostly on Bedrock/Vertex); Anthropic's
    # published rule is 2x base input. Billing 1h writes at the 5m rate would undercount them.
    if isinstance(input_rate, Decimal):
        return input_rate * ANTHROPIC_1H_WRITE_FACTOR
    if isinstance(input_rate, Tiered):
        factor = ANTHROPIC_1H_WRITE_FACTOR
        return Tiered(
            input_rate.base * factor, tuple((start, rate * factor) for start, rate in input_rate.tiers)
        )
    return None


class ListPrices:
    """Model resolution (cached, thread-safe) and rates from the genai-prices snapshot."""

    def __init__(self) -> None:
        self._snapshot = data_snapshot.get_snapshot()
        self._models: dict[tuple[str, str], tuple[gp.Provider, gp.ModelInfo] | None] = {}
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
        if "/" in model:  # gateway style "openai/gpt-4o", "publishers/google/models/...", ARNs
            refs.append(model.rsplit("/", 1)[1])
        if provider in SELF_HOSTED:
            candidates: tuple[str | None, ...] = ()
        elif provider_id:
            candidates = (provider_id, None)
        else:
            candidates = (None,)
        for ref in refs:
            for candidate in candidates:
                try:
                    return self._snapshot.find_provider_model(ref, None, candidate, None)
                except LookupError:
                    continue
        return None

    def rates_window(self, provider: str, model: str, start_time_ns: int) -> tuple[Rates | None, int, int]:
        """(list rates in force at ``start_time_ns`` or None if unknown, window lo, window hi)."""
        found = self.resolve(provider, model)
        if found is None:
            return None, NEVER, FOREVER
        lo, hi = price_window(found[1], start_time_ns)
        return self._build(found[0], found[1], instant(start_time_ns)), lo, hi

    def rates(self, provider: str, model: str, start_time_ns: int) -> Rates | None:
        """List rates in force when the call started, or None when the model is unknown."""
        return self.rates_window(provider, model, start_time_ns)[0]

    @staticmethod
    def _build(provider: gp.Provider, model: gp.ModelInfo, when: datetime) -> Rates:
        values = model.get_prices(when).__dict__
        input_rate = _rate(values.get("input_mtok"))
        return Rates(
            input=input_rate,
            output=_rate(values.get("output_mtok")),
            cache_read=_rate(values.get("cache_read_mtok")),
            cache_write=_rate(values.get("cache_write_mtok")),
            cache_write_1h=_one_hour_write(values, model, input_rate),
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
        needle = search.lower()
        out = []
        for prov in self._snapshot.providers:
            if wanted and prov.id != wanted:
                continue
            for info in prov.models:
                if needle and needle not in info.id.lower() and needle not in (info.name or "").lower():
                    continue
                out.append((prov.id, info.id, self._build(prov, info, now)))
        return out
