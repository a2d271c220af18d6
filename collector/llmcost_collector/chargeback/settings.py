"""Chargeback settings in force for a team on a day: the config's chargeback, made effective-dated.

A team's settings are the ``chargeback`` defaults, overridden field by field by
``teams[].chargeback``, then by each ``teams[].chargeback_changes[]`` entry from its
``effective_from`` day on. Per-call chargeback and monthly invoices both read them from here, so
a change dated mid-month applies to exactly the calls dated under it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from llmcost_collector.config.schema import Config, TeamChargeback
from llmcost_collector.model import UNATTRIBUTED_TEAM

AT_COST = "at_cost"
COST_PLUS = "cost_plus"
TIERED = "tiered"
VALUE_BASED = "value_based"


@dataclass(frozen=True, slots=True)
class Tier:
    """A volume tier: applies when the month's tokens are below ``below`` (None: no bound)."""

    name: str
    below: int | None
    markup_percent: Decimal
    lower: int = 0  # the tier's first volume (the previous tier's bound)

    def describe(self) -> str:
        if self.below is None:
            return f"{self.lower:,} tokens/month or more"
        return f"{self.lower:,} to {self.below - 1:,} tokens/month"


# The seed's table: Experimental under 10M tokens/month 50 %, Standard 10M-100M 20 %, Enterprise
# over 100M 10 %. Exactly 10,000,000 and exactly 100,000,000 tokens are Standard.
SEED_TIERS = (
    Tier("Experimental", 10_000_000, Decimal(50)),
    Tier("Standard", 100_000_001, Decimal(20), lower=10_000_000),
    Tier("Enterprise", None, Decimal(10), lower=100_000_001),
)


def tier_for(tiers: tuple[Tier, ...], tokens: int) -> Tier:
    """The first tier whose bound is above ``tokens`` (the last tier has none)."""
    for tier in tiers:
        if tier.below is None or tokens < tier.below:
            return tier
    return tiers[-1]


@dataclass(frozen=True, slots=True)
class TeamSettings:
    """What one team is charged under, from ``effective_from`` (None: since always)."""

    model: str
    markup_percent: Decimal
    platform_fee_percent: Decimal
    platform_fee_monthly_usd: Decimal
    seat_monthly_usd: Decimal
    outcomes: Mapping[str, Decimal] = field(default_factory=dict)
    tiers: tuple[Tier, ...] = ()
    seats: int | None = None  # configured seats; None: the month's distinct active users
    effective_from: date | None = None

    @property
    def tiered(self) -> bool:
        """Markup from the month's volume tier (model tiered, or cost_plus with volume_tiers)."""
        return self.model == TIERED or (self.model == COST_PLUS and bool(self.tiers))

    @property
    def bills_tokens(self) -> bool:
        return self.model != VALUE_BASED

    def per_call_factor(self) -> Decimal | None:
        """Multiplier of the contracted cost for per-call chargeback; None for a passthrough.

        Volume tiers depend on the whole month, so per call a tiered team is charged its
        ``markup_percent`` plus fee; the invoice applies the tier. Value-based teams are billed
        outcomes and seats, so per call their token cost passes through at cost.
        """
        if self.model in (AT_COST, VALUE_BASED):
            return None
        return 1 + (self.markup_percent + self.platform_fee_percent) / 100

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready (decimals as strings): what a closed period records it was charged under."""
        return {
            "model": self.model,
            "markup_percent": str(self.markup_percent),
            "platform_fee_percent": str(self.platform_fee_percent),
            "platform_fee_monthly_usd": str(self.platform_fee_monthly_usd),
            "seat_monthly_usd": str(self.seat_monthly_usd),
            "outcomes": {name: str(price) for name, price in sorted(self.outcomes.items())},
            "tiers": [
                {"name": t.name, "below_tokens": t.below, "markup_percent": str(t.markup_percent)}
                for t in self.tiers
            ],
            "seats": self.seats,
            "effective_from": self.effective_from.isoformat() if self.effective_from else None,
        }


@dataclass(frozen=True, slots=True)
class Segment:
    """Days ``[start, end)`` of a period under one team's settings."""

    start: date
    end: date
    settings: TeamSettings

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def _override(settings: TeamSettings, change: TeamChargeback) -> TeamSettings:
    values: dict[str, Any] = {}
    for name in (
        "model",
        "markup_percent",
        "platform_fee_percent",
        "platform_fee_monthly_usd",
        "seat_monthly_usd",
    ):
        value = getattr(change, name)
        if value is not None:
            values[name] = value
    if change.outcomes is not None:
        values["outcomes"] = dict(change.outcomes)
    return replace(settings, **values)


