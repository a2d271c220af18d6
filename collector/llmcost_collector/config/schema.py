"""The collector's configuration file (``LLMCOST_CONFIG``): one YAML document, validated.

It has room for everything chargeback needs: teams with budgets, attribution rules and the trust
policy for client-asserted teams, metric label caps, the org price book, chargeback rules
(at cost, cost-plus, tiered volume markups, platform fees, value-based outcomes, shared costs),
ingest limits and privacy. Every section is validated when the file is loaded, including the
parts later features read, so a typo is caught by ``llmcost config check`` rather than at month end.
See ``examples/llmcost.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from llmcost_collector.config.access import Access, check_token, read_token_files
from llmcost_collector.config.alerting import Alerting, parse_contact
from llmcost_collector.config.budgets import (
    DEFAULT_THRESHOLDS,
    Budget,
    BudgetScope,
    Enforcement,
    check_thresholds,
)
from llmcost_collector.config.includes import with_includes
from llmcost_collector.config.yaml_loader import ConfigError, ModelProblems, Problem, load_model
from llmcost_collector.model import (
    UNATTRIBUTED_TEAM,
)
from llmcost_collector.price.pricebook import PriceBook

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$"
PERIODS = ("daily", "monthly")
# Metric labels whose values come from spans (see docs/reference.md); only these can be capped.
CAPPED_LABELS = frozenset(
    {"team", "feature", "environment", "provider", "model", "session_name", "outcome", "period"}
)

Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=1000, allow_inf_nan=False)]

__all__ = ["Config", "ConfigError", "load_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budgets(_Strict):
    """Shorthand (the older form) for a team's charged budgets per UTC day and month: each
    amount is read as a top-level budget named ``<team>-daily`` / ``<team>-monthly``."""

    daily: Money | None = Field(None, description="USD per UTC day")
    monthly: Money | None = Field(None, description="USD per calendar month (UTC)")
    thresholds: list[int] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS), description="alert at these % of the budget"
    )

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        return check_thresholds(value)


ChargebackModel = Literal["at_cost", "cost_plus", "tiered", "value_based"]


class TeamChargeback(_Strict):
    """Per-team exceptions to the default chargeback (unset fields inherit it)."""

    model: ChargebackModel | None = None
    markup_percent: Percent | None = None
    platform_fee_percent: Percent | None = None
    platform_fee_monthly_usd: Money | None = None
    seat_monthly_usd: Money | None = None
    outcomes: dict[str, Money] | None = Field(None, description="outcome prices replacing the default's")


class DatedTeamChargeback(TeamChargeback):
    """A change of a team's chargeback from a UTC day on (unset fields keep what was in force)."""

    effective_from: date


class Team(_Strict):
    name: str = Field(pattern=NAME)
    display_name: str = ""
    owners: list[str] = Field(default_factory=list, description="people or groups accountable for spend")
    contact: str = Field("", description="where alerts go: e-mail, chat channel, pager service")
    budgets: Budgets = Field(default_factory=Budgets)
    chargeback: TeamChargeback | None = None
    chargeback_changes: list[DatedTeamChargeback] = Field(
        default_factory=list, description="later settings, each in force from its effective_from (ascending)"
    )
    seats: int | None = Field(
        None, ge=0, description="seats billed per month when chargeback.seats is configured"
    )

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: str) -> str:
        parse_contact(value)
        return value


class AttributionRule(_Strict):
    match: dict[str, str] = Field(
        description="attribute name -> glob; all must match (span attribute, else resource attribute)"
    )
    team: str = Field(pattern=NAME)
    feature: str | None = Field(None, description="feature for matched spans that carry none")

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
    rules: list[AttributionRule] = Field(default_factory=list, description="first match wins")
    from_attributes: dict[
        str,
        Literal["team", "feature", "use_case", "user_id", "user_tier", "session_id", "session_name",
                "session_path", "environment"],
    ] = Field(
        default_factory=dict,
        description="span (else resource) attribute name -> attribution field it fills when the span has none",
    )  # fmt: skip


class Labels(_Strict):
    default_cap: int = Field(100, ge=1, le=100_000, description="distinct values per label before __other__")
    caps: dict[str, Annotated[int, Field(ge=1, le=100_000)]] = Field(
        default_factory=lambda: {"team": 100, "feature": 100, "model": 100, "session_name": 50}
    )
    allow: dict[str, list[str]] = Field(default_factory=dict, description="only these values, rest __other__")
    max_value_length: int = Field(
        128, ge=8, le=4096, description="characters of a label value; longer ones are cut, ending in …"
    )
    max_label_sets: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="distinct (team, feature, environment, provider, model) sets per cost metric; "
        "past it, new sets are counted in the one set whose labels are all __other__",
    )


