"""True-up: what the bill has and the ledger has not, spread over the teams, never silently.

After a reconciliation, each provider and model's residual (billed dollars - the ledger's
contracted dollars, over the days the bill has dollars) is split over the teams in proportion to
their contracted cost of that provider and model in the period (their tokens when it is unpriced;
a model no team used is split by the teams' use of the provider, and a provider no team used goes
to the unattributed team). Each team's share is its own labelled line, a FOCUS row with
ChargeCategory "Adjustment", so the invoice shows the correction apart from the usage it corrects.
Shares are integer nano-dollars split by largest remainder (``chargeback.allocate``): the lines of
one residual always add up to it exactly. A negative residual (the ledger above the bill) gives
credits the same way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from llmcost_collector.chargeback.allocate import allocate
from llmcost_collector.ledger import SqlLedger
from llmcost_collector.ledger.query import CostQuery, Filter
from llmcost_collector.model import UNATTRIBUTED_TEAM
from llmcost_collector.money import format_usd
from llmcost_collector.reconcile.compare import Reconciliation
from llmcost_collector.reconcile.names import ModelNames

LABEL = "Reconciliation true-up"
# The FOCUS columns a true-up row fills (names as in the FOCUS export, ``invoice/focus.py``).
FOCUS_COLUMNS = (
    "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "BilledCost", "EffectiveCost", "ServiceProviderName",
    "ServiceName", "SubAccountId", "x_LineKind",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrueUpLine:
    team: str
    provider: str
    model: str
    amount_nanos: int  # positive: a debit; negative: a credit
    basis: str  # "model", "provider" or "unattributed": which usage the split followed

    @property
    def label(self) -> str:
        return f"{LABEL}: {self.provider} {self.model or '(no model)'}"


def residuals(result: Reconciliation) -> dict[tuple[str, str], int]:
    """bill - ledger nano-dollars per (provider, model), over lines whose bill has dollars."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for line in result.lines:
        if line.bill.cost_nanos is not None:
            out[(line.provider, line.model)] += line.bill.cost_nanos - (line.ledger.cost_nanos or 0)
    return {key: value for key, value in sorted(out.items()) if value}


def _usage(
    ledger: SqlLedger, start_ns: int, end_ns: int, providers: list[str], names: ModelNames, day: date
) -> dict[tuple[str, str], dict[str, tuple[int, int]]]:
    """(provider, model) -> team -> (contracted nanos, tokens) in the period."""
    query = CostQuery(
        start_ns, end_ns, ("team", "provider", "model"), (Filter("provider", tuple(providers)),)
    )
    out: dict[tuple[str, str], dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in ledger.costs(query):
        tokens = sum(
            row[m] for m in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
        )
        key = (row.group["provider"], names.canonical(row.group["provider"], row.group["model"], day))
        nanos, count = out[key].get(row.group["team"], (0, 0))
        out[key][row.group["team"]] = (
            nanos + row["contracted_nanos"],
            count + tokens + row["reasoning_tokens"],
        )
    return out


def _weights(users: dict[str, tuple[int, int]]) -> dict[str, int]:
    if any(nanos for nanos, _ in users.values()):
        return {team: nanos for team, (nanos, _) in sorted(users.items())}
    return {team: tokens for team, (_, tokens) in sorted(users.items())}


def true_up(
    ledger: SqlLedger, result: Reconciliation, start_ns: int, end_ns: int, names: ModelNames | None = None
) -> list[TrueUpLine]:
    names = names or ModelNames()
    owed = residuals(result)
    if not owed:
        return []
    first_day = result.lines[0].day
    usage = _usage(ledger, start_ns, end_ns, sorted({p for p, _ in owed}), names, first_day)
    by_provider: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for (provider, _), teams in usage.items():
        for team, (nanos, tokens) in teams.items():
            old = by_provider[provider].get(team, (0, 0))
            by_provider[provider][team] = (old[0] + nanos, old[1] + tokens)
    lines = []
    for (provider, model), amount in owed.items():
        users, basis = usage.get((provider, model)), "model"
        if not users or not any(sum(v) for v in users.values()):
            users, basis = by_provider.get(provider), "provider"
        if not users or not any(sum(v) for v in users.values()):
            users, basis = {UNATTRIBUTED_TEAM: (1, 1)}, "unattributed"
        for team, share in allocate(amount, _weights(users)).items():
            if share:
                lines.append(TrueUpLine(team, provider, model, share, basis))
    return lines


def focus_rows(lines: list[TrueUpLine], period_start: date, period_end: date) -> list[dict[str, Any]]:
    """One FOCUS Adjustment row per true-up line; money as exact ``Decimal`` dollars."""
    return [
        {
            "BillingCurrency": "USD",
            "ChargePeriodStart": f"{period_start.isoformat()}T00:00:00Z",
            "ChargePeriodEnd": f"{period_end.isoformat()}T00:00:00Z",
            "ChargeCategory": "Adjustment",
            "ChargeClass": None,
            "ChargeDescription": line.label,
            "ChargeFrequency": "One-Time",
            "BilledCost": Decimal(format_usd(line.amount_nanos)),
            "EffectiveCost": Decimal(format_usd(line.amount_nanos)),
            "ServiceProviderName": line.provider,
            "ServiceName": line.model,
            "SubAccountId": line.team,
            "x_LineKind": "reconciliation_true_up",
        }
        for line in lines
    ]
