"""``attribution.from_attributes``: the user's own span attributes as attribution fields.

Teams often already tag their spans (``app.team``, ``tenant.owner``, a LiteLLM metadata key, an
OpenLIT custom attribute): the config maps such an attribute to a field, and a span that has no
value for that field takes the attribute's (span attribute, else resource attribute). What the
span already says (``llmcost.*``, a tool's own attribution) is never overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmcost_collector.model import Attribution

FIELDS = (
    "team", "feature", "use_case", "user_id", "user_tier", "session_id", "session_name", "session_path",
    "environment",
)  # fmt: skip


class AttributeMapping:
    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        self._items = tuple((mapping or {}).items())

    def __bool__(self) -> bool:
        return bool(self._items)

    def apply(
        self, attribution: Attribution, attrs: Mapping[str, object], resource: Mapping[str, object]
    ) -> None:
        for key, field in self._items:
            if getattr(attribution, field):
                continue
            value = attrs.get(key)
            if value is None or value == "":
                value = resource.get(key)
            if value is not None and value != "":
                setattr(attribution, field, str(value))