class VolumeTier(_Strict):
    name: str = Field("", description="shown on the invoice (default: tier N)")
    up_to_tokens: int | None = Field(
        None, ge=1, description="monthly tokens, inclusive; omit for the last tier"
    )
    below_tokens: int | None = Field(
        None, ge=1, description="monthly tokens, exclusive (instead of up_to_tokens)"
    )
    markup_percent: Percent

    @model_validator(mode="after")
    def _one_bound(self) -> VolumeTier:
        if self.up_to_tokens is not None and self.below_tokens is not None:
            raise ValueError("give up_to_tokens (inclusive) or below_tokens (exclusive), not both")
        return self

    @property
    def below(self) -> int | None:
        """The exclusive upper bound in tokens (tokens are whole, so up to N is below N + 1)."""
        return self.below_tokens if self.up_to_tokens is None else self.up_to_tokens + 1


Weights = dict[str, Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]]


class SharedCost(_Strict):
    name: str = Field(pattern=NAME)
    monthly_usd: Money
    method: Literal["proportional", "even", "weights"] = "proportional"
    teams: list[str] = Field(default_factory=list, description="spread over these teams (default: all)")
    weights: Weights = Field(default_factory=dict, description="team -> weight, for method weights")


class UnattributedSpread(_Strict):
    """Whether spend no team claims is spread over the teams (it is always shown on its own line)."""

    spread: bool = False
    method: Literal["proportional", "even", "weights"] = "proportional"
    teams: list[str] = Field(default_factory=list, description="spread over these teams (default: all)")
    weights: Weights = Field(default_factory=dict, description="team -> weight, for method weights")


class Chargeback(_Strict):
    model: ChargebackModel = "at_cost"
    markup_percent: Percent = Decimal(0)
    platform_fee_percent: Percent = Decimal(0)
    platform_fee_monthly_usd: Money = Field(Decimal(0), description="fixed fee per team per month")
    volume_tiers: list[VolumeTier] = Field(
        default_factory=list, description="markup by monthly tokens, replaces markup_percent on the invoice"
    )
    outcomes: dict[str, Money] = Field(default_factory=dict, description="USD per outcome (value-based)")
    seat_monthly_usd: Money = Field(Decimal(0), description="USD per seat per month (value-based)")
    seats: Literal["active_users", "configured"] = Field(
        "active_users", description="seats are the month's distinct users, or teams[].seats"
    )
    shared_costs: list[SharedCost] = Field(default_factory=list)
    unattributed: UnattributedSpread = Field(default_factory=UnattributedSpread)


class Ingest(_Strict):
    bearer_tokens: list[str] = Field(
        default_factory=list, description="ingest-role tokens (the older form of access.tokens)"
    )
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_in_flight: int = Field(
        64, ge=1, description="exports processed at once; OTLP/HTTP applies a reload at once, gRPC on restart"
    )
    queue_capacity_spans: int = Field(200_000, ge=512)

    @field_validator("bearer_tokens")
    @classmethod
    def _tokens(cls, tokens: list[str]) -> list[str]:
        for token in tokens:
            check_token(token)
        return tokens


class Privacy(_Strict):
    """What the ledger keeps of end-user and session identifiers (never metric labels anyway)."""

    user_id: Literal["keep", "hash", "drop"] = "keep"
    session_id: Literal["keep", "hash", "drop"] = "keep"
    hash_key_env: str = Field(
        "LLMCOST_PRIVACY_KEY", description="environment variable with the HMAC key used by 'hash'"
    )


