"""The collector's configuration file (``LLMCOST_CONFIG``): one YAML document, validated.

It has room for everything chargeback needs: teams with budgets, attribution rules and the trust
policy for client-asserted teams, metric label caps, the org price book, chargeback rules
(at cost, cost-plus, tiered volume markups, platform fees, value-based outcomes, shared costs)
and ingest limits. See ``examples/llmcost.yaml``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .model import TEAM_FROM_DEFAULT, TEAM_FROM_RULE, TEAM_FROM_SPAN, TEAM_OVERRIDDEN, UNATTRIBUTED_TEAM
from .pricing.pricebook import PriceBook
from .yamlconfig import ConfigError, load_model

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$"
PERIODS = ("daily", "monthly")

__all__ = ["Config", "ConfigError", "load_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budgets(_Strict):
    daily: Decimal | None = Field(None, ge=0, description="USD per UTC day")
    monthly: Decimal | None = Field(None, ge=0, description="USD per calendar month (UTC)")
    thresholds: list[int] = Field(default_factory=lambda: [50, 80, 95, 100])

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        if any(not 1 <= t <= 1000 for t in value):
            raise ValueError("thresholds are percentages between 1 and 1000")
        if value != sorted(set(value)):
            raise ValueError("thresholds must be ascending and unique")
        return value


class TeamChargeback(_Strict):
    model: Literal["at_cost", "cost_plus"] | None = None
    markup_percent: Decimal | None = Field(None, ge=0, le=1000)
    platform_fee_percent: Decimal | None = Field(None, ge=0, le=1000)


class Team(_Strict):
    name: str = Field(pattern=NAME)
    display_name: str = ""
    owners: list[str] = Field(default_factory=list)
    budgets: Budgets = Field(default_factory=Budgets)
    chargeback: TeamChargeback | None = None


class AttributionRule(_Strict):
    match: dict[str, str] = Field(description="attribute name -> glob, all must match (span, then resource)")
    team: str = Field(pattern=NAME)

    @field_validator("match")
    @classmethod
    def _non_empty(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("a rule needs at least one attribute to match")
        return value


class Attribution(_Strict):
    trust: Literal["accept", "override", "reject"] = Field(
        "accept",
        description="client-asserted llmcost.team: accept it, let matching rules override it, or ignore it",
    )
    default_team: str = Field(UNATTRIBUTED_TEAM, pattern=NAME)
    rules: list[AttributionRule] = Field(default_factory=list)


class Labels(_Strict):
    default_cap: int = Field(100, ge=1, le=100_000)
    caps: dict[str, int] = Field(default_factory=lambda: {"session_name": 50})
    allow: dict[str, list[str]] = Field(default_factory=dict)


class VolumeTier(_Strict):
    up_to_tokens: int | None = Field(None, ge=1, description="monthly tokens; omit for the last tier")
    markup_percent: Decimal = Field(ge=0, le=1000)


class SharedCost(_Strict):
    name: str
    monthly_usd: Decimal = Field(ge=0)
    method: Literal["proportional", "even"] = "proportional"


class Chargeback(_Strict):
    model: Literal["at_cost", "cost_plus"] = "at_cost"
    markup_percent: Decimal = Field(Decimal(0), ge=0, le=1000)
    platform_fee_percent: Decimal = Field(Decimal(0), ge=0, le=1000)
    platform_fee_monthly_usd: Decimal = Field(Decimal(0), ge=0)
    volume_tiers: list[VolumeTier] = Field(default_factory=list, description="applied on the monthly invoice")
    outcomes: dict[str, Decimal] = Field(default_factory=dict, description="USD per outcome (value-based)")
    shared_costs: list[SharedCost] = Field(default_factory=list)

    @field_validator("volume_tiers")
    @classmethod
    def _tiers(cls, tiers: list[VolumeTier]) -> list[VolumeTier]:
        bounds = [t.up_to_tokens for t in tiers]
        if None in bounds[:-1]:
            raise ValueError("only the last tier may omit up_to_tokens")
        finite = [b for b in bounds if b is not None]
        if finite != sorted(set(finite)):
            raise ValueError("tiers must be in ascending order of up_to_tokens")
        return tiers


class Ingest(_Strict):
    bearer_tokens: list[str] = Field(default_factory=list, description="when set, exports must carry one")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_in_flight: int = Field(64, ge=1)
    queue_capacity_spans: int = Field(200_000, ge=512)


class Config(_Strict):
    version: Literal[1] = 1
    teams: list[Team] = Field(default_factory=list)
    attribution: Attribution = Field(default_factory=Attribution)
    labels: Labels = Field(default_factory=Labels)
    price_book: PriceBook = Field(default_factory=PriceBook)
    chargeback: Chargeback = Field(default_factory=Chargeback)
    ingest: Ingest = Field(default_factory=Ingest)

    _rules: list[tuple[list[tuple[str, re.Pattern[str]]], str]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        names = [team.name for team in self.teams]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"team names must be unique: {', '.join(duplicates)}")
        self._rules = [
            ([(attr, re.compile(fnmatch.translate(glob))) for attr, glob in rule.match.items()], rule.team)
            for rule in self.attribution.rules
        ]
        return self

    @classmethod
    def default(cls) -> Config:
        return cls()

    def team_names(self) -> list[str]:
        return [team.name for team in self.teams]

    def team(self, name: str) -> Team | None:
        return next((team for team in self.teams if team.name == name), None)

    def budget_for(self, team: str, period: str) -> Decimal | None:
        found = self.team(team)
        if found is None or period not in PERIODS:
            return None
        return found.budgets.daily if period == "daily" else found.budgets.monthly

    def team_resolver(self) -> Callable[[Mapping[str, object], Mapping[str, object], str], tuple[str, str]]:
        """A fast ``(span attributes, resource attributes, asserted team) -> (team, source)``.

        Implements the attribution rules and the trust policy; results are cached per distinct
        combination of the attributes the rules look at (bounded), since this runs per span.
        """
        trust = self.attribution.trust
        default = self.attribution.default_team
        rules = list(self._rules)
        keys = tuple(dict.fromkeys(attr for matchers, _ in rules for attr, _p in matchers))
        cache: dict[tuple, tuple[str, str]] = {}

        def resolve(
            attrs: Mapping[str, object], resource: Mapping[str, object], asserted: str
        ) -> tuple[str, str]:
            if not rules:
                if asserted and trust != "reject":
                    return asserted, TEAM_FROM_SPAN
                return default, TEAM_FROM_DEFAULT
            values = tuple(attrs.get(k, resource.get(k)) for k in keys)
            key = (asserted, values)
            found = cache.get(key)
            if found is not None:
                return found
            lookup = dict(zip(keys, values, strict=True))
            rule_team = next(
                (
                    team
                    for matchers, team in rules
                    if all(isinstance(v := lookup.get(a), str) and p.match(v) for a, p in matchers)
                ),
                "",
            )
            if trust == "accept" and asserted:
                found = (asserted, TEAM_FROM_SPAN)
            elif rule_team:
                overridden = trust == "override" and asserted and asserted != rule_team
                found = (rule_team, TEAM_OVERRIDDEN if overridden else TEAM_FROM_RULE)
            elif asserted and trust == "override":
                found = (asserted, TEAM_FROM_SPAN)
            else:
                found = (default, TEAM_FROM_DEFAULT)
            if len(cache) >= 10_000:
                cache.clear()
            cache[key] = found
            return found

        return resolve

    def resolve_team(self, attrs: Mapping[str, object], asserted_team: str) -> tuple[str, str]:
        """The team to charge and why (span, rule, overridden, default), per the trust policy."""
        return self.team_resolver()(attrs, {}, asserted_team)

    def chargeback_rates(self, team: str) -> tuple[str, Decimal, Decimal]:
        """(model, markup %, platform fee %) for per-call chargeback of ``team``."""
        base = self.chargeback
        override = (found := self.team(team)) and found.chargeback
        model = (override and override.model) or base.model
        markup = (
            override.markup_percent
            if override and override.markup_percent is not None
            else base.markup_percent
        )
        fee = (
            override.platform_fee_percent
            if override and override.platform_fee_percent is not None
            else base.platform_fee_percent
        )
        return model, markup, fee


def load_config(path: str | Path, *, text: str | None = None) -> Config:
    """Load and validate a config file; raises ``ConfigError`` with file:line:col reasons."""
    return load_model(path, Config, text=text)
