"""Chargeback: per call (``chargeback.per_call``: the rates each team is charged and the amounts,
in whole nano-dollars rounded half to even, with unpriced calls staying unpriced), per month
(``chargeback.engine``: invoices computed by hand for every model, tier, fee and split), on range
lines (``chargeback.ranges``: the month cut where settings or rates change) and back per day
(``chargeback.daily``: the FOCUS grain)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmcost_collector.chargeback.allocate import allocate
from llmcost_collector.chargeback.daily import spread
from llmcost_collector.chargeback.engine import (
    TOKEN_CLASSES,
    PeriodCharges,
    TeamCharges,
    compute,
    line_tokens,
)
from llmcost_collector.chargeback.per_call import make_chargeback
from llmcost_collector.chargeback.ranges import RangeCuts, merge
from llmcost_collector.chargeback.settings import ChargebackPlan, per_call_rates
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.ledger.usage import UsageLine
from llmcost_collector.model import Attribution, LlmCall, Usage
from llmcost_collector.price.rates import Rates

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llmcost.yaml"


def call_for(team: str) -> LlmCall:
    return LlmCall("a" * 32, "b" * 16, 1, 2, "openai", "chat", "gpt-4o", "", Usage(), Attribution(team=team))


def test_chargeback_rates_with_per_team_override() -> None:
    """A team's own chargeback settings override the default field by field; the rest is inherited."""
    config = load_config(EXAMPLE)  # default cost_plus 15 % + 5 %; support overrides markup to 10 %
    assert per_call_rates(config, "marketing") == ("cost_plus", Decimal(15), Decimal(5))
    assert per_call_rates(config, "support") == ("cost_plus", Decimal(10), Decimal(5))  # fee inherited
    assert per_call_rates(config, "no-such-team") == ("cost_plus", Decimal(15), Decimal(5))
    at_cost_team = load_config(
        "c.yaml",
        text="teams:\n  - {name: research, chargeback: {model: at_cost}}\n  - {name: web}\n"
        "chargeback: {model: cost_plus, markup_percent: 20}\n",
    )
    assert per_call_rates(at_cost_team, "research") == ("at_cost", Decimal(20), Decimal(0))
    assert per_call_rates(at_cost_team, "web") == ("cost_plus", Decimal(20), Decimal(0))


def test_make_chargeback_amounts() -> None:
    """Cost-plus adds markup and fee, at-cost passes through, per team; rounding is exact."""
    charge = make_chargeback(load_config(EXAMPLE))
    # cost_plus 15 % markup + 5 % fee: 1_000_000 * (1 + 0.15 + 0.05) = 1_200_000
    assert charge(call_for("marketing"), 1_000_000) == 1_200_000
    # support: 10 % + 5 %: 1_000_000 * 1.15 = 1_150_000
    assert charge(call_for("support"), 1_000_000) == 1_150_000
    assert charge(call_for("marketing"), None) is None  # unpriced stays unpriced, never 0
    assert charge(call_for("marketing"), 0) == 0
    per_team = make_chargeback(
        load_config(
            "x.yaml",
            text="chargeback: {model: cost_plus, markup_percent: 15, platform_fee_percent: 5}\n"
            "teams: [{name: lab, chargeback: {model: at_cost}}, {name: ops, chargeback: {markup_percent: 30}}]\n",
        )
    )
    assert per_team(call_for("lab"), 1_000_000) == 1_000_000  # a team at cost
    assert per_team(call_for("ops"), 1_000_000) == 1_350_000  # 30% + 5%
    assert per_team(call_for("search"), 3) == 4  # 3.6 nano-dollars rounds to 4
    at_cost = make_chargeback(Config.default())
    assert at_cost(call_for("anyone"), 1_000_000) == 1_000_000  # passthrough
    assert at_cost(call_for("anyone"), None) is None
    # rounding to whole nano-dollars, half to even: markup 10 % -> x1.1
    ten = make_chargeback(load_config("c.yaml", text="chargeback: {model: cost_plus, markup_percent: 10}\n"))
    assert ten(call_for("t"), 5) == 6  # 5.5 -> 6 (even)
    assert ten(call_for("t"), 15) == 16  # 16.5 -> 16 (even)
    assert ten(call_for("t"), 3) == 3  # 3.3 -> 3
    # exact decimal percentages: 0.1 % of 10**12 is exactly 10**9
    tiny = make_chargeback(
        load_config("c.yaml", text="chargeback: {model: cost_plus, markup_percent: 0.1}\n")
    )
    assert tiny(call_for("t"), 10**12) == 10**12 + 10**9


