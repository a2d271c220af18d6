"""Loading and validating the config file: every kind of mistake is reported at its line and
column (1-based, counted by hand from the texts below), money stays exact Decimal, and the shipped
files validate. Attribution rules, chargeback amounts and reloads have their own test files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.config.yaml_loader import ConfigError, load_model
from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llmcost.yaml"
DEMO = ROOT / "collector" / "llmcost_demo" / "demo-config.yaml"


def errors(text: str) -> list[tuple[int, int, str, str]]:
    """(line, column, path, message) of every problem in ``text``."""
    with pytest.raises(ConfigError) as caught:
        load_config("llmcost.yaml", text=text)
    return [(e.line, e.column, e.path, e.message) for e in caught.value.errors]


# --- the shipped files and the defaults -------------------------------------------------------


def test_the_shipped_example_and_demo_configs_validate() -> None:
    """The files users copy from must load, with the values they document."""
    example = load_config(EXAMPLE)
    assert example.team_names() == ["marketing", "support", "search", "platform"]
    assert [t.name for t in example.teams] == ["marketing", "support", "search", "platform"]
    assert example.attribution.trust == "accept" and len(example.attribution.rules) == 4
    assert str(example.budget_for("search", "daily")) == "80.50"  # written 80.50, kept digit for digit
    assert example.budget_for("platform", "monthly") == Decimal(500)
    assert example.team("platform") is not None
    assert example.team("platform").budgets.thresholds == [50, 80, 95, 100, 120]  # type: ignore[union-attr]
    assert example.chargeback.outcomes["ticket_resolved"] == Decimal("0.50")
    assert [t.below for t in example.chargeback.volume_tiers] == [10_000_000, 100_000_001, None]
    demo = load_config(DEMO)
    assert [t.name for t in demo.teams] == ["marketing", "support", "search", "platform"]
    assert demo.budget_for("platform", "daily") == Decimal("0.5")
    assert demo.chargeback.outcomes == {"ticket_resolved": Decimal("0.50")}


def test_default_config() -> None:
    """No file and an empty file mean the same defaults: no teams, trust accept, label caps."""
    config = Config.default()
    assert config.team_names() == [] and config.attribution.trust == "accept"
    assert load_config("empty.yaml", text="").model_dump() == config.model_dump()  # empty file: defaults
    assert config.labels.caps["session_name"] == 50 and config.labels.default_cap == 100
    assert config.budget_for("marketing", "daily") is None


def test_budget_for_periods_and_unknown_teams() -> None:
    """A budget exists only for the periods a team declares; unknown teams and periods have none."""
    config = load_config(EXAMPLE)
    assert config.budget_for("marketing", "daily") == Decimal(200)
    assert config.budget_for("marketing", "monthly") == Decimal(5000)
    assert config.budget_for("platform", "daily") is None  # only a monthly budget
    assert config.budget_for("nobody", "monthly") is None
    assert config.budget_for("marketing", "weekly") is None


def test_rules_create_teams_when_none_are_declared() -> None:
    """Without a teams list, the teams named by rules exist (without budgets)."""
    config = load_config(
        "x.yaml", text="attribution: {rules: [{match: {service.name: 'pay-*'}, team: payments}]}"
    )
    assert config.team_names() == ["payments"] and config.budget_for("payments", "monthly") is None


# --- errors, each at its line and column --------------------------------------------------------


def test_yaml_syntax_errors_point_at_the_offending_character() -> None:
    """Syntax errors carry the parser's position and context, for each kind of YAML mistake."""
    ((line, column, path, message),) = errors("teams:\n  - name: a\n    budgets: {daily: 1\n")
    assert (line, column, path) == (4, 1, "")
    assert (
        message.startswith("YAML syntax error: expected ',' or '}'") and "flow mapping at line 3" in message
    )
    # line 3 "  - name: a: b": the second ':' is at index 11 -> column 12
    ((line, column, path, message),) = errors("version: 1\nteams:\n  - name: a: b\n")
    assert (line, column, path) == (3, 12, "")
    assert message.startswith("YAML syntax error") and "mapping values are not allowed" in message
    assert errors("teams:\n  - name: a\n   bad: 1\n")[0][:2] == (3, 4)  # bad indentation
    assert errors("teams:\n\t- name: a\n")[0][:2] == (2, 1)  # a tab
    assert errors("teams: []\n---\nteams: []\n")[0][:2] == (2, 1)  # two documents
    # a control character (found by the fuzzing below): line 2 "  - name: a\x01b", index 11
    ((line, column, _, message),) = errors("teams:\n  - name: a\x01b\n")
    assert (line, column) == (2, 12) and "unacceptable character #x0001" in message
    # a tag the safe loader refuses, and a date that is not one, at their values
    ((line, column, path, message),) = errors("version: !!python/object:os.system\n")
    assert (line, column, path) == (1, 10, "version") and "could not determine a constructor" in message
    ((line, column, path, message),) = errors("teams: []\nversion: 2025-13-45\n")
    assert (line, column, path) == (2, 10, "version") and "not a valid timestamp" in message


