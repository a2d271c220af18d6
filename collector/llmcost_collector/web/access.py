"""Tokens on the API port as FastAPI dependencies, and a team-scoped read token's forced filters.

Each route declares what it needs (``Depends(access.read)``, ``Depends(access.admin)``); the
dependency answers 401 without a valid token (with a Basic challenge, so a browser asks for it
once and then sends it with the page's data calls and downloads) and 403 for a token of another
role. ``/metrics`` and the static files are ASGI apps rather than routes, so ``guarded`` wraps
them with the same check. The policy is read per request from the configuration in force, so a
reload swaps tokens for the next request.

A read token scoped to teams sees only their data: every ledger query gets a ``team`` filter of
its teams, and a request that names another team is refused (403), not answered empty.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from http import HTTPStatus

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from llmcost_collector.auth import ADMIN, METRICS, READ, RESERVE, AccessPolicy, Denied, Grant
from llmcost_collector.ledger.query import Filter

CHALLENGE = {"WWW-Authenticate": 'Basic realm="llmcost", charset="UTF-8"'}


def forbidden(message: str) -> HTTPException:
    return HTTPException(status_code=HTTPStatus.FORBIDDEN, detail=message)


def _http_error(denied: Denied) -> HTTPException:
    headers = CHALLENGE if denied.status == HTTPStatus.UNAUTHORIZED else None
    return HTTPException(status_code=denied.status, detail=denied.message, headers=headers)


class WebAccess:
    """The dependencies of the API port's routes, over the access policy in force."""

    def __init__(self, policy: Callable[[], AccessPolicy]) -> None:
        self.policy = policy

    def _dependency(self, roles: Collection[str], every_team: bool = False) -> Callable[[Request], Grant]:
        def authorize(request: Request) -> Grant:
            try:
                return self.policy().authorize(
                    request.headers.get("authorization"), roles, every_team=every_team
                )
            except Denied as denied:
                raise _http_error(denied) from None

        return authorize

    @property
    def read(self) -> Callable[[Request], Grant]:
        return self._dependency(READ)

    @property
    def admin(self) -> Callable[[Request], Grant]:
        return self._dependency(ADMIN)

    @property
    def reserve(self) -> Callable[[Request], Grant]:
        return self._dependency(RESERVE)

    def guarded(self, app: ASGIApp, roles: Collection[str] = READ, every_team: bool = False) -> ASGIApp:
        """``app`` (an ASGI app, not a route) behind the same check: ``/metrics``, static files."""
        return _Guarded(app, self.policy, roles, every_team)

    def metrics(self, app: ASGIApp) -> ASGIApp:
        return self.guarded(app, METRICS, every_team=True)


class _Guarded:
    """An ASGI app answering 401/403 before ``app`` unless the token passes (an object, not a
    function, so Starlette serves it as ASGI when it is a route's endpoint)."""

    def __init__(
        self, app: ASGIApp, policy: Callable[[], AccessPolicy], roles: Collection[str], every_team: bool
    ) -> None:
        self.app, self.policy, self.roles, self.every_team = app, policy, roles, every_team

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = next(
                (v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"), None
            )
            try:
                self.policy().authorize(header, self.roles, every_team=self.every_team)
            except Denied as denied:
                headers = CHALLENGE if denied.status == HTTPStatus.UNAUTHORIZED else None
                response = JSONResponse({"error": denied.message}, denied.status, headers=headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def check_team(grant: Grant, team: str | None) -> None:
    """403 if ``grant`` is scoped and ``team`` is not one of its teams."""
    if grant.teams is not None and team is not None and team not in grant.teams:
        raise forbidden(f"token {grant.name!r} may not see team {team!r}")


def scoped_filters(grant: Grant, filters: Iterable[Filter]) -> tuple[Filter, ...]:
    """``filters`` plus, for a scoped grant, ``team`` in its teams; 403 if a ``team`` filter names
    another team (a negated one only narrows, so it is kept as asked)."""
    kept = tuple(filters)
    if grant.teams is None:
        return kept
    for f in kept:
        if f.column == "team" and not f.negate:
            for team in f.values:
                check_team(grant, team)
    return (*kept, Filter("team", tuple(sorted(grant.teams))))


def visible_teams(grant: Grant, teams: Iterable[str]) -> list[str]:
    """The teams of ``teams`` the grant may see."""
    return [t for t in teams if grant.teams is None or t in grant.teams]
