"""The monthly chargeback: every team's invoice lines from a period's usage lines.

Pure computation: usage lines (``ledger.usage``), active users per team, the effective-dated
settings (``chargeback.settings``) and a rate lookup in; integer nano-dollar lines out. Each
usage line is charged under the settings and rates in force on its day, so a month that changes
a team's model applies each model to the calls dated under it. A line may be one day or a
range of days in which neither can change (invoices pass range lines, ``chargeback.ranges``). What a month decides as a whole (the
volume tier, fixed fees and seats, prorated by days across a change, shared costs) is computed
once per team and period.

Every amount is whole nano-dollars: percentages are applied in ``Decimal`` and rounded once with
``money.round_nanos``; splits use ``chargeback.allocate`` so the parts add up to the whole. The
fine-grained ``Charge`` items (line x token class) are what the invoice lines are summed from,
so a FOCUS export built from them (spread over days by ``chargeback.daily``) adds up to the
invoices exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from llmcost_collector.chargeback.allocate import allocate, integer_weights
from llmcost_collector.chargeback.settings import (
    COST_PLUS,
    ChargebackPlan,
    Segment,
    TeamSettings,
    Tier,
    month_days,
    tier_for,
)
from llmcost_collector.config.schema import SharedCost, UnattributedSpread
from llmcost_collector.ledger.usage import UsageLine
from llmcost_collector.model import TEAM_FROM_DEFAULT, UNATTRIBUTED_TEAM, UNPRICED
from llmcost_collector.money import format_usd, round_nanos, usd_to_nanos
from llmcost_collector.price.rates import Rate, Rates

# Disjoint token classes, as in the usage lines: input is uncached, output excludes reasoning.
TOKEN_CLASSES = ("input", "cache_read", "cache_write", "output", "reasoning")
NANOS_PER_USD_PER_MTOK = Decimal(1000)  # tokens x ($ / 1e6 tokens) x 1e9 nano-$ / $

# Line kinds, in the order an invoice shows them.
USAGE = "usage"
FAILED = "failed_requests"
UNPRICED_CALLS = "unpriced"
PLATFORM_FEE = "platform_fee"
FIXED_FEE = "fixed_platform_fee"
OUTCOME = "outcome"
SEATS = "seats"
SHARED = "shared_cost"
UNATTRIBUTED_SHARE = "unattributed_share"
UNATTRIBUTED_SPREAD = "unattributed_spread"
PROMPT_CACHE_CREDIT = "prompt_cache_savings"
RESPONSE_CACHE_CREDIT = "response_cache_savings"
TRUE_UP = "true_up"  # a share of bill - ledger (``llmcost reconcile --true-up``), at cost
COMMITMENT = "commitment"  # a share of a flat monthly fee, amortized (``--commitment``), at cost
ADJUSTMENT = "adjustment"
LINE_ORDER = (
    USAGE,
    FAILED,
    UNPRICED_CALLS,
    PLATFORM_FEE,
    FIXED_FEE,
    OUTCOME,
    SEATS,
    SHARED,
    UNATTRIBUTED_SHARE,
    UNATTRIBUTED_SPREAD,
    TRUE_UP,
    COMMITMENT,
    ADJUSTMENT,
    PROMPT_CACHE_CREDIT,
    RESPONSE_CACHE_CREDIT,
)

# (list rates, contracted rates) of a model on a UTC day; (None, None) when it has no price.
RateLookup = Callable[[str, str, date], tuple["Rates | None", "Rates | None"]]


@dataclass(frozen=True, slots=True)
class Charge:
    """One token class of one usage line, charged: the grain of the FOCUS export."""

    day: date
    team: str
    provider: str
    model: str
    feature: str
    environment: str
    user_tier: str
    service_name: str
    status: str
    token_class: str
    tokens: int
    list_nanos: int
    contracted_nanos: int
    markup_percent: Decimal
    billed_nanos: int  # contracted + markup; 0 under value-based (tokens not billed)


@dataclass
class InvoiceLine:
    """One line of a team's invoice. ``amount_nanos`` counts towards the total unless the line is
    ``informational`` (credits are shown, never hidden, and never change what is billed)."""

    kind: str
    description: str
    amount_nanos: int
    informational: bool = False
    quantity: int = 0
    unit: str = ""
    provider: str = ""
    model: str = ""
    feature: str = ""
    requests: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    list_nanos: int = 0
    contracted_nanos: int = 0
    markup_percent: Decimal | None = None
    markup_nanos: int = 0
    start: date | None = None
    end: date | None = None  # exclusive
    reference: str = ""  # adjustments: the original invoice number
    reason: str = ""
    allocated_resource: str = ""  # shared costs and spread unattributed spend: what was split
    allocation_method: str = ""  # and how (even, proportional, weights)


@dataclass
class TeamCharges:
    team: str
    segments: list[Segment]
    volume_tokens: int = 0
    tier: Tier | None = None
    lines: list[InvoiceLine] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    requests: int = 0
    unpriced: int = 0
    contracted_nanos: int = 0  # provider cost of the team's calls (all statuses)
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_CLASSES, 0))

    @property
    def total_nanos(self) -> int:
        return sum(line.amount_nanos for line in self.lines if not line.informational)

    def sort_lines(self) -> None:
        order = {kind: index for index, kind in enumerate(LINE_ORDER)}
        self.lines.sort(
            key=lambda line: (
                order[line.kind],
                line.start or date.min,
                -line.amount_nanos,
                line.provider,
                line.model,
                line.feature,
                line.description,
            )
        )


@dataclass
class PeriodCharges:
    start: date
    end: date
    teams: dict[str, TeamCharges]
    covered_nanos: int  # contracted cost whose team came from the span or a rule
    total_contracted_nanos: int

    @property
    def coverage(self) -> Decimal | None:
        """Attribution coverage: share of the provider cost with a team from the span or a rule."""
        if not self.total_contracted_nanos:
            return None
        return Decimal(self.covered_nanos) / Decimal(self.total_contracted_nanos)


def _per_million(rate: Rate | None) -> Decimal | None:
    if rate is None or isinstance(rate, Decimal):
        return rate
    return rate.base  # long-context tiers: the base rate weighs the split (totals stay exact)


def class_rates(rates: Rates | None) -> dict[str, Decimal] | None:
    """USD per million tokens of each token class, with the fallbacks ``Rates.cost_nanos`` uses."""
    if rates is None:
        return None
    input_rate = _per_million(rates.input) or Decimal(0)
    output_rate = _per_million(rates.output) or Decimal(0)
    read = _per_million(rates.cache_read)
    write = _per_million(rates.cache_write)
    return {
        "input": input_rate,
        "cache_read": input_rate if read is None else read,
        "cache_write": input_rate if write is None else write,
        "output": output_rate,
        "reasoning": output_rate,
    }


@dataclass(frozen=True, slots=True)
class ClassRates:
    """A model's rates on a day per token class: contracted USD per million (prompt-cache
    savings), and both layers as integer weights for splitting a line's cost over its classes."""

    contracted: dict[str, Decimal] | None
    contracted_weights: dict[str, int] | None
    list_weights: dict[str, int] | None

    @classmethod
    def of(cls, listed: Rates | None, contracted: Rates | None) -> ClassRates:
        per_class = class_rates(contracted)
        weights = None if per_class is None else integer_weights(per_class)
        listed_per_class = class_rates(listed)
        list_weights = weights if listed_per_class is None else integer_weights(listed_per_class)
        return cls(per_class, weights, list_weights)


