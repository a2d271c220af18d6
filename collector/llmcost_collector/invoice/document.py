"""An invoice as a document: JSON-ready, exact money as text, cents only for presentation.

The rounding rule, stated on every invoice: amounts are exact to the nano-dollar; the printed
total is the exact total rounded half to even to the cent, and the printed lines are rounded so
that they add up to it (every line rounded down to the cent, then the cents left over to the
lines with the largest fractions, ties in line order). Informational credit lines are rounded
half to even on their own and never enter the total.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from llmcost_collector.chargeback.engine import InvoiceLine, TeamCharges
from llmcost_collector.money import format_usd

ROUNDING_RULE = (
    "Amounts are exact to the nano-dollar. The total is the exact total rounded half to even to the "
    "cent; lines are rounded down to the cent and the cents left over go to the lines with the largest "
    "fractions, so the printed lines add up to the printed total. Credits marked informational are "
    "shown for information and are not part of the total."
)
NANOS_PER_CENT = 10_000_000
_CENT = Decimal("0.01")


def invoice_number(period: str, team: str) -> str:
    """Deterministic: the same period and team always get the same number."""
    return f"LLM-{period}-{team}"


def cents(nanos: int) -> Decimal:
    """Half to even to the cent, as dollars."""
    return (Decimal(nanos) / NANOS_PER_CENT).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * _CENT


def presented_cents(amounts: Sequence[int]) -> tuple[list[Decimal], Decimal]:
    """Each amount in dollars to the cent so that they add up to the rounded exact total."""
    exact = [Decimal(amount) / NANOS_PER_CENT for amount in amounts]
    total = sum(exact, Decimal(0)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    floors = [value.to_integral_value(rounding=ROUND_FLOOR) for value in exact]
    left = int(total - sum(floors, Decimal(0)))
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for index in order[:left]:
        floors[index] += 1
    return [value * _CENT for value in floors], total * _CENT


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def line_document(line: InvoiceLine, presented: Decimal) -> dict[str, Any]:
    return {
        "kind": line.kind,
        "description": line.description,
        "quantity": line.quantity,
        "unit": line.unit,
        "provider": line.provider,
        "model": line.model,
        "feature": line.feature,
        "requests": line.requests,
        "tokens": dict(line.tokens),
        "list_usd": format_usd(line.list_nanos),
        "contracted_usd": format_usd(line.contracted_nanos),
        "markup_percent": None if line.markup_percent is None else str(line.markup_percent),
        "markup_usd": format_usd(line.markup_nanos),
        "amount_nanos": line.amount_nanos,
        "amount_usd": format_usd(line.amount_nanos),
        "amount": f"{presented:.2f}",
        "informational": line.informational,
        "start": _day(line.start),
        "end": _day(line.end),
        "reference": line.reference,
        "reason": line.reason,
        "allocated_resource": line.allocated_resource,
        "allocation_method": line.allocation_method,
    }


def build_document(
    period: str,
    start: date,
    end: date,
    charges: TeamCharges,
    *,
    status: str,
    display_name: str,
    coverage: Decimal | None,
) -> dict[str, Any]:
    """The invoice of one team and period, every amount exact (``*_usd``) and presented (cents)."""
    billed = [line for line in charges.lines if not line.informational]
    presented, total = presented_cents([line.amount_nanos for line in billed])
    by_line = {id(line): value for line, value in zip(billed, presented, strict=True)}
    lines = [
        line_document(line, by_line[id(line)] if id(line) in by_line else cents(line.amount_nanos))
        for line in charges.lines
    ]
    tier = charges.tier
    credits = sum(line.amount_nanos for line in charges.lines if line.informational and line.amount_nanos < 0)
    return {
        "number": invoice_number(period, charges.team),
        "status": status,
        "period": period,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "team": charges.team,
        "team_name": display_name or charges.team,
        "currency": "USD",
        "chargeback": [
            {"start": seg.start.isoformat(), "end": seg.end.isoformat(), **seg.settings.snapshot()}
            for seg in charges.segments
        ],
        "volume_tokens": charges.volume_tokens,
        "tier": None
        if tier is None
        else {"name": tier.name, "markup_percent": str(tier.markup_percent), "range": tier.describe()},
        "requests": charges.requests,
        "unpriced_requests": charges.unpriced,
        "tokens": dict(charges.tokens),
        "contracted_usd": format_usd(charges.contracted_nanos),
        "attribution_coverage": None if coverage is None else f"{coverage:.4f}",
        "lines": lines,
        "charges_nanos": sum(line.amount_nanos for line in billed if line.kind != "adjustment"),
        "total_nanos": charges.total_nanos,
        "total_usd": format_usd(charges.total_nanos),
        "total": f"{total:.2f}",
        "informational_credits_usd": format_usd(credits),
        "rounding": ROUNDING_RULE,
    }


def dumps(document: Any) -> str:
    """Canonical JSON: sorted keys, fixed separators, so equal invoices are equal bytes."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
