"""The config file: line-precise errors for every kind of mistake, exact money, attribution rules."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from llmcost_collector.attribute.privacy import scrub_identifier as scrub
from llmcost_collector.attribute.rules import AttributionRules
from llmcost_collector.chargeback.per_call import make_chargeback
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.config.yaml_loader import ConfigError, load_model
from llmcost_collector.model import Attribution, LlmCall, Usage
from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parents[2]


def errors(text: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config("llmcost.yaml", text=text)
    return [(e.line, e.column, e.path, e.message) for e in caught.value.errors]


def test_shipped_configs_validate() -> None:
    example = load_config(ROOT / "examples" / "llmcost.yaml")
    assert example.team_names() == ["marketing", "support", "search", "platform"]
    assert example.budget_for("marketing", "monthly") == Decimal(5000)
    assert str(example.budget_for("search", "daily")) == "80.50"  # written 80.50, kept digit for digit
    assert example.chargeback.outcomes["ticket_resolved"] == Decimal("0.50")
    assert [t.up_to_tokens for t in example.chargeback.volume_tiers] == [10_000_000, 100_000_000, None]
    load_config(ROOT / "collector" / "llmcost_demo" / "demo-config.yaml")


def test_default_config() -> None:
    config = Config.default()
    assert config.team_names() == [] and config.attribution.trust == "accept"
    assert AttributionRules(config.attribution).resolve_team({}, "") == ("unattributed", "default")
    assert AttributionRules(config.attribution).resolve_team({"service.name": "x"}, "growth") == (
        "growth",
        "span",
    )
    assert load_config("empty.yaml", text="").model_dump() == config.model_dump()  # empty file: defaults
    assert config.labels.caps["session_name"] == 50 and config.labels.default_cap == 100


def test_syntax_error_has_its_line_and_context() -> None:
    ((line, column, path, message),) = errors("teams:\n  - name: a\n    budgets: {daily: 1\n")
    assert (line, column, path) == (4, 1, "")
    assert (
        message.startswith("YAML syntax error: expected ',' or '}'") and "flow mapping at line 3" in message
    )
    assert errors("teams:\n  - name: a\n   bad: 1\n")[0][:2] == (3, 4)  # bad indentation
    assert errors("teams:\n\t- name: a\n")[0][:2] == (2, 1)  # a tab
    assert errors("teams: []\n---\nteams: []\n")[0][:2] == (2, 1)  # two documents


def test_unknown_key_is_reported_at_the_key() -> None:
    assert errors("version: 1\nteams:\n  - name: a\n    budgtes: {}\n") == [
        (4, 5, "teams[0].budgtes", "unknown key 'budgtes'")
    ]
    assert errors("version: 1\n\nteam: []\n") == [(3, 1, "team", "unknown key 'team'")]


def test_wrong_type_and_negative_money() -> None:
    found = errors("teams:\n  - name: a\n    budgets:\n      daily: lots\n      monthly: -5\n")
    assert found == [
        (4, 14, "teams[0].budgets.daily", "Input should be a valid decimal"),
        (5, 16, "teams[0].budgets.monthly", "Input should be greater than or equal to 0"),
    ]
    assert errors("teams: [{name: a, budgets: {daily: .inf}}]")[0][:3] == (1, 36, "teams[0].budgets.daily")
    assert errors("version: 2\n") == [(1, 10, "version", "Input should be 1")]


def test_missing_field_points_at_its_mapping() -> None:
    assert errors("teams:\n  - display_name: A\n") == [(2, 5, "teams[0].name", "Field required")]


def test_every_problem_is_reported_in_file_order() -> None:
    text = "version: 2\nteams:\n  - name: a\n    budgets: {daily: x}\n  - nme: b\n"
    assert [(line, column, path) for line, column, path, _ in errors(text)] == [
        (1, 10, "version"),
        (4, 22, "teams[0].budgets.daily"),
        (5, 5, "teams[1].name"),
        (5, 5, "teams[1].nme"),
    ]


def test_duplicate_keys_are_refused() -> None:
    ((line, column, path, message),) = errors("chargeback:\n  markup_percent: 10\n  markup_percent: 20\n")
    assert (line, column, path) == (3, 3, "chargeback.markup_percent") and "duplicate key" in message
    assert errors("teams: [{name: a, name: b}]")[0][:3] == (1, 19, "teams[0].name")  # flow style too
    assert errors("labels: {}\nversion: 1\nlabels: {}\n")[0][:3] == (3, 1, "labels")


def test_cross_field_checks_point_at_the_offending_value() -> None:
    assert errors("teams:\n  - name: a\n  - name: b\n  - name: a\n") == [
        (4, 11, "teams[2].name", "duplicate team 'a' (also teams[0])")
    ]
    rule = "teams:\n  - name: a\nattribution:\n  rules:\n    - match: {service.name: x}\n      team: b\n"
    ((line, column, path, message),) = errors(rule)
    assert (line, column, path) == (
        6,
        13,
        "attribution.rules[0].team",
    ) and "not defined under teams" in message
    tiers = (
        "chargeback:\n  model: cost_plus\n  volume_tiers:\n"
        "    - {up_to_tokens: 100, markup_percent: 1}\n    - {up_to_tokens: 10, markup_percent: 2}\n"
    )
    ((line, column, path, message),) = errors(tiers)
    assert (line, column, path) == (5, 22, "chargeback.volume_tiers[1].up_to_tokens") and "ascend" in message
    assert errors("labels:\n  caps:\n    tema: 5\n")[0][:3] == (3, 5, "labels.caps.tema")
    assert errors("chargeback:\n  markup_percent: 20\n")[0][:3] == (2, 19, "chargeback.markup_percent")
    ((line, column, path, message),) = errors(
        "teams:\n  - name: a\n    budgets:\n      thresholds: [80, 50]\n"
    )
    assert (line, column, path, message) == (
        4,
        19,
        "teams[0].budgets.thresholds",
        "thresholds must be ascending and unique",
    )
    assert "between 1 and 1000" in errors("teams: [{name: a, budgets: {thresholds: [0, 50]}}]")[0][3]


def test_rules_create_teams_when_none_are_declared() -> None:
    config = load_config(
        "x.yaml", text="attribution: {rules: [{match: {service.name: 'pay-*'}, team: payments}]}"
    )
    assert config.team_names() == ["payments"] and config.budget_for("payments", "monthly") is None


def test_money_is_exact_decimal() -> None:
    config = load_config(
        "x.yaml",
        text="teams: [{name: a, budgets: {daily: 0.1, monthly: 1_000.10}}]\n"
        "chargeback: {model: cost_plus, markup_percent: 12.345, outcomes: {resolved: 0.30}}",
    )
    daily = config.budget_for("a", "daily")
    assert isinstance(daily, Decimal) and daily == Decimal("0.1") and daily * 3 == Decimal("0.3")
    assert str(config.budget_for("a", "monthly")) == "1000.10"
    assert config.chargeback.markup_percent == Decimal("12.345")
    assert str(config.chargeback.outcomes["resolved"]) == "0.30"
    assert config.budget_for("a", "weekly") is None and config.budget_for("nobody", "daily") is None


def test_json_is_accepted_with_positions() -> None:
    text = '{\n  "teams": [\n    {"name": "a", "budgets": {"daily": 0.7}},\n    {"name": "b", "budgets": {"daily": "x"}}\n  ]\n}\n'
    assert errors(text) == [(4, 40, "teams[1].budgets.daily", "Input should be a valid decimal")]
    assert load_config("x.json", text=text.replace('"x"', "1")).budget_for("a", "daily") == Decimal("0.7")


def test_anchors_and_merge_keys() -> None:
    text = (
        "teams:\n  - &base {name: a, budgets: {daily: 1.25}, owners: [ops]}\n"
        "  - <<: *base\n    name: b\n  - <<: *base\n    name: c\n    budgets: {daily: -1}\n"
    )
    ((line, column, path, _message),) = errors(text)
    assert (line, column, path) == (7, 22, "teams[2].budgets.daily")  # the override, not the anchor
    config = load_config("x.yaml", text=text.replace("-1", "2"))
    assert config.team_names() == ["a", "b", "c"] and config.budget_for("b", "daily") == Decimal("1.25")
    assert config.budget_for("c", "daily") == 2 and config.team("b").owners == ["ops"]  # type: ignore[union-attr]
    assert errors("teams: &x [*x]\n")[0][3] == "recursive alias"


def test_load_model_for_any_model_strips_union_steps(tmp_path: Path) -> None:
    class Book(BaseModel):
        model_config = ConfigDict(extra="forbid")
        tags: str | list[str] = ""
        price: Decimal

    path = tmp_path / "book.yaml"
    path.write_text("price: 0.1\ntags:\n  nested: true\n")
    with pytest.raises(ConfigError) as caught:
        load_model(path, Book)
    assert {(e.line, e.column, e.path) for e in caught.value.errors} == {(3, 3, "tags")}
    assert str(caught.value).startswith(f"{path}:3:3: tags: ")
    assert load_model(path, Book, text="price: 0.1").price == Decimal("0.1")
    with pytest.raises(ConfigError, match="cannot read file"):
        load_model(tmp_path / "missing.yaml", Book)


RULES = """
attribution:
  trust: {trust}
  rules:
    - {{match: {{service.name: "checkout-*"}}, team: payments, feature: checkout}}
    - {{match: {{k8s.namespace.name: "support-*", llmcost.property.api_key_id: "key-*"}}, team: support}}