class Config(_Strict):
    version: Literal[1] = 1
    teams: list[Team] = Field(default_factory=list)
    attribution: Attribution = Field(default_factory=Attribution)
    labels: Labels = Field(default_factory=Labels)
    price_book: PriceBook = Field(default_factory=PriceBook)
    chargeback: Chargeback = Field(default_factory=Chargeback)
    ingest: Ingest = Field(default_factory=Ingest)
    access: Access = Field(default_factory=Access, description="tokens with roles (see docs/reference.md)")
    privacy: Privacy = Field(default_factory=Privacy)
    budgets: list[Budget] = Field(default_factory=list, description="scoped budgets (see docs/reference.md)")
    alerting: Alerting = Field(
        default_factory=Alerting, description="where alerts go (llmcost alertmanager-config)"
    )
    enforcement: Enforcement = Field(default_factory=Enforcement, description="the guard's reserve mode")

    _by_name: dict[str, Team] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        problems = list(self._problems())
        if problems:
            raise ModelProblems(problems)
        self._by_name = {team.name: team for team in self.teams}
        return self

    def _problems(self) -> Iterator[Problem]:
        """Checks that span fields or sections, each reported at the exact value that is wrong."""
        first: dict[str, int] = {}
        for index, team in enumerate(self.teams):
            if team.name in first:
                yield Problem(
                    ("teams", index, "name"), f"duplicate team {team.name!r} (also teams[{first[team.name]}])"
                )
            first.setdefault(team.name, index)
        if self.teams:  # declared teams: rules must name one of them (without teams, rules create them)
            known = set(first) | {UNATTRIBUTED_TEAM}
            hint = "is not defined under teams (add it there, or list no teams to let rules create them)"
            for index, rule in enumerate(self.attribution.rules):
                if rule.team not in known:
                    yield Problem(("attribution", "rules", index, "team"), f"team {rule.team!r} {hint}")
            if self.attribution.default_team not in known:
                yield Problem(
                    ("attribution", "default_team"), f"team {self.attribution.default_team!r} {hint}"
                )
        for section in ("caps", "allow"):
            for label in getattr(self.labels, section):
                if label not in CAPPED_LABELS:
                    allowed = ", ".join(sorted(CAPPED_LABELS))
                    yield Problem(("labels", section, label), f"unknown label {label!r} ({allowed})", True)
        yield from self._chargeback_problems()
        yield from self._budget_problems()
        yield from self._access_problems()

    def _access_problems(self) -> Iterator[Problem]:
        names: dict[str, int] = {}
        known = {t.name for t in self.teams} | {r.team for r in self.attribution.rules}
        values = {token: f"ingest.bearer_tokens[{i}]" for i, token in enumerate(self.ingest.bearer_tokens)}
        for index, entry in enumerate(self.access.tokens):
            if entry.token is not None:  # one token, one role: never two grants for the same value
                value = entry.token.get_secret_value()
                if value in values:
                    yield Problem(("access", "tokens", index, "token"), f"the same token as {values[value]}")
                values.setdefault(value, f"access.tokens[{index}]")
            if entry.name in names:
                yield Problem(
                    ("access", "tokens", index, "name"),
                    f"duplicate token name {entry.name!r} (also access.tokens[{names[entry.name]}])",
                )
            names.setdefault(entry.name, index)
            if self.teams:
                for position, team in enumerate(entry.teams or ()):
                    if team not in known:
                        yield Problem(
                            ("access", "tokens", index, "teams", position),
                            f"team {team!r} is not defined under teams",
                        )

    def _budget_problems(self) -> Iterator[Problem]:
        seen: dict[str, tuple[str | int, ...]] = {
            b.name: ("teams", i, "budgets") for i, t in enumerate(self.teams) for b in _team_budgets(t)
        }
        known = {t.name for t in self.teams}
        for index, budget in enumerate(self.budgets):
            if budget.name in seen:
                where = ".".join(map(str, seen[budget.name]))
                yield Problem(("budgets", index, "name"), f"duplicate budget {budget.name!r} (also {where})")
            seen[budget.name] = ("budgets", index)
            team = budget.scope.team
            if self.teams and team is not None and team not in known:
                yield Problem(
                    ("budgets", index, "scope", "team"), f"team {team!r} is not defined under teams"
                )

    def _chargeback_problems(self) -> Iterator[Problem]:
        charge = self.chargeback
        bounds = [tier.below for tier in charge.volume_tiers]
        for index, bound in enumerate(bounds):
            tier = charge.volume_tiers[index]
            field_name = "up_to_tokens" if tier.below_tokens is None else "below_tokens"
            if bound is None and index < len(bounds) - 1:
                yield Problem(
                    ("chargeback", "volume_tiers", index), "only the last tier may omit its upper bound"
                )
            earlier = [i for i in range(index) if bounds[i] is not None]
            if bound is not None and earlier and bound <= (bounds[earlier[-1]] or 0):
                before = charge.volume_tiers[earlier[-1]]
                written = before.below_tokens if before.up_to_tokens is None else before.up_to_tokens
                yield Problem(
                    ("chargeback", "volume_tiers", index, field_name),
                    f"tiers must ascend: {getattr(tier, field_name)} is not above the previous tier's {written}",
                )
        if charge.model == "at_cost":
            for name in ("markup_percent", "platform_fee_percent"):
                if getattr(charge, name):
                    yield Problem(
                        ("chargeback", name), "has no effect with model at_cost; set model: cost_plus"
                    )
            if charge.volume_tiers and not any(
                (t.chargeback and t.chargeback.model in ("cost_plus", "tiered"))
                or any(c.model in ("cost_plus", "tiered") for c in t.chargeback_changes)
                for t in self.teams
            ):
                yield Problem(("chargeback", "volume_tiers"), "markups need model: cost_plus or tiered")
        for index, team in enumerate(self.teams):
            override = team.chargeback
            if override and (override.model or charge.model) == "at_cost":
                for name in ("markup_percent", "platform_fee_percent"):
                    if getattr(override, name):
                        yield Problem(
                            ("teams", index, "chargeback", name),
                            "has no effect for a team charged at_cost; set model: cost_plus",
                        )
            previous: date | None = None
            for position, change in enumerate(team.chargeback_changes):
                if previous is not None and change.effective_from <= previous:
                    yield Problem(
                        ("teams", index, "chargeback_changes", position, "effective_from"),
                        f"changes must ascend: {change.effective_from} is not after {previous}",
                    )
                previous = change.effective_from
            if team.seats is not None and charge.seats != "configured":
                yield Problem(
                    ("teams", index, "seats"), "has no effect unless chargeback.seats is configured"
                )
        outcome_maps = [(("chargeback", "outcomes"), charge.outcomes)]
        for index, team in enumerate(self.teams):
            settings = [("chargeback", team.chargeback)] + [
                (("chargeback_changes", position), change)
                for position, change in enumerate(team.chargeback_changes)
            ]
            for where, setting in settings:
                if setting is not None and setting.outcomes is not None:
                    path = ("teams", index, *((where,) if isinstance(where, str) else where), "outcomes")
                    outcome_maps.append((path, setting.outcomes))
        for path, outcomes in outcome_maps:
            for name in outcomes:
                if not re.match(NAME, name):
                    yield Problem((*path, name), f"invalid outcome name {name!r}", True)
        seen: set[str] = set()
        spreads: list[tuple[tuple[str | int, ...], SharedCost | UnattributedSpread]] = [
            (("chargeback", "shared_costs", index), shared)
            for index, shared in enumerate(charge.shared_costs)
        ]
        spreads.append((("chargeback", "unattributed"), charge.unattributed))
        for path, shared in spreads:
            if isinstance(shared, SharedCost):
                if shared.name in seen:
                    yield Problem((*path, "name"), f"duplicate {shared.name!r}")
                seen.add(shared.name)
            if shared.method == "weights" and not shared.weights:
                yield Problem((*path, "method"), "method weights needs weights: {team: weight, ...}")
            if shared.method != "weights" and shared.weights:
                yield Problem((*path, "weights"), "weights have no effect unless method is weights")
            if self.teams:
                known = {t.name for t in self.teams}
                for position, team_name in enumerate(shared.teams):
                    if team_name not in known:
                        yield Problem(
                            (*path, "teams", position), f"team {team_name!r} is not defined under teams"
                        )
                for team_name in shared.weights:
                    if team_name not in known:
                        yield Problem(
                            (*path, "weights", team_name),
                            f"team {team_name!r} is not defined under teams",
                            True,
                        )

    @classmethod
    def default(cls) -> Config:
        """The embedded defaults: no teams, trust client teams, unclaimed spend to ``unattributed``."""
        return cls()

    def team_names(self) -> list[str]:
        """Declared teams, then teams that only attribution rules name (in order, once each)."""
        names = dict.fromkeys(team.name for team in self.teams)
        names.update(dict.fromkeys(r.team for r in self.attribution.rules if r.team != UNATTRIBUTED_TEAM))
        return list(names)

    def team(self, name: str) -> Team | None:
        return self._by_name.get(name)

    def all_budgets(self) -> list[Budget]:
        """Every budget: the teams' shorthand ones, then the ``budgets:`` list, in file order."""
        return [b for team in self.teams for b in _team_budgets(team)] + list(self.budgets)

    def budget_for(self, team: str, period: str) -> Decimal | None:
        found = self._by_name.get(team)
        if found is None or period not in PERIODS:
            return None
        return found.budgets.daily if period == "daily" else found.budgets.monthly


def _team_budgets(team: Team) -> list[Budget]:
    """``teams[].budgets`` read as top-level budgets (charged, UTC, scoped to the team)."""
    found = []
    for period in PERIODS:
        amount = getattr(team.budgets, period)
        if amount is not None:
            found.append(
                Budget(
                    name=f"{team.name}-{period}",
                    amount_usd=amount,
                    period=period,
                    scope=BudgetScope(team=team.name),
                    thresholds=team.budgets.thresholds,
                )
            )
    return found


def load_config(path: str | Path, *, text: str | None = None) -> Config:
    """Load and validate a config file and the price-book files it includes; raises
    ``ConfigError`` with file:line:col reasons (in the file where the problem is)."""
    config = load_model(path, Config, text=text)
    if not config.price_book.include and not any(t.token_file for t in config.access.tokens):
        return config
    source = Path(path)
    if text is None:
        text = source.read_text(encoding="utf-8")
    book = with_includes(config.price_book, source, text, ("price_book",))
    access = read_token_files(config.access, source, text)
    return config.model_copy(update={"price_book": book, "access": access})