def line_tokens(line: UsageLine) -> dict[str, int]:
    return {
        "input": line.input_tokens,
        "cache_read": line.cache_read_tokens,
        "cache_write": line.cache_write_tokens,
        "output": line.output_tokens,
        "reasoning": line.reasoning_tokens,
    }


def split_by_class(
    total: int, tokens: Mapping[str, int], per_token: Mapping[str, int] | None
) -> dict[str, int]:
    """A usage line's cost over its token classes, exactly: weighted by tokens x rate
    (``per_token``: the class rates as integers of one scale, see ``integer_weights``); by
    tokens when no rate is known; all to input when there are no tokens (a response-cache hit)."""
    weights = {name: tokens[name] * (per_token[name] if per_token else 1) for name in TOKEN_CLASSES}
    if not any(weights.values()):
        weights = {name: tokens[name] for name in TOKEN_CLASSES}
    if not any(weights.values()):
        weights = {name: 1 if name == "input" else 0 for name in TOKEN_CLASSES}
    return allocate(total, weights)


def _markup(settings: TeamSettings, tier: Tier | None) -> Decimal:
    if settings.tiered and tier is not None:
        return tier.markup_percent
    if settings.model == COST_PLUS:
        return settings.markup_percent
    return Decimal(0)


def _prorate(monthly_usd: Decimal, segment: Segment, days_in_month: int) -> int:
    """A monthly amount for the days of ``segment`` (the whole amount for a whole month)."""
    return round_nanos(Decimal(usd_to_nanos(monthly_usd)) * segment.days / days_in_month)


