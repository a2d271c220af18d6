"""``/api/v1/sessions``: workflows read from the ledger's session rollups (ledger/sessions.py).

They come from the ledger, so they survive a collector restart and every replica sharing a
ledger answers the same. Money is exact decimal dollar strings; the summary's average is the
only division and is rounded to whole nano-dollars, half to even (``money.round_nanos``).
Percentiles are nearest-rank: always the cost of one real session of the type.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from llmcost_collector.auth import AccessPolicy, Grant
from llmcost_collector.ledger import Ledger
from llmcost_collector.ledger.sessions import SESSION_FILTERS, Session, SessionQuery
from llmcost_collector.money import round_nanos
from llmcost_collector.web.access import WebAccess, scoped_filters
from llmcost_collector.web.params import (
    PERIOD_PARAMS,
    check_known,
    filter_names,
    filters,
    iso,
    period_range,
    seconds,
    usd,
    usd_amount,
)

FILTER_HELP = f"filters: {', '.join(SESSION_FILTERS)} (a,b for any of them; name!=a for none)"
PERIOD_HELP = "period: today, this_week, this_month, last_month or YYYY-MM (default this_month)"
# The filters are read from the query string (``name!`` keys cannot be Python parameters), so the
# OpenAPI document lists them here.
FILTER_DOCS = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
         "description": f"{'exclude' if name.endswith('!') else 'only'} sessions whose {name.rstrip('!')} is one of a,b"}
        for name in filter_names(SESSION_FILTERS)
    ]
}  # fmt: skip
LIMIT = Query(100, ge=1, le=10_000, description="at most this many sessions")
PERIOD = Query(None, description=PERIOD_HELP)
FROM = Query(None, alias="from", description="start, ISO 8601 (instead of period)")
TO = Query(None, description="end, ISO 8601, exclusive (instead of period)")


def session_json(s: Session) -> dict[str, Any]:
    return {
        "session_id": s.session_id,
        "session_name": s.session_name,
        "user_id": s.user_id,
        "team": s.team,
        "steps": s.steps,
        "errors": s["errors"],
        "unpriced_requests": s["unpriced"],
        "outcomes": s["outcome_count"],
        "cost_usd": usd(s.cost_nanos),
        "list_cost_usd": usd(s["list_nanos"]),
        "chargeback_usd": usd(s["chargeback_nanos"]),
        "first_call": iso(s.first_start_ns),
        "last_call": iso(s.last_end_ns),
        "duration_seconds": seconds(s.duration_ns),
    }


def _query(request: Request, grant: Grant, extra: tuple[str, ...], **options: Any) -> SessionQuery:
    check_known(request, (*PERIOD_PARAMS, *filter_names(SESSION_FILTERS), *extra))
    start_ns, end_ns = period_range(request)
    return SessionQuery(start_ns, end_ns, scoped_filters(grant, filters(request, SESSION_FILTERS)), **options)


def _period(query: SessionQuery) -> dict[str, str]:
    return {"from": iso(query.start_ns), "to": iso(query.end_ns)}


def sessions_router(ledger: Ledger, access: WebAccess | None = None) -> APIRouter:
    """The sessions routes; a team-scoped read token sees its teams' sessions only."""
    router = APIRouter(tags=["sessions"])
    read = Depends((access or WebAccess(AccessPolicy)).read)

    @router.get(
        "/api/v1/sessions",
        openapi_extra=FILTER_DOCS,
        summary="Sessions (workflows) of a period, from the ledger",
        description="One row per session whose first call started in the period: name, steps (LLM "
        "calls), cost, duration, first and last call, user, team. " + FILTER_HELP + ".",
    )
    def sessions(
        request: Request,
        period: str | None = PERIOD,
        from_: str | None = FROM,
        to: str | None = TO,
        order_by: Literal["cost", "steps", "duration", "first_call", "last_call"] = Query("cost"),
        order: Literal["desc", "asc"] = Query("desc"),
        limit: int = LIMIT,
        grant: Grant = read,
    ) -> dict[str, Any]:
        query = _query(
            request,
            grant,
            ("order_by", "order", "limit"),
            order_by=order_by,
            descending=order == "desc",
            limit=limit,
        )
        rows = ledger.sessions(query)
        return {
            **_period(query),
            "order_by": order_by,
            "order": order,
            "sessions": [session_json(s) for s in rows],
        }

    @router.get(
        "/api/v1/sessions/summary",
        openapi_extra=FILTER_DOCS,
        summary="Cost per workflow type: runs, average, p50, p95, max, and per step",
        description="Per session name: runs, steps, total, average (rounded to whole nano-dollars, "
        "half to even), nearest-rank p50 and p95, max; and per session path (step) its calls, "
        "cost and cost per run. " + FILTER_HELP + ".",
    )
    def summary(
        request: Request,
        group_by: Literal["session_name"] = Query("session_name", description="workflow type: session_name"),
        period: str | None = PERIOD,
        from_: str | None = FROM,
        to: str | None = TO,
        grant: Grant = read,
    ) -> dict[str, Any]:
        query = _query(request, grant, ("group_by",))
        return summary_json(ledger, query)

    @router.get(
        "/api/v1/sessions/outliers",
        openapi_extra=FILTER_DOCS,
        summary="Expensive sessions: above the p95 of their type, or above an amount",
        description="above=p95 (default): sessions costing more than the nearest-rank p95 of their "
        "own session name in the period; above=0.45: sessions costing more than $0.45. " + FILTER_HELP + ".",
    )
    def outliers(
        request: Request,
        above: str = Query("p95", description="p95, or a decimal dollar amount"),
        period: str | None = PERIOD,
        from_: str | None = FROM,
        to: str | None = TO,
        limit: int = LIMIT,
        grant: Grant = read,
    ) -> dict[str, Any]:
        extra = ("above", "limit")
        if above == "p95":
            query = _query(request, grant, extra, limit=limit)
            found = ledger.session_outliers(query)
        else:
            amount = usd_amount("above", above)
            query = _query(request, grant, extra, limit=limit, min_cost_nanos=amount)
            found = [(s, amount) for s in ledger.sessions(query)]
        return {
            **_period(query),
            "above": above,
            "sessions": [{**session_json(s), "threshold_usd": usd(limit_nanos)} for s, limit_nanos in found],
        }

    return router


def summary_json(ledger: Ledger, query: SessionQuery) -> dict[str, Any]:
    """The summary document (also used by the report)."""
    types = ledger.session_summary(query)
    steps: dict[str, list[Any]] = {}
    for step in ledger.session_steps(query):
        steps.setdefault(step.session_name, []).append(step)
    out = []
    for t in types:
        out.append(
            {
                "session_name": t.session_name,
                "runs": t.runs,
                "steps": t.steps,
                "unpriced_requests": t.unpriced,
                "total_usd": usd(t.total_nanos),
                "average_usd": usd(round_nanos(Decimal(t.total_nanos) / t.runs)),
                "p50_usd": usd(t.percentiles[50]),
                "p95_usd": usd(t.percentiles[95]),
                "max_usd": usd(t.max_nanos),
                "steps_by_path": [
                    {
                        "session_path": s.session_path,
                        "calls": s.calls,
                        "unpriced_requests": s.unpriced,
                        "cost_usd": usd(s.cost_nanos),
                        "cost_per_run_usd": usd(round_nanos(Decimal(s.cost_nanos) / t.runs)),
                    }
                    for s in steps.get(t.session_name, [])
                ],
            }
        )
    return {**_period(query), "group_by": "session_name", "percentiles": "nearest-rank", "types": out}
