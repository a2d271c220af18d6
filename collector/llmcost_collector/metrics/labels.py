"""Bounded metric label values: allow-lists and per-label caps with an ``__other__`` bucket.

A label value is kept when it is on the label's allow-list (if one is configured) and, without an
allow-list, while fewer than ``cap`` distinct values have been seen; everything else collapses into
``__other__``. The first values seen win, so a series never changes its label once exported.
A value longer than ``max_length`` characters is cut to it first, ending in ``TRUNCATED`` (a
40 kB feature name would otherwise be 40 kB of every series of it, in every scrape), and
``on_truncated(label)`` counts it.

Caps bound each label; the product of several capped labels is bounded by the series budget of
the metric family that uses them (``metrics.cost``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

OTHER = "__other__"
DEFAULT_CAP = 100
DEFAULT_MAX_LENGTH = 128
TRUNCATED = "…"


class LabelCaps:
    def __init__(
        self,
        caps: Mapping[str, int] | None = None,
        allow: Mapping[str, Iterable[str]] | None = None,
        default_cap: int = DEFAULT_CAP,
        max_length: int = DEFAULT_MAX_LENGTH,
        on_truncated: Callable[[str], None] | None = None,
    ) -> None:
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()  # only taken for a value not seen before
        self._on_truncated = on_truncated
        self.reconfigure(caps, allow, default_cap, max_length)

    def reconfigure(
        self,
        caps: Mapping[str, int] | None = None,
        allow: Mapping[str, Iterable[str]] | None = None,
        default_cap: int = DEFAULT_CAP,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        """New caps and allow-lists (config reload). Values already admitted stay admitted, so no
        exported series changes its label; a lower cap only stops new values from being added."""
        with self._lock:
            self._caps = dict(caps or {})
            self._allow = {name: frozenset(values) for name, values in (allow or {}).items()}
            self._default_cap = default_cap
            self._max_length = max_length

    def value(self, label: str, value: str) -> str:
        """The value to export for ``label``: itself (cut to ``max_length``), or ``__other__``
        past the allow-list or cap. An allow-list names values as they are written, so it is
        checked before the cut."""
        allowed = self._allow.get(label)
        if allowed is not None:
            return self._cut(label, value) if value in allowed else OTHER
        value = self._cut(label, value)
        seen = self._seen.get(label)
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if value in seen or len(seen) < self._caps.get(label, self._default_cap):
                seen.add(value)
                return value
        return OTHER

    def _cut(self, label: str, value: str) -> str:
        if len(value) <= self._max_length:
            return value
        if self._on_truncated is not None:
            self._on_truncated(label)
        return value[: self._max_length - len(TRUNCATED)] + TRUNCATED

    def seen(self, label: str) -> int:
        return len(self._seen.get(label, ()))