def _describe_segment(segment: Segment, period_start: date, period_end: date) -> str:
    if segment.start == period_start and segment.end == period_end:
        return ""
    return f" ({segment.start.isoformat()} to {segment.end.isoformat()}, {segment.settings.model})"


def compute(
    start: date,
    end: date,
    lines: Sequence[UsageLine],
    active_users: Mapping[str, int],
    plan: ChargebackPlan,
    rates: RateLookup,
    teams: Iterable[str] = (),
) -> PeriodCharges:
    """Charge the period ``[start, end)`` (a calendar month): every team with usage, plus
    ``teams`` (declared teams, billed their fixed fees, seats and shared costs without usage)."""
    days_in_month = month_days(start)
    by_team: dict[str, list[UsageLine]] = defaultdict(list)
    for line in lines:
        by_team[line.team].append(line)
    names = list(dict.fromkeys([*teams, *sorted(by_team)]))
    result = PeriodCharges(start, end, {}, 0, 0)
    rate_cache: dict[tuple[str, str, date], ClassRates] = {}

    def rates_of(provider: str, model: str, day: date) -> ClassRates:
        key = (provider, model, day)
        if key not in rate_cache:
            listed, contracted = rates(provider, model, day)
            rate_cache[key] = ClassRates.of(listed, contracted)
        return rate_cache[key]

    for team in names:
        charges = TeamCharges(team, plan.segments(team, start, end))
        result.teams[team] = charges
        team_lines = by_team.get(team, [])
        for line in team_lines:
            if line.requests:
                charges.volume_tokens += line.total_input_tokens + line.total_output_tokens
        tier_settings = [seg.settings for seg in charges.segments if seg.settings.tiered]
        if tier_settings:
            charges.tier = tier_for(tier_settings[-1].tiers, charges.volume_tokens)
        _charge_usage(charges, team_lines, plan, rates_of, result, start, end)
        _charge_month(charges, team_lines, active_users, start, end, days_in_month)
    _spread_shared(result, plan.config.chargeback.shared_costs)
    _spread_unattributed(result, plan.config.chargeback.unattributed)
    for charges in result.teams.values():
        charges.sort_lines()
    return result


