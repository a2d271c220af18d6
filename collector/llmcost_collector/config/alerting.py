"""Where alerts go: the ``alerting:`` section and the contact syntax of ``teams[].contact``.

A contact is one or more destinations separated by commas: ``#channel`` (Slack), an e-mail
address, or an ``http(s)://`` URL (a generic webhook): what Alertmanager receivers are made of.
``llmcost alertmanager-config`` turns them into Alertmanager's configuration; both are checked
when the config loads, so a typo shows in ``llmcost config check``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DURATION = r"^[0-9]+(ms|s|m|h|d)$"
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_CHANNEL = re.compile(r"^#[A-Za-z0-9_.\-]{1,80}$")
_URL = re.compile(r"^https?://[^\s,]+$")


@dataclass(frozen=True)
class Destination:
    kind: Literal["slack", "email", "webhook"]
    target: str


def parse_contact(text: str) -> list[Destination]:
    """``"#finops, finops@example.com"`` -> destinations; ValueError naming what is not one."""
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if _CHANNEL.match(part):
            found.append(Destination("slack", part))
        elif _EMAIL.match(part):
            found.append(Destination("email", part))
        elif _URL.match(part):
            found.append(Destination("webhook", part))
        else:
            raise ValueError(f"{part!r} is not a #slack-channel, an e-mail address or an http(s):// URL")
    return found


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Smtp(_Strict):
    """Mail settings for e-mail contacts; the password stays in a file Alertmanager reads."""

    smarthost: str = Field(pattern=r"^[^\s:]+:[0-9]+$", description="host:port")
    sender: str = Field(alias="from", pattern=r"^[^@\s,]+@[^@\s,]+$", description="the From address")
    auth_username: str = ""
    auth_password_file: str = Field("", description="file Alertmanager reads the password from")
    require_tls: bool = True


class Alerting(_Strict):
    """Who hears what, for ``llmcost alertmanager-config``: FinOps, a default and an on-call
    contact besides each team's own ``teams[].contact``. Secrets (the Slack webhook URL, the SMTP
    password) are file paths Alertmanager reads, never values in this configuration."""

    finops_contact: str = Field("", description="receives every budget and pricing alert")
    default_contact: str = Field("", description="alerts no other route takes")
    oncall_contact: str = Field("", description="critical alerts of teams without a contact")
    slack_api_url_file: str = Field("", description="file holding the Slack incoming-webhook URL")
    smtp: Smtp | None = None
    group_wait: str = Field("30s", pattern=_DURATION)
    group_interval: str = Field("5m", pattern=_DURATION)
    repeat_interval: str = Field("4h", pattern=_DURATION)

    @field_validator("finops_contact", "default_contact", "oncall_contact")
    @classmethod
    def _contact(cls, value: str) -> str:
        parse_contact(value)
        return value
