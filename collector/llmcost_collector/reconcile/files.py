"""Which importer reads a bill file: the kind named (``--kind``) or detected from its content.

JSON pages are told apart by their bucket fields (OpenAI's ``start_time`` against Anthropic's
``starting_at``) and by whether results carry amounts; CSVs by their header (CUR 2.0's
``line_item_usage_type``, FOCUS's ``ChargePeriodStart`` and ``BilledCost``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from llmcost_collector.reconcile import anthropic, bedrock, focus, openai
from llmcost_collector.reconcile.bill import BillError, BillRow

Importer = Callable[[str], list[BillRow]]


IMPORTERS: dict[str, Importer] = {
    "openai-usage": openai.usage,
    "openai-costs": openai.costs,
    "anthropic-usage": anthropic.usage,
    "anthropic-costs": anthropic.costs,
    "bedrock-cur": bedrock.cur,
    "focus": focus.rows,
}


KINDS = tuple(IMPORTERS)


def detect(text: str) -> str:
    """The kind of a bill from its content: JSON pages by their result fields, CSV by its header."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise BillError(f"not valid JSON: {exc}") from None
        pages = doc if isinstance(doc, list) else [doc]
        if not all(isinstance(page, dict) and isinstance(page.get("data"), list) for page in pages):
            raise BillError("a JSON bill is a page (or a list of pages) with a 'data' list of buckets")
        buckets = [bucket for page in pages for bucket in page["data"]]
        fields = {name for bucket in buckets for result in bucket.get("results") or [] for name in result}
        first = buckets[0] if buckets else {}
        if "starting_at" in first:
            return "anthropic-costs" if fields & {"amount", "cost"} else "anthropic-usage"
        if "start_time" in first:
            return "openai-costs" if "amount" in fields else "openai-usage"
        raise BillError("JSON with neither OpenAI (start_time) nor Anthropic (starting_at) buckets")
    header = next(csv.reader(io.StringIO(stripped)), [])
    names = {name.strip() for name in header}
    if "line_item_usage_type" in names:
        return "bedrock-cur"
    if {"ChargePeriodStart", "BilledCost"} <= names:
        return "focus"
    raise BillError("neither a JSON page of OpenAI/Anthropic buckets nor a CUR 2.0 or FOCUS CSV")


def load(path: Path, kind: str | None = None) -> tuple[str, list[BillRow]]:
    """(kind, rows) of one bill file; ``kind`` detected from the content when not given."""
    text = path.read_text(encoding="utf-8-sig")
    chosen = kind or detect(text)
    if chosen not in IMPORTERS:
        raise BillError(f"unknown bill kind {chosen!r}: choose from {', '.join(KINDS)}")
    try:
        return chosen, IMPORTERS[chosen](text)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BillError):
            raise BillError(f"{path}: {exc}") from None
        raise BillError(f"{path}: not a {chosen} file ({type(exc).__name__}: {exc})") from None
