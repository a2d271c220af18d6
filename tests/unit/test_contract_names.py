"""Both sides of the wire spell the public names the same way, and docs/reference.md lists
every public name the code uses (metrics and labels, span attributes, environment variables,
config keys, commands): a name added to the code and not to the page fails here."""

from __future__ import annotations

import ast
import re
import tempfile
import typing
from pathlib import Path

from llmcost_collector.app import CollectorApp, Settings
from llmcost_collector.cli.main import SUBCOMMANDS
from llmcost_collector.config.schema import Config
from llmcost_collector.normalize import semconv
from llmcost_collector.normalize.span import CACHE_WRITE_KEYS
from pydantic import BaseModel

from otel_llmcost import attributes
from tests.support import reference_metrics, reference_names, reference_section


def test_emitted_names_are_the_names_the_collector_reads() -> None:
    pairs = {
        attributes.TEAM: semconv.LLMCOST_TEAM,
        attributes.FEATURE: semconv.LLMCOST_FEATURE,
        attributes.USE_CASE: semconv.LLMCOST_USE_CASE,
        attributes.USER_TIER: semconv.LLMCOST_USER_TIER,
        attributes.PROPERTY_PREFIX: semconv.LLMCOST_PROPERTY_PREFIX,
        attributes.USER_ID: semconv.USER_ID,
        attributes.SESSION_ID: semconv.SESSION_ID,
        attributes.SESSION_NAME: semconv.LLMCOST_SESSION_NAME,
        attributes.SESSION_PATH: semconv.LLMCOST_SESSION_PATH,
        attributes.ENVIRONMENT: semconv.DEPLOYMENT_ENVIRONMENT_NAME,
        attributes.USAGE_ESTIMATED: semconv.LLMCOST_USAGE_ESTIMATED,
        attributes.CACHE_HIT: semconv.LLMCOST_CACHE_HIT,
        attributes.OUTCOME: semconv.LLMCOST_OUTCOME,
        attributes.OUTCOME_COUNT: semconv.LLMCOST_OUTCOME_COUNT,
        attributes.CACHE_CREATION_5M: semconv.LLMCOST_USAGE_CACHE_CREATION_5M,
        attributes.CACHE_CREATION_1H: semconv.LLMCOST_USAGE_CACHE_CREATION_1H,
        attributes.GEN_AI_USAGE_INPUT_TOKENS: semconv.GEN_AI_USAGE_INPUT_TOKENS,
        attributes.GEN_AI_USAGE_OUTPUT_TOKENS: semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
        attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        attributes.GEN_AI_PROVIDER_NAME: semconv.GEN_AI_PROVIDER_NAME,
        attributes.GEN_AI_REQUEST_MODEL: semconv.GEN_AI_REQUEST_MODEL,
        attributes.GEN_AI_RESPONSE_MODEL: semconv.GEN_AI_RESPONSE_MODEL,
    }
    assert [emitted for emitted, read in pairs.items() if emitted != read] == []


# --- every public name the code uses is listed in docs/reference.md -------------------------

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "otel_llmcost", ROOT / "collector" / "llmcost_collector"]
# Variables of other programs the code only passes through or reads for a library.
NOT_OURS = {"DATA_GYM_CACHE_DIR", "TIKTOKEN_CACHE_DIR"}


