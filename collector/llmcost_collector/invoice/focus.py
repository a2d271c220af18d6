"""The FOCUS 1.3 export of a period: one row per day x team x model x token class, plus one row
per monthly invoice line (fees, outcomes, seats, shared costs, adjustments).

Following FOCUS's AI conventions (working draft): tokens are ``ConsumedUnit`` "Tokens", priced
per ``PricingUnit`` "1000000 Tokens"; ``SkuMeter`` names the token class and ``SkuPriceDetails``
carries ``ModelId``, ``TokenDirection`` and ``CacheAction``, and an uncached row counts only
uncached tokens (token classes are disjoint). The four cost columns mean different things:

* ``ListCost``: at the provider's public list price (genai-prices);
* ``ContractedCost``: at the org's negotiated price (the price book): the provider cost;
* ``EffectiveCost``: what the row effectively costs the organisation after negotiated rates:
  the contracted cost for usage, the amount itself for the platform's own charges;
* ``BilledCost``: what the team is charged (markups included, 0 for tokens under value-based).

``SubAccountId`` is the team and ``InvoiceId`` its invoice, so ``SUM(BilledCost)`` per
``InvoiceId`` is the invoice total exactly. Adjustments of a closed period are ``ChargeCategory``
"Adjustment" with ``ChargeClass`` "Correction". A provider bill true-up line is an "Adjustment"
of the period itself (no ``ChargeClass``). A commitment line is amortized as FOCUS asks: a
"Purchase" row whose ``BilledCost`` is the team's share and ``EffectiveCost`` 0, and a "Usage"
row over the period whose ``BilledCost`` is 0 and ``EffectiveCost`` the share; both name the
provider billed, not the platform. Money is exact decimal text in CSV and
``decimal128(38, 9)`` in Parquet, never a float.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from llmcost_collector.invoice.document import invoice_number
from llmcost_collector.money import format_usd

COLUMNS = (
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "PricingCategory",
    "InvoiceId",
    "InvoiceIssuerName",
    "ServiceProviderName",
    "HostProviderName",
    "ServiceCategory",
    "ServiceSubcategory",
    "ServiceName",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
    "AllocatedMethodId",
    "AllocatedMethodDetails",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    "x_Feature",
    "x_Environment",
    "x_UserTier",
    "x_ServiceName",
    "x_Status",
    "x_LineKind",
)
MONEY_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
QUANTITY_COLUMNS = ("ConsumedQuantity", "PricingQuantity")
BILLING_ACCOUNT = "llmcost"
SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "Generative AI"
TOKENS = "Tokens"
PRICING_UNIT = "1000000 Tokens"
MILLION = Decimal(1_000_000)

# token class -> (SkuMeter, TokenDirection, CacheAction)
METERS = {
    "input": ("Input Tokens", "Input", "None"),
    "cache_read": ("Cached Input Tokens", "Input", "Read"),
    "cache_write": ("Cache Write Tokens", "Input", "Write"),
    "output": ("Output Tokens", "Output", "None"),
    "reasoning": ("Reasoning Tokens", "Output", "None"),
}
# invoice line kind -> (ChargeCategory, ChargeFrequency)
MONTHLY = {
    "platform_fee": ("Usage", "Usage-Based"),
    "fixed_platform_fee": ("Usage", "Recurring"),
    "outcome": ("Usage", "Usage-Based"),
    "seats": ("Usage", "Recurring"),
    "shared_cost": ("Usage", "Recurring"),
    "unattributed_share": ("Usage", "Usage-Based"),
    "unattributed_spread": ("Usage", "Usage-Based"),
    "true_up": ("Adjustment", "One-Time"),
    "commitment": ("Purchase", "Recurring"),
    "adjustment": ("Adjustment", "One-Time"),
}
# the kinds charged by a provider (named in ServiceProviderName), not by the platform
PROVIDER_KINDS = ("true_up", "commitment")


def _instant(day: str | date) -> str:
    text = day if isinstance(day, str) else day.isoformat()
    return f"{text}T00:00:00Z"


def _usd(nanos: int) -> Decimal:
    return Decimal(format_usd(nanos))


def _blank() -> dict[str, Any]:
    return dict.fromkeys(COLUMNS)


def rows(documents: Sequence[dict[str, Any]], usage: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """FOCUS rows for a period's invoices and usage charges; money as exact ``Decimal``."""
    by_team = {doc["team"]: doc for doc in documents}
    out: list[dict[str, Any]] = []
    for charge in usage:
        doc = by_team[charge["team"]]
        meter, direction, cache = METERS[charge["token_class"]]
        day = date.fromisoformat(charge["day"])
        row = _common(doc)
        row.update(
            ChargePeriodStart=_instant(day),
            ChargePeriodEnd=_instant(day + timedelta(days=1)),
            ChargeCategory="Usage",
            ChargeDescription=f"{charge['model']} {meter.lower()}",
            ChargeFrequency="Usage-Based",
            BilledCost=_usd(charge["billed_nanos"]),
            EffectiveCost=_usd(charge["contracted_nanos"]),
            ListCost=_usd(charge["list_nanos"]),
            ContractedCost=_usd(charge["contracted_nanos"]),
            ConsumedQuantity=Decimal(charge["tokens"]),
            ConsumedUnit=TOKENS,
            PricingQuantity=Decimal(charge["tokens"]) / MILLION,
            PricingUnit=PRICING_UNIT,
            PricingCategory="Standard",
            ServiceProviderName=charge["provider"],
            HostProviderName=charge["provider"],
            ServiceName=charge["provider"],
            SkuId=f"{charge['provider']}/{charge['model']}/{charge['token_class']}",
            SkuMeter=meter,
            SkuPriceDetails=json.dumps(
                {"ModelId": charge["model"], "TokenDirection": direction, "CacheAction": cache},
                sort_keys=True,
            ),
            Tags=json.dumps(
                {"feature": charge["feature"], "environment": charge["environment"], "team": charge["team"]},
                sort_keys=True,
            ),
            x_Feature=charge["feature"],
            x_Environment=charge["environment"],
            x_UserTier=charge["user_tier"],
            x_ServiceName=charge["service_name"],
            x_Status=charge["status"],
            x_LineKind="usage",
        )
        out.append(row)
    for doc in documents:
        for line in doc["lines"]:
            if line["kind"] not in MONTHLY or line["informational"]:
                continue
            category, frequency = MONTHLY[line["kind"]]
            amount = Decimal(line["amount_usd"])
            row = _common(doc)
            row.update(
                ChargePeriodStart=_instant(line["start"] or doc["period_start"]),
                ChargePeriodEnd=_instant(line["end"] or doc["period_end"]),
                ChargeCategory=category,
                ChargeClass="Correction" if line["kind"] == "adjustment" else None,
                ChargeDescription=line["description"],
                ChargeFrequency=frequency,
                BilledCost=amount,
                EffectiveCost=amount,
                ListCost=amount,
                ContractedCost=amount,
                ServiceProviderName=BILLING_ACCOUNT,
                ServiceName="llmcost platform",
                Tags=json.dumps({"team": doc["team"]}, sort_keys=True),
                x_LineKind=line["kind"],
            )
            if line["allocated_resource"]:
                row.update(
                    AllocatedMethodId=line["allocation_method"],
                    AllocatedMethodDetails=json.dumps({"method": line["allocation_method"]}, sort_keys=True),
                    AllocatedResourceId=line["allocated_resource"],
                    AllocatedResourceName=line["allocated_resource"],
                    AllocatedTags=json.dumps({"team": doc["team"]}, sort_keys=True),
                )
            if line["kind"] == "adjustment":
                row["Tags"] = json.dumps(
                    {"team": doc["team"], "corrects": line["reference"], "reason": line["reason"]},
                    sort_keys=True,
                )
            if line["kind"] in PROVIDER_KINDS:
                row.update(
                    ServiceProviderName=line["provider"],
                    HostProviderName=line["provider"],
                    ServiceName=line["provider"],
                )
            if line["kind"] == "commitment":
                zero = Decimal(0)
                out.append(row | {"EffectiveCost": zero})  # the purchase, amortized below
                row = row | {
                    "ChargeCategory": "Usage",
                    "ChargeFrequency": "Usage-Based",
                    "BilledCost": zero,
                    "EffectiveCost": amount,
                    "ListCost": zero,
                    "ContractedCost": zero,
                    "x_LineKind": "commitment_amortization",
                }
            out.append(row)
    return out


