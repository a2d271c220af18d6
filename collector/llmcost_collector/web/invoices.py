"""``GET /api/v1/invoices``: the invoice engine's invoices over HTTP, for the page's invoice
generator and for anyone who would rather not run ``llmcost invoice``.

The documents are ``Invoicing.invoices`` (as issued when the month is closed, else a draft
computed now), rendered by ``invoice.render``: JSON, Markdown, CSV, HTML or PDF. The team is a
query parameter, so any team name (slashes, ``__proto__``, spaces) is one URL-encoded value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from llmcost_collector.auth import AccessPolicy, Grant
from llmcost_collector.config.schema import Config
from llmcost_collector.invoice.build import Invoicing, Period
from llmcost_collector.invoice.render import FORMATS, render
from llmcost_collector.ledger import Ledger
from llmcost_collector.price.pricer import Pricer
from llmcost_collector.web.access import WebAccess, check_team
from llmcost_collector.web.params import bad, check_known

MEDIA = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


def _filename(period: str, team: str | None, fmt: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in team) if team else "all"
    return f"invoice-{period}-{safe}.{fmt}"


def invoices_router(
    ledger: Ledger,
    config: Callable[[], Config],
    pricer: Callable[[], Pricer],
    access: WebAccess | None = None,
) -> APIRouter:
    """The invoices route; a team-scoped read token gets its teams' invoices only (403 for
    another team's)."""
    router = APIRouter(tags=["invoices"])
    read = Depends((access or WebAccess(AccessPolicy)).read)

    @router.get(
        "/api/v1/invoices",
        summary="A month's invoices from the invoice engine: JSON, Markdown, CSV, HTML or PDF",
        description="Every team's invoice of `period` (default this month), or `team`'s: as issued "
        "once the month is closed, else a draft computed now. `format=json` (default) answers "
        "`{period, invoices: [...]}`; `md`, `csv`, `html` and `pdf` are the printed invoice as a "
        "download (PDF: one team).",
    )
    def invoices(
        request: Request,
        period: str | None = Query(None, description="month YYYY-MM (default: this month, UTC)"),
        team: str | None = Query(None, min_length=1, max_length=256, description="one team"),
        format: str = Query("json", description=f"one of {', '.join(FORMATS)}"),
        grant: Grant = read,
    ) -> Response:
        check_known(request, ("period", "team", "format"))
        check_team(grant, team)
        if format not in FORMATS:
            raise bad(f"format: must be one of {', '.join(FORMATS)}, not {format!r}")
        try:
            month = Period.parse(period) if period else Period.of(datetime.now(timezone.utc).date())
        except ValueError as exc:
            raise bad(f"period: {exc}") from None
        documents = Invoicing(ledger, config(), pricer()).invoices(month, team)
        if grant.teams is not None:
            documents = [doc for doc in documents if doc["team"] in grant.teams]
        if format == "json":
            return JSONResponse({"period": month.name, "invoices": documents})
        if format == "pdf" and team is None:
            raise bad("format: pdf is one invoice: give team")
        if not documents:
            raise bad(
                f"team: no invoice for {team!r} in {month.name}" if team else f"no invoices in {month.name}"
            )
        headers = {"Content-Disposition": f'attachment; filename="{_filename(month.name, team, format)}"'}
        if format == "html":
            headers = {}
        return Response(render(documents, format), media_type=MEDIA[format], headers=headers)

    return router