def test_unknown_key_is_reported_at_the_key() -> None:
    """A misspelt key is named and located, nested or at the top level."""
    assert errors("version: 1\nteams:\n  - name: a\n    budgtes: {}\n") == [
        (4, 5, "teams[0].budgtes", "unknown key 'budgtes'")
    ]
    assert errors("version: 1\n\nteam: []\n") == [(3, 1, "team", "unknown key 'team'")]
    assert errors("version: 1\nchargebak:\n  model: at_cost\n") == [
        (2, 1, "chargebak", "unknown key 'chargebak'")
    ]


def test_wrong_types_and_negative_money_are_reported_at_the_value() -> None:
    """Type and range errors point at the value itself, in block and flow style."""
    found = errors("teams:\n  - name: a\n    budgets:\n      daily: lots\n      monthly: -5\n")
    assert found == [
        (4, 14, "teams[0].budgets.daily", "Input should be a valid decimal"),
        (5, 16, "teams[0].budgets.monthly", "Input should be greater than or equal to 0"),
    ]
    # "    budgets: {daily: lots}": '{' at index 13, "daily: " is 7 chars -> 'lots' at column 22
    ((line, column, path, message),) = errors("version: 1\nteams:\n  - name: s\n    budgets: {daily: lots}\n")
    assert (line, column, path) == (4, 22, "teams[0].budgets.daily") and "decimal" in message.lower()
    # "  default_cap: [1, 2]": '[' at index 15 -> column 16
    ((line, column, path, message),) = errors("version: 1\nlabels:\n  default_cap: [1, 2]\n")
    assert (line, column, path) == (3, 16, "labels.default_cap") and "integer" in message
    assert errors("teams: [{name: a, budgets: {daily: .inf}}]")[0][:3] == (1, 36, "teams[0].budgets.daily")
    assert errors("version: 2\n") == [(1, 10, "version", "Input should be 1")]


def test_missing_field_points_at_its_mapping() -> None:
    """A required field that is absent is reported where its mapping starts."""
    assert errors("teams:\n  - display_name: A\n") == [(2, 5, "teams[0].name", "Field required")]


def test_every_problem_is_reported_in_file_order() -> None:
    """All problems come out at once, sorted by position, each line file:line:column-prefixed."""
    text = "version: 2\nteams:\n  - name: a\n    budgets: {daily: x}\n  - nme: b\n"
    assert [(line, column, path) for line, column, path, _ in errors(text)] == [
        (1, 10, "version"),
        (4, 22, "teams[0].budgets.daily"),
        (5, 5, "teams[1].name"),
        (5, 5, "teams[1].nme"),
    ]
    text = (
        "version: 1\n"  # 1
        "teams:\n"  # 2
        "  - name: a\n"  # 3
        "    colour: red\n"  # 4: unknown key at column 5
        "    budgets: {daily: -1}\n"  # 5: '-' at index 21 -> column 22
        "labels:\n"  # 6
        "  default_cap: 0\n"  # 7: '0' at index 15 -> column 16
    )
    assert [(line, column) for line, column, _path, _message in errors(text)] == [(4, 5), (5, 22), (7, 16)]
    with pytest.raises(ConfigError) as caught:
        load_config("cfg.yaml", text=text)
    assert str(caught.value).splitlines()[0] == "cfg.yaml:4:5: teams[0].colour: unknown key 'colour'"


