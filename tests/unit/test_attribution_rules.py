"""Attribution rules and the trust policy (``attribute.rules``), and identifier scrubbing
(``attribute.privacy``): which team a call is charged to, from span and resource attributes."""

from __future__ import annotations

import threading

import pytest
from llmcost_collector.attribute.mapping import AttributeMapping
from llmcost_collector.attribute.privacy import scrub_identifier as scrub
from llmcost_collector.attribute.rules import AttributionRules
from llmcost_collector.config.schema import Config, ConfigError, load_config
from llmcost_collector.model import Attribution

RULES = """\
attribution:
  trust: {trust}
  rules:
    - match: {{service.name: "checkout-*"}}
      team: platform
      feature: checkout
    - match: {{k8s.namespace.name: "support-*"}}
      team: support
    - match: {{llmcost.property.api_key_id: "key-mkt-*"}}
      team: marketing
    - match: {{service.name: "search-*", deployment.environment.name: production}}
      team: search
"""

CHECKOUT = {"service.name": "checkout-api"}
NO_MATCH = {"service.name": "billing"}
SEARCH_PROD = {"service.name": "search-api", "deployment.environment.name": "production"}


def rules(trust: str) -> AttributionRules:
    return AttributionRules(load_config("rules.yaml", text=RULES.format(trust=trust)).attribution)


def test_without_rules_the_span_team_or_the_default_decides() -> None:
    """The default config charges an asserted team as asserted and everything else to 'unattributed'."""
    default = AttributionRules(Config.default().attribution)
    assert default.resolve_team({}, "") == ("unattributed", "default")
    assert default.resolve_team({"service.name": "x"}, "growth") == ("growth", "span")


@pytest.mark.parametrize(
    ("trust", "attrs", "asserted", "expected"),
    [
        # accept: an asserted team stands; rules only fill in spans without one
        ("accept", CHECKOUT, "search", ("search", "span")),
        ("accept", CHECKOUT, "", ("platform", "rule")),
        ("accept", NO_MATCH, "", ("unattributed", "default")),
        ("accept", NO_MATCH, "search", ("search", "span")),
        # override: a matching rule wins over the asserted team
        ("override", CHECKOUT, "search", ("platform", "overridden")),
        ("override", CHECKOUT, "platform", ("platform", "rule")),  # rule agrees with the span
        ("override", NO_MATCH, "search", ("search", "span")),  # no rule: the span's team stands
        ("override", NO_MATCH, "", ("unattributed", "default")),
        # reject: the asserted team is ignored; rules or the default decide
        ("reject", CHECKOUT, "search", ("platform", "overridden")),
        ("reject", NO_MATCH, "search", ("unattributed", "overridden")),
        ("reject", NO_MATCH, "", ("unattributed", "default")),
        ("reject", CHECKOUT, "platform", ("platform", "rule")),
        ("reject", CHECKOUT, "", ("platform", "rule")),
        ("reject", SEARCH_PROD, "x", ("search", "overridden")),  # a two-attribute rule
    ],
)
def test_trust_policies(trust: str, attrs: dict[str, str], asserted: str, expected: tuple[str, str]) -> None:
    """Each trust policy decides between the asserted team and the rules the same way, whether the
    attributes are on the span or its resource, and again from the resolver's cache."""
    resolver = rules(trust)
    assert resolver.resolve_team(attrs, asserted) == expected
    assert resolver.resolve_team({}, asserted, attrs) == expected  # resource attributes count too
    assert resolver.resolve_team(attrs, asserted) == expected  # and again, from the cache


def test_rule_matching_globs_namespaces_api_keys_and_resources() -> None:
    """Globs are anchored, every attribute of a rule must match, the first matching rule wins, and
    span attributes win over resource attributes."""
    resolver = rules("accept")
    resolve = resolver.resolve_team
    assert resolve({"k8s.namespace.name": "support-eu"}, "") == ("support", "rule")
    assert resolve({"k8s.namespace.name": "support"}, "") == ("unattributed", "default")  # glob needs '-'
    assert resolve({"llmcost.property.api_key_id": "key-mkt-7"}, "") == ("marketing", "rule")
    assert resolve({"llmcost.property.api_key_id": "key-sup-7"}, "") == ("unattributed", "default")
    assert resolve({"service.name": "web-checkout-api"}, "") == ("unattributed", "default")  # anchored
    # every attribute of a rule must match
    assert resolve({"service.name": "search-api"}, "") == ("unattributed", "default")
    assert resolve(SEARCH_PROD, "") == ("search", "rule")
    # first match wins: checkout-* comes before support-*
    first = {"service.name": "checkout-api", "k8s.namespace.name": "support-eu"}
    assert resolve(first, "") == ("platform", "rule")
    # resource attributes are read where the span has none (the span wins), and combine with it
    assert resolve({}, "", {"service.name": "checkout-web"}) == ("platform", "rule")
    assert resolve({"service.name": "billing"}, "", {"service.name": "checkout-web"}) == (
        "unattributed",
        "default",
    )
    assert resolve({"deployment.environment.name": "production"}, "", {"service.name": "search-x"}) == (
        "search",
        "rule",
    )
    # repeated calls (the resolver caches decisions) keep answering the same
    for _ in range(3):
        assert resolve(CHECKOUT, "") == ("platform", "rule")


