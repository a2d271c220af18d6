"""Anthropic Admin API usage and cost reports, as downloaded JSON.

Usage (``GET /v1/organizations/usage_report/messages``): buckets of ``starting_at``/``ending_at``
(RFC 3339) whose results split input into ``uncached_input_tokens``, ``cache_read_input_tokens``
and ``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``, as the ledger
does; ``api_key_id`` or ``workspace_id`` is the scope when grouped by it.

Costs (``GET /v1/organizations/cost_report``): ``amount`` in the currency's lowest unit (cents)
as a decimal string with fractions (``"123.45"`` is $1.2345); grouped by description, rows name
``model``, ``cost_type`` (tokens, web_search, code_execution) and ``token_type``. The newer
analytics cost rows carry ``cost.amount`` and a pre-discount ``cost.list_amount`` in fractional
cents; both shapes are read, the list amount kept as ``list_usd``.
File: one page (``{"data": [...], "has_more": ...}``) or several concatenated as a JSON list.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from llmcost_collector.reconcile.bill import BillError, BillRow, count, decimal, iso_day

PROVIDER = "anthropic"
CENTS = Decimal(100)


def _buckets(text: str) -> list[dict[str, Any]]:
    doc = json.loads(text)
    pages = doc if isinstance(doc, list) else [doc]
    return [bucket for page in pages for bucket in page["data"]]


def _tier(result: dict[str, Any]) -> str:
    tier = result.get("service_tier") or ""
    return "" if tier == "standard" else str(tier)


def usage(text: str) -> list[BillRow]:
    rows = []
    for bucket in _buckets(text):
        day = iso_day(bucket["starting_at"])
        for result in bucket.get("results") or []:
            creation = result.get("cache_creation") or {}
            rows.append(
                BillRow(
                    day=day,
                    provider=PROVIDER,
                    model=result.get("model") or "",
                    source="anthropic-usage",
                    scope=result.get("api_key_id") or result.get("workspace_id") or "",
                    api_key=result.get("api_key_id") or "",
                    tier=_tier(result),
                    input_tokens=count(result.get("uncached_input_tokens")),
                    cache_read_tokens=count(result.get("cache_read_input_tokens")),
                    cache_write_tokens=count(creation.get("ephemeral_5m_input_tokens"))
                    + count(creation.get("ephemeral_1h_input_tokens")),
                    output_tokens=count(result.get("output_tokens")),
                )
            )
    return rows


def _cents(value: object, where: str) -> Decimal:
    return decimal(value, where) / CENTS


def costs(text: str) -> list[BillRow]:
    rows = []
    for bucket in _buckets(text):
        day = iso_day(bucket["starting_at"])
        where = f"bucket {bucket['starting_at']}"
        for result in bucket.get("results") or []:
            cost = result.get("cost") if isinstance(result.get("cost"), dict) else result
            currency = str(cost.get("currency") or "USD").upper()
            if currency != "USD":
                raise BillError(f"{where}: currency {currency!r}, only USD is reconciled")
            listed = cost.get("list_amount")
            rows.append(
                BillRow(
                    day=day,
                    provider=PROVIDER,
                    model=result.get("model") or "",
                    source="anthropic-costs",
                    scope=result.get("workspace_id") or "",
                    tier=_tier(result),
                    cost_usd=_cents(cost.get("amount"), where),
                    list_usd=None if listed is None else _cents(listed, where),
                    item=result.get("description")
                    or result.get("token_type")
                    or result.get("cost_type")
                    or "",
                )
            )
    return rows