def test_duplicate_keys_are_refused_at_the_second_key() -> None:
    """A repeated key is an error (not last-one-wins), in block and flow style, at any depth."""
    assert errors("version: 1\nchargeback:\n  model: cost_plus\n  model: at_cost\n") == [
        (4, 3, "chargeback.model", "duplicate key 'model'")
    ]
    # "    budgets: {daily: 1, daily: 2}": second 'daily' at index 24 -> column 25
    assert errors("teams:\n  - name: a\n    budgets: {daily: 1, daily: 2}\n") == [
        (3, 25, "teams[0].budgets.daily", "duplicate key 'daily'")
    ]
    assert errors("teams: [{name: a, name: b}]")[0][:3] == (1, 19, "teams[0].name")  # flow style too
    assert errors("labels: {}\nversion: 1\nlabels: {}\n")[0][:3] == (3, 1, "labels")


# --- cross-field checks, each at the offending value ---------------------------------------------


def test_duplicated_team_names_point_at_the_repeat() -> None:
    """The second declaration of a team is the error, naming the first."""
    text = "version: 1\nteams:\n  - name: search\n  - name: support\n  - name: search\n"
    # line 5 "  - name: search": value at index 10 -> column 11
    assert errors(text) == [(5, 11, "teams[2].name", "duplicate team 'search' (also teams[0])")]


def test_rules_and_the_default_team_must_name_declared_teams() -> None:
    """With a teams list, a rule's team and the default team must be in it."""
    text = "teams:\n  - name: search\nattribution:\n  rules:\n    - match: {service.name: x}\n      team: serch\n"
    # line 6 "      team: serch": value at index 12 -> column 13
    ((line, column, path, message),) = errors(text)
    assert (line, column, path) == (6, 13, "attribution.rules[0].team")
    assert "'serch'" in message and "not defined under teams" in message
    declared = "teams: [{name: shared}]\nattribution: {default_team: shared}\n"
    assert load_config("x.yaml", text=declared).attribution.default_team == "shared"
    typo = errors(declared.replace("default_team: shared", "default_team: sahred"))
    assert typo[0][2] == "attribution.default_team"


def test_thresholds_must_ascend_within_range() -> None:
    """Alert thresholds are ascending, unique and 1..1000; the error points at the list."""
    ((line, column, path, message),) = errors(
        "teams:\n  - name: a\n    budgets:\n      thresholds: [80, 50]\n"
    )
    assert (line, column, path, message) == (
        4,
        19,
        "teams[0].budgets.thresholds",
        "thresholds must be ascending and unique",
    )
    text = "version: 1\nteams:\n  - name: search\n    budgets: {monthly: 10, thresholds: [80, 50, 95]}\n"
    # '{' at index 13; "monthly: 10, " 13 chars -> 't' at 27; "thresholds: " 12 chars -> '[' at 39, column 40
    ((line, column, path, message),) = errors(text)
    assert (line, column, path) == (4, 40, "teams[0].budgets.thresholds") and "ascending" in message
    dupes = "teams:\n  - name: s\n    budgets:\n      thresholds:\n        - 50\n        - 50\n"
    ((line, column, path, message),) = errors(dupes)
    assert (line, column, path) == (5, 9, "teams[0].budgets.thresholds")  # the block list starts at '-'
    assert "between 1 and 1000" in errors("teams: [{name: a, budgets: {thresholds: [0, 50]}}]")[0][3]