def _common(doc: dict[str, Any]) -> dict[str, Any]:
    row = _blank()
    row.update(
        BillingAccountId=BILLING_ACCOUNT,
        BillingAccountName="LLM chargeback",
        BillingCurrency="USD",
        BillingPeriodStart=_instant(doc["period_start"]),
        BillingPeriodEnd=_instant(doc["period_end"]),
        InvoiceId=doc.get("number") or invoice_number(doc["period"], doc["team"]),
        InvoiceIssuerName=BILLING_ACCOUNT,
        ServiceCategory=SERVICE_CATEGORY,
        ServiceSubcategory=SERVICE_SUBCATEGORY,
        SubAccountId=doc["team"],
        SubAccountName=doc["team_name"],
        SubAccountType="Team",
    )
    return row


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def to_csv(focus_rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in focus_rows:
        writer.writerow([_text(row[name]) for name in COLUMNS])
    return buffer.getvalue()


def write_parquet(focus_rows: Sequence[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = []
    for name in COLUMNS:
        exact = name in MONEY_COLUMNS or name in QUANTITY_COLUMNS
        fields.append(pa.field(name, pa.decimal128(38, 9) if exact else pa.string()))
    schema = pa.schema(fields)
    columns = {name: [row[name] for row in focus_rows] for name in COLUMNS}
    pq.write_table(pa.table(columns, schema=schema), path)
