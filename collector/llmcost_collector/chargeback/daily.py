"""Range charges spread over their days: the FOCUS export's grain, day x team x model x class.

Invoices are charged on range lines (``chargeback.ranges``); the export still has a row per day.
Each range charge's tokens and its list, contracted and billed nano-dollars are split over the
days of its range with ``allocate`` (largest remainder), weighted by that day's tokens of the
class, so a day's tokens come back exactly; a class without tokens follows the day's contracted
cost, and with neither it lands on the first day the line has calls. The parts of every amount
add up to the range charge, so every column of the export sums exactly to the invoices; the
markup of a day is its billed minus its contracted amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from operator import attrgetter

from llmcost_collector.chargeback.allocate import allocate
from llmcost_collector.chargeback.engine import TOKEN_CLASSES, Charge, line_tokens
from llmcost_collector.chargeback.ranges import RangeCuts
from llmcost_collector.ledger.usage import UsageLine
from llmcost_collector.model import UNPRICED

# What a charge shares with the usage lines it came from, in ``Charge``'s field order.
KEY = ("team", "provider", "model", "feature", "environment", "user_tier", "service_name", "status")
_KEY = attrgetter(*KEY)
_AMOUNTS = ("tokens", "list_nanos", "contracted_nanos", "billed_nanos")
_CLASS_ORDER = {name: index for index, name in enumerate(TOKEN_CLASSES)}

# per day: tokens of each class, and the contracted cost of the day's calls
DayWeights = dict[date, tuple[dict[str, int], int]]


def _weights(daily: Sequence[UsageLine], cuts: RangeCuts) -> dict[tuple[date, tuple[str, ...]], DayWeights]:
    """Per (range start, key): what each day of the range weighs (the calls the engine charges)."""
    out: dict[tuple[date, tuple[str, ...]], DayWeights] = {}
    firsts: dict[tuple[str, str, str, date], date] = {}
    for line in daily:
        if not line.requests or line.price_status == UNPRICED:
            continue
        where = (line.team, line.provider, line.model, line.day)
        first = firsts.get(where)
        if first is None:
            first = firsts[where] = cuts.range_of(*where)[0]
        days = out.setdefault((first, _KEY(line)), {})
        tokens = line_tokens(line)
        known = days.get(line.day)
        if known is None:
            days[line.day] = (tokens, line.contracted_nanos)
        else:
            for name, count in tokens.items():
                known[0][name] += count
            days[line.day] = (known[0], known[1] + line.contracted_nanos)
    return out


def spread(charges: Sequence[Charge], daily: Sequence[UsageLine], cuts: RangeCuts) -> list[Charge]:
    """``charges`` (a day per range: the range's first) as charges per day, from ``daily`` (the
    period's daily usage lines) and the ``cuts`` the range lines were made with."""
    totals: dict[tuple[date, tuple[str, ...], str], list[int]] = {}
    markups = {}
    for charge in charges:
        group = (charge.day, _KEY(charge), charge.token_class)
        amounts = [getattr(charge, name) for name in _AMOUNTS]
        known = totals.get(group)
        if known is None:
            totals[group] = amounts
            markups[group] = charge.markup_percent
        else:
            totals[group] = [a + b for a, b in zip(known, amounts, strict=True)]
    weights = _weights(daily, cuts)
    out = []
    for group, amounts in totals.items():
        first, key, token_class = group
        days = weights.get((first, key), {})
        by_day: dict[date, int] = {day: tokens[token_class] for day, (tokens, _) in sorted(days.items())}
        if not any(by_day.values()):
            by_day = {day: contracted for day, (_, contracted) in sorted(days.items())}
        if not any(by_day.values()):
            by_day = {min(days, default=first): 1}
        parts = [allocate(amount, by_day) for amount in amounts]
        team, provider, model, feature, environment, user_tier, service_name, status = key
        for day in by_day:
            tokens, listed, contracted, billed = (part[day] for part in parts)
            if tokens or listed or contracted or billed:
                out.append(
                    Charge(day, team, provider, model, feature, environment, user_tier, service_name,
                           status, token_class, tokens, listed, contracted, markups[group], billed)
                )  # fmt: skip
    out.sort(key=lambda c: (c.team, c.day, c.provider, c.model, c.feature, c.environment, c.user_tier,
                            c.service_name, c.status, _CLASS_ORDER[c.token_class]))  # fmt: skip
    return out