class ChargebackPlan:
    """Every team's effective-dated settings, built once per configuration."""

    def __init__(self, config: Config) -> None:
        charge = config.chargeback
        tiers = tuple(
            Tier(
                tier.name or f"tier {index + 1}",
                tier.below,
                tier.markup_percent,
                lower=charge.volume_tiers[index - 1].below or 0 if index else 0,
            )
            for index, tier in enumerate(charge.volume_tiers)
        )
        self.config = config
        self.base = TeamSettings(
            model=charge.model,
            markup_percent=charge.markup_percent,
            platform_fee_percent=charge.platform_fee_percent,
            platform_fee_monthly_usd=charge.platform_fee_monthly_usd,
            seat_monthly_usd=charge.seat_monthly_usd,
            outcomes=dict(charge.outcomes),
            tiers=tiers,
        )
        self._seed_tiers = tiers or SEED_TIERS
        self._cache: dict[tuple[str, date], TeamSettings] = {}

    def _complete(self, settings: TeamSettings) -> TeamSettings:
        if settings.model == TIERED and not settings.tiers:
            return replace(settings, tiers=self._seed_tiers)
        return settings

    def history(self, team: str) -> list[TeamSettings]:
        """The team's settings in order of ``effective_from`` (the first one is undated)."""
        found = self.config.team(team)
        if team == UNATTRIBUTED_TEAM and found is None:
            # Spend nobody claims is shown at cost: no markup, fee or seats on nobody's invoice.
            unattributed = replace(
                self.base,
                model=AT_COST,
                markup_percent=Decimal(0),
                platform_fee_percent=Decimal(0),
                platform_fee_monthly_usd=Decimal(0),
                seat_monthly_usd=Decimal(0),
                outcomes={},
            )
            return [unattributed]
        first = self.base
        if found is not None and found.chargeback is not None:
            first = _override(first, found.chargeback)
        if found is not None and self.config.chargeback.seats == "configured":
            first = replace(first, seats=found.seats or 0)
        history = [self._complete(first)]
        for change in found.chargeback_changes if found is not None else ():
            history.append(
                self._complete(replace(_override(history[-1], change), effective_from=change.effective_from))
            )
        return history

    def on(self, team: str, day: date) -> TeamSettings:
        """The settings in force for ``team`` on UTC ``day``."""
        key = (team, day)
        cached = self._cache.get(key)
        if cached is None:
            cached = self.history(team)[0]
            for settings in self.history(team)[1:]:
                if settings.effective_from is not None and settings.effective_from <= day:
                    cached = settings
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def segments(self, team: str, start: date, end: date) -> list[Segment]:
        """Days ``[start, end)`` cut where the team's settings change, in order."""
        cuts = [start]
        for settings in self.history(team)[1:]:
            when = settings.effective_from
            if when is not None and start < when < end:
                cuts.append(when)
        cuts.append(end)
        return [Segment(lo, hi, self.on(team, lo)) for lo, hi in pairwise(cuts) if lo < hi]


def per_call_rates(config: Config, team: str, day: date | None = None) -> tuple[str, Decimal, Decimal]:
    """(model, markup %, platform fee %) in force for ``team`` on ``day`` (default: undated)."""
    plan = ChargebackPlan(config)
    settings = plan.on(team, day) if day is not None else plan.history(team)[0]
    return settings.model, settings.markup_percent, settings.platform_fee_percent


def month_days(start: date) -> int:
    """Days in the calendar month starting at ``start``."""
    following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - start).days