def _charge_usage(
    charges: TeamCharges,
    team_lines: Sequence[UsageLine],
    plan: ChargebackPlan,
    rates_of: Callable[[str, str, date], ClassRates],
    result: PeriodCharges,
    start: date,
    end: date,
) -> None:
    grouped: dict[tuple[object, ...], InvoiceLine] = {}
    prompt_savings: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    prompt_tokens: dict[tuple[str, str], int] = defaultdict(int)
    response_savings = response_hits = 0
    fee_base: dict[date, int] = defaultdict(int)  # contracted token cost billed, per segment start
    segment_of = {seg.start: seg for seg in charges.segments}
    for line in team_lines:
        if not line.requests:
            continue
        settings = plan.on(charges.team, line.day)
        segment = next(seg for seg in charges.segments if seg.start <= line.day < seg.end)
        charges.requests += line.requests
        charges.unpriced += line.unpriced
        charges.contracted_nanos += line.contracted_nanos
        tokens = line_tokens(line)
        for name, count in tokens.items():
            charges.tokens[name] += count
        result.total_contracted_nanos += line.contracted_nanos
        if line.team_source != TEAM_FROM_DEFAULT:
            result.covered_nanos += line.contracted_nanos
        response_savings += line.savings_nanos
        response_hits += line.cache_hits
        line_rates = rates_of(line.provider, line.model, line.day)
        contracted_rates = line_rates.contracted
        if contracted_rates is not None and line.cache_read_tokens:
            saved = contracted_rates["input"] - contracted_rates["cache_read"]
            prompt_savings[(line.provider, line.model)] += (
                line.cache_read_tokens * saved * NANOS_PER_USD_PER_MTOK
            )
            prompt_tokens[(line.provider, line.model)] += line.cache_read_tokens
        if line.price_status == UNPRICED:
            key: tuple[object, ...] = (UNPRICED_CALLS, segment.start, line.provider, line.model, "")
            item = grouped.get(key)
            if item is None:
                item = grouped[key] = InvoiceLine(
                    UNPRICED_CALLS,
                    f"unpriced calls to {line.model}: not billed until re-priced",
                    0,
                    unit="calls",
                    provider=line.provider,
                    model=line.model,
                    start=segment.start,
                    end=segment.end,
                )
            item.quantity += line.requests
            item.requests += line.requests
            for name, count in tokens.items():
                item.tokens[name] = item.tokens.get(name, 0) + count
            continue
        markup = _markup(settings, charges.tier)
        contracted_split = split_by_class(line.contracted_nanos, tokens, line_rates.contracted_weights)
        list_split = split_by_class(line.list_nanos, tokens, line_rates.list_weights)
        failed = line.status == "error"
        kind = FAILED if failed else USAGE
        # Failed requests: one line per settings segment; the rest by model and feature.
        key = (
            (kind, segment.start)
            if failed
            else (kind, segment.start, line.provider, line.model, line.feature)
        )
        item = grouped.get(key)
        if item is None:
            suffix = _describe_segment(segment, start, end)
            description = (
                f"failed requests{suffix}"
                if failed
                else f"{line.model} / {line.feature or '(no feature)'}{suffix}"
            )
            item = grouped[key] = InvoiceLine(
                kind,
                description,
                0,
                unit="requests",
                markup_percent=markup,
                start=segment.start,
                end=segment.end,
                provider="" if failed else line.provider,
                model="" if failed else line.model,
                feature="" if failed else line.feature,
            )
        item.requests += line.requests
        item.quantity += line.errors if failed else line.requests
        item.list_nanos += line.list_nanos
        item.contracted_nanos += line.contracted_nanos
        for name in TOKEN_CLASSES:
            item.tokens[name] = item.tokens.get(name, 0) + tokens[name]
            contracted = contracted_split[name]
            if not tokens[name] and not contracted and not list_split[name]:
                continue
            markup_nanos = round_nanos(contracted * markup / 100)
            billed = contracted + markup_nanos if settings.bills_tokens else 0
            if settings.bills_tokens:
                item.markup_nanos += markup_nanos
                item.amount_nanos += billed
            charges.charges.append(
                Charge(
                    line.day,
                    charges.team,
                    line.provider,
                    line.model,
                    line.feature,
                    line.environment,
                    line.user_tier,
                    line.service_name,
                    line.status,
                    name,
                    tokens[name],
                    list_split[name],
                    contracted,
                    markup,
                    billed,
                )
            )
        if settings.bills_tokens:
            fee_base[segment.start] += line.contracted_nanos
        elif not item.informational:
            item.informational = True  # value-based: the token cost is shown, not billed
            item.description += " (value-based: tokens not billed)"
    charges.lines.extend(grouped.values())
    for seg_start, base in sorted(fee_base.items()):
        segment = segment_of[seg_start]
        percent = segment.settings.platform_fee_percent
        if percent and segment.settings.model != "at_cost":
            charges.lines.append(
                InvoiceLine(
                    PLATFORM_FEE,
                    f"platform fee {percent}% of ${format_usd(base)} token cost{_describe_segment(segment, start, end)}",
                    round_nanos(base * percent / 100),
                    contracted_nanos=base,
                    markup_percent=percent,
                    start=segment.start,
                    end=segment.end,
                )
            )
    for (provider, model), saved in sorted(prompt_savings.items()):
        amount = round_nanos(saved)
        if amount:
            charges.lines.append(
                InvoiceLine(
                    PROMPT_CACHE_CREDIT,
                    f"prompt-cache savings on {model} (cache reads at the cache rate)",
                    -amount,
                    informational=True,
                    quantity=prompt_tokens[(provider, model)],
                    unit="tokens",
                    provider=provider,
                    model=model,
                )
            )
    if response_savings or response_hits:
        charges.lines.append(
            InvoiceLine(
                RESPONSE_CACHE_CREDIT,
                "response-cache savings (answers served from a cache)",
                -response_savings,
                informational=True,
                quantity=response_hits,
                unit="cache hits",
            )
        )


