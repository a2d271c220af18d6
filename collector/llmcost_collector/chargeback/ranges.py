"""Range lines: a period's usage cut only where something that prices or charges it can change.

An invoice does not need a line per day: within a run of days where a team's chargeback
settings (``ChargebackPlan.segments``) and a model's rates are the same, the engine charges the
sum of the days exactly as it would charge one day. So a period is cut per line at its team's
settings changes and its model's rate changes, nowhere else; a month without any is one line
per dimension combination (the monthly rollup), which is what keeps invoices flat in the number
of calls.

``RangeCuts`` holds those cuts, ``cuts.days()`` is their union (the boundaries the ledger sums
ranges at, ``SqlLedger.usage_ranges``) and ``merge`` sums the ledger's lines into each line's
own range, so one team's change never moves another team's rounding.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from operator import attrgetter

from llmcost_collector.chargeback.engine import RateLookup
from llmcost_collector.chargeback.settings import ChargebackPlan
from llmcost_collector.ledger.usage import DIMENSIONS, MEASURES, UsageLine

_DIMENSIONS = attrgetter(*DIMENSIONS)
_MEASURES = attrgetter(*MEASURES)


def rate_changes(rates: RateLookup, provider: str, model: str, start: date, end: date) -> list[date]:
    """The days in ``(start, end)`` whose rates (both layers, as the engine looks them up for a
    day) differ from the day before: every effective-dated list or price-book change, whatever
    its source, because it compares what is charged rather than where it comes from."""
    changes = []
    before = rates(provider, model, start)
    day = start + timedelta(days=1)
    while day < end:
        now = rates(provider, model, day)
        if now != before:
            changes.append(day)
        before = now
        day += timedelta(days=1)
    return changes


@dataclass(frozen=True)
class RangeCuts:
    """Where the period ``[start, end)`` is cut, per team and per (provider, model)."""

    start: date
    end: date
    teams: dict[str, tuple[date, ...]] = field(default_factory=dict)
    models: dict[tuple[str, str], tuple[date, ...]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        start: date,
        end: date,
        plan: ChargebackPlan,
        rates: RateLookup,
        teams: Iterable[str],
        models: Iterable[tuple[str, str]],
    ) -> RangeCuts:
        """The cuts of ``teams`` (settings changes) and ``models`` (rate changes) in the period."""
        team_cuts = {}
        for team in sorted(set(teams)):
            segments = plan.segments(team, start, end)
            if len(segments) > 1:
                team_cuts[team] = tuple(segment.start for segment in segments[1:])
        model_cuts = {}
        for provider, model in sorted(set(models)):
            changes = rate_changes(rates, provider, model, start, end)
            if changes:
                model_cuts[(provider, model)] = tuple(changes)
        return cls(start, end, team_cuts, model_cuts)

    def days(self) -> list[date]:
        """Every cut of the period, ascending: where some line's range starts."""
        return sorted({day for cuts in (*self.teams.values(), *self.models.values()) for day in cuts})

    def range_of(self, team: str, provider: str, model: str, day: date) -> tuple[date, date]:
        """``[first day, end)`` of the range holding ``day`` for a line of this team and model."""
        cuts = sorted({*self.teams.get(team, ()), *self.models.get((provider, model), ())})
        index = bisect_right(cuts, day)
        return (cuts[index - 1] if index else self.start), (cuts[index] if index < len(cuts) else self.end)


def merge(lines: Sequence[UsageLine], cuts: RangeCuts) -> list[UsageLine]:
    """``lines`` (daily, or ranges cut at ``cuts.days()``) summed into each line's own range:
    one line per range and dimension combination, its ``day`` the range's first day, ordered by
    day then dimensions (as the ledger orders its lines)."""
    whole = not cuts.days() and all(line.day == cuts.start for line in lines)
    if whole and len({_DIMENSIONS(line) for line in lines}) == len(lines):
        return list(lines)  # already one line per combination: the monthly rollup
    firsts: dict[tuple[str, str, str, date], date] = {}
    sums: dict[tuple[date, tuple[str, ...]], list[int]] = {}
    for line in lines:
        dims = _DIMENSIONS(line)
        where = (line.team, line.provider, line.model, line.day)
        first = firsts.get(where)
        if first is None:
            first = firsts[where] = cuts.range_of(*where)[0]
        key = (first, dims)
        total = sums.get(key)
        if total is None:
            sums[key] = list(_MEASURES(line))
        else:
            for index, value in enumerate(_MEASURES(line)):
                total[index] += value
    return [
        UsageLine(day, *dims, *values)  # type: ignore[arg-type]  # positional: DIMENSIONS, MEASURES
        for (day, dims), values in sorted(sums.items())
    ]
