"""The ``access`` section: who may send, read and administer, as bearer tokens with roles.

Each token has a role: ``ingest`` (OTLP exports and the guard's budget reservations), ``read``
(the API, the web page, invoice downloads; optionally only some teams' data), ``admin`` (what
``read`` may, for every team, plus closing invoices and reloading the configuration) or
``metrics`` (``/metrics`` only). A token is given as a value (``token``) or, to keep secrets out
of the file, as a path (``token_file``, relative to the configuration file) read when the file is
loaded; an unreadable file is a configuration error at its line, like any other. Values are held
as ``SecretStr``, so a printed configuration shows ``**********``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from llmcost_collector.config.includes import error_at

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$"
Role = Literal["ingest", "read", "admin", "metrics"]
ROLES: tuple[Role, ...] = ("ingest", "read", "admin", "metrics")


def check_token(value: str) -> str:
    """A token must be non-empty and free of whitespace (it travels in an HTTP header)."""
    if not value or any(c.isspace() for c in value):
        raise ValueError("tokens must be non-empty and contain no spaces")
    return value


class AccessToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME, description="who holds it (shown in logs, never the token)")
    role: Role
    token: SecretStr | None = Field(None, description="the token itself")
    token_file: str | None = Field(None, description="a file holding the token (relative to this file)")
    teams: list[str] | None = Field(None, description="role read only: only these teams' data")

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_token(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_source(self) -> AccessToken:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give token or token_file, exactly one")
        if self.teams is not None and self.role != "read":
            raise ValueError("teams scope a read token only")
        if self.teams is not None and not self.teams:
            raise ValueError("teams: give at least one team, or leave teams out for every team")
        return self

    def secret(self) -> str:
        """The token value (read from ``token_file`` if it was not loaded yet)."""
        if self.token is not None:
            return self.token.get_secret_value()
        assert self.token_file is not None
        return check_token(Path(self.token_file).read_text(encoding="utf-8").strip())


class Access(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[AccessToken] = Field(
        default_factory=list, description="when any token is configured, every port but the probes needs one"
    )


def read_token_files(access: Access, source: Path, text: str, at: tuple[str, ...] = ("access",)) -> Access:
    """``access`` with every ``token_file`` read (relative to ``source``'s directory); a missing,
    unreadable or invalid file is a ``ConfigError`` at its ``token_file`` line."""
    if not any(t.token_file for t in access.tokens):
        return access
    tokens = []
    for index, entry in enumerate(access.tokens):
        if entry.token_file is None:
            tokens.append(entry)
            continue
        path = source.parent / entry.token_file
        loc: tuple[str | int, ...] = (*at, "tokens", index, "token_file")
        try:
            value = check_token(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise error_at(source, text, loc, f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise error_at(source, text, loc, f"{path}: {exc}") from None
        tokens.append(entry.model_copy(update={"token": SecretStr(value), "token_file": None}))
    return access.model_copy(update={"tokens": tokens})
