"""What the ledger stores of end-user and session identifiers (the ``privacy`` config section).

The ledger is kept for years and exported to BI tools, so an org may store a keyed hash of a user
or session id (still groupable, not reversible without the key) or nothing at all. Only the
ledger row is scrubbed: the in-memory session tracker still sees the raw session id for the few
minutes a session is open, so per-session cost histograms keep working; metrics never carry
either id as a label.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from functools import lru_cache

from llmcost_collector.config.schema import Privacy

log = logging.getLogger(__name__)

IdentifierScrubber = Callable[[str, str], tuple[str, str]]  # (user_id, session_id) -> stored values


def hash_key(privacy: Privacy) -> bytes:
    """The HMAC key, from the environment variable the config names (read when a policy is built)."""
    return os.environ.get(privacy.hash_key_env, "").encode()


def scrub_identifier(privacy: Privacy, field: str, value: str, key: bytes | None = None) -> str:
    """``value`` as the ledger should store it under ``privacy``: itself, a keyed hash, or empty."""
    mode = getattr(privacy, field)
    if mode == "keep" or not value:
        return value
    if mode == "drop":
        return ""
    if key is None:
        key = hash_key(privacy)
    return "h:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def make_scrubber(privacy: Privacy) -> IdentifierScrubber | None:
    """The scrubber for a config, or None when both ids are kept as they are (the default)."""
    if privacy.user_id == "keep" and privacy.session_id == "keep":
        return None
    key = hash_key(privacy)
    if "hash" in (privacy.user_id, privacy.session_id) and not key:
        log.warning(
            "privacy: %s is not set, so identifiers are hashed without a key (a dictionary of likely "
            "ids reverses such hashes); set it to a secret",
            privacy.hash_key_env,
        )

    # Hashing costs microseconds and the same few thousand users call all day: cache per value.
    @lru_cache(maxsize=65_536)
    def user(value: str) -> str:
        return scrub_identifier(privacy, "user_id", value, key)

    @lru_cache(maxsize=65_536)
    def session(value: str) -> str:
        return scrub_identifier(privacy, "session_id", value, key)

    def scrub(user_id: str, session_id: str) -> tuple[str, str]:
        return user(user_id), session(session_id)

    return scrub
