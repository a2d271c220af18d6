"""The admin role's routes: close a month's invoices, reload the configuration file.

Both change what everyone is billed or how the collector behaves, so ``make_web_app`` includes
this router behind the admin check. Closing is ``llmcost invoice close`` over HTTP (the month's
invoices stored as final; closing twice is 409); a reload is what SIGHUP does (an invalid file is
refused with its line-precise errors and the running configuration stays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from llmcost_collector.config.schema import Config
from llmcost_collector.invoice.build import Invoicing, Period
from llmcost_collector.ledger import Ledger
from llmcost_collector.ledger.invoice_store import PeriodClosed
from llmcost_collector.price.pricer import Pricer
from llmcost_collector.web.params import bad

# () -> (applied, errors): the file's reload, or None when the collector runs without a file.
Reload = Callable[[], tuple[bool, list[str]]]


def admin_router(
    ledger: Ledger, config: Callable[[], Config], pricer: Callable[[], Pricer], reload: Reload | None
) -> APIRouter:
    router = APIRouter(tags=["admin"])

    @router.post(
        "/api/v1/invoices/close",
        summary="Issue a month's invoices (llmcost invoice close): admin role",
        description="Stores every team's invoice of `period` as final, with its number, prices and "
        "settings; later changes to the month become adjustments of the next open month. 409 if "
        "the month is closed already.",
        responses={409: {"description": "The month is closed already"}},
    )
    def close(period: str = Query(description="the month to close, YYYY-MM")) -> Any:
        try:
            month = Period.parse(period)
        except ValueError as exc:
            raise bad(f"period: {exc}") from None
        try:
            documents = Invoicing(ledger, config(), pricer()).close(month)
        except PeriodClosed as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return {
            "period": month.name,
            "invoices": [{"number": d["number"], "team": d["team"], "total": d["total"]} for d in documents],
        }

    @router.post(
        "/api/v1/config/reload",
        summary="Reload the configuration file now (what SIGHUP does): admin role",
        description="`applied: true` when the file validated and is in force; otherwise `false` "
        "with its errors (file:line:col) and the running configuration stays. 409 without a file.",
        responses={409: {"description": "The collector runs without a configuration file"}},
    )
    def reload_config() -> Any:
        if reload is None:
            return JSONResponse({"error": "no configuration file (LLMCOST_CONFIG) to reload"}, 409)
        applied, errors = reload()
        return {"applied": applied, "errors": errors}

    return router
