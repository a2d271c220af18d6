"""A ``Report`` as JSON (data) or Markdown (for people), with one rounding rule each.

* **JSON** carries money as exact decimal dollar strings (``"423.000000000"``). The only amounts
  that are not sums of the ledger are divisions (an average per session, per user, per call, per
  outcome): those are rounded to whole nano-dollars, half to even (``money.round_nanos``, the
  rule pricing and invoices use). Ratios (shares, hit rates) are decimal strings rounded half to
  even to six places.
* **Markdown** (``llmcost report``, the demo) rounds at presentation only: dollars half to even
  to a hundredth of a cent, shown with at least two decimals (``$423.00``, ``$42.50``,
  ``$0.0123``), and percentages half to even to whole percent (``Production: $423.00 (87%)``).
  A feature's percentage is of its environment, an environment's of the total; each is rounded
  on its own, so a level's percentages may add up to 99% or 101%.
* Every line that holds unpriced calls says how many (``unpriced_requests``; "+ 2 unpriced" after
  its cost in Markdown): their cost is missing from it until they are re-priced, never $0.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from llmcost_collector.money import format_usd, nanos_to_usd, round_nanos
from llmcost_collector.report.summary import Node, Report

_CENT_HUNDREDTH = Decimal("0.0001")
_RATIO = Decimal("0.000001")

ROUNDING_RULE = (
    "money: exact decimal dollars; divisions rounded to whole nano-dollars, half to even; "
    "ratios rounded half to even to 6 decimal places"
)


# --- shared arithmetic ------------------------------------------------------------------------


def per(nanos: int, count: int) -> int | None:
    """``nanos / count`` in whole nano-dollars (half to even); None when there is nothing to divide by."""
    return round_nanos(Decimal(nanos) / count) if count else None


def _ratio(part: int, whole: int) -> Decimal | None:
    return Decimal(part) / whole if whole else None


# --- JSON -------------------------------------------------------------------------------------


def _usd(nanos: int | None) -> str | None:
    return None if nanos is None else format_usd(nanos)


def _ratio_text(part: int, whole: int) -> str | None:
    ratio = _ratio(part, whole)
    return None if ratio is None else format(ratio.quantize(_RATIO, rounding=ROUND_HALF_EVEN), "f")


def _instant(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 10**9, timezone.utc)


def to_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    total = report.cost_nanos
    cache = report.cache
    return {
        "period": report.label,
        "from": _instant(report.start_ns).isoformat(),
        "to": _instant(report.end_ns).isoformat(),
        "rounding": ROUNDING_RULE,
        "total": {
            "requests": report.requests,
            "errors": report.errors,
            "unpriced_requests": report.unpriced,
            "cost_usd": format_usd(total),
            "list_cost_usd": format_usd(report.list_nanos),
            "chargeback_usd": format_usd(report.chargeback_nanos),
        },
        "environments": [
            {
                "environment": env.name,
                "requests": env.requests,
                "unpriced_requests": env.unpriced,
                "cost_usd": format_usd(env.cost_nanos),
                "share": _ratio_text(env.cost_nanos, total),
                "features": [
                    {
                        "feature": f.name,
                        "requests": f.requests,
                        "unpriced_requests": f.unpriced,
                        "cost_usd": format_usd(f.cost_nanos),
                        "share": _ratio_text(f.cost_nanos, env.cost_nanos),
                    }
                    for f in env.children
                ],
            }
            for env in report.environments
        ],
        "top_users": [
            {
                "user_id": u.user_id,
                "user_tier": ",".join(t for t in u.tiers if t),  # the tiers it had (none: "")
                "requests": u.requests,
                "unpriced_requests": u.unpriced,
                "cost_usd": format_usd(u.cost_nanos),
                "cache_lookups": u.cache_lookups,
                "cache_hits": u.cache_hits,
                "cache_hit_rate": _ratio_text(u.cache_hits, u.cache_lookups),
                "savings_usd": format_usd(u.savings_nanos),
            }
            for u in report.top_users
        ],
        "cache": {
            "requests": cache.requests,
            "lookups": cache.lookups,
            "hits": cache.hits,
            "hit_rate": _ratio_text(cache.hits, cache.lookups),
            "savings_usd": format_usd(cache.savings_nanos),
            "prompt_cache_read_share": _ratio_text(cache.cache_read_tokens, cache.input_tokens),
            "prompt_cache_savings_usd": format_usd(cache.prompt_cache_savings_nanos),
        },
        "sessions": [
            {
                "session_name": s.session_name,
                "runs": s.runs,
                "unpriced_requests": s.unpriced,
                "total_usd": format_usd(s.total_nanos),
                "average_usd": _usd(per(s.total_nanos, s.runs)),
            }
            for s in report.sessions
        ],
        "outcomes": [
            {
                "outcome": o.outcome,
                "count": o.count,
                "unpriced_requests": o.unpriced,
                "cost_usd": format_usd(o.cost_nanos),
                "cost_per_outcome_usd": _usd(per(o.cost_nanos, o.count)),
            }
            for o in report.outcomes
        ],
        "user_tiers": [
            {
                "user_tier": t.tier,
                "users": t.users,
                "requests": t.requests,
                "outcomes": t.outcomes,
                "unpriced_requests": t.unpriced,
                "cost_usd": format_usd(t.cost_nanos),
                "cost_per_user_usd": _usd(per(t.cost_nanos, t.users)),
                "cost_per_request_usd": _usd(per(t.cost_nanos, t.requests)),
                "cost_per_outcome_usd": _usd(per(t.cost_nanos, t.outcomes)),
            }
            for t in report.tiers
        ],
    }


# --- Markdown ---------------------------------------------------------------------------------


def dollars(nanos: int | None) -> str:
    """``$1,234.50``, ``$0.0123``: half to even to a hundredth of a cent, at least two decimals."""
    if nanos is None:
        return "-"
    amount = nanos_to_usd(nanos).quantize(_CENT_HUNDREDTH, rounding=ROUND_HALF_EVEN)
    if not amount:
        amount = abs(amount)  # a tiny refund rounds to $0.00, not -$0.00
    text = f"{amount:,.4f}"
    for _ in range(2):  # drop trailing zeros past the cent
        if text.endswith("0"):
            text = text[:-1]
    return ("-$" + text[1:]) if text.startswith("-") else "$" + text


def priced(nanos: int, unpriced: int) -> str:
    """A line's cost, and how many of its calls it is missing (``$1.20 + 2 unpriced``)."""
    return dollars(nanos) + (f" + {unpriced:,} unpriced" if unpriced else "")


