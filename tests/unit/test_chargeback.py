"""Per-call chargeback (``chargeback.per_call``): the rates each team is charged and the amounts,
in whole nano-dollars rounded half to even, with unpriced calls staying unpriced."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from llmcost_collector.chargeback.per_call import make_chargeback
from llmcost_collector.chargeback.settings import per_call_rates
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.model import Attribution, LlmCall, Usage

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
