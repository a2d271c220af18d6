"""Who is asking: a request's credentials matched against the configured tokens and their roles.

Built once per configuration load (``AccessPolicy.from_config``) and swapped whole with the
ingest policy, so a reload that changes tokens takes effect for the next request, never half.
Without any token configured everything is open, as before; with one, every port but the probes
(``/healthz``, ``/readyz``) needs one. A token travels as ``Authorization: Bearer <token>``, or as
the password of HTTP Basic (any user name), which is what a browser sends for the web page and
its data calls once it has asked for it. Presented tokens are compared with every configured
token in constant time (``hmac.compare_digest``, no early exit), and the token itself is never
put into a message: a grant is named by its ``name``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from http import HTTPStatus

from llmcost_collector.config.schema import Config

INGEST = frozenset({"ingest"})
READ = frozenset({"read", "admin"})
ADMIN = frozenset({"admin"})
METRICS = frozenset({"metrics", "read", "admin"})  # a team-scoped read token is refused
RESERVE = frozenset({"ingest", "admin"})  # the guard in a service reserves with its ingest token


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token may see: its role, and for a scoped read token the teams (None: all)."""

    name: str
    role: str
    teams: frozenset[str] | None = None


OPEN = Grant("anonymous", "admin")  # no token configured: everything as before


class Denied(Exception):
    """401 (no valid token) or 403 (a valid token of the wrong role or team)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def presented_token(header: str | None) -> bytes | None:
    """The token of an ``Authorization`` header: Bearer, or the password of Basic."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value.encode()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        _, colon, password = decoded.partition(b":")
        return password if colon and password else None
    return None


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    tokens: tuple[tuple[bytes, Grant], ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> AccessPolicy:
        """``access.tokens`` plus ``ingest.bearer_tokens`` (ingest-role tokens, the older form)."""
        tokens = [
            (token.encode(), Grant(f"ingest.bearer_tokens[{index}]", "ingest"))
            for index, token in enumerate(config.ingest.bearer_tokens)
        ]
        for entry in config.access.tokens:
            teams = frozenset(entry.teams) if entry.teams is not None else None
            tokens.append((entry.secret().encode(), Grant(entry.name, entry.role, teams)))
        return cls(tuple(tokens))

    @property
    def required(self) -> bool:
        return bool(self.tokens)

    def identify(self, header: str | None) -> Grant | None:
        """The grant of the presented token; every configured token is compared, match or not."""
        presented = presented_token(header)
        if presented is None:
            return None
        found = None
        for secret, grant in self.tokens:
            if hmac.compare_digest(presented, secret) and found is None:
                found = grant
        return found

    def authorize(self, header: str | None, roles: Collection[str], *, every_team: bool = False) -> Grant:
        """The caller's grant if its role is one of ``roles`` (and, with ``every_team``, it is not
        scoped to some teams); ``Denied`` otherwise."""
        if not self.required:
            return OPEN
        grant = self.identify(header)
        if grant is None:
            raise Denied(HTTPStatus.UNAUTHORIZED, "missing or invalid token")
        if grant.role not in roles:
            raise Denied(HTTPStatus.FORBIDDEN, f"token {grant.name!r} (role {grant.role}) may not do this")
        if every_team and grant.teams is not None:
            raise Denied(HTTPStatus.FORBIDDEN, f"token {grant.name!r} sees only some teams' data")
        return grant
