"""Per-call chargeback: what a team is billed for one call, from its contracted cost.

At cost bills the contracted cost; cost-plus adds the markup and the platform fee percentages
(Team Charge = Token Cost x (1 + markup + fee)), under the settings in force on the call's UTC
day (``chargeback.settings``). Volume tiers, fixed monthly fees, outcome and seat prices and
shared costs depend on a whole month and are applied on the monthly invoice
(``chargeback.engine``); the per-call amount here is what budgets and the chargeback counter
track meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from llmcost_collector.chargeback.settings import ChargebackPlan
from llmcost_collector.config.schema import Config
from llmcost_collector.model import LlmCall
from llmcost_collector.money import round_nanos

DAY_NS = 86_400 * 10**9
_EPOCH_DAY = date(1970, 1, 1)


def make_chargeback(config: Config) -> Callable[[LlmCall, int | None], int | None]:
    plan = ChargebackPlan(config)
    factors: dict[tuple[str, int], Decimal | None] = {}  # (team, UTC day number) -> multiplier

    def factor(team: str, day_number: int) -> Decimal | None:
        key = (team, day_number)
        if key not in factors:
            if len(factors) > 100_000:  # team names come from clients: bound the cache
                factors.clear()
            factors[key] = plan.on(team, _EPOCH_DAY + timedelta(days=day_number)).per_call_factor()
        return factors[key]

    def chargeback(call: LlmCall, contracted_nanos: int | None) -> int | None:
        if contracted_nanos is None:
            return None  # unpriced: billed once it is re-priced
        multiplier = factor(call.attribution.team, call.start_time_ns // DAY_NS)
        if multiplier is None:
            return contracted_nanos
        return round_nanos(contracted_nanos * multiplier)

    return chargeback
