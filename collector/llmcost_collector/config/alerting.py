"""The contact syntax of ``teams[].contact``, checked when the config loads.

A contact is one or more destinations separated by commas: ``#channel`` (Slack), an e-mail
address, or an ``http(s)://`` URL (a generic webhook): what Alertmanager receivers are made of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

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
