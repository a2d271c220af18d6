"""AWS Bedrock lines of a Cost and Usage Report (CUR 2.0), as a downloaded CSV.

Bedrock bills one line per token class: the usage type is ``<region>-<model>-<class>`` with the
class ``input-tokens``, ``output-tokens``, ``cache-read-input-token-count`` or
``cache-write-input-token-count`` (a ``-batch`` suffix marks batch inference), the amount in
``line_item_usage_amount`` (in thousands or millions of tokens when ``pricing_unit`` says
so) and the dollars in ``line_item_unblended_cost``. The model is ``product_model_id`` where the
export has it, else the usage type's model part (``Claude3.5Sonnet``, which a price-book alias
maps to the ledger's model id). ``line_item_iam_principal`` (present when IAM principal data is
enabled) is the scope. Only ``Usage`` line items are read: taxes, credits and refunds are not
consumption the ledger could have seen.
"""

from __future__ import annotations

import csv
import io

from llmcost_collector.reconcile.bill import BillRow, decimal, iso_day, with_tokens

PROVIDER = "aws.bedrock"
CLASSES = {
    "input-tokens": "input_tokens",
    "output-tokens": "output_tokens",
    "cache-read-input-token-count": "cache_read_tokens",
    "cache-write-input-token-count": "cache_write_tokens",
}
USAGE_ITEMS = ("", "Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")


def _unit(pricing_unit: str) -> int:
    lowered = pricing_unit.lower().replace(" ", "")
    if lowered.startswith(("1m", "million")):
        return 1_000_000
    if lowered.startswith(("1k", "thousand")):
        return 1000
    return 1


def _split(usage_type: str) -> tuple[str, str, bool] | None:
    """(model part, ledger token class, batch) of a Bedrock token usage type, or None."""
    rest = usage_type.split("-", 1)[1] if "-" in usage_type else usage_type
    batch = rest.endswith("-batch")
    rest = rest.removesuffix("-batch")
    for suffix, token_class in CLASSES.items():
        if rest.endswith("-" + suffix):
            return rest[: -len(suffix) - 1], token_class, batch
    return None


def cur(text: str) -> list[BillRow]:
    rows = []
    for number, line in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        if line.get("line_item_product_code", "AmazonBedrock") not in ("AmazonBedrock", ""):
            continue
        if line.get("line_item_line_item_type", "") not in USAGE_ITEMS:
            continue
        usage_type = line["line_item_usage_type"]
        parsed = _split(usage_type)
        if parsed is None:
            continue  # not a token line (provisioned throughput, guardrails, ...)
        model_part, token_class, batch = parsed
        amount = decimal(line["line_item_usage_amount"], f"line {number}") * _unit(
            line.get("pricing_unit", "")
        )
        if amount != amount.to_integral_value():
            raise ValueError(f"line {number}: {amount} tokens is not a whole number")
        row = BillRow(
            day=iso_day(line["line_item_usage_start_date"]), provider=PROVIDER,
            model=(line.get("product_model_id") or "").strip() or model_part, source="bedrock-cur",
            scope=line.get("line_item_iam_principal", "") or "", tier="batch" if batch else "",
            cost_usd=decimal(line.get("line_item_unblended_cost") or "0", f"line {number}"),
            item=usage_type,
        )  # fmt: skip
        rows.append(with_tokens(row, token_class, int(amount)))
    return rows
