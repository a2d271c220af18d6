"""Budgets in the configuration: an amount per calendar period for a scope, alerted at thresholds.

A budget is written once under the top-level ``budgets:`` list (``teams[].budgets`` is the older
shorthand for a team's daily and monthly charged budget, read as two such entries). The scope is
what spend counts: the whole organisation (no key), a team, a team in one environment or for one
feature, or each user of a tier separately (``per_user: true``). Periods are calendar days,
weeks (from Monday) and months in the budget's IANA time zone, never rolling windows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$"
BUDGET_PERIODS = ("daily", "weekly", "monthly")
BASES = ("charged", "provider")
DEFAULT_THRESHOLDS = (50, 80, 95, 100)

Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


def check_thresholds(value: list[int]) -> list[int]:
    if any(not 1 <= t <= 1000 for t in value):
        raise ValueError("thresholds are percentages between 1 and 1000")
    if value != sorted(set(value)):
        raise ValueError("thresholds must be ascending and unique")
    return value


def severity(threshold: int) -> str:
    """The alert severity of a threshold: info below 80 %, warning below 95 %, critical from 95 %."""
    return "info" if threshold < 80 else "warning" if threshold < 95 else "critical"


class BudgetScope(BaseModel):
    """What spend a budget counts; every key left out means 'any'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str | None = Field(None, pattern=NAME)
    environment: str | None = Field(None, min_length=1, max_length=128)
    feature: str | None = Field(None, min_length=1, max_length=128)
    user_tier: str | None = Field(None, min_length=1, max_length=128)
    per_user: bool = Field(False, description="the amount applies to each user of the scope separately")

    @model_validator(mode="after")
    def _per_user(self) -> BudgetScope:
        if self.per_user and (self.environment or self.feature):
            raise ValueError(
                "a per-user budget is scoped by team and user_tier only (the per-user ledger "
                "rollup carries no environment or feature)"
            )
        return self

    def filters(self) -> dict[str, str]:
        """Ledger column -> value, for the keys the scope sets."""
        pairs = (
            ("team", self.team),
            ("environment", self.environment),
            ("feature", self.feature),
            ("user_tier", self.user_tier),
        )
        return {k: v for k, v in pairs if v}

    @property
    def kind(self) -> str:
        """``organisation``, or the set keys joined by ``_`` (``team``, ``team_environment``, ...),
        with ``_per_user`` for per-user budgets."""
        keys = "_".join(self.filters()) or "organisation"
        return f"{keys}_per_user" if self.per_user else keys

    def describe(self) -> str:
        """Readable and bounded (from the configuration): ``team=search,environment=production``."""
        text = ",".join(f"{k}={v}" for k, v in self.filters().items()) or "organisation"
        return f"each user of {text}" if self.per_user else text


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME, description="unique; the `budget` label of the budget metrics")
    amount_usd: Money
    period: Literal["daily", "weekly", "monthly"]
    scope: BudgetScope = Field(default_factory=BudgetScope, description="default: the whole organisation")
    basis: Literal["charged", "provider"] = Field(
        "charged", description="charged: what teams pay (markups, fees); provider: the provider's cost"
    )
    thresholds: list[int] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS), description="alert at these % of the amount"
    )
    timezone: str = Field("UTC", description="IANA time zone the calendar periods are aligned to")
    hard_limit: bool = Field(False, description="otel_llmcost.guard refuses calls in scope once spent")

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        return check_thresholds(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. UTC, Europe/Paris)") from None
        return value

    @property
    def per_user(self) -> bool:
        return self.scope.per_user


class Enforcement(BaseModel):
    """How the collector answers ``otel_llmcost.guard`` in reserve mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reservation_ttl_seconds: float = Field(
        300, gt=0, le=86_400, description="an unsettled reservation stops counting (a leak) after this"
    )
    unpriced_ceiling_usd: Money | None = Field(
        None, description="reserved for a call to a model without a price; unset: such calls are refused"
    )
