"""The configuration file end to end: line:column-precise errors, exact decimals, the shipped files,
team resolution under each trust policy, chargeback rates, hot reload (file change and SIGHUP),
``llmcost config check``, and a running collector refusing a broken edit.

Line and column numbers in the expectations are counted by hand from the YAML texts (1-based).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result
from llmcost_collector.app import CollectorApp, Settings
from llmcost_collector.attribute.rules import AttributionRules
from llmcost_collector.chargeback.per_call import make_chargeback
from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.config.watch import ConfigWatcher
from llmcost_collector.config.yaml_loader import ConfigError, load_model
from llmcost_collector.model import Attribution, LlmCall, Usage
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llmcost.yaml"
DEMO = ROOT / "collector" / "llmcost_demo" / "demo-config.yaml"


def errors_of(text: str) -> list[tuple[int, int, str, str]]:
    """(line, column, path, message) of every problem in ``text``."""
    with pytest.raises(ConfigError) as caught:
        load_config("cfg.yaml", text=text)
    return [(e.line, e.column, e.path, e.message) for e in caught.value.errors]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# --- errors, each at its line and column --------------------------------------------------------


def test_yaml_syntax_error_points_at_the_offending_character() -> None:
    text = "version: 1\nteams:\n  - name: a: b\n"
    # line 3 "  - name: a: b": the second ':' is at index 11 -> column 12
    ((line, column, path, message),) = errors_of(text)
    assert (line, column, path) == (3, 12, "")
    assert message.startswith("YAML syntax error") and "mapping values are not allowed" in message


def test_unknown_key_is_reported_at_the_key() -> None:
    text = "version: 1\nteams:\n  - name: search\n    budgetz: {daily: 5}\n"
    # line 4 "    budgetz: ...": the key starts after 4 spaces -> column 5
    assert errors_of(text) == [(4, 5, "teams[0].budgetz", "unknown key 'budgetz'")]
    top = "version: 1\nchargebak:\n  model: at_cost\n"
    assert errors_of(top) == [(2, 1, "chargebak", "unknown key 'chargebak'")]


def test_wrong_type_is_reported_at_the_value() -> None:
    text = "version: 1\nteams:\n  - name: search\n    budgets: {daily: lots}\n"
    # "    budgets: {daily: lots}": '{' at index 13, "daily: " is 7 chars -> 'lots' at index 21, column 22
    ((line, column, path, message),) = errors_of(text)
    assert (line, column, path) == (4, 22, "teams[0].budgets.daily")
    assert "decimal" in message.lower()
    listy = "version: 1\nlabels:\n  default_cap: [1, 2]\n"
    # "  default_cap: [1, 2]": '[' at index 15 -> column 16
    ((line, column, path, message),) = errors_of(listy)
    assert (line, column, path) == (3, 16, "labels.default_cap")
    assert "integer" in message


def test_negative_budget_is_reported_at_the_number() -> None:
    text = "version: 1\nteams:\n  - name: search\n    budgets:\n      monthly: -5\n"
    # "      monthly: -5": '-' at index 15 -> column 16
    assert errors_of(text) == [
        (5, 16, "teams[0].budgets.monthly", "Input should be greater than or equal to 0")
    ]


def test_duplicate_mapping_key_is_reported_at_the_second_key() -> None:
    text = "version: 1\nchargeback:\n  model: cost_plus\n  model: at_cost\n"
    assert errors_of(text) == [(4, 3, "chargeback.model", "duplicate key 'model'")]
    nested = "teams:\n  - name: a\n    budgets: {daily: 1, daily: 2}\n"
    # "    budgets: {daily: 1, daily: 2}": second 'daily' at index 24 -> column 25
    assert errors_of(nested) == [(3, 25, "teams[0].budgets.daily", "duplicate key 'daily'")]


def test_thresholds_not_ascending_are_reported_at_the_list() -> None:
    text = "version: 1\nteams:\n  - name: search\n    budgets: {monthly: 10, thresholds: [80, 50, 95]}\n"
    # '{' at index 13; "monthly: 10, " 13 chars -> 't' at 27; "thresholds: " 12 chars -> '[' at 39, column 40
    ((line, column, path, message),) = errors_of(text)
    assert (line, column, path) == (4, 40, "teams[0].budgets.thresholds")
    assert "ascending" in message
    dupes = "teams:\n  - name: s\n    budgets:\n      thresholds:\n        - 50\n        - 50\n"
    ((line, column, path, message),) = errors_of(dupes)
    assert (line, column, path) == (5, 9, "teams[0].budgets.thresholds")  # the block list starts at '-'


def test_volume_tiers_out_of_order_point_at_the_smaller_bound() -> None:
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
    ((line, column, path, message),) = errors_of(text)
    assert (line, column, path) == (6, 22, "chargeback.volume_tiers[1].up_to_tokens")
    assert "500" in message and "1000" in message
    open_middle = (
        "chargeback:\n  model: cost_plus\n  volume_tiers:\n"
        "    - {markup_percent: 20}\n    - {up_to_tokens: 500, markup_percent: 10}\n"
    )
    ((line, column, path, message),) = errors_of(open_middle)
    assert (line, column, path) == (4, 7, "chargeback.volume_tiers[0]")  # the '{' of the open tier
    assert "last tier" in message


def test_duplicated_team_names_point_at_the_repeat() -> None:
    text = "version: 1\nteams:\n  - name: search\n  - name: support\n  - name: search\n"
    # line 5 "  - name: search": value at index 10 -> column 11
    assert errors_of(text) == [(5, 11, "teams[2].name", "duplicate team 'search' (also teams[0])")]


def test_every_problem_is_reported_in_file_order() -> None:
    text = (
        "version: 1\n"  # 1
        "teams:\n"  # 2
        "  - name: a\n"  # 3
        "    colour: red\n"  # 4: unknown key at column 5
        "    budgets: {daily: -1}\n"  # 5: '-' at index 21 -> column 22
        "labels:\n"  # 6
        "  default_cap: 0\n"  # 7: '0' at index 15 -> column 16
    )
    found = errors_of(text)
    assert [(line, column) for line, column, _path, _message in found] == [(4, 5), (5, 22), (7, 16)]
    with pytest.raises(ConfigError) as caught:
        load_config("cfg.yaml", text=text)
    assert str(caught.value).splitlines()[0] == "cfg.yaml:4:5: teams[0].colour: unknown key 'colour'"


def test_load_model_works_for_any_model_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nteams:\n  - {name: x, budgets: {daily: 0.1}}\n")
    config = load_model(path, Config)
    assert config.budget_for("x", "daily") == Decimal("0.1")
    with pytest.raises(ConfigError) as caught:
        load_model(tmp_path / "absent.yaml", Config)
    assert str(caught.value).startswith(f"{tmp_path / 'absent.yaml'}:1:1: cannot read file")


# --- values -----------------------------------------------------------------------------------


def test_money_is_exact_decimal() -> None:
    config = load_config(
        "cfg.yaml",
        text="teams:\n  - {name: a, budgets: {daily: 0.1, monthly: 80.50}}\n"
        "chargeback: {model: cost_plus, markup_percent: 0.3, platform_fee_monthly_usd: 1e-9}\n",
    )
    daily = config.budget_for("a", "daily")
    assert daily == Decimal("0.1") and isinstance(daily, Decimal)
    assert str(config.budget_for("a", "monthly")) == "80.50"  # the written digits, not a float's
    assert config.chargeback.markup_percent == Decimal("0.3")
    assert config.chargeback.platform_fee_monthly_usd == Decimal("1E-9")
    assert daily.as_tuple() == (0, (1,), -1)  # digits 1, exponent -1: no binary float in between


def test_the_shipped_example_and_demo_configs_validate() -> None:
    example = load_config(EXAMPLE)
    assert [t.name for t in example.teams] == ["marketing", "support", "search", "platform"]
    assert example.attribution.trust == "accept" and len(example.attribution.rules) == 4
    assert example.budget_for("search", "daily") == Decimal("80.50")
    assert example.budget_for("platform", "monthly") == Decimal(500)
    assert example.team("platform") is not None
    assert example.team("platform").budgets.thresholds == [50, 80, 95, 100, 120]  # type: ignore[union-attr]
    demo = load_config(DEMO)
    assert [t.name for t in demo.teams] == ["marketing", "support", "search", "platform"]
    assert demo.budget_for("platform", "daily") == Decimal("0.5")
    assert demo.chargeback.outcomes == {"ticket_resolved": Decimal("0.50")}


def test_budget_for_periods_and_unknown_teams() -> None:
    config = load_config(EXAMPLE)
    assert config.budget_for("marketing", "daily") == Decimal(200)
    assert config.budget_for("marketing", "monthly") == Decimal(5000)
    assert config.budget_for("platform", "daily") is None  # only a monthly budget
    assert config.budget_for("nobody", "monthly") is None
    assert config.budget_for("marketing", "weekly") is None
    assert Config.default().budget_for("marketing", "daily") is None


# --- team resolution --------------------------------------------------------------------------

RULES = """\
attribution:
  trust: {trust}
  rules:
    - match: {{service.name: "checkout-*"}}
      team: platform
    - match: {{k8s.namespace.name: "support-*"}}
      team: support
    - match: {{llmcost.property.api_key_id: "key-mkt-*"}}
      team: marketing
    - match: {{service.name: "search-*", deployment.environment.name: production}}
      team: search
