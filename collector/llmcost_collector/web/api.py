"""The collector's own HTTP port (9464): ``/metrics``, ``/healthz``, ``/readyz``, ``/api/v1/...``, ``/``.

The query API reads the ledger, so its dollars are exact: amounts are JSON strings holding
decimal dollars (``"12.345678901"``), never floats.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from llmcost_collector.ledger import GROUPABLE, Ledger
from llmcost_collector.money import format_usd
from llmcost_collector.periods import epoch_ns, period_starts

log = logging.getLogger(__name__)


class BadQuery(ValueError):
    pass


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


def spend_report(ledger: Ledger, query: dict[str, list[str]], now: datetime | None = None) -> dict[str, Any]:
    """``GET /api/v1/spend``: ledger totals grouped by the requested attribution columns."""
    now = now or datetime.now(timezone.utc)
    start = _parse_time(_one(query, "from"), period_starts(now)["monthly"])
    end = _parse_time(_one(query, "to"), now) + (0 if _one(query, "to") else 1)
    group_by = tuple(g for g in (_one(query, "group_by") or "team").split(",") if g)
    unknown = [g for g in group_by if g not in GROUPABLE]
    if unknown:
        raise BadQuery(f"cannot group by {', '.join(unknown)}; choose from {', '.join(sorted(GROUPABLE))}")
    filters = {key: values[0] for key, values in query.items() if key in GROUPABLE and values}
    rows = []
    spend = ledger.spend(start, end, group_by=group_by, filters=filters)
    for row in sorted(spend, key=lambda r: -(r.contracted_nanos or 0)):
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
        "from": datetime.fromtimestamp(start / 1e9, timezone.utc).isoformat(),
        "to": datetime.fromtimestamp(end / 1e9, timezone.utc).isoformat(),
        "group_by": list(group_by),
        "rows": rows,
    }


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def make_api_handler(
    registry: CollectorRegistry,
    ledger: Ledger,
    ready: Callable[[], tuple[bool, str]],
) -> type[BaseHTTPRequestHandler]:
    page = resources.files("llmcost_collector").joinpath("web/index.html").read_bytes()

    class ApiHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "llmcost"

        def log_message(self, format: str, *args: object) -> None:
            log.debug("api %s", format % args)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            try:
                if url.path == "/metrics":
                    self._send(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif url.path == "/healthz":
                    self._json(HTTPStatus.OK, {"status": "ok"})
                elif url.path == "/readyz":
                    ok, why = ready()
                    self._json(
                        HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, {"ready": ok, "detail": why}
                    )
                elif url.path == "/api/v1/spend":
                    self._json(HTTPStatus.OK, spend_report(ledger, query))
                elif url.path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
                else:
                    self._json(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})
            except BadQuery as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            except Exception:  # a broken query must not take the port down
                log.exception("api request failed: %s", self.path)
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error, see collector logs"})

        def _json(self, status: HTTPStatus, doc: object) -> None:
            self._send(status, json.dumps(doc, indent=1).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return ApiHandler