def environment_variables_read() -> set[str]:
    """``os.environ.get("X")``, ``os.environ["X"]``, ``os.getenv("X")`` and string defaults of
    settings fields named like environment variables, anywhere in the two packages."""
    found: set[str] = set()
    for path in (p for source in SOURCES for p in source.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            key = None
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = ast.unparse(node.func)
                if func.endswith(("environ.get", "getenv", "environ.pop", "environ.setdefault")):
                    key = node.args[0].value
            elif (
                isinstance(node, ast.Subscript)
                and ast.unparse(node.value).endswith("environ")
                and isinstance(node.slice, ast.Constant)
            ):
                key = node.slice.value
            if isinstance(key, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", key):
                found.add(key)
    return found - NOT_OURS


def test_environment_variables_are_listed() -> None:
    settings = {f"LLMCOST_{name.upper()}" for name in Settings.model_fields if name != "config_path"}
    privacy_key = Config.model_fields["privacy"].default_factory().hash_key_env  # type: ignore[misc]
    used = (
        environment_variables_read()
        | settings
        | set(attributes.ENV_DEFAULTS)
        | {"LLMCOST_CONFIG", privacy_key}
    )
    listed = reference_names("Environment variables")
    assert {"LLMCOST_LEDGER_URL", "OTEL_LLMCOST_TEAM"} <= used  # the scan finds what it should
    assert used - listed == set(), "read by the code, missing from docs/reference.md"


def metric_families() -> dict[str, tuple[str, ...]]:
    """Series names and label names the collector registers, from a real app's registry."""
    with tempfile.TemporaryDirectory() as tmp:
        app = CollectorApp(Settings(ledger_url=f"sqlite:///{tmp}/ledger.db", enable_grpc=False))
        try:
            families: dict[str, tuple[str, ...]] = {}
            for collector in list(app.registry._collector_to_names):
                labels = tuple(getattr(collector, "_labelnames", ()))
                for family in collector.collect():
                    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
                    for suffix in suffixes.get(family.type, ("",)):
                        extra = ("le",) if suffix == "_bucket" else ()
                        families[family.name + suffix] = (*labels, *extra)
        finally:
            app.ledger.close()
    return families


def test_metrics_and_labels_are_listed() -> None:
    listed = reference_metrics()
    registered = metric_families()
    assert "llmcost_cost_usd_total" in registered and "llmcost_spend_usd" in registered
    assert set(registered) - set(listed) == set(), "registered, missing from docs/reference.md"
    wrong = {
        name: labels
        for name, labels in registered.items()
        if labels and set(labels) != set(listed[name])  # gauges built at scrape time list theirs
    }
    assert wrong == {}, "labels differ from docs/reference.md"


def test_span_attributes_are_listed() -> None:
    listed = reference_names()
    names = {
        value
        for module in (attributes, semconv)
        for key, value in vars(module).items()
        if key.isupper() and isinstance(value, str) and "." in value
    }
    assert "llmcost.team" in names and "gen_ai.usage.input_tokens" in names
    assert names - listed == set(), "emitted or read, missing from docs/reference.md"


def test_config_keys_and_commands_are_listed() -> None:
    section = reference_section("Configuration file keys")

    def keys(model: type[BaseModel], prefix: str = "") -> set[str]:
        found = set()
        for name, field in model.model_fields.items():
            found.add(prefix + name)
            for arg in (field.annotation, *typing.get_args(field.annotation)):
                for inner in (arg, *typing.get_args(arg)):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        found |= keys(inner, f"{prefix}{name}.")
        return found

    unlisted = {key for key in keys(Config) if f"`{key.rsplit('.', 1)[-1]}`" not in section}
    assert unlisted == set(), "config keys missing from docs/reference.md"
    commands = reference_names("Commands")
    assert set(SUBCOMMANDS) - commands == set(), "llmcost subcommands missing from docs/reference.md"


def test_the_check_catches_an_unlisted_name() -> None:
    """The scans above compare real sets: a name the page does not list is reported."""
    assert "LLMCOST_NOT_A_SETTING" not in reference_names("Environment variables")
    assert "llmcost_not_a_metric_total" not in reference_metrics()


def test_cache_writes_go_out_under_a_name_the_collector_reads() -> None:
    """The in-service side emits the renamed ``gen_ai.usage.cache_write.input_tokens``."""
    assert attributes.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS == "gen_ai.usage.cache_write.input_tokens"
    assert attributes.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS in CACHE_WRITE_KEYS
