"""Per-call chargeback: what a team is billed for one call, from its contracted cost.

At cost bills the contracted cost; cost-plus adds the markup and the platform fee percentages
(Team Charge = Token Cost x (1 + markup + fee)). Volume tiers, fixed monthly fees, outcome
prices and shared costs depend on a whole month and are applied on the monthly invoice from the
ledger; the per-call amount here is what budgets and the chargeback counter track meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from llmcost_collector.config.schema import Config
from llmcost_collector.model import LlmCall
from llmcost_collector.money import round_nanos

HUNDRED = Decimal(100)
ONE = Decimal(1)


def make_chargeback(config: Config) -> Callable[[LlmCall, int | None], int | None]:
    factors: dict[str, Decimal | None] = {}

    def factor(team: str) -> Decimal | None:
        if team not in factors:
            model, markup, fee = config.chargeback_rates(team)
            factors[team] = None if model == "at_cost" else ONE + (markup + fee) / HUNDRED
        return factors[team]

    def chargeback(call: LlmCall, contracted_nanos: int | None) -> int | None:
        if contracted_nanos is None:
            return None  # unpriced: billed once it is re-priced
        multiplier = factor(call.attribution.team)
        if multiplier is None:
            return contracted_nanos
        return round_nanos(contracted_nanos * multiplier)

    return chargeback
