"""Any FOCUS 1.x cost export (Azure, Google Cloud, AWS, an AI gateway), as a CSV.

FOCUS fixes the money columns (``BilledCost``, ``EffectiveCost``, ``ListCost``) and the period
(``ChargePeriodStart``), not how a vendor names a model or a token class. The model is the first
``x_`` column whose name says model (``x_ModelName``, ``x_model_id``), else ``ResourceName``; the
token class is read from ``SkuMeter`` (then ``SkuId``, ``ConsumedUnit``): cached or cache-read
input, cache write, output, else input. ``ConsumedQuantity`` counts tokens, scaled when
``ConsumedUnit`` says thousands or millions. Only ``ChargeCategory`` Usage rows are read (taxes,
credits, purchases and adjustments are not consumption). The provider is ``ServiceProviderName``
(1.1+) or ``ProviderName`` (1.0), mapped to the ledger's provider names.
"""

from __future__ import annotations

import csv
import io

from llmcost_collector.reconcile.bill import BillRow, decimal, iso_day, with_tokens

# FOCUS provider names -> gen_ai.provider.name
PROVIDERS = {
    "microsoft": "azure.ai.openai", "azure": "azure.ai.openai", "microsoft azure": "azure.ai.openai",
    "google": "gcp.vertex_ai", "google cloud": "gcp.vertex_ai", "gcp": "gcp.vertex_ai",
    "aws": "aws.bedrock", "amazon web services": "aws.bedrock", "openai": "openai", "anthropic": "anthropic",
}  # fmt: skip


def provider_name(focus_name: str) -> str:
    name = focus_name.strip().lower()
    return PROVIDERS.get(name, name)


def _token_class(meter: str) -> str:
    lowered = meter.lower()
    if "cache" in lowered and ("write" in lowered or "creation" in lowered or "storage" in lowered):
        return "cache_write_tokens"
    if "cache" in lowered:  # "cached input", "cache read"
        return "cache_read_tokens"
    if "outp" in lowered or "completion" in lowered:
        return "output_tokens"
    return "input_tokens"


def _scale(unit: str) -> int:
    lowered = unit.lower().replace(" ", "")
    if lowered.startswith(("1m", "million")) or "1mtokens" in lowered:
        return 1_000_000
    if lowered.startswith(("1k", "thousand")):
        return 1000
    return 1


def rows(text: str) -> list[BillRow]:
    out = []
    reader = csv.DictReader(io.StringIO(text))
    model_columns = [
        n for n in reader.fieldnames or () if n.lower().startswith("x_") and "model" in n.lower()
    ]
    for number, line in enumerate(reader, start=2):
        if (line.get("ChargeCategory") or "Usage") != "Usage":
            continue
        where = f"line {number}"
        model = next((line[c].strip() for c in model_columns if (line.get(c) or "").strip()), "")
        model = model or (line.get("ResourceName") or "").strip()
        meter = line.get("SkuMeter") or line.get("SkuId") or line.get("ConsumedUnit") or ""
        unit = line.get("ConsumedUnit") or ""
        quantity = line.get("ConsumedQuantity") or ""
        listed = line.get("ListCost") or ""
        row = BillRow(
            day=iso_day(line["ChargePeriodStart"]),
            provider=provider_name(line.get("ServiceProviderName") or line.get("ProviderName") or ""),
            model=model, source="focus", scope=(line.get("SubAccountId") or "").strip(),
            cost_usd=decimal(line["BilledCost"] or "0", where),
            list_usd=decimal(listed, where) if listed.strip() else None,
            item=line.get("SkuMeter") or line.get("SkuId") or "",
        )  # fmt: skip
        if quantity.strip() and "token" in (unit + meter).lower():
            tokens = decimal(quantity, where) * _scale(unit)
            if tokens != tokens.to_integral_value():
                raise ValueError(f"{where}: {tokens} tokens is not a whole number")
            row = with_tokens(row, _token_class(meter), int(tokens))
        out.append(row)
    return out
