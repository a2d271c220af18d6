"""The collector's own HTTP port (9464): ``/metrics``, ``/healthz``, ``/readyz``, ``/api/v1/...``,
the web page at ``/`` and the API's reference (``/openapi.json``, browsable at ``/docs``).

A FastAPI application: parameters are declared once, validated (a clear 400, never a silently
ignored parameter) and documented from the same declarations. The query API reads the ledger,
so its dollars are exact: amounts are JSON strings holding decimal dollars (``"12.345678901"``),
never floats. Handlers that touch the ledger are plain functions, which FastAPI runs on its
worker threads, off the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from llmcost_collector import __version__
from llmcost_collector.auth import AccessPolicy, Grant
from llmcost_collector.config.schema import Config
from llmcost_collector.ledger import GROUPABLE, Ledger, SpendRow
from llmcost_collector.metrics.quotes import QuoteMetrics
from llmcost_collector.money import format_usd
from llmcost_collector.periods import epoch_ns, period_starts
from llmcost_collector.price.pricer import Pricer
from llmcost_collector.redact import redact
from llmcost_collector.web import costs
from llmcost_collector.web.access import WebAccess, check_team, scoped_filters
from llmcost_collector.web.costs import BadQuery
from llmcost_collector.web.invoices import invoices_router
from llmcost_collector.web.quote import QuoteRequest, catalog, quote
from llmcost_collector.web.reports import reports_router
from llmcost_collector.web.sessions import sessions_router

log = logging.getLogger(__name__)

FILTERS = tuple(sorted(GROUPABLE))
# The dashboards shipped in dashboards/ (their uids), linked from the page when Grafana is set.
GRAFANA_DASHBOARDS = (
    ("llmcost-overview", "Overview"),
    ("llmcost-chargeback", "Chargeback"),
    ("llmcost-sessions", "Sessions"),
    ("llmcost-efficiency", "Efficiency"),
    ("llmcost-reliability", "Reliability"),
)


def _parse_time(value: str | None, default: datetime) -> int:
    if not value:
        return epoch_ns(default)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadQuery(
            f"invalid time {value!r}: use ISO 8601, e.g. 2026-11-01 or 2026-11-01T00:00:00Z"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return epoch_ns(moment)


def _usd(nanos: int | None) -> str | None:
    return None if nanos is None else format_usd(nanos)


def spend_report(
    ledger: Ledger,
    *,
    group_by: str = "team",
    start: str | None = None,
    end: str | None = None,
    filters: dict[str, str] | None = None,
    now: datetime | None = None,
    teams: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Ledger totals grouped by attribution columns, largest contracted cost first; with
    ``teams``, of those teams' calls only (the ledger's filters take one value, so each team is
    asked for on its own and the groups are summed)."""
    now = now or datetime.now(timezone.utc)
    start_ns = _parse_time(start, period_starts(now)["monthly"])
    end_ns = _parse_time(end, now) + (0 if end else 1)
    columns = tuple(g for g in group_by.split(",") if g)
    unknown = [g for g in columns if g not in GROUPABLE]
    if unknown:
        raise BadQuery(f"cannot group by {', '.join(unknown)}; choose from {', '.join(FILTERS)}")
    filters = filters or {}
    if teams is None or "team" in filters:
        found = ledger.spend(start_ns, end_ns, group_by=columns, filters=filters)
    else:
        found = _summed(
            row
            for team in sorted(teams)
            for row in ledger.spend(start_ns, end_ns, group_by=columns, filters={**filters, "team": team})
        )
    rows = []
    for row in sorted(found, key=lambda r: -(r.contracted_nanos or 0)):
        rows.append(
            {
                **row.group,
                "requests": row.requests,
                "unpriced_requests": row.unpriced,
                "tokens": row.tokens,
                "list_cost_usd": _usd(row.list_nanos),
                "cost_usd": _usd(row.contracted_nanos),
                "chargeback_usd": _usd(row.chargeback_nanos),
            }
        )
    return {
        "from": datetime.fromtimestamp(start_ns // 10**9, timezone.utc).isoformat(),
        "to": datetime.fromtimestamp(end_ns // 10**9, timezone.utc).isoformat(),
        "group_by": list(columns),
        "rows": rows,
    }


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


def _summed(rows: Iterable[SpendRow]) -> list[SpendRow]:
    """Rows of the same group added up (cost sums stay None only if None on every side)."""
    merged: dict[tuple[str, ...], SpendRow] = {}
    for row in rows:
        key = tuple(row.group.values())
        into = merged.get(key)
        if into is None:
            merged[key] = replace(row, group=dict(row.group), tokens=dict(row.tokens))
            continue
        into.requests += row.requests
        into.unpriced += row.unpriced
        for name, count in row.tokens.items():
            into.tokens[name] = into.tokens.get(name, 0) + count
        into.list_nanos = _add(into.list_nanos, row.list_nanos)
        into.contracted_nanos = _add(into.contracted_nanos, row.contracted_nanos)
        into.chargeback_nanos = _add(into.chargeback_nanos, row.chargeback_nanos)
        into.savings_nanos += row.savings_nanos
    return list(merged.values())


class _Metrics:
    """``/metrics`` through prometheus_client's ASGI app (gzip, OpenMetrics negotiation). The
    ledger-derived gauges are refreshed on a worker thread first, so the ledger query behind a
    scrape never blocks the event loop; the exposition then reads the fresh cache."""

    def __init__(self, registry: CollectorRegistry, refresh: Callable[[], object]) -> None:
        self._app = make_asgi_app(registry)
        self._refresh = refresh

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.to_thread.run_sync(self._refresh)
        await self._app(scope, receive, send)


def make_web_app(
    registry: CollectorRegistry,
    ledger: Ledger,
    ready: Callable[[], tuple[bool, str]],
    refresh_gauges: Callable[[], object] = lambda: None,
    budget_status: Callable[[str | None], list[dict[str, Any]]] = lambda _user: [],
    pricer: Pricer | None = None,
    config: Callable[[], Config] | None = None,
    grafana_url: str | None = None,
    quote_metrics: QuoteMetrics | None = None,
    routers: Sequence[APIRouter] = (),
    access: WebAccess | None = None,
    admin_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The port's app; ``access`` checks tokens (default: none configured, all open), and
    ``routers`` are read routes while ``admin_routers`` need the admin role."""
    access = access or WebAccess(AccessPolicy)
    read = Depends(access.read)
    quote_pricer = pricer or Pricer()
    current_config = config or Config.default
    quote_metrics = quote_metrics or QuoteMetrics(registry)
    web = resources.files("llmcost_collector").joinpath("web")
    page = web.joinpath("index.html").read_bytes()
    app = FastAPI(
        title="otel-llmcost collector",
        version=__version__,
        summary="Exact LLM spend from the ledger; metrics for trends and alerts.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the read check
    )
    app.openapi_version = "3.0.3"  # what the bundled Swagger UI renders
    # A Route whose endpoint is an ASGI callable (not a function) is served as a raw ASGI app.
    metrics = access.metrics(_Metrics(registry, refresh_gauges))
    app.router.routes.append(Route("/metrics", metrics, methods=["GET"]))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or err['loc'][0]}: {err['msg']}"
            for err in exc.errors()
        )
        return JSONResponse({"error": reasons}, status_code=400)

    @app.exception_handler(BadQuery)
    async def bad_query(request: Request, exc: BadQuery) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = f"no such path {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:  # one bad query, not the port
        log.exception("api request failed: %s", request.url)
        return JSONResponse({"error": "internal error, see collector logs"}, status_code=500)

    @app.get("/healthz", tags=["probes"], summary="Liveness: the process serves HTTP")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], summary="Readiness: the ledger answers and the queue has room")
    def readyz() -> JSONResponse:  # open like /healthz (orchestrators probe without tokens)
        ok, why = ready()
        return JSONResponse({"ready": ok, "detail": redact(why)}, status_code=200 if ok else 503)

    @app.get(
        "/api/v1/budgets/status",
        tags=["budgets"],
        summary="Every configured budget's period-to-date spend, percent, forecast and state",
        description="From the ledger (exact decimal-dollar strings). Per-user budgets list the "
        "users at or over the amount; with `user_id`, that user's own spend.",
    )
    def budgets_status(
        user_id: str | None = Query(None, max_length=256), grant: Grant = read
    ) -> dict[str, Any]:
        found = budget_status(user_id)
        if grant.teams is not None:  # a scoped token: only budgets of its teams
            found = [b for b in found if b.get("scope_filters", {}).get("team") in grant.teams]
        return {"budgets": found}

    @app.get(
        "/api/v1/spend",
        tags=["spend"],
        summary="Exact ledger totals grouped by attribution columns",
        description="Requests, tokens per class and list / contracted / chargeback cost (decimal "
        "strings, exact) per group, largest cost first. Default: this month so far, by team. "
        f"Filter by any of {', '.join(FILTERS)} (one value each).",
    )
    def spend(
        request: Request,
        group_by: str = Query("team", description=f"comma-separated columns from: {', '.join(FILTERS)}"),
        from_: str | None = Query(
            None, alias="from", description="start, ISO 8601 (default: start of month)"
        ),
        to: str | None = Query(None, description="end, ISO 8601, exclusive (default: now)"),
        grant: Grant = read,
    ) -> dict[str, Any]:
        allowed = {"group_by", "from", "to", *FILTERS}
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise BadQuery(f"unknown parameter {', '.join(unknown)}; filters are {', '.join(FILTERS)}")
        filters = {key: request.query_params[key] for key in FILTERS if key in request.query_params}
        check_team(grant, filters.get("team"))
        return spend_report(
            ledger, group_by=group_by, start=from_, end=to, filters=filters, teams=grant.teams
        )

    @app.get(
        "/api/v1/costs",
        tags=["spend"],
        summary="Costs grouped by any attribution column or property, in time buckets",
        description="Requests, errors, tokens per class (disjoint, as in the metrics), list / "
        "contracted / charged cost and savings (exact decimal strings) and the unpriced count, per "
        "group and bucket, from the ledger's rollups. Filters: any column or `property.<name>` as a "
        "parameter, several values comma-separated (`team=search,support`), `!` after the name "
        "negates (`environment!=staging`). Default: this month, by team, most charged first.",
    )
    def costs_endpoint(
        request: Request,
        group_by: str = Query("team", description="comma-separated columns or property.<name>"),
        bucket: str | None = Query(None, description=f"time bucket: {', '.join(costs.BUCKETS)}"),
        tz: str = Query("UTC", description="IANA time zone for buckets, dates and presets"),
        period: str | None = Query(None, description=f"preset: {', '.join(costs.PRESETS)}"),
        from_: str | None = Query(
            None, alias="from", description="start, ISO 8601 (a date is local midnight)"
        ),
        to: str | None = Query(None, description="end, ISO 8601, exclusive"),
        order_by: str = Query(
            "-charged",
            description=f"{', '.join(costs.ORDER_FIELDS)} or a group_by column; '-' for descending",
        ),
        limit: int | None = Query(
            None, description="keep this many groups, fold the rest into one others row"
        ),
        grant: Grant = read,
    ) -> dict[str, Any]:
        params = {key: ",".join(request.query_params.getlist(key)) for key in request.query_params}
        asked = costs.parse(params)
        query = replace(asked.query, filters=scoped_filters(grant, asked.query.filters))
        return costs.answer(ledger, replace(asked, query=query))

    # Filters are declared in the OpenAPI document too: one optional query parameter each.
    spend_route = next(r for r in app.routes if getattr(r, "path", "") == "/api/v1/spend")
    _document_filters(app, spend_route)

    @app.post(
        "/api/v1/quote",
        dependencies=[read],
        tags=["calculator"],
        summary="A scenario's monthly cost and charge per model, from the invoice engine",
        description="Monthly volume (tokens, or requests x tokens per request with a cached share) "
        "of each chosen model, priced like the ledger (list price, price book) and charged under "
        "the given chargeback settings by the invoice engine; each choice's delta to the first.",
    )
    def quote_endpoint(body: QuoteRequest) -> dict[str, Any]:
        answer = quote(quote_pricer, body)
        quote_metrics.record(answer)
        return answer

    @app.get(
        "/api/v1/quote/stats",
        dependencies=[read],
        tags=["calculator"],
        summary="What the calculator was asked since the collector started",
        description="Per selection (model, capped; chargeback model; monthly volume band): quotes, "
        "summed monthly charge and summed comparison delta to the first choice (exact decimal "
        "strings); the same counts as the llmcost_quote* metrics.",
    )
    def quote_stats() -> dict[str, Any]:
        return {"selections": quote_metrics.summary()}

    @app.get(
        "/api/v1/catalog",
        dependencies=[read],
        tags=["calculator"],
        summary="Models the calculator quotes: price book entries, then list prices",
        description="Each model with its price source, price id, effective date and input / cached "
        "input / output USD per million tokens (decimal strings).",
    )
    def catalog_endpoint(
        search: str = Query("", max_length=200, description="substring of provider/model"),
        limit: int = Query(2000, ge=1, le=10_000),
    ) -> dict[str, Any]:
        return catalog(quote_pricer, search, limit)

    @app.get(
        "/api/v1/links",
        dependencies=[read],
        tags=["page"],
        summary="Where the page links to: the Grafana dashboards, when LLMCOST_GRAFANA_URL is set",
    )
    def links() -> dict[str, Any]:
        if not grafana_url:
            return {"grafana": None, "dashboards": []}
        base = grafana_url.rstrip("/")
        return {
            "grafana": base,
            "dashboards": [
                {"uid": uid, "title": title, "url": f"{base}/d/{uid}"} for uid, title in GRAFANA_DASHBOARDS
            ],
        }

    built_in = (
        sessions_router(ledger, access),
        reports_router(ledger, access),
        invoices_router(ledger, current_config, lambda: quote_pricer, access),
    )
    for router in built_in:
        app.include_router(router)
    for router in routers:  # routes of their own access (the guard's reservations)
        app.include_router(router)
    for router in admin_routers:
        app.include_router(router, dependencies=[Depends(access.admin)])

    @app.get("/", include_in_schema=False, dependencies=[read])
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    # The page's own scripts and styles, shipped in the package: nothing is fetched from elsewhere.
    app.mount("/static/page", access.guarded(StaticFiles(directory=str(web.joinpath("static")))), name="page")

    swagger = resources.files("swagger_ui_bundle").joinpath("vendor")
    bundle = next(p for p in swagger.iterdir() if p.name.startswith("swagger-ui"))
    app.mount("/static/swagger-ui", access.guarded(StaticFiles(directory=str(bundle))), name="swagger-ui")

    @app.get("/openapi.json", include_in_schema=False, dependencies=[read])
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[read])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="otel-llmcost collector API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="",
        )

    return app


def _document_filters(app: FastAPI, route: Any) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for operations in schema["paths"].values():  # validation errors are answered 400, not 422
            for operation in operations.values():
                if "422" in operation.get("responses", {}):
                    invalid = operation["responses"].pop("422")
                    invalid["description"] = "Invalid or unknown parameter (the message says which)"
                    operation["responses"]["400"] = invalid
        params = schema["paths"][route.path]["get"].setdefault("parameters", [])
        for name in FILTERS:
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": f"only rows whose {name} is this value",
                    "schema": {"type": "string"},
                }
            )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