"""


@pytest.mark.parametrize(
    ("trust", "attrs", "asserted", "expected"),
    [
        ("accept", {"service.name": "checkout-api"}, "", ("payments", "rule")),
        ("accept", {"service.name": "checkout-api"}, "marketing", ("marketing", "span")),
        ("accept", {"service.name": "search-api"}, "", ("unattributed", "default")),
        ("override", {"service.name": "checkout-api"}, "marketing", ("payments", "overridden")),
        ("override", {"service.name": "checkout-api"}, "payments", ("payments", "rule")),
        ("override", {"service.name": "search-api"}, "marketing", ("marketing", "span")),
        ("reject", {"service.name": "search-api"}, "marketing", ("unattributed", "overridden")),
        ("reject", {"service.name": "search-api"}, "", ("unattributed", "default")),
        ("reject", {"service.name": "checkout-1"}, "", ("payments", "rule")),
        (
            "reject",
            {"k8s.namespace.name": "support-eu", "llmcost.property.api_key_id": "key-7"},
            "x",
            ("support", "overridden"),
        ),
        ("accept", {"k8s.namespace.name": "support-eu"}, "", ("unattributed", "default")),  # both must match
    ],
)
def test_trust_policy_and_rules(trust: str, attrs: dict, asserted: str, expected: tuple[str, str]) -> None:
    config = load_config("x.yaml", text=RULES.format(trust=trust))
    resolve = _team_resolver(config)
    assert resolve(attrs, {}, asserted) == expected
    assert resolve({}, attrs, asserted) == expected  # resource attributes count too
    assert resolve(attrs, {}, asserted) == expected  # and again, from the cache
    assert AttributionRules(config.attribution).resolve_team(attrs, asserted) == expected


def test_span_attributes_win_over_resource_and_rules_fill_features() -> None:
    config = load_config("x.yaml", text=RULES.format(trust="accept"))
    resolve = AttributionRules(config.attribution).resolve
    span, resource = {"service.name": "search-api"}, {"service.name": "checkout-api"}
    assert resolve(span, resource, "", "") == ("unattributed", "default", "")
    assert resolve({}, resource, "", "") == ("payments", "rule", "checkout")
    assert resolve({}, resource, "", "chat") == ("payments", "rule", "chat")  # the span's own feature stays
    assert resolve({}, resource, "ads", "chat") == ("ads", "span", "chat")


def test_default_team_can_be_renamed_and_must_exist_when_teams_are_declared() -> None:
    text = "teams: [{name: shared}]\nattribution: {default_team: shared}\n"
    assert AttributionRules(load_config("x.yaml", text=text).attribution).resolve_team({}, "") == (
        "shared",
        "default",
    )
    assert (
        errors(text.replace("default_team: shared", "default_team: sahred"))[0][2]
        == "attribution.default_team"
    )


def test_chargeback_cost_plus_and_team_override() -> None:
    config = load_config(
        "x.yaml",
        text="chargeback: {model: cost_plus, markup_percent: 15, platform_fee_percent: 5}\n"
        "teams: [{name: lab, chargeback: {model: at_cost}}, {name: ops, chargeback: {markup_percent: 30}}]\n",
    )
    charge = make_chargeback(config)

    def call(team: str) -> LlmCall:
        return LlmCall("0" * 32, "0" * 16, 0, 0, "openai", "chat", "m", "", Usage(), Attribution(team=team))

    assert charge(call("search"), 1_000_000) == 1_200_000  # 15% markup + 5% fee
    assert charge(call("lab"), 1_000_000) == 1_000_000  # at cost
    assert charge(call("ops"), 1_000_000) == 1_350_000  # 30% + 5%
    assert charge(call("search"), None) is None  # unpriced stays unpriced
    assert charge(call("search"), 3) == 4  # 3.6 nano-dollars rounds half-even to 4


def test_privacy_scrubs_identifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    privacy = load_config("x.yaml", text="privacy: {user_id: hash, session_id: drop}").privacy
    monkeypatch.setenv("LLMCOST_PRIVACY_KEY", "k1")
    first = scrub(privacy, "user_id", "alice")
    assert first.startswith("h:") and first == scrub(privacy, "user_id", "alice") != scrub(
        privacy, "user_id", "bob"
    )
    monkeypatch.setenv("LLMCOST_PRIVACY_KEY", "k2")
    assert scrub(privacy, "user_id", "alice") != first  # keyed: not a plain dictionary-attackable hash
    assert (
        scrub(privacy, "session_id", "s-1") == "" and scrub(Config.default().privacy, "user_id", "u") == "u"
    )


def test_threads_share_one_resolver_safely() -> None:
    resolve = _team_resolver(load_config("x.yaml", text=RULES.format(trust="reject")))
    results: list[tuple[str, str]] = []

    def work() -> None:
        for n in range(2000):
            results.append(resolve({"service.name": f"checkout-{n % 50}"}, {}, ""))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {("payments", "rule")} and len(results) == 8000


def _team_resolver(config: Config):  # (span attrs, resource attrs, asserted team) -> (team, source)
    rules = AttributionRules(config.attribution)
    return lambda attrs, resource, asserted: rules.resolve_team(attrs, asserted, resource)
