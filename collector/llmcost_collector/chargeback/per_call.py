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

from llmcost_collector.chargeback.settings import ChargebackPlan
from llmcost_collector.config.schema import Config
from llmcost_collector.model import LlmCall
from llmcost_collector.money import round_nanos

DAY_NS = 86_400 * 10**9
_EPOCH_DAY = date(1970, 1, 1)


def make_chargeback(config: Config) -> Callable[[LlmCall, int | None], int | None]:
    plan = ChargebackPlan(config)

    def chargeback(call: LlmCall, contracted_nanos: int | None) -> int | None:
        if contracted_nanos is None:
            return None  # unpriced: billed once it is re-priced
        day = _EPOCH_DAY + timedelta(days=call.start_time_ns // DAY_NS)
        multiplier = plan.on(call.attribution.team, day).per_call_factor()
        if multiplier is None:
            return contracted_nanos
        return round_nanos(contracted_nanos * multiplier)

    return chargeback
