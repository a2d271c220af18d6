"""A reconciliation as plain rows (table and CSV) and as a JSON document; money as exact decimal
strings of dollars, ratios as decimal strings, never floats."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmcost_collector.reconcile.compare import TOKEN_CLASSES, Line, Reconciliation, usd

LINE_COLUMNS = (
    "day", "provider", "model", "bill_tokens", "ledger_tokens", "token_capture", "bill_usd", "ledger_usd",
    "usd_capture", "diff_input", "diff_cache_read", "diff_cache_write", "diff_output", "note", "tier",
)  # fmt: skip
TOTAL_COLUMNS = (
    "provider",
    "bill_tokens",
    "ledger_tokens",
    "token_capture",
    "bill_usd",
    "ledger_usd",
    "usd_capture",
)


def _text(value: int | Decimal | None) -> str:
    return "" if value is None else str(value)


def line_columns(by_api_key: bool = False) -> tuple[str, ...]:
    """The columns of the lines: ``LINE_COLUMNS``, with ``api_key`` after the model when split by key."""
    return (*LINE_COLUMNS[:3], "api_key", *LINE_COLUMNS[3:]) if by_api_key else LINE_COLUMNS


def line_cells(line: Line, by_api_key: bool = False) -> list[str]:
    diffs = line.token_differences
    key = (line.api_key or "(none)",) if by_api_key else ()
    return [
        line.day.isoformat(), line.provider, line.model or "(no model)", *key,
        _text(line.bill.total_tokens), _text(line.ledger.total_tokens), _text(line.token_capture),
        usd(line.bill.cost_nanos), usd(line.ledger.cost_nanos), _text(line.cost_capture),
        *(("",) * 4 if diffs is None else tuple(str(diffs[name]) for name in TOKEN_CLASSES)),
        line.note,
        ",".join(sorted(line.tiers)),  # batch or priority: billed at other rates than the ledger may assume
    ]  # fmt: skip


def total_cells(result: Reconciliation) -> list[list[str]]:
    return [
        [
            t.provider,
            _text(t.bill_tokens if t.has_tokens else None),
            _text(t.ledger_tokens if t.has_tokens else None),
            _text(t.token_capture),
            usd(t.bill_nanos if t.has_cost else None),
            usd(t.ledger_nanos if t.has_cost else None),
            _text(t.cost_capture),
        ]
        for t in result.totals
    ]


def to_json(result: Reconciliation) -> dict[str, Any]:
    def side(s: Any) -> dict[str, Any]:
        return {
            "tokens": s.tokens, "requests": s.requests,
            "cost_usd": usd(s.cost_nanos) or None, "list_usd": usd(s.list_nanos) or None,
        }  # fmt: skip

    return {
        "period": result.period,
        "providers": [
            dict(zip(TOTAL_COLUMNS, cells, strict=True)) | {"capture": _text(total.capture) or None}
            for total, cells in zip(result.totals, total_cells(result), strict=True)
        ],
        "lines": [
            {
                "day": line.day.isoformat(),
                "provider": line.provider,
                "model": line.model,
                "api_key": line.api_key,
                "bill_models": sorted(line.bill_models),
                "scopes": sorted(line.scopes),
                "tiers": sorted(line.tiers),
                "bill": side(line.bill),
                "ledger": side(line.ledger),
                "token_capture": _text(line.token_capture) or None,
                "usd_capture": _text(line.cost_capture) or None,
                "token_differences": line.token_differences,
                "note": line.note,
            }
            for line in result.lines
        ],
        "unseen_models": [{"provider": p, "model": m} for p, m in result.unseen_models],
        "gap_days": [
            {"provider": p, "day": d.isoformat(), "missing_on": side_} for p, d, side_ in result.gap_days
        ],
        "outside_period": result.outside_period,
    }
