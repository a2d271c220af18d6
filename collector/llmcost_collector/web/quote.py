"""``POST /api/v1/quote``: what a month of a scenario's usage would cost and be charged.

The calculator's numbers come from the invoice engine (``chargeback.engine.compute``), never a
second implementation: each chosen model's volume becomes one synthetic usage line of a team
charged under the scenario's chargeback settings, priced by the collector's ``Pricer`` (list
prices and the org price book). Amounts are exact decimal-dollar strings.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmcost_collector.chargeback.engine import PeriodCharges, RateLookup, compute
from llmcost_collector.chargeback.settings import ChargebackPlan, month_days
from llmcost_collector.config.schema import Chargeback, Config, VolumeTier
from llmcost_collector.ledger.usage import UsageLine
from llmcost_collector.model import PRICED, TEAM_FROM_SPAN, Usage
from llmcost_collector.money import format_usd
from llmcost_collector.periods import epoch_ns
from llmcost_collector.price.pricer import Pricer
from llmcost_collector.price.rates import Rates
from llmcost_collector.web.costs import BadQuery

QUOTE_TEAM = "quote"
MAX_CHOICES = 8


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=200)


class Volume(BaseModel):
    """Monthly volume: disjoint token counts, or requests x tokens per request with a cached share."""

    model_config = ConfigDict(extra="forbid")
    input_tokens: int = Field(0, ge=0, le=10**15, description="uncached input tokens")
    cached_input_tokens: int = Field(0, ge=0, le=10**15)
    output_tokens: int = Field(0, ge=0, le=10**15)
    requests: int | None = Field(None, ge=0, le=10**12)
    input_tokens_per_request: int = Field(0, ge=0, le=10**7)
    output_tokens_per_request: int = Field(0, ge=0, le=10**7)
    cached_percent: Decimal = Field(Decimal(0), ge=0, le=100)

    def usage(self) -> tuple[int, Usage]:
        """(requests, disjoint token usage)."""
        if self.requests is None:
            return 1, Usage(
                input_tokens=self.input_tokens,
                cache_read_tokens=self.cached_input_tokens,
                output_tokens=self.output_tokens,
            )
        total_input = self.requests * self.input_tokens_per_request
        cached = int(total_input * self.cached_percent / 100)
        return self.requests, Usage(
            input_tokens=total_input - cached,
            cache_read_tokens=cached,
            output_tokens=self.requests * self.output_tokens_per_request,
        )


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choices: list[Choice] = Field(min_length=1, max_length=MAX_CHOICES)
    volume: Volume
    chargeback: Chargeback = Field(default_factory=Chargeback)
    tiers: list[VolumeTier] | None = Field(None, description="volume tiers (default: the seed's)")
    outcome_counts: dict[str, int] = Field(default_factory=dict, description="value-based: outcomes/month")
    on: date | None = Field(None, description="price day (default: today, UTC)")


def _rates_document(rates: Rates | None) -> dict[str, Any] | None:
    if rates is None:
        return None

    def text(value: object) -> str | None:
        return None if value is None else str(value if isinstance(value, Decimal) else value.base)  # type: ignore[attr-defined]

    return {
        "source": rates.source,
        "price_id": rates.price_id,
        "effective_from": rates.effective_from,
        "input_per_mtok": text(rates.input),
        "cached_input_per_mtok": text(rates.cache_read if rates.cache_read is not None else rates.input),
        "output_per_mtok": text(rates.output),
    }


def _fixed(listed: Rates | None, contracted: Rates) -> RateLookup:
    """The engine's rate lookup for one quoted model: its rates, whatever the day."""

    def lookup(provider: str, model: str, day: date) -> tuple[Rates | None, Rates | None]:
        return listed, contracted

    return lookup


def _percent(delta: int, base: int) -> str | None:
    if not base:
        return None
    return str((Decimal(delta) * 100 / Decimal(base)).quantize(Decimal("0.01")))