def percent(part: int, whole: int) -> str:
    """Whole percent, half to even (``87%``); ``-`` of nothing."""
    ratio = _ratio(part, whole)
    if ratio is None:
        return "-"
    return f"{(ratio * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)}%"


def _name(value: str) -> str:
    return value or "(none)"


def _tiers(tiers: tuple[str, ...]) -> str:
    named = "/".join(t for t in tiers if t)
    return f"{named} tier" if named else "no tier"


def _tree_lines(nodes: tuple[Node, ...], whole: int, prefix: str) -> list[str]:
    lines = []
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        lines.append(
            f"{prefix}{'└── ' if last else '├── '}{_name(node.name)}: {dollars(node.cost_nanos)} "
            f"({percent(node.cost_nanos, whole)}){f', {node.unpriced:,} unpriced' if node.unpriced else ''}"
        )
        lines += _tree_lines(node.children, node.cost_nanos, prefix + ("    " if last else "│   "))
    return lines


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return ["(none)"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def to_markdown(report: Report) -> str:
    cache = report.cache
    start, end = _instant(report.start_ns), _instant(report.end_ns)
    span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    lines = [f"# LLM spend{' ' + report.label if report.label else ''}: {span}", ""]
    lines += [
        "```",
        f"Total costs: {dollars(report.cost_nanos)} ({report.requests:,} calls, {report.errors:,} errors, "
        f"{report.unpriced:,} unpriced)",
        *_tree_lines(report.environments, report.cost_nanos, ""),
        "```",
        "",
        f"## Top {len(report.top_users)} users by cost",
        "",
    ]
    for rank, u in enumerate(report.top_users, 1):
        lines.append(
            f"{rank}. {u.user_id}: {priced(u.cost_nanos, u.unpriced)} ({_tiers(u.tiers)}), "
            f"{u.requests:,} calls, cache hit rate {percent(u.cache_hits, u.cache_lookups)}, "
            f"savings {dollars(u.savings_nanos)}"
        )
    lines += [
        "",
        "## Cache performance",
        "",
        f"- Hit rate: {percent(cache.hits, cache.lookups)} of {cache.lookups:,} response-cache lookups "
        f"answered from the cache",
        f"- Savings: {dollars(cache.savings_nanos)}",
        f"- Prompt cache: {percent(cache.cache_read_tokens, cache.input_tokens)} of input tokens read "
        f"from the provider's cache, saving {dollars(cache.prompt_cache_savings_nanos)}",
        "",
        "## Sessions: average cost per run",
        "",
    ]
    by_average = sorted(report.sessions, key=lambda s: (-(per(s.total_nanos, s.runs) or 0), s.session_name))
    lines += _table(
        ("session", "runs", "average", "total"),
        [(_name(s.session_name), f"{s.runs:,}", dollars(per(s.total_nanos, s.runs)), priced(s.total_nanos, s.unpriced))
         for s in by_average],
    )  # fmt: skip
    lines += ["", "## Cost per outcome", ""]
    lines += _table(
        ("outcome", "count", "cost of its teams' features", "per outcome"),
        [(o.outcome, f"{o.count:,}", priced(o.cost_nanos, o.unpriced), dollars(per(o.cost_nanos, o.count)))
         for o in report.outcomes],
    )  # fmt: skip
    lines += ["", "## Unit economics by user tier", ""]
    lines += _table(
        ("tier", "users", "calls", "cost", "per user", "per call", "outcomes", "per outcome"),
        [(_name(t.tier), f"{t.users:,}", f"{t.requests:,}", priced(t.cost_nanos, t.unpriced), dollars(per(t.cost_nanos, t.users)),
          dollars(per(t.cost_nanos, t.requests)), f"{t.outcomes:,}", dollars(per(t.cost_nanos, t.outcomes)))
         for t in report.tiers],
    )  # fmt: skip
    return "\n".join(lines) + "\n"