def _charge_month(
    charges: TeamCharges,
    team_lines: Sequence[UsageLine],
    active_users: Mapping[str, int],
    start: date,
    end: date,
    days_in_month: int,
) -> None:
    outcome_counts: dict[tuple[date, str], int] = defaultdict(int)
    for line in team_lines:
        if line.outcome and line.outcome_count:
            segment = next(seg for seg in charges.segments if seg.start <= line.day < seg.end)
            outcome_counts[(segment.start, line.outcome)] += line.outcome_count
    segment_of = {seg.start: seg for seg in charges.segments}
    for (seg_start, outcome), count in sorted(outcome_counts.items()):
        segment = segment_of[seg_start]
        price = segment.settings.outcomes.get(outcome)
        suffix = _describe_segment(segment, start, end)
        if price is None:
            charges.lines.append(
                InvoiceLine(
                    OUTCOME,
                    f"{outcome}: no outcome price configured{suffix}",
                    0,
                    informational=True,
                    quantity=count,
                    unit="outcomes",
                    start=segment.start,
                    end=segment.end,
                )
            )
            continue
        charges.lines.append(
            InvoiceLine(
                OUTCOME,
                f"{outcome} at ${price} each{suffix}",
                usd_to_nanos(price) * count,
                quantity=count,
                unit="outcomes",
                start=segment.start,
                end=segment.end,
            )
        )
    for segment in charges.segments:
        settings = segment.settings
        suffix = _describe_segment(segment, start, end)
        if settings.platform_fee_monthly_usd:
            charges.lines.append(
                InvoiceLine(
                    FIXED_FEE,
                    f"fixed platform fee ${settings.platform_fee_monthly_usd}/month{suffix}",
                    _prorate(settings.platform_fee_monthly_usd, segment, days_in_month),
                    quantity=segment.days,
                    unit="days",
                    start=segment.start,
                    end=segment.end,
                )
            )
        if settings.seat_monthly_usd:
            seats = settings.seats if settings.seats is not None else active_users.get(charges.team, 0)
            source = "configured seats" if settings.seats is not None else "active users"
            amount = round_nanos(
                Decimal(usd_to_nanos(settings.seat_monthly_usd)) * seats * segment.days / days_in_month
            )
            charges.lines.append(
                InvoiceLine(
                    SEATS,
                    f"{seats} seats ({source}) at ${settings.seat_monthly_usd}/month{suffix}",
                    amount,
                    quantity=seats,
                    unit="seats",
                    start=segment.start,
                    end=segment.end,
                )
            )


def _participants(result: PeriodCharges, teams: Sequence[str], weights: Mapping[str, Decimal]) -> list[str]:
    if weights:
        return [team for team in weights if team != UNATTRIBUTED_TEAM]
    chosen = teams or [team for team in result.teams if team != UNATTRIBUTED_TEAM]
    return [team for team in chosen if team != UNATTRIBUTED_TEAM]


def _weights(
    result: PeriodCharges, method: str, teams: list[str], weights: Mapping[str, Decimal]
) -> dict[str, Decimal | int]:
    if method == "weights":
        return {team: weights[team] for team in teams}
    if method == "proportional":
        cost = {team: result.teams[team].contracted_nanos if team in result.teams else 0 for team in teams}
        if any(cost.values()):
            return dict(cost)
    return dict.fromkeys(teams, 1)  # even, or proportional with no cost at all


def _team(result: PeriodCharges, team: str) -> TeamCharges:
    if team not in result.teams:
        result.teams[team] = TeamCharges(team, [])
    return result.teams[team]


def _spread_shared(result: PeriodCharges, shared_costs: Sequence[SharedCost]) -> None:
    """Fixed monthly costs passed through at cost (no markup), split by the cost's method."""
    for shared in shared_costs:
        teams = _participants(result, shared.teams, shared.weights)
        if not teams:
            continue
        parts = allocate(
            usd_to_nanos(shared.monthly_usd), _weights(result, shared.method, teams, shared.weights)
        )
        for team, amount in parts.items():
            _team(result, team).lines.append(
                InvoiceLine(
                    SHARED,
                    f"shared cost {shared.name} (${shared.monthly_usd}/month, {shared.method})",
                    amount,
                    start=result.start,
                    end=result.end,
                    allocated_resource=shared.name,
                    allocation_method=shared.method,
                )
            )


def _spread_unattributed(result: PeriodCharges, spread: UnattributedSpread) -> None:
    """Spend no team claims is always its own invoice; when configured it is spread at cost."""
    nobody = result.teams.get(UNATTRIBUTED_TEAM)
    if not spread.spread or nobody is None:
        return
    amount = nobody.total_nanos
    teams = _participants(result, spread.teams, spread.weights)
    if not amount or not teams:
        return
    nobody.lines.append(
        InvoiceLine(
            UNATTRIBUTED_SPREAD,
            f"spread over {len(teams)} teams ({spread.method})",
            -amount,
            start=result.start,
            end=result.end,
            allocated_resource=UNATTRIBUTED_TEAM,
            allocation_method=spread.method,
        )
    )
    for team, part in allocate(amount, _weights(result, spread.method, teams, spread.weights)).items():
        _team(result, team).lines.append(
            InvoiceLine(
                UNATTRIBUTED_SHARE,
                f"share of unattributed spend ({spread.method})",
                part,
                start=result.start,
                end=result.end,
                allocated_resource=UNATTRIBUTED_TEAM,
                allocation_method=spread.method,
            )
        )