def test_volume_tiers_must_ascend_with_only_the_last_open() -> None:
    """Tier bounds ascend (the error names both bounds); only the last tier may be unbounded."""
    text = (
        "version: 1\n"
        "chargeback:\n"
        "  model: cost_plus\n"
        "  volume_tiers:\n"
        "    - {up_to_tokens: 1000, markup_percent: 20}\n"
        "    - {up_to_tokens: 500, markup_percent: 10}\n"
        "    - {markup_percent: 5}\n"
    )
    # line 6: '{' at index 6, "up_to_tokens: " is 14 chars -> '500' at index 21, column 22
    ((line, column, path, message),) = errors(text)
    assert (line, column, path) == (6, 22, "chargeback.volume_tiers[1].up_to_tokens")
    assert "ascend" in message and "500" in message and "1000" in message
    open_middle = (
        "chargeback:\n  model: cost_plus\n  volume_tiers:\n"
        "    - {markup_percent: 20}\n    - {up_to_tokens: 500, markup_percent: 10}\n"
    )
    ((line, column, path, message),) = errors(open_middle)
    assert (line, column, path) == (4, 7, "chargeback.volume_tiers[0]")  # the '{' of the open tier
    assert "last tier" in message


def test_label_caps_and_markup_need_a_known_label_and_cost_plus() -> None:
    """Caps name real labels; a markup only makes sense with the cost_plus model."""
    assert errors("labels:\n  caps:\n    tema: 5\n")[0][:3] == (3, 5, "labels.caps.tema")
    assert errors("chargeback:\n  markup_percent: 20\n")[0][:3] == (2, 19, "chargeback.markup_percent")


# --- values ---------------------------------------------------------------------------------------


def test_money_is_exact_decimal() -> None:
    """Budgets, percentages and prices keep the written digits: no binary float in between."""
    config = load_config(
        "x.yaml",
        text="teams: [{name: a, budgets: {daily: 0.1, monthly: 1_000.10}}]\n"
        "chargeback: {model: cost_plus, markup_percent: 12.345, platform_fee_monthly_usd: 1e-9,"
        " outcomes: {resolved: 0.30}}",
    )
    daily = config.budget_for("a", "daily")
    assert isinstance(daily, Decimal) and daily == Decimal("0.1") and daily * 3 == Decimal("0.3")
    assert daily.as_tuple() == (0, (1,), -1)  # digits 1, exponent -1
    assert str(config.budget_for("a", "monthly")) == "1000.10"
    assert config.chargeback.markup_percent == Decimal("12.345")
    assert config.chargeback.platform_fee_monthly_usd == Decimal("1E-9")
    assert str(config.chargeback.outcomes["resolved"]) == "0.30"


def test_json_is_accepted_with_positions() -> None:
    """JSON is YAML: it loads, and its errors are located the same way."""
    text = '{\n  "teams": [\n    {"name": "a", "budgets": {"daily": 0.7}},\n    {"name": "b", "budgets": {"daily": "x"}}\n  ]\n}\n'
    assert errors(text) == [(4, 40, "teams[1].budgets.daily", "Input should be a valid decimal")]
    assert load_config("x.json", text=text.replace('"x"', "1")).budget_for("a", "daily") == Decimal("0.7")


def test_anchors_and_merge_keys() -> None:
    """Merged values load; an error in an override points at the override, not the anchor."""
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


def test_load_model_works_for_any_model_and_names_the_file(tmp_path: Path) -> None:
    """The loader serves any pydantic model (union steps stripped from paths), reading files or
    text, and names the file in every error."""

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
    config_file = tmp_path / "c.yaml"
    config_file.write_text("version: 1\nteams:\n  - {name: x, budgets: {daily: 0.1}}\n")
    assert load_model(config_file, Config).budget_for("x", "daily") == Decimal("0.1")
    with pytest.raises(ConfigError) as caught:
        load_model(tmp_path / "absent.yaml", Config)
    assert str(caught.value).startswith(f"{tmp_path / 'absent.yaml'}:1:1: cannot read file")


def test_chargeback_changes_must_ascend_by_date() -> None:
    text = (
        "teams:\n  - name: search\n    chargeback_changes:\n"
        "      - {effective_from: 2025-02-01, model: cost_plus}\n"
        "      - {effective_from: 2025-01-15, model: at_cost}\n"
    )
    ((line, _, path, message),) = errors(text)
    assert (line, path) == (5, "teams[0].chargeback_changes[1].effective_from")
    assert "2025-01-15" in message and "2025-02-01" in message