# --- the monthly engine (chargeback.engine): hand-computed invoices ---------------------------

JAN = date(2025, 1, 1)
FEB = date(2025, 2, 1)
USD = 10**9  # nano-dollars per dollar
# The test model's rates, USD per million tokens: input 2, cache read 0.50, output 8.
RATES = Rates(
    input=Decimal(2), output=Decimal(8), cache_read=Decimal("0.5"), source="price-book", price_id="house"
)


def rates(provider: str, model: str, day: date) -> tuple[Rates | None, Rates | None]:
    return (RATES, RATES) if model == "house" else (None, None)


def usage(
    team: str = "search",
    *,
    day: date = JAN,
    contracted: int = 100 * USD,
    requests: int = 1,
    input_tokens: int = 1_000,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    status: str = "ok",
    feature: str = "chat",
    model: str = "house",
    outcome: str = "",
    outcome_count: int = 0,
    team_source: str = "span",
    price_status: str = "priced",
    savings: int = 0,
    cache_hits: int = 0,
) -> UsageLine:
    """One day's usage line; list cost is contracted + 10 % so the two layers differ."""
    return UsageLine(
        day, team, team_source, feature, "", "production", "svc", "openai", model, "", status, price_status,
        outcome, "USD", requests, requests if status == "error" else 0, requests if price_status == "unpriced" else 0,
        outcome_count, cache_hits, 0, input_tokens, cache_read_tokens, 0, 0, output_tokens, 0, 0, 0,
        contracted * 11 // 10, contracted, contracted, savings,
    )  # fmt: skip


def charge(
    text: str, lines: list[UsageLine], users: dict[str, int] | None = None, teams: tuple[str, ...] = ()
) -> PeriodCharges:
    plan = ChargebackPlan(load_config("c.yaml", text=text))
    return compute(JAN, FEB, lines, users or {}, plan, rates, teams)


def amounts(team: TeamCharges) -> dict[str, int]:
    """Billed amount per line kind (informational lines apart, under their kind too)."""
    out: dict[str, int] = {}
    for line in team.lines:
        out[line.kind] = out.get(line.kind, 0) + line.amount_nanos
    return out


def test_at_cost_bills_the_contracted_cost() -> None:
    search = charge("chargeback: {model: at_cost}\n", [usage(), usage(day=date(2025, 1, 9))]).teams["search"]
    # $100 + $100, no markup, one line for the model and feature
    assert [(line.kind, line.requests, line.amount_nanos) for line in search.lines] == [
        ("usage", 2, 200 * USD)
    ]
    assert search.total_nanos == 200 * USD
    assert search.lines[0].list_nanos == 220 * USD  # the list layer is shown next to it


def test_cost_plus_fee_percent_is_on_the_token_cost_not_the_marked_up_amount() -> None:
    # The seed's code: markup 20 %, platform fee 15 % of the token cost.
    text = "chargeback: {model: cost_plus, markup_percent: 20, platform_fee_percent: 15}\n"
    search = charge(text, [usage()]).teams["search"]
    # $100 x 1.20 = $120, fee 15 % x $100 = $15 (not 15 % of $120 = $18): $135
    assert amounts(search) == {"usage": 120 * USD, "platform_fee": 15 * USD}
    assert search.total_nanos == 135 * USD


def test_cost_plus_fixed_monthly_fee_is_the_seeds_formula() -> None:
    # Team Charge = Token Cost x (1 + Markup) + Fixed Platform Fee = $100 x 1.10 + $250 = $360
    text = "chargeback: {model: cost_plus, markup_percent: 10, platform_fee_monthly_usd: 250}\n"
    search = charge(text, [usage()]).teams["search"]
    assert amounts(search) == {"usage": 110 * USD, "fixed_platform_fee": 250 * USD}
    assert search.total_nanos == 360 * USD


