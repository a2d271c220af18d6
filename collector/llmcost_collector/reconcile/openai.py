"""OpenAI organization Usage API (completions) and Costs API pages, as downloaded JSON.

Usage (``GET /v1/organization/usage/completions``): buckets of ``start_time``/``end_time`` (Unix
seconds) whose results carry text ``input_tokens`` *including* ``input_cached_tokens``, so uncached
input is the difference (audio tokens are counted apart and added to their side, as the ledger
counts them); ``batch`` and ``service_tier`` name the tier. OpenAI reports no cache
writes (prompt caching there is automatic and unbilled on write).

Costs (``GET /v1/organization/costs``): 1-day buckets whose ``amount.value`` is a number or, in
some exports, a decimal string; grouped by ``line_item`` the label reads ``"<model>, <class>"``
(``"gpt-4o-2024-08-06, input"``), which gives the model. A line item without a model (``"Image
models"``) keeps an empty model, so its dollars count for the provider but match no model.
File: one page (``{"object": "page", "data": [...]}``) or several concatenated as a JSON list.
"""

from __future__ import annotations

import json
from typing import Any

from llmcost_collector.reconcile.bill import BillError, BillRow, count, decimal, unix_day

PROVIDER = "openai"
STANDARD_TIERS = ("", "default", "auto", "standard")


def _buckets(text: str) -> list[dict[str, Any]]:
    doc = json.loads(text)
    pages = doc if isinstance(doc, list) else [doc]
    return [bucket for page in pages for bucket in page["data"]]


def _tier(result: dict[str, Any]) -> str:
    if result.get("batch"):
        return "batch"
    tier = result.get("service_tier") or ""
    return "" if tier in STANDARD_TIERS else str(tier)


def usage(text: str) -> list[BillRow]:
    rows = []
    for bucket in _buckets(text):
        day = unix_day(bucket["start_time"])
        for result in bucket.get("results") or []:
            cached = count(result.get("input_cached_tokens"))
            total_input = count(result.get("input_tokens"))
            if cached > total_input:
                raise BillError(f"bucket {bucket['start_time']}: input_cached_tokens exceed input_tokens")
            rows.append(
                BillRow(
                    day=day,
                    provider=PROVIDER,
                    model=result.get("model") or "",
                    source="openai-usage",
                    scope=result.get("project_id") or result.get("api_key_id") or "",
                    api_key=result.get("api_key_id") or "",
                    tier=_tier(result),
                    input_tokens=total_input - cached + count(result.get("input_audio_tokens")),
                    cache_read_tokens=cached,
                    cache_write_tokens=0,
                    output_tokens=count(result.get("output_tokens"))
                    + count(result.get("output_audio_tokens")),
                    requests=count(result.get("num_model_requests")),
                )
            )
    return rows


def costs(text: str) -> list[BillRow]:
    rows = []
    for bucket in _buckets(text):
        day = unix_day(bucket["start_time"])
        for result in bucket.get("results") or []:
            amount = result.get("amount") or {}
            currency = str(amount.get("currency") or "usd").lower()
            if currency != "usd":
                raise BillError(
                    f"bucket {bucket['start_time']}: currency {currency!r}, only USD is reconciled"
                )
            item = result.get("line_item") or ""
            model, _, kind = item.rpartition(", ") if ", " in item else ("", "", item)
            rows.append(
                BillRow(
                    day=day,
                    provider=PROVIDER,
                    model=model,
                    source="openai-costs",
                    scope=result.get("project_id") or "",
                    tier="batch" if "batch" in kind.lower() else "",
                    cost_usd=decimal(amount.get("value"), f"bucket {bucket['start_time']}"),
                    item=item,
                )
            )
    return rows