def test_weights_go_with_method_weights_and_name_known_teams() -> None:
    base = "teams: [{name: a}, {name: b}]\nchargeback:\n  shared_costs:\n"
    (missing,) = errors(base + "    - {name: gw, monthly_usd: 10, method: weights}\n")
    assert missing[2:] == (
        "chargeback.shared_costs[0].method",
        "method weights needs weights: {team: weight, ...}",
    )
    (unused,) = errors(base + "    - {name: gw, monthly_usd: 10, method: even, weights: {a: 1}}\n")
    assert unused[2] == "chargeback.shared_costs[0].weights"
    (unknown,) = errors(base + "    - {name: gw, monthly_usd: 10, method: weights, weights: {a: 1, zz: 2}}\n")
    assert unknown[2:] == ("chargeback.shared_costs[0].weights.zz", "team 'zz' is not defined under teams")


def test_a_tier_has_one_bound_inclusive_or_exclusive() -> None:
    text = "chargeback:\n  model: tiered\n  volume_tiers:\n    - {up_to_tokens: 5, below_tokens: 6, markup_percent: 1}\n    - {markup_percent: 0}\n"
    ((_, _, path, message),) = errors(text)
    assert path == "chargeback.volume_tiers[0]" and "not both" in message


def test_budgets_and_contacts_are_checked_where_written() -> None:
    """A scoped budget names a declared team and a real time zone; a contact is a #channel, an
    address or a URL; per-user budgets take no environment or feature."""
    found = errors(
        "teams:\n  - {name: a, contact: 'pager me'}\n"
        "budgets:\n  - {name: b, amount_usd: 1, period: weekly, scope: {team: z}, timezone: Mars/Base}\n"
        "  - {name: c, amount_usd: 1, period: daily, scope: {per_user: true, feature: x}}\n"
    )
    messages = {path: message for _, _, path, message in found}
    assert "is not a #slack-channel" in messages["teams[0].contact"]
    assert "unknown IANA time zone 'Mars/Base'" in messages["budgets[0].timezone"]
    assert "per-user budget" in messages["budgets[1].scope"]
    (problem,) = errors(
        "teams:\n  - {name: a, budgets: {daily: 1}}\nbudgets:\n  - {name: a-daily, amount_usd: 1, period: daily}\n"
    )
    assert problem[2] == "budgets[0].name" and "duplicate budget 'a-daily'" in problem[3]
    config = load_config(
        "x.yaml",
        text="teams:\n  - {name: a, contact: '#a, a@example.com'}\nbudgets:\n  - {name: o, amount_usd: 5, period: monthly, scope: {team: a}}\n",
    )
    assert [b.name for b in config.all_budgets()] == ["o"] and config.all_budgets()[0].basis == "charged"


# --- access tokens --------------------------------------------------------------------------------


def test_access_tokens_are_checked_where_written() -> None:
    """Role, exactly one of token/token_file, teams only on read tokens and only declared teams,
    unique names, no spaces: each reported at its line and column."""
    text = (
        "teams: [{name: search}]\n"
        "access:\n"
        "  tokens:\n"
        "    - {name: a, role: reader, token: t1}\n"  # 4
        "    - {name: b, role: read}\n"  # 5
        "    - {name: c, role: admin, token: t3, teams: [search]}\n"  # 6
        "    - {name: d, role: read, token: t4, teams: [search, nosuch]}\n"  # 7
        "    - {name: d, role: ingest, token: 'has space'}\n"  # 8
    )
    assert errors(text) == [
        (4, 23, "access.tokens[0].role", "Input should be 'ingest', 'read', 'admin' or 'metrics'"),
        (5, 7, "access.tokens[1]", "give token or token_file, exactly one"),
        (6, 7, "access.tokens[2]", "teams scope a read token only"),
        (8, 38, "access.tokens[4].token", "tokens must be non-empty and contain no spaces"),
    ]  # the team check of tokens[3] waits until every token parses (next test)


