"""Commitments: flat monthly fees (provisioned throughput, committed-use contracts) per team.

A fee is billed once for the month but consumed every day, so it is amortized: split evenly over
the month's days (integer nano-dollars, largest remainder, so the days add up to the fee), and
each day's part split over the teams in proportion to their contracted cost of the commitment's
provider (and model, when it names one) that day, their tokens when unpriced. A day no team used
it goes to the unattributed team: the fee is paid all the same. In FOCUS the purchase is one row
whose BilledCost is the fee and EffectiveCost 0, and each team-day share a row whose BilledCost
is 0 and EffectiveCost the share, as FOCUS asks of amortized commitments; on an invoice each
team's shares add up to one line of its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from llmcost_collector.chargeback.allocate import allocate
from llmcost_collector.ledger import SqlLedger
from llmcost_collector.ledger.query import CostQuery, Filter
from llmcost_collector.model import UNATTRIBUTED_TEAM
from llmcost_collector.money import format_usd, usd_to_nanos
from llmcost_collector.reconcile.names import ModelNames


@dataclass(frozen=True, slots=True)
class Commitment:
    name: str
    provider: str
    model: str  # "" for every model of the provider
    monthly_usd: Decimal

    @classmethod
    def parse(cls, spec: str) -> Commitment:
        """``NAME=PROVIDER[/MODEL]:USD`` (``pt-sonnet=aws.bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0:480``
        splits at the last colon, so model ids with colons work)."""
        name, _, rest = spec.partition("=")
        target, _, usd = rest.rpartition(":")
        provider, _, model = target.partition("/")
        try:
            amount = Decimal(usd)
        except InvalidOperation:
            amount = Decimal(-1)
        if not name or not provider or amount < 0 or not amount.is_finite():
            raise ValueError(f"commitment {spec!r}: write NAME=PROVIDER[/MODEL]:MONTHLY_USD")
        return cls(name.strip(), provider.strip(), model.strip(), amount)


@dataclass(frozen=True, slots=True)
class CommitmentShare:
    commitment: str
    team: str
    day: date
    amount_nanos: int
    basis: str  # "usage" or "unattributed"


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days)]


def amortize(
    ledger: SqlLedger, commitment: Commitment, start: date, end: date, start_ns: int, end_ns: int,
    names: ModelNames | None = None,
) -> list[CommitmentShare]:  # fmt: skip
    """The fee over the days of ``[start, end)`` (one calendar month), each day by usage."""
    names = names or ModelNames()
    days = _days(start, end)
    per_day = allocate(usd_to_nanos(commitment.monthly_usd), {day.isoformat(): 1 for day in days})
    query = CostQuery(
        start_ns, end_ns, ("team", "model"), (Filter("provider", (commitment.provider,)),), bucket="day"
    )
    wanted = names.canonical(commitment.provider, commitment.model, start) if commitment.model else ""
    usage: dict[date, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in ledger.costs(query):
        assert row.bucket is not None
        day = row.bucket.date()
        if wanted and names.canonical(commitment.provider, row.group["model"], day) != wanted:
            continue
        tokens = sum(
            row[m] for m in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
        )
        used = usage[day][row.group["team"]]
        used[0] += row["contracted_nanos"]
        used[1] += tokens + row["reasoning_tokens"]
    shares = []
    for day in days:
        teams = {team: v for team, v in sorted(usage.get(day, {}).items()) if v[0] or v[1]}
        if not teams:
            shares.append(
                CommitmentShare(
                    commitment.name, UNATTRIBUTED_TEAM, day, per_day[day.isoformat()], "unattributed"
                )
            )
            continue
        by_cost = any(v[0] for v in teams.values())
        weights = {team: v[0] if by_cost else v[1] for team, v in teams.items()}
        for team, part in allocate(per_day[day.isoformat()], weights).items():
            if part:
                shares.append(CommitmentShare(commitment.name, team, day, part, "usage"))
    return shares


def team_totals(shares: list[CommitmentShare]) -> dict[tuple[str, str], int]:
    """(commitment, team) -> the month's nano-dollars: each team's invoice line."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for share in shares:
        out[(share.commitment, share.team)] += share.amount_nanos
    return dict(sorted(out.items()))


def focus_rows(
    commitment: Commitment, shares: list[CommitmentShare], start: date, end: date
) -> list[dict[str, Any]]:
    """The purchase (BilledCost the fee, EffectiveCost 0) and one amortized row per team and day
    (BilledCost 0, EffectiveCost the share); money as exact ``Decimal`` dollars."""
    zero = Decimal(0)
    purchase = {
        "BillingCurrency": "USD", "ChargePeriodStart": f"{start.isoformat()}T00:00:00Z",
        "ChargePeriodEnd": f"{end.isoformat()}T00:00:00Z", "ChargeCategory": "Purchase", "ChargeClass": None,
        "ChargeDescription": f"Commitment: {commitment.name}", "ChargeFrequency": "Recurring",
        "BilledCost": Decimal(format_usd(usd_to_nanos(commitment.monthly_usd))), "EffectiveCost": zero,
        "ServiceProviderName": commitment.provider, "ServiceName": commitment.model, "SubAccountId": None,
        "x_LineKind": "commitment_purchase",
    }  # fmt: skip
    used = [
        purchase
        | {
            "ChargePeriodStart": f"{s.day.isoformat()}T00:00:00Z",
            "ChargePeriodEnd": f"{(s.day + timedelta(days=1)).isoformat()}T00:00:00Z",
            "ChargeCategory": "Usage",
            "ChargeFrequency": "Usage-Based",
            "BilledCost": zero,
            "EffectiveCost": Decimal(format_usd(s.amount_nanos)),
            "SubAccountId": s.team,
            "x_LineKind": "commitment_amortization",
        }
        for s in shares
    ]
    return [purchase, *used]
