"""Invoices printed: Markdown, HTML, PDF, CSV and JSON, all from the same invoice document.

Markdown and HTML come from Jinja2 templates (``invoice/templates``); the PDF is WeasyPrint
rendering the very HTML page, so the two never disagree. The HTML carries a small inline SVG
chart of the billed lines (no script, no CDN). Amounts printed are the document's cents, which
add up to its printed total; CSV and JSON also carry the exact nano-dollar amounts.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from llmcost_collector.invoice.document import dumps

FORMATS = ("md", "html", "pdf", "csv", "json")
CSV_COLUMNS = (
    "invoice",
    "status",
    "period",
    "team",
    "kind",
    "description",
    "quantity",
    "unit",
    "provider",
    "model",
    "feature",
    "requests",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "list_usd",
    "contracted_usd",
    "markup_percent",
    "markup_usd",
    "amount_usd",
    "amount",
    "informational",
    "reference",
    "reason",
)
CHART_BARS = 8


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("llmcost_collector.invoice", "templates"),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals["TOKEN_LINES"] = ("usage", "failed_requests", "unpriced")
    env.globals["money"] = lambda text: f"{Decimal(text):.2f}" if text else ""
    env.globals["tokens"] = lambda line: " / ".join(
        f"{line['tokens'].get(name, 0):,}"
        for name in ("input", "cache_read", "cache_write", "output", "reasoning")
    )
    return env


_ENV = _environment()


def spend_chart(doc: dict[str, Any]) -> str:
    """An inline SVG bar chart of the largest billed lines (widths only: not money of record)."""
    billed = [line for line in doc["lines"] if not line["informational"] and Decimal(line["amount_usd"]) > 0]
    billed.sort(key=lambda line: Decimal(line["amount_usd"]), reverse=True)
    bars = billed[:CHART_BARS]
    if not bars:
        return ""
    largest = Decimal(bars[0]["amount_usd"])
    height = 18 * len(bars) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="{height}" role="img" aria-label="spend by line">'
    ]
    for index, line in enumerate(bars):
        width = int(Decimal(360) * Decimal(line["amount_usd"]) / largest) if largest else 0
        y = 5 + index * 18
        label = _ENV.from_string("{{ text }}").render(text=line["description"][:40])  # escaped
        parts.append(
            f'<text x="0" y="{y + 12}" font-size="10">{label}</text>'
            f'<rect x="230" y="{y + 2}" width="{max(width, 1)}" height="12" fill="#4a7ebb"/>'
            f'<text x="{236 + width}" y="{y + 12}" font-size="10">{line["amount"]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def to_markdown(doc: dict[str, Any]) -> str:
    return _ENV.get_template("invoice.md.j2").render(doc=doc)


def to_html(doc: dict[str, Any]) -> str:
    return _ENV.get_template("invoice.html.j2").render(doc=doc, chart=spend_chart(doc))


def to_pdf(doc: dict[str, Any]) -> bytes:
    from weasyprint import HTML

    pdf = HTML(string=to_html(doc)).write_pdf()
    assert pdf is not None  # write_pdf without a target returns the bytes
    return bytes(pdf)


def to_csv(documents: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for doc in documents:
        rows = [
            *doc["lines"],
            {
                "kind": "total",
                "description": "total",
                "amount_usd": doc["total_usd"],
                "amount": doc["total"],
                "tokens": {},
            },
        ]
        for line in rows:
            tokens = line.get("tokens") or {}
            writer.writerow(
                [
                    doc["number"],
                    doc["status"],
                    doc["period"],
                    doc["team"],
                    line["kind"],
                    line["description"],
                    line.get("quantity", ""),
                    line.get("unit", ""),
                    line.get("provider", ""),
                    line.get("model", ""),
                    line.get("feature", ""),
                    line.get("requests", ""),
                    *(
                        tokens.get(name, "")
                        for name in ("input", "cache_read", "cache_write", "output", "reasoning")
                    ),
                    line.get("list_usd", ""),
                    line.get("contracted_usd", ""),
                    line.get("markup_percent") or "",
                    line.get("markup_usd", ""),
                    line["amount_usd"],
                    line["amount"],
                    line.get("informational", ""),
                    line.get("reference", ""),
                    line.get("reason", ""),
                ]
            )
    return buffer.getvalue()


def render(documents: list[dict[str, Any]], fmt: str) -> str | bytes:
    """All ``documents`` in one output of format ``fmt`` (PDF: one document only)."""
    if fmt == "json":
        return dumps(documents)
    if fmt == "csv":
        return to_csv(documents)
    if fmt == "md":
        return "\n".join(to_markdown(doc) for doc in documents)
    if fmt == "html":
        return "\n".join(to_html(doc) for doc in documents)
    if fmt == "pdf":
        (doc,) = documents
        return to_pdf(doc)
    raise ValueError(f"unknown invoice format {fmt!r}; choose from {', '.join(FORMATS)}")


def render_one(doc: dict[str, Any], fmt: str) -> str | bytes:
    """One invoice (JSON: the document itself, not a list)."""
    return dumps(doc) if fmt == "json" else render([doc], fmt)
