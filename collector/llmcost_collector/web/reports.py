"""``/api/v1/reports/summary``: the period's spend report (report/), as ``llmcost report`` prints it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from llmcost_collector.auth import AccessPolicy, Grant
from llmcost_collector.ledger import Ledger
from llmcost_collector.report.render import to_json
from llmcost_collector.report.summary import build_report
from llmcost_collector.web.access import WebAccess, scoped_filters
from llmcost_collector.web.params import PERIOD_PARAMS, check_known, period_range


def reports_router(ledger: Ledger, access: WebAccess | None = None) -> APIRouter:
    """The report route; a team-scoped read token gets the report of its teams' calls."""
    router = APIRouter(tags=["reports"])
    read = Depends((access or WebAccess(AccessPolicy)).read)

    @router.get(
        "/api/v1/reports/summary",
        summary="The spend report: total, environment -> feature tree, top users, cache, sessions, outcomes, tiers",
        description="Contracted cost of the calls that started in the period (default this month). "
        "Money is exact decimal dollars; divisions (averages, per user, per outcome) are rounded to "
        "whole nano-dollars half to even, ratios to 6 decimal places half to even.",
    )
    def summary(
        request: Request,
        period: str | None = Query(None, description="today, this_week, this_month, last_month or YYYY-MM"),
        from_: str | None = Query(None, alias="from", description="start, ISO 8601 (instead of period)"),
        to: str | None = Query(None, description="end, ISO 8601, exclusive (instead of period)"),
        top: int = Query(5, ge=1, le=100, description="how many users to list"),
        grant: Grant = read,
    ) -> dict[str, Any]:
        check_known(request, (*PERIOD_PARAMS, "top"))
        start_ns, end_ns = period_range(request)
        scope = scoped_filters(grant, ())
        return to_json(build_report(ledger, start_ns, end_ns, label=period or "", top=top, filters=scope))

    return router