@pytest.mark.parametrize(
    ("tokens", "tier", "markup"),
    [
        (9_999_999, "Experimental", 50),
        (10_000_000, "Standard", 20),  # "10M-100M": exactly 10M is Standard
        (100_000_000, "Standard", 20),  # and so is exactly 100M
        (100_000_001, "Enterprise", 10),  # "Greater than 100M"
    ],
)
def test_tiered_uses_the_seed_tiers_on_the_whole_month_volume(tokens: int, tier: str, markup: int) -> None:
    # The volume is the month's input (cached included) plus output: split over two days here.
    lines = [
        usage(input_tokens=tokens // 2 - 1_000, cache_read_tokens=1_000, contracted=10 * USD),
        usage(day=date(2025, 1, 20), input_tokens=0, output_tokens=tokens - tokens // 2, contracted=10 * USD),
    ]
    search = charge("chargeback: {model: tiered}\n", lines).teams["search"]
    assert search.volume_tokens == tokens
    assert search.tier is not None and (search.tier.name, search.tier.markup_percent) == (tier, markup)
    # $20 of token cost, marked up by the tier's percentage
    assert search.total_nanos == 20 * USD * (100 + markup) // 100


def test_value_based_bills_outcomes_and_seats_instead_of_tokens() -> None:
    text = (
        "chargeback:\n  model: value_based\n  outcomes: {ticket_resolved: 0.50, article_draft: 0.10}\n"
        "  seat_monthly_usd: 2.00\n"
    )
    lines = [
        usage(),  # $100 of tokens: shown, not billed
        usage(requests=0, contracted=0, input_tokens=0, outcome="ticket_resolved", outcome_count=3),
        usage(requests=0, contracted=0, input_tokens=0, outcome="article_draft", outcome_count=2),
    ]
    search = charge(text, lines, users={"search": 4}).teams["search"]
    # 3 x $0.50 + 2 x $0.10 + 4 seats (active users) x $2.00 = $1.50 + $0.20 + $8.00 = $9.70
    assert amounts(search) == {"usage": 0, "outcome": 1_700_000_000, "seats": 8 * USD}
    assert search.total_nanos == 9_700_000_000
    tokens = next(line for line in search.lines if line.kind == "usage")
    assert tokens.informational and tokens.contracted_nanos == 100 * USD


def test_outcome_and_configured_seat_prices_come_on_top_of_a_token_model() -> None:
    text = (
        "teams: [{name: search, seats: 5}]\n"
        "chargeback: {model: cost_plus, markup_percent: 10, outcomes: {ticket_resolved: 0.5}, "
        "seat_monthly_usd: 2, seats: configured}\n"
    )
    lines = [
        usage(),
        usage(requests=0, contracted=0, input_tokens=0, outcome="ticket_resolved", outcome_count=4),
    ]
    search = charge(text, lines, users={"search": 40}).teams["search"]
    # $110 of tokens + 4 x $0.50 + 5 configured seats (not the 40 active users) x $2 = $122
    assert amounts(search) == {"usage": 110 * USD, "outcome": 2 * USD, "seats": 10 * USD}


def test_an_outcome_without_a_price_is_shown_not_billed() -> None:
    line = usage(requests=0, contracted=0, input_tokens=0, outcome="lead_won", outcome_count=7)
    (shown,) = charge("chargeback: {model: at_cost}\n", [line]).teams["search"].lines
    assert (shown.kind, shown.quantity, shown.amount_nanos, shown.informational) == ("outcome", 7, 0, True)


def test_failed_requests_are_billed_on_their_own_line_with_their_count() -> None:
    text = "chargeback: {model: cost_plus, markup_percent: 10}\n"
    lines = [usage(), usage(status="error", requests=3, contracted=6 * USD, feature="other")]
    search = charge(text, lines).teams["search"]
    failed = next(line for line in search.lines if line.kind == "failed_requests")
    # billed like any other: $6 x 1.10
    assert (failed.quantity, failed.amount_nanos, failed.description) == (3, 6_600_000_000, "failed requests")
    assert search.total_nanos == 110 * USD + 6_600_000_000


def test_unpriced_calls_are_shown_with_their_count_never_as_zero_cost() -> None:
    lines = [usage(), usage(model="mystery", price_status="unpriced", requests=2, contracted=0)]
    search = charge("chargeback: {model: at_cost}\n", lines).teams["search"]
    unpriced = next(line for line in search.lines if line.kind == "unpriced")
    assert (unpriced.quantity, unpriced.model, search.unpriced) == (2, "mystery", 2)
    assert "not billed until re-priced" in unpriced.description


def test_a_mid_month_change_applies_each_setting_to_the_calls_dated_under_it() -> None:
    text = (
        "teams:\n  - name: search\n    chargeback: {model: at_cost}\n    chargeback_changes:\n"
        "      - {effective_from: 2025-01-16, model: cost_plus, markup_percent: 10, platform_fee_monthly_usd: 310}\n"
    )
    lines = [usage(day=date(2025, 1, 15)), usage(day=date(2025, 1, 16))]
    search = charge(text, lines).teams["search"]
    assert [(seg.start.day, seg.end, seg.settings.model) for seg in search.segments] == [
        (1, date(2025, 1, 16), "at_cost"),
        (16, FEB, "cost_plus"),
    ]
    by_segment = {(line.kind, line.start): line.amount_nanos for line in search.lines}
    assert by_segment[("usage", JAN)] == 100 * USD  # the 15th: at cost
    assert by_segment[("usage", date(2025, 1, 16))] == 110 * USD  # the 16th: cost-plus 10 %
    # the fixed fee only for the 16 days under cost-plus: $310 x 16 / 31 = $160
    assert by_segment[("fixed_platform_fee", date(2025, 1, 16))] == 160 * USD


def shared(method: str, extra: str = "") -> dict[str, int]:
    text = (
        "teams: [{name: a}, {name: b}, {name: c}]\n"
        f"chargeback:\n  shared_costs:\n    - {{name: gateway, monthly_usd: 100, method: {method}{extra}}}\n"
    )
    lines = [usage("a", contracted=10 * USD), usage("b", contracted=30 * USD)]  # c has no usage
    result = charge(text, lines, teams=("a", "b", "c"))
    return {name: amounts(team).get("shared_cost", 0) for name, team in result.teams.items()}


def test_shared_costs_even_split_exactly() -> None:
    # $100 / 3: 33.333333334 + 33.333333333 + 33.333333333 (the odd nano-dollar to the first)
    assert shared("even") == {"a": 33_333_333_334, "b": 33_333_333_333, "c": 33_333_333_333}


def test_shared_costs_by_share_of_provider_cost() -> None:
    # a $10, b $30 of provider cost: 25 % and 75 %; c spent nothing
    assert shared("proportional") == {"a": 25 * USD, "b": 75 * USD, "c": 0}


def test_shared_costs_by_fixed_weights() -> None:
    # weights 1 : 1 : 3 -> $20, $20, $60
    assert shared("weights", ", weights: {a: 1, b: 1, c: 3}") == {"a": 20 * USD, "b": 20 * USD, "c": 60 * USD}


def test_shared_costs_are_passed_through_without_markup() -> None:
    text = (
        "chargeback:\n  model: cost_plus\n  markup_percent: 50\n"
        "  shared_costs: [{name: support, monthly_usd: 40, method: even}]\n"
    )
    search = charge(text, [usage()]).teams["search"]
    assert amounts(search) == {"usage": 150 * USD, "shared_cost": 40 * USD}


def test_unattributed_spend_is_its_own_invoice_and_spread_when_configured() -> None:
    lines = [usage("a", contracted=30 * USD), usage("b", contracted=10 * USD),
             usage("unattributed", contracted=8 * USD, team_source="default")]  # fmt: skip
    kept = charge("chargeback: {model: cost_plus, markup_percent: 10}\n", lines)
    assert kept.teams["unattributed"].total_nanos == 8 * USD  # at cost, shown, not spread
    spread = charge(
        "chargeback: {model: cost_plus, markup_percent: 10, unattributed: {spread: true}}\n", lines
    )
    assert amounts(spread.teams["unattributed"]) == {"usage": 8 * USD, "unattributed_spread": -8 * USD}
    # proportional to provider cost: a 30/40, b 10/40 of $8
    assert amounts(spread.teams["a"])["unattributed_share"] == 6 * USD
    assert amounts(spread.teams["b"])["unattributed_share"] == 2 * USD
    # coverage: $40 of $48 has a team from the span or a rule
    assert spread.coverage == Decimal(40) / Decimal(48)


def test_cache_savings_are_informational_credits() -> None:
    line = usage(cache_read_tokens=2_000_000, savings=3 * USD, cache_hits=5)
    search = charge("chargeback: {model: at_cost}\n", [line]).teams["search"]
    credits = {item.kind: item for item in search.lines if item.informational}
    # 2M cache-read tokens at $2.00 instead of $0.50 per million: $3.00 saved
    assert credits["prompt_cache_savings"].amount_nanos == -3 * USD
    assert (credits["response_cache_savings"].amount_nanos, credits["response_cache_savings"].quantity) == (
        -3 * USD,
        5,
    )
    assert search.total_nanos == 100 * USD  # credits are shown, never deducted


def test_usage_charges_split_by_token_class_add_up_to_the_line() -> None:
    # 1,000 input at $2/M and 1,000 output at $8/M: weights 2 : 8 of $1.000000001
    line = usage(input_tokens=1_000, output_tokens=1_000, contracted=1_000_000_001)
    search = charge("chargeback: {model: cost_plus, markup_percent: 10}\n", [line]).teams["search"]
    by_class = {c.token_class: (c.tokens, c.contracted_nanos, c.billed_nanos) for c in search.charges}
    assert by_class == {
        "input": (1_000, 200_000_000, 220_000_000),
        "output": (1_000, 800_000_001, 880_000_001),
    }
    assert sum(c.billed_nanos for c in search.charges) == search.total_nanos


@given(
    total=st.integers(min_value=-(10**15), max_value=10**15),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8),
)
def test_allocate_never_creates_or_loses_money(total: int, weights: list[int]) -> None:
    parts = allocate(total, {f"t{i}": w for i, w in enumerate(weights)})
    assert sum(parts.values()) == total


def test_per_call_chargeback_follows_the_settings_of_the_calls_day() -> None:
    config = load_config(
        "c.yaml",
        text="teams:\n  - name: lab\n    chargeback_changes:\n"
        "      - {effective_from: 2026-01-02, model: cost_plus, markup_percent: 10}\n",
    )
    charge = make_chargeback(config)
    first_day = call_for("lab")  # starts 1 ns after the epoch: long before the change
    second = call_for("lab")
    second.start_time_ns = 1_767_312_000 * 10**9  # 2026-01-02T00:00:00Z
    assert (charge(first_day, 1_000), charge(second, 1_000)) == (1_000, 1_100)


# --- range lines and the days back ------------------------------------------------------------

CUT = date(2025, 1, 11)  # the test model's price cut: half the rates from the 11th on
CHEAPER = Rates(
    input=Decimal(1), output=Decimal(4), cache_read=Decimal("0.25"), source="price-book", price_id="house-cut"
)
CHANGES = (
    "teams:\n  - name: search\n    chargeback: {model: at_cost}\n    chargeback_changes:\n"
    "      - {effective_from: 2025-01-16, model: cost_plus, markup_percent: 10}\n"
)


def dated_rates(provider: str, model: str, day: date) -> tuple[Rates | None, Rates | None]:
    if model != "house":
        return (None, None)
    return (CHEAPER, CHEAPER) if day >= CUT else (RATES, RATES)


def on_ranges(text: str, daily: list[UsageLine]) -> tuple[PeriodCharges, RangeCuts]:
    """The month charged as invoices charge it: the daily lines summed into range lines."""
    plan = ChargebackPlan(load_config("c.yaml", text=text))
    models = {(line.provider, line.model) for line in daily}
    cuts = RangeCuts.of(JAN, FEB, plan, dated_rates, {line.team for line in daily}, models)
    return compute(JAN, FEB, merge(daily, cuts), {}, plan, dated_rates), cuts


def mid_month_days() -> list[UsageLine]:
    # per day 1M input, 1M cache read, 100k output: $2 + $0.50 + $0.80 = $3.30 before the cut,
    # $1 + $0.25 + $0.40 = $1.65 after it
    def day(n: int) -> UsageLine:
        cost = 3_300_000_000 if date(2025, 1, n) < CUT else 1_650_000_000
        return usage(day=date(2025, 1, n), input_tokens=1_000_000, cache_read_tokens=1_000_000,
                     output_tokens=100_000, contracted=cost)  # fmt: skip

    return [day(3), day(9), day(12), day(20), day(25)]


def test_a_settings_change_and_a_price_change_cut_the_month_into_ranges_charged_by_hand() -> None:
    search, cuts = on_ranges(CHANGES, mid_month_days())
    team = search.teams["search"]
    # cut at the price change (the 11th) for the model and the settings change (the 16th) for
    # the team: [1st, 11th) holds the 3rd and 9th, [11th, 16th) the 12th, [16th, Feb) the 20th and 25th
    assert (cuts.teams, cuts.models, cuts.days()) == (
        {"search": (date(2025, 1, 16),)},
        {("openai", "house"): (CUT,)},
        [CUT, date(2025, 1, 16)],
    )
    by_segment = {(line.kind, line.start): line for line in team.lines}
    # at cost to the 15th: $3.30 + $3.30 + $1.65; cost-plus 10 % after: ($1.65 + $1.65) x 1.10
    assert by_segment[("usage", JAN)].amount_nanos == 8_250_000_000
    assert by_segment[("usage", date(2025, 1, 16))].amount_nanos == 3_630_000_000
    assert team.total_nanos == 11_880_000_000
    # prompt-cache savings at each range's rates: 2M x ($2 - $0.50) + 1M x ($1 - $0.25)
    # + 2M x ($1 - $0.25) = $3.00 + $0.75 + $1.50 (at January 1st's rates alone it would be $7.50)
    assert by_segment[("prompt_cache_savings", None)].amount_nanos == -5_250_000_000
    # the last range split by class at the cheaper rates: input 2M x $1, cache read 2M x $0.25,
    # output 200k x $4, each plus 10 %
    last = {c.token_class: (c.day, c.tokens, c.contracted_nanos, c.billed_nanos)
            for c in team.charges if c.day == date(2025, 1, 16)}  # fmt: skip
    assert last == {
        "input": (date(2025, 1, 16), 2_000_000, 2_000_000_000, 2_200_000_000),
        "cache_read": (date(2025, 1, 16), 2_000_000, 500_000_000, 550_000_000),
        "output": (date(2025, 1, 16), 200_000, 800_000_000, 880_000_000),
    }
    # amounts that round nowhere come out as the daily lines charged one by one
    plan = ChargebackPlan(load_config("c.yaml", text=CHANGES))
    daily = compute(JAN, FEB, mid_month_days(), {}, plan, dated_rates).teams["search"]
    assert daily.total_nanos == team.total_nanos


def test_a_teams_settings_change_cuts_only_its_own_lines() -> None:
    # search changes on the 16th; ads (no change) on the same model keeps the month whole, except
    # at the model's own price change on the 11th
    days = [*mid_month_days(), usage("ads", day=date(2025, 1, 12)), usage("ads", day=date(2025, 1, 20))]
    plan = ChargebackPlan(load_config("c.yaml", text=CHANGES))
    cuts = RangeCuts.of(JAN, FEB, plan, dated_rates, {"search", "ads"}, {("openai", "house")})
    ads = [line for line in merge(days, cuts) if line.team == "ads"]
    assert [(line.day, line.requests) for line in ads] == [(CUT, 2)]  # one range: the 11th to February
    assert cuts.range_of("ads", "openai", "house", date(2025, 1, 20)) == (CUT, FEB)
    assert cuts.range_of("search", "openai", "house", date(2025, 1, 20)) == (date(2025, 1, 16), FEB)


def test_markup_is_rounded_once_per_range_not_once_per_day() -> None:
    text = "chargeback: {model: cost_plus, markup_percent: 10}\n"
    days = [usage(day=date(2025, 1, n), input_tokens=0, output_tokens=1, contracted=5) for n in (3, 4)]
    search, _ = on_ranges(text, days)
    # one range (no change in January): 10 % of 5 + 5 = 10 nano-dollars is 1, so 11 billed; rounded
    # per day it would have been 10 % of 5 = 0.5 -> 0 (half to even) twice, so 10
    assert search.teams["search"].total_nanos == 11


def test_range_charges_spread_over_their_days_by_tokens_and_add_up_exactly() -> None:
    days = mid_month_days()
    search, cuts = on_ranges(CHANGES, days)
    charges = search.teams["search"].charges
    daily = spread(charges, days, cuts)
    # every day's tokens of every class come back exactly
    assert {(c.day, c.token_class): c.tokens for c in daily} == {
        (line.day, name): count for line in days for name, count in line_tokens(line).items() if count
    }
    # the range [1st, 11th) splits evenly over the 3rd and the 9th: $4.00 of input each half
    first = {(c.day, c.token_class): c.contracted_nanos for c in daily if c.day < CUT}
    assert first[(date(2025, 1, 3), "input")] == first[(date(2025, 1, 9), "input")] == 2_000_000_000
    for name in ("tokens", "list_nanos", "contracted_nanos", "billed_nanos"):
        assert sum(getattr(c, name) for c in daily) == sum(getattr(c, name) for c in charges)


def test_a_days_share_follows_its_cost_when_the_class_has_no_tokens() -> None:
    # no tokens at all (a call billed per request): the range's $4.000000001 goes by each day's
    # contracted cost, $1 : $3, the odd nano-dollar to the larger remainder (the 7th's 0.75)
    days = [usage(day=date(2025, 1, 2), input_tokens=0, contracted=10**9),
            usage(day=date(2025, 1, 7), input_tokens=0, contracted=3 * 10**9)]  # fmt: skip
    charges = [replace(c, contracted_nanos=4 * 10**9 + 1, billed_nanos=4 * 10**9 + 1)
               for c in on_ranges("chargeback: {model: at_cost}\n", days)[0].teams["search"].charges]  # fmt: skip
    cuts = RangeCuts(JAN, FEB)
    assert [(c.day, c.contracted_nanos) for c in spread(charges, days, cuts)] == [
        (date(2025, 1, 2), 1_000_000_000),
        (date(2025, 1, 7), 3_000_000_001),
    ]


# (day of January, team, feature, input, cache read, output tokens, contracted nano-dollars)
DAY_OF_USAGE = st.tuples(
    st.integers(1, 31), st.sampled_from(["search", "ads"]), st.sampled_from(["chat", "triage"]),
    st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**10),
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(DAY_OF_USAGE, min_size=1, max_size=12))
def test_daily_charges_of_random_months_add_up_to_the_invoice(
    calls: list[tuple[int, str, str, int, int, int, int]],
) -> None:
    days = [usage(team, day=date(2025, 1, n), feature=feature, input_tokens=i, cache_read_tokens=c,
                  output_tokens=o, contracted=cost)
            for n, team, feature, i, c, o, cost in calls]  # fmt: skip
    text = CHANGES.replace("at_cost}", "cost_plus, markup_percent: 7}")
    month, cuts = on_ranges(text, days)
    for team in month.teams.values():
        daily = spread(team.charges, days, cuts)
        billed = sum(line.amount_nanos for line in team.lines if line.kind in ("usage", "failed_requests"))
        assert sum(c.billed_nanos for c in daily) == billed
        for name in TOKEN_CLASSES:  # a day's tokens of a class come back exactly
            assert sum(c.tokens for c in daily if c.token_class == name) == sum(
                line_tokens(line)[name] for line in days if line.team == team.team
            )