"""


def rules(trust: str) -> Config:
    return load_config("rules.yaml", text=RULES.format(trust=trust))


CHECKOUT = {"service.name": "checkout-api"}
NO_MATCH = {"service.name": "billing"}


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
    ],
)
def test_trust_policies(trust: str, attrs: dict[str, str], asserted: str, expected: tuple[str, str]) -> None:
    assert AttributionRules(rules(trust).attribution).resolve_team(attrs, asserted) == expected


def test_rule_matching_globs_namespaces_api_keys_and_resources() -> None:
    config = rules("accept")
    resolve = AttributionRules(config.attribution).resolve_team
    assert resolve({"k8s.namespace.name": "support-eu"}, "") == ("support", "rule")
    assert resolve({"k8s.namespace.name": "support"}, "") == ("unattributed", "default")  # glob needs '-'
    assert resolve({"llmcost.property.api_key_id": "key-mkt-7"}, "") == ("marketing", "rule")
    assert resolve({"llmcost.property.api_key_id": "key-sup-7"}, "") == ("unattributed", "default")
    assert resolve({"service.name": "web-checkout-api"}, "") == ("unattributed", "default")  # anchored
    # every attribute of a rule must match
    assert resolve({"service.name": "search-api"}, "") == ("unattributed", "default")
    both = {"service.name": "search-api", "deployment.environment.name": "production"}
    assert resolve(both, "") == ("search", "rule")
    # first match wins: checkout-* comes before support-*
    first = {"service.name": "checkout-api", "k8s.namespace.name": "support-eu"}
    assert resolve(first, "") == ("platform", "rule")
    # the full resolver reads resource attributes where the span has none (span wins)
    resolver = _team_resolver(config)
    assert resolver({}, {"service.name": "checkout-web"}, "") == ("platform", "rule")
    assert resolver({"service.name": "billing"}, {"service.name": "checkout-web"}, "") == (
        "unattributed",
        "default",
    )
    assert resolver({"deployment.environment.name": "production"}, {"service.name": "search-x"}, "") == (
        "search",
        "rule",
    )
    # repeated calls (the resolver caches decisions) keep answering the same
    for _ in range(3):
        assert resolve(CHECKOUT, "") == ("platform", "rule")


def test_default_team_and_rule_features() -> None:
    config = load_config(
        "c.yaml",
        text="attribution:\n  trust: reject\n  default_team: shared-costs\n  rules:\n"
        "    - match: {k8s.namespace.name: 'support-*'}\n      team: support\n      feature: ticket-triage\n",
    )
    assert AttributionRules(config.attribution).resolve_team({}, "") == ("shared-costs", "default")
    assert AttributionRules(config.attribution).resolve_team({}, "search") == ("shared-costs", "overridden")
    resolve = AttributionRules(config.attribution).resolve
    assert resolve({"k8s.namespace.name": "support-1"}, {}, "", "") == ("support", "rule", "ticket-triage")
    assert resolve({"k8s.namespace.name": "support-1"}, {}, "", "chat") == ("support", "rule", "chat")
    assert resolve({}, {}, "", "") == ("shared-costs", "default", "")


def test_rules_must_name_declared_teams() -> None:
    text = "teams:\n  - name: search\nattribution:\n  rules:\n    - match: {service.name: x}\n      team: serch\n"
    # line 6 "      team: serch": value at index 12 -> column 13
    ((line, column, path, message),) = errors_of(text)
    assert (line, column, path) == (6, 13, "attribution.rules[0].team")
    assert "'serch'" in message


# --- chargeback -------------------------------------------------------------------------------


def call_for(team: str) -> LlmCall:
    return LlmCall("a" * 32, "b" * 16, 1, 2, "openai", "chat", "gpt-4o", "", Usage(), Attribution(team=team))


def test_chargeback_rates_with_per_team_override() -> None:
    config = load_config(EXAMPLE)  # default cost_plus 15 % + 5 %; support overrides markup to 10 %
    assert config.chargeback_rates("marketing") == ("cost_plus", Decimal(15), Decimal(5))
    assert config.chargeback_rates("support") == ("cost_plus", Decimal(10), Decimal(5))  # fee inherited
    assert config.chargeback_rates("no-such-team") == ("cost_plus", Decimal(15), Decimal(5))
    at_cost_team = load_config(
        "c.yaml",
        text="teams:\n  - {name: research, chargeback: {model: at_cost}}\n  - {name: web}\n"
        "chargeback: {model: cost_plus, markup_percent: 20}\n",
    )
    assert at_cost_team.chargeback_rates("research") == ("at_cost", Decimal(20), Decimal(0))
    assert at_cost_team.chargeback_rates("web") == ("cost_plus", Decimal(20), Decimal(0))


def test_make_chargeback_amounts() -> None:
    charge = make_chargeback(load_config(EXAMPLE))
    # cost_plus 15 % markup + 5 % fee: 1_000_000 * (1 + 0.15 + 0.05) = 1_200_000
    assert charge(call_for("marketing"), 1_000_000) == 1_200_000
    # support: 10 % + 5 %: 1_000_000 * 1.15 = 1_150_000
    assert charge(call_for("support"), 1_000_000) == 1_150_000
    assert charge(call_for("marketing"), None) is None  # unpriced stays unpriced, never 0
    assert charge(call_for("marketing"), 0) == 0
    at_cost = make_chargeback(Config.default())
    assert at_cost(call_for("anyone"), 1_000_000) == 1_000_000  # passthrough
    assert at_cost(call_for("anyone"), None) is None
    # rounding to whole nano-dollars, half to even: markup 10 % -> x1.1
    ten = make_chargeback(load_config("c.yaml", text="chargeback: {model: cost_plus, markup_percent: 10}\n"))
    assert ten(call_for("t"), 5) == 6  # 5.5 -> 6 (even)
    assert ten(call_for("t"), 15) == 16  # 16.5 -> 16 (even)
    assert ten(call_for("t"), 3) == 3  # 3.3 -> 3
    # exact decimal percentages: 0.1 % of 10**12 is exactly 10**9
    tiny = make_chargeback(
        load_config("c.yaml", text="chargeback: {model: cost_plus, markup_percent: 0.1}\n")
    )
    assert tiny(call_for("t"), 10**12) == 10**12 + 10**9


# --- hot reload -------------------------------------------------------------------------------

GOOD = "version: 1\nteams:\n  - {name: search, budgets: {daily: 5}}\n"
GOOD_2 = "version: 1\nteams:\n  - {name: search, budgets: {daily: 7.25}}\n"
GOOD_3 = "version: 1\nteams:\n  - {name: search, budgets: {daily: 9}}\n  - {name: web}\n"
# line 3: "  - {name: search, budgets: {daily: -1}}": '-1' at index 36 -> column 37
BROKEN = "version: 1\nteams:\n  - {name: search, budgets: {daily: -1}}\n"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "llmcost.yaml"
    path.write_text(GOOD)
    return path


@pytest.fixture
def watched(config_file: Path) -> Iterator[tuple[ConfigWatcher, list[Config]]]:
    applied: list[Config] = []
    watcher = ConfigWatcher(config_file, applied.append, poll_interval=0.05).start()
    yield watcher, applied
    watcher.stop()


def test_watcher_applies_good_changes_and_refuses_bad_ones(
    config_file: Path, watched: tuple[ConfigWatcher, list[Config]]
) -> None:
    watcher, applied = watched
    time.sleep(0.2)
    assert applied == []  # nothing changed yet: nothing applied
    config_file.write_text(GOOD_2)
    assert wait_for(lambda: len(applied) == 1)
    assert applied[0].budget_for("search", "daily") == Decimal("7.25")
    assert watcher.reloads == 1 and watcher.reload_failures == 0

    config_file.write_text(BROKEN)
    assert wait_for(lambda: watcher.reload_failures == 1)
    time.sleep(0.2)
    assert len(applied) == 1  # apply was not called with the broken file
    assert watcher.last_error is not None
    assert str(watcher.last_error) == (
        f"{config_file}:3:37: teams[0].budgets.daily: Input should be greater than or equal to 0"
    )
    assert watcher.reload_failures == 1  # refused once, not again on every poll

    config_file.write_text(GOOD_3)
    assert wait_for(lambda: len(applied) == 2)
    assert applied[1].budget_for("search", "daily") == Decimal(9)
    assert applied[1].team_names() == ["search", "web"]
    assert watcher.last_error is None and watcher.reloads == 2


def test_touching_the_file_does_not_reload(
    config_file: Path, watched: tuple[ConfigWatcher, list[Config]]
) -> None:
    watcher, applied = watched
    config_file.write_text(GOOD)  # same content, new mtime
    os.utime(config_file)
    time.sleep(0.4)
    assert applied == [] and watcher.reloads == 0 and watcher.reload_failures == 0


def test_sighup_reloads(config_file: Path) -> None:
    assert threading.current_thread() is threading.main_thread()
    applied: list[Config] = []
    # A poll interval far beyond the test: only the signal can trigger these reloads.
    watcher = ConfigWatcher(config_file, applied.append, poll_interval=3600).start()
    previous = signal.getsignal(signal.SIGHUP)
    watcher.install_sighup_handler()
    try:
        os.kill(os.getpid(), signal.SIGHUP)  # unchanged file: a forced reload still happens
        assert wait_for(lambda: len(applied) == 1)
        assert applied[0].budget_for("search", "daily") == Decimal(5)
        config_file.write_text(GOOD_2)
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_for(lambda: len(applied) == 2)
        assert applied[1].budget_for("search", "daily") == Decimal("7.25")
        config_file.write_text(BROKEN)
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_for(lambda: watcher.reload_failures == 1)
        assert len(applied) == 2
    finally:
        watcher.stop()
    assert signal.getsignal(signal.SIGHUP) == previous  # stop() restored the previous handler


# --- llmcost config check ---------------------------------------------------------------------


def test_config_check_cli(tmp_path: Path, llmcost: Callable[..., Result]) -> None:
    def config_check(path: Path) -> Result:
        return llmcost("config", "check", str(path))

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "teams:\n"
        "  - name: search\n"
        "    budgets: {monthly: -3}\n"  # '{' at 13, "monthly: " 9 chars -> '-' at 23, column 24
        "  - name: search\n"  # duplicate: value at index 10 -> column 11
        "chargeback:\n"
        "  modle: cost_plus\n"  # unknown key at column 3
    )
    result = config_check(bad)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"{bad}:4:24: teams[0].budgets.monthly: Input should be greater than or equal to 0",
        f"{bad}:7:3: chargeback.modle: unknown key 'modle'",
    ]
    # the duplicate team is a cross-field check, run once the fields themselves are valid
    bad.write_text("version: 1\nteams:\n  - name: search\n  - name: search\n")
    result = config_check(bad)
    assert (result.exit_code, result.stderr.strip()) == (
        1,
        f"{bad}:4:11: teams[1].name: duplicate team 'search' (also teams[0])",
    )
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("teams: [\n")
    result = config_check(syntax)
    assert result.exit_code == 1 and result.stderr.startswith(f"{syntax}:2:1: YAML syntax error")


# --- the running collector --------------------------------------------------------------------


@pytest.fixture
def collector(tmp_path: Path, config_file: Path) -> Iterator[CollectorApp]:
    settings = Settings(
        host="127.0.0.1",
        otlp_http_port=0,
        http_port=0,
        enable_grpc=False,
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        config_path=str(config_file),
    )
    app = CollectorApp(settings).start()
    yield app
    app.stop()


def test_running_collector_applies_good_edits_and_refuses_broken_ones(
    collector: CollectorApp, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmcost_collector")
    assert collector.config.budget_for("search", "daily") == Decimal(5)
    config_file.write_text(GOOD_2)
    assert wait_for(lambda: collector.config.budget_for("search", "daily") == Decimal("7.25"))
    assert (
        collector.registry.get_sample_value("llmcost_collector_config_reloads_total", {"result": "applied"})
        == 1
    )

    config_file.write_text(BROKEN)

    def refused() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "event", "") == "config_error"]

    assert wait_for(refused)
    (record,) = refused()
    assert (record.line, record.column, record.key) == (3, 37, "teams[0].budgets.daily")  # type: ignore[attr-defined]
    assert collector.config.budget_for("search", "daily") == Decimal("7.25")  # the old config keeps running
    assert collector.ready() == (True, "ok")

    config_file.write_text(GOOD_3)
    assert wait_for(lambda: collector.config.budget_for("search", "daily") == Decimal(9))


def test_refused_reload_is_counted_in_self_metrics(
    collector: CollectorApp, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_file.write_text(BROKEN)
    assert wait_for(lambda: any(getattr(r, "event", "") == "config_reload_refused" for r in caplog.records))
    refused = collector.registry.get_sample_value(
        "llmcost_collector_config_reloads_total", {"result": "refused"}
    )
    assert refused == 1


def test_a_rule_feature_fills_spans_without_one(tmp_path: Path) -> None:
    config = load_config(
        "c.yaml",
        text="attribution:\n  rules:\n    - match: {k8s.namespace.name: 'support-*'}\n"
        "      team: support\n      feature: ticket-triage\n",
    )
    settings = Settings(
        host="127.0.0.1",
        otlp_http_port=0,
        http_port=0,
        enable_grpc=False,
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
    )
    app = CollectorApp(settings, config=config).start()
    try:
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"k8s.namespace.name": "support-eu"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        with provider.get_tracer("t").start_as_current_span("chat gpt-4o") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 5,
                }
            )
        provider.shutdown()
        exporter = OTLPSpanExporter(endpoint=app.urls()["otlp_http"])
        assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
        (row,) = app.ledger.spend(0, time.time_ns() + 10**12, group_by=("team", "team_source", "feature"))
        assert row.group == {"team": "support", "team_source": "rule", "feature": "ticket-triage"}
    finally:
        app.stop()


def _team_resolver(config: Config):  # (span attrs, resource attrs, asserted team) -> (team, source)
    rules = AttributionRules(config.attribution)
    return lambda attrs, resource, asserted: rules.resolve_team(attrs, asserted, resource)