def test_access_cross_checks_name_the_team_and_the_repeat() -> None:
    """Once every token parses, unknown teams, repeated names and a token given twice (two roles
    for one value) are reported at the value."""
    text = (
        "teams: [{name: search}]\n"
        "access:\n"
        "  tokens:\n"
        "    - {name: d, role: read, token: t4, teams: [search, nosuch]}\n"
        "    - {name: d, role: ingest, token: t5}\n"
        "    - {name: e, role: admin, token: t4}\n"
    )
    assert errors(text) == [
        (4, 56, "access.tokens[0].teams[1]", "team 'nosuch' is not defined under teams"),
        (5, 14, "access.tokens[1].name", "duplicate token name 'd' (also access.tokens[0])"),
        (6, 37, "access.tokens[2].token", "the same token as access.tokens[0]"),  # the value is not repeated
    ]


def test_token_files_are_read_relative_to_the_config_and_never_printed(tmp_path: Path) -> None:
    """A ``token_file`` is read at load (trailing newline stripped, relative to the file); the
    value is a secret in any repr; a missing file is an error at its line."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "read").write_text("r3ad-t0ken\n")
    config_file = tmp_path / "llmcost.yaml"
    config_file.write_text(
        "access:\n  tokens:\n    - {name: ops, role: read, token_file: secrets/read}\n"
        "    - {name: ing, role: ingest, token: inl1ne}\n"
    )
    config = load_config(config_file)
    assert [t.secret() for t in config.access.tokens] == ["r3ad-t0ken", "inl1ne"]
    assert "r3ad-t0ken" not in repr(config) and "inl1ne" not in repr(config)
    config_file.write_text("access:\n  tokens:\n    - {name: ops, role: read, token_file: secrets/none}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_file)
    [issue] = caught.value.errors
    assert (issue.line, issue.column, issue.path) == (3, 43, "access.tokens[0].token_file")
    assert f"cannot read {tmp_path / 'secrets' / 'none'}" in issue.message


def test_ingest_bearer_tokens_are_ingest_role_tokens() -> None:
    """The older ``ingest.bearer_tokens`` keep working: each is an ingest-role token."""
    from llmcost_collector.auth import AccessPolicy

    policy = AccessPolicy.from_config(
        load_config(
            "c.yaml",
            text="ingest: {bearer_tokens: [old]}\naccess: {tokens: [{name: r, role: read, token: new}]}\n",
        )
    )
    assert policy.required
    assert policy.identify("Bearer old") is not None and policy.identify("Bearer old").role == "ingest"  # type: ignore[union-attr]
    assert policy.identify("Bearer new").role == "read"  # type: ignore[union-attr]
    assert policy.identify("Bearer nope") is None and policy.identify(None) is None


# --- fuzzing: any text is a config or a ConfigError with positions ---------------------------

EXAMPLE_TEXT = EXAMPLE.read_text()
EXAMPLE_LINES = EXAMPLE_TEXT.splitlines(keepends=True)
SCALARS = st.sampled_from(["", "-1", "1e400", ".nan", "~", "[]", "{}", "'", "&a", "*a", "<<: *a", "\t", "\x00",
                           "99999999999999999999999", "true", "2025-13-45", "\"\\ud800\"", "!!python/object:os.system"])  # fmt: skip


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    """The shipped example with one to three edits: a line dropped, duplicated or re-indented, a
    value replaced with a hostile scalar, or random characters inserted."""
    lines = list(EXAMPLE_LINES)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "duplicate", "indent", "value", "insert"]))
        if edit == "drop":
            del lines[i]
        elif edit == "duplicate":
            lines.insert(i, lines[i])
        elif edit == "indent":
            lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
        elif edit == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(SCALARS)}\n"
        else:
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.text(max_size=6)) + lines[i][at:]
    return "".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated_example(), st.text(max_size=200)))
def test_fuzzed_config_text_loads_or_is_refused_with_positions(text: str) -> None:
    """Whatever the file holds, loading gives a Config or a ConfigError whose every problem has
    a line and column inside the text: never another exception, so a reload with a broken file
    is refused and the running config kept."""
    try:
        config = load_config("llmcost.yaml", text=text)
    except ConfigError as refused:
        assert refused.errors
        lines = text.count("\n") + 2  # a problem at the end of the last line, or past it
        for issue in refused.errors:
            assert 1 <= issue.line <= lines and issue.column >= 1, (issue, text)
            assert str(refused).startswith("llmcost.yaml:")
        return
    assert isinstance(config, Config)
