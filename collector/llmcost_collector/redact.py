"""Secrets out of text: the password of any URL (``postgresql://user:pass@host``) and known
secret values (tokens, the ledger password) replaced before a message is printed or logged.

``redact`` works on any text, so an error raised deep in a driver (which may quote the URL it
was given) is safe to show; ``RedactingFilter`` applies the same to every log record of a
handler, including the formatted traceback of an exception.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
# scheme://user:password@ ; the password runs to the last @ before the host (it may hold @ and :)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*:)(?P<password>[^\s'\"]*)@")


def url_password(url: str) -> str | None:
    """The (decoded) password of ``url``, if it has one."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL passwords and each of ``secrets`` (and its URL-encoded form) masked."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + "@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK).replace(quote(secret, safe=""), MASK)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter: each record's message (and traceback) goes out redacted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:  # formatters print the cached text
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True
