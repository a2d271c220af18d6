"""Attribution rules and the trust policy: which team pays for a span.

Built once per configuration (a reload builds a new one and swaps it) and called per span, so
globs are precompiled and each decision is cached per distinct (asserted team, values of the
attributes the rules read): a span costs a tuple and a dict lookup.

Trust policy for a team the span asserts (``llmcost.team``):

- ``accept``: the asserted team stands (source ``span``); rules only fill in spans without one.
- ``override``: a matching rule wins (``overridden`` when it differs from the asserted team).
- ``reject``: the asserted team is ignored; a rule or the default team decides (``overridden``
  when that differs from what the span asserted).

Spans nobody claims go to ``default_team`` (source ``default``), never dropped. A matching rule's
``feature`` fills in spans without one.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from llmcost_collector.config.schema import Attribution
from llmcost_collector.model import TEAM_FROM_DEFAULT, TEAM_FROM_RULE, TEAM_FROM_SPAN, TEAM_OVERRIDDEN

CACHE_SIZE = 10_000
_EMPTY: Mapping[str, object] = {}

_Decision = tuple[tuple[str, str], str]  # ((team, source), rule feature)


class AttributionRules:
    """``resolve(span attrs, resource attrs, asserted team, asserted feature) -> (team, source, feature)``."""

    def __init__(self, attribution: Attribution) -> None:
        self.trust = attribution.trust
        self.default_team = attribution.default_team
        self._rules = [
            (
                tuple((attr, re.compile(fnmatch.translate(glob))) for attr, glob in rule.match.items()),
                rule.team,
                rule.feature or "",
            )
            for rule in attribution.rules
        ]
        self._keys = tuple(dict.fromkeys(attr for matchers, _t, _f in self._rules for attr, _p in matchers))
        self._cache: dict[tuple[str, tuple[object, ...]], _Decision] = {}

    def _decide(self, asserted: str, lookup: Mapping[str, object]) -> _Decision:
        rule_team = rule_feature = ""
        for matchers, team, feature in self._rules:
            if all((v := lookup.get(a)) is not None and p.match(str(v)) for a, p in matchers):
                rule_team, rule_feature = team, feature
                break
        trust = self.trust
        if asserted and (trust == "accept" or (trust == "override" and not rule_team)):
            return (asserted, TEAM_FROM_SPAN), ""
        team, source = (rule_team, TEAM_FROM_RULE) if rule_team else (self.default_team, TEAM_FROM_DEFAULT)
        if asserted and asserted != team:
            source = TEAM_OVERRIDDEN
        return (team, source), rule_feature

    def _lookup(
        self, attrs: Mapping[str, object], resource: Mapping[str, object], asserted: str
    ) -> _Decision:
        keys = self._keys
        values = tuple([attrs.get(k, resource.get(k)) for k in keys])
        key = (asserted, values)
        found = self._cache.get(key)
        if found is None:
            found = self._decide(asserted, dict(zip(keys, values, strict=True)))
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = found
        return found

    def resolve(
        self, attrs: Mapping[str, object], resource: Mapping[str, object], asserted: str, feature: str
    ) -> tuple[str, str, str]:
        """The team to charge, why (span, rule, overridden, default), and the feature."""
        if asserted and self.trust == "accept":
            return asserted, TEAM_FROM_SPAN, feature
        (team, source), rule_feature = self._lookup(attrs, resource, asserted)
        return team, source, feature or rule_feature

    def resolve_team(
        self, attrs: Mapping[str, object], asserted: str, resource: Mapping[str, object] = _EMPTY
    ) -> tuple[str, str]:
        """``(team, source)`` only; see ``resolve``."""
        if asserted and self.trust == "accept":
            return asserted, TEAM_FROM_SPAN
        return self._lookup(attrs, resource, asserted)[0]
