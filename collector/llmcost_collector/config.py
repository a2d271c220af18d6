"""The collector's configuration file (``LLMCOST_CONFIG``): one YAML document, validated.

It has room for everything chargeback needs: teams with budgets, attribution rules and the trust
policy for client-asserted teams, metric label caps, the org price book, chargeback rules
(at cost, cost-plus, tiered volume markups, platform fees, value-based outcomes, shared costs)
and ingest limits. See ``examples/llmcost.yaml``.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Mapping
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
    _team_cache: dict[tuple, tuple[str, str]] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

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

    def _rule_team(self, attrs: Mapping[str, object]) -> str:
        for matchers, team in self._rules:
            if all(isinstance(v := attrs.get(attr), str) and pattern.match(v) for attr, pattern in matchers):
                return team
        return ""

    def resolve_team(self, attrs: Mapping[str, object], asserted_team: str) -> tuple[str, str]:
        """The team to charge and why (span, rule, overridden, default), per the trust policy."""
        if not self._rules:
            if asserted_team and self.attribution.trust != "reject":
                return asserted_team, TEAM_FROM_SPAN
            return self.attribution.default_team, TEAM_FROM_DEFAULT
        key = (
            asserted_team,
            *(str(attrs.get(attr, "")) for matchers, _ in self._rules for attr, _p in matchers),
        )
        cached = self._team_cache.get(key)
        if cached is not None:
            return cached
        rule_team = self._rule_team(attrs)
        trust = self.attribution.trust
        result: tuple[str, str]
        if trust == "accept" and asserted_team:
            result = (asserted_team, TEAM_FROM_SPAN)
        elif rule_team:
            overridden = trust == "override" and asserted_team and asserted_team != rule_team
            result = (rule_team, TEAM_OVERRIDDEN if overridden else TEAM_FROM_RULE)
        elif asserted_team and trust == "override":
            result = (asserted_team, TEAM_FROM_SPAN)
        else:
            result = (self.attribution.default_team, TEAM_FROM_DEFAULT)
        with self._lock:
            if len(self._team_cache) >= 10_000:
                self._team_cache.clear()
            self._team_cache[key] = result
        return result

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