def quote(pricer: Pricer, request: QuoteRequest) -> dict[str, Any]:
    """Each choice's month charged by the invoice engine, and each choice's delta to the first."""
    day = request.on or datetime.now(timezone.utc).date()
    start = day.replace(day=1)
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    charge = request.chargeback.model_copy(
        update={"volume_tiers": request.tiers} if request.tiers is not None else {}
    )
    plan = ChargebackPlan(Config(chargeback=charge))
    at = epoch_ns(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    requests, usage = request.volume.usage()
    results: list[dict[str, Any]] = []
    totals: list[int] = []
    for choice in request.choices:
        listed, contracted = pricer.layers(choice.provider, choice.model, at)
        if contracted is None:
            raise BadQuery(f"no price for {choice.provider}/{choice.model}: choose a catalogue model")
        line = UsageLine(
            day, QUOTE_TEAM, TEAM_FROM_SPAN, "", "", "", "", choice.provider, choice.model, "", "ok",
            PRICED, "", "USD", requests, 0, 0, 0, 0, 0, usage.input_tokens, usage.cache_read_tokens,
            0, 0, usage.output_tokens, 0, 0, 0,
            (listed or contracted).cost_nanos(usage), contracted.cost_nanos(usage), 0, 0,
        )  # fmt: skip
        outcomes = [
            UsageLine(
                day,
                QUOTE_TEAM,
                TEAM_FROM_SPAN,
                "",
                "",
                "",
                "",
                choice.provider,
                choice.model,
                "",
                "ok",
                PRICED,
                name,
                "USD",
                0,
                0,
                0,
                count,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            )
            for name, count in sorted(request.outcome_counts.items())
            if count
        ]
        charges: PeriodCharges = compute(
            start, end, [line, *outcomes], {}, plan, _fixed(listed, contracted), ()
        )
        team = charges.teams[QUOTE_TEAM]
        totals.append(team.total_nanos)
        tier = team.tier
        markup = next((item.markup_percent for item in team.lines if item.kind == "usage"), None)
        results.append(
            {
                "provider": choice.provider,
                "model": choice.model,
                "list_price": _rates_document(listed),
                "price": _rates_document(contracted),
                "tokens": {
                    "input": usage.input_tokens,
                    "cached_input": usage.cache_read_tokens,
                    "output": usage.output_tokens,
                },
                "volume_tokens": team.volume_tokens,
                "tier": None
                if tier is None
                else {
                    "name": tier.name,
                    "range": tier.describe(),
                    "markup_percent": str(tier.markup_percent),
                },
                "markup_percent": None if markup is None else str(markup),
                "list_cost_usd": format_usd(line.list_nanos),
                "cost_usd": format_usd(line.contracted_nanos),
                "charge_usd": format_usd(team.total_nanos),
                "lines": [
                    {
                        "kind": item.kind,
                        "description": item.description,
                        "amount_usd": format_usd(item.amount_nanos),
                        "informational": item.informational,
                    }
                    for item in team.lines
                ],
            }
        )
    base = totals[0]
    comparisons = [
        {
            "from": f"{results[0]['provider']}/{results[0]['model']}",
            "to": f"{other['provider']}/{other['model']}",
            "delta_usd": format_usd(total - base),
            "delta_percent": _percent(total - base, base),
        }
        for other, total in zip(results[1:], totals[1:], strict=True)
    ]
    return {
        "period": start.strftime("%Y-%m"),
        "days": month_days(start),
        "price_day": day.isoformat(),
        "requests": requests,
        "chargeback_model": charge.model,
        "quotes": results,
        "comparisons": comparisons,
    }


def catalog(pricer: Pricer, search: str = "", limit: int = 2000) -> dict[str, Any]:
    """The models the calculator can quote: the org price book's entries first (in their order),
    then list prices, each with where its price came from and since when."""
    entries: list[dict[str, Any]] = []
    for entry in pricer.price_book.entries:
        if search and search.lower() not in f"{entry.provider}/{entry.model} {entry.name}".lower():
            continue
        entries.append(
            {
                "provider": entry.provider,
                "model": entry.catalogue_alias or entry.model,
                **(_rates_document(entry.rates()) or {}),
            }
        )
    for provider, model, rates in pricer.list_prices.models(search):
        entries.append({"provider": provider, "model": model, **(_rates_document(rates) or {})})
    return {"models": entries[:limit], "truncated": len(entries) > limit}