def test_rule_features_fill_spans_without_one() -> None:
    """A matching rule's feature is used only when the span names none; an asserted team under
    ``accept`` keeps the span's own feature and takes no rule feature."""
    resolve = rules("accept").resolve
    resource = {"service.name": "checkout-api"}
    assert resolve(CHECKOUT, {}, "", "") == ("platform", "rule", "checkout")
    assert resolve({}, resource, "", "") == ("platform", "rule", "checkout")
    assert resolve({}, resource, "", "chat") == ("platform", "rule", "chat")  # the span's own feature stays
    assert resolve({}, resource, "ads", "chat") == ("ads", "span", "chat")
    assert resolve({"service.name": "search-api"}, resource, "", "") == ("unattributed", "default", "")


def test_from_attributes_maps_the_users_own_keys_onto_empty_fields() -> None:
    config = load_config(
        "c.yaml",
        text="attribution:\n  from_attributes:\n    app.owner_team: team\n    app.product: feature\n"
        "    tenant.user: user_id\n",
    )
    mapping = AttributeMapping(config.attribution.from_attributes)
    filled = Attribution(feature="chat")  # the span's own feature is kept
    mapping.apply(filled, {"app.owner_team": "legal", "app.product": "search"}, {"tenant.user": "u-4"})
    assert (filled.team, filled.feature, filled.user_id) == ("legal", "chat", "u-4")


def test_from_attributes_only_maps_to_attribution_fields() -> None:
    with pytest.raises(ConfigError, match="from_attributes"):
        load_config("c.yaml", text="attribution:\n  from_attributes:\n    app.team: price_id\n")


def test_the_default_team_can_be_renamed() -> None:
    """``default_team`` replaces 'unattributed' for calls no rule claims, also when trust rejects."""
    config = load_config(
        "c.yaml",
        text="attribution:\n  trust: reject\n  default_team: shared-costs\n  rules:\n"
        "    - match: {k8s.namespace.name: 'support-*'}\n      team: support\n",
    )
    resolver = AttributionRules(config.attribution)
    assert resolver.resolve_team({}, "") == ("shared-costs", "default")
    assert resolver.resolve_team({}, "search") == ("shared-costs", "overridden")
    assert resolver.resolve({}, {}, "", "") == ("shared-costs", "default", "")


def test_threads_share_one_resolver_safely() -> None:
    """The resolver's cache is shared by the ingest threads: concurrent lookups all agree."""
    resolver = rules("reject")
    results: list[tuple[str, str]] = []

    def work() -> None:
        for n in range(2000):
            results.append(resolver.resolve_team({}, "", {"service.name": f"checkout-{n % 50}"}))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {("platform", "rule")} and len(results) == 8000


def test_privacy_scrubs_identifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hash`` gives a stable keyed hash per value, ``drop`` empties it, the default keeps it."""
    privacy = load_config("x.yaml", text="privacy: {user_id: hash, session_id: drop}").privacy
    monkeypatch.setenv("LLMCOST_PRIVACY_KEY", "k1")
    first = scrub(privacy, "user_id", "alice")
    assert first.startswith("h:") and first == scrub(privacy, "user_id", "alice") != scrub(
        privacy, "user_id", "bob"
    )
    monkeypatch.setenv("LLMCOST_PRIVACY_KEY", "k2")
    assert scrub(privacy, "user_id", "alice") != first  # keyed: not a plain dictionary-attackable hash
    assert scrub(privacy, "session_id", "s-1") == ""
    assert scrub(Config.default().privacy, "user_id", "u") == "u"
