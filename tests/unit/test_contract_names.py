"""The public names in the code are the ones ``docs/reference.md`` lists.

``docs/reference.md`` is where users, dashboards and other teams' code look up a name. These
tests collect the names from where the code really defines them (the attribute constants, a real
``CollectorApp``'s Prometheus registry, every ``os.environ`` read, the pydantic config schema, the
``llmcost`` argument parser, the HTTP handlers, the import-linter layers) and fail when one is
missing from the reference, so a new public name cannot ship undocumented. Where the reference
makes a claim the code can check (a metric's exact labels, a command being available, a config
key existing), the reverse is checked too, so the reference cannot go stale.

Both sides of the wire must also spell the attribute names the same way.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import click
import pytest
from llmcost_collector.app import CollectorApp, Settings
from llmcost_collector.cli.main import cli
from llmcost_collector.config.schema import Config
from llmcost_collector.normalize import semconv

from otel_llmcost import attributes
from tests import reference
from tests.reference import ROOT, backticked, is_listed, section

SOURCES = sorted((ROOT / "otel_llmcost").rglob("*.py")) + sorted((ROOT / "collector").rglob("*.py"))
COLLECTOR = ROOT / "collector" / "llmcost_collector"


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
        attributes.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        attributes.GEN_AI_PROVIDER_NAME: semconv.GEN_AI_PROVIDER_NAME,
        attributes.GEN_AI_REQUEST_MODEL: semconv.GEN_AI_REQUEST_MODEL,
        attributes.GEN_AI_RESPONSE_MODEL: semconv.GEN_AI_RESPONSE_MODEL,
    }
    assert [emitted for emitted, read in pairs.items() if emitted != read] == []


# --- span attributes --------------------------------------------------------------------------


def string_constants(module: ModuleType) -> dict[str, str]:
    """A module's upper-case string constants: the attribute names it defines."""
    return {name: value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)}


@pytest.mark.parametrize("module", [attributes, semconv], ids=lambda m: m.__name__)
def test_span_attribute_names_are_documented(module: ModuleType) -> None:
    """Every attribute name ``otel_llmcost`` emits and the collector reads (all dialects)."""
    listed = backticked(section("Span attributes"))
    missing = {
        name: value for name, value in string_constants(module).items() if not is_listed(value, listed)
    }
    assert not missing, f"{module.__name__}: attribute names not in docs/reference.md: {missing}"


def test_the_cache_write_rename_is_read_both_ways() -> None:
    """The Aug 2026 rename: the collector reads the new and the old name (never adding them)."""
    from llmcost_collector.normalize.span import CACHE_WRITE_KEYS

    assert {
        semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    } <= set(CACHE_WRITE_KEYS)
    text = section("Span attributes")
    assert "`gen_ai.usage.cache_creation.input_tokens` to `gen_ai.usage.cache_write.input_tokens`" in text


# --- Prometheus metrics -----------------------------------------------------------------------


def registered_metrics(app: CollectorApp) -> dict[str, tuple[str, frozenset[str]]]:
    """Scraped name -> (type, label names) of everything in the app's registry.

    prometheus-client keeps a metric's declared label names in ``_labelnames`` (no public
    accessor); reading them covers labels no sample has carried yet. Custom collectors (the ledger
    gauges) are asked for their families, which keep the label names the same way.
    """
    found = {}
    for collector in list(app.registry._collector_to_names):
        if hasattr(collector, "_labelnames") and hasattr(collector, "_type"):
            families: Iterable[Any] = [(collector._name, collector._type, collector._labelnames)]
        else:
            families = [(f.name, f.type, getattr(f, "_labelnames", ())) for f in collector.collect()]
        for name, kind, labels in families:
            scraped = f"{name}_total" if kind == "counter" else name
            found[scraped] = (kind, frozenset(labels))
    return found


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CollectorApp]:
    """A real collector (not listening): the registry is built exactly as ``llmcost serve`` builds it."""
    collector = CollectorApp(Settings(ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", enable_grpc=False))
    yield collector
    collector.ledger.close()


def test_registered_metrics_are_documented_with_their_labels(app: CollectorApp) -> None:
    registered = registered_metrics(app)
    documented = reference.metrics()
    assert len(registered) >= 15
    for name, (kind, labels) in registered.items():
        assert name in documented, f"metric {name} is not in docs/reference.md"
        doc = documented[name]
        assert not doc.planned, f"{name} is registered, docs/reference.md still calls it planned"
        assert doc.type == kind, f"{name}: docs/reference.md says {doc.type}, the registry has {kind}"
        assert doc.labels == labels, (
            f"{name}: docs/reference.md lists labels {set(doc.labels)}, code has {set(labels)}"
        )
    unbuilt = {name for name, doc in documented.items() if not doc.planned and name not in registered}
    assert not unbuilt, f"docs/reference.md lists metrics the collector does not register: {unbuilt}"


def test_no_metric_carries_a_never_label(app: CollectorApp) -> None:
    never = reference.never_labels()
    assert {"user_id", "session_id", "trace_id"} <= never
    for name, (_, labels) in registered_metrics(app).items():
        assert not labels & never, (
            f"{name} has labels docs/reference.md says are never labels: {labels & never}"
        )


# --- environment variables --------------------------------------------------------------------

ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
PROJECT_ENV = re.compile(r"(?:LLMCOST|OTEL)_[A-Z0-9_]+")
_ENV_READERS = {"get", "pop", "setdefault", "__getitem__", "__contains__"}


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)


def environment_variables(source: str, load: Callable[[], object]) -> dict[str, int]:
    """Environment variable names a module reads or sets -> a line where it does.

    Three ways a name reaches ``os.environ``: a read (``os.environ.get/[]/pop/setdefault``,
    ``os.getenv``, or any of those through a local alias such as ``env = os.environ``) of a string
    literal or of a module constant; a string literal shaped like one of the project's variables
    (``LLMCOST_*``, ``OTEL_*``: a default such as ``hash_key_env``); and a module-level table of
    names built by f-string (``ENV_DEFAULTS``), read from the module ``load`` returns.
    """
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    aliases = {"environ"} if "from os import environ" in source else set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(_is_os_environ(n) for n in ast.walk(node.value)):
            aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}

    def is_environ(node: ast.AST) -> bool:
        return _is_os_environ(node) or (isinstance(node, ast.Name) and node.id in aliases)

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    fragments = {
        id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values
    }
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            reads = isinstance(func, ast.Attribute) and func.attr in _ENV_READERS and is_environ(func.value)
            getenv = (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                isinstance(func, ast.Name) and func.id == "getenv"
            )
            if reads or getenv:
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and is_environ(node.value):
            key = node.slice
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and PROJECT_ENV.fullmatch(node.value)
            and id(node) not in fragments
        ):
            found.setdefault(node.value, node.lineno)
        if key is not None and (name := name_of(key)) is not None:
            found.setdefault(name, key.lineno)
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        built = any(
            isinstance(part, ast.JoinedStr)
            and part.values
            and isinstance(part.values[0], ast.Constant)
            and PROJECT_ENV.match(str(part.values[0].value))
            for part in ast.walk(value)
        )
        if built:
            module = load()
            for target in targets:
                assert isinstance(target, ast.Name), (
                    f"line {statement.lineno}: build env names into a plain name"
                )
                for name in getattr(module, target.id):
                    assert ENV_NAME.fullmatch(name), f"{target.id}: {name!r} is not a variable name"
                    found.setdefault(name, statement.lineno)
    return found


def test_environment_variable_extraction() -> None:
    source = (
        "import os\n"
        "KEY = 'LLMCOST_A'\n"
        "TABLE = {f'OTEL_LLMCOST_{n.upper()}': n for n in ('x',)}\n"
        "def f(environ=None):\n"
        "    env = os.environ if environ is None else environ\n"
        "    os.environ.get(KEY); os.environ['B_VAR']; os.getenv('C_VAR'); env.get('LLMCOST_D', 1)\n"
        "    os.environ['E_VAR'] = '1'; default = 'LLMCOST_F'; os.environ.get(dynamic)\n"
        "    other.get('NOT_ENV'); 'not a name'\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<snippet>", "exec"), namespace)
    found = environment_variables(source, lambda: SimpleNamespace(**namespace))
    assert set(found) == {"LLMCOST_A", "B_VAR", "C_VAR", "LLMCOST_D", "E_VAR", "LLMCOST_F"} | {
        "OTEL_LLMCOST_X"
    }


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT / "collector" if path.is_relative_to(ROOT / "collector") else ROOT)
    return ".".join(relative.with_suffix("").parts).removesuffix(".__init__")


def settings_variables() -> set[str]:
    """The variables ``Settings`` reads: its prefix plus each field's name, or the field's aliases."""
    prefix = Settings.model_config.get("env_prefix", "")
    names = set()
    for field, info in Settings.model_fields.items():
        aliases = getattr(info.validation_alias, "choices", None)
        if aliases:
            names |= {alias for alias in aliases if isinstance(alias, str) and ENV_NAME.fullmatch(alias)}
        else:
            names.add(f"{prefix}{field}".upper())
    return names


def test_environment_variables_are_documented() -> None:
    listed = backticked(section("Environment variables"))
    found: dict[str, str] = {}
    for path in SOURCES:
        load = partial(importlib.import_module, _module_name(path))
        for name, line in environment_variables(path.read_text(), load).items():
            found.setdefault(name, f"{path.relative_to(ROOT)}:{line}")
    found.update({name: "collector/llmcost_collector/settings.py" for name in settings_variables()})
    assert {"LLMCOST_CONFIG", "LLMCOST_LEDGER_URL", "OTEL_LLMCOST_TEAM"} <= set(found)
    missing = {name: where for name, where in found.items() if name not in listed}
    assert not missing, f"environment variables not in docs/reference.md: {missing}"


# --- configuration file -----------------------------------------------------------------------


def config_keys(schema: dict[str, Any]) -> set[str]:
    """Every key path of the config file, from the pydantic models' JSON schema (``[]``: list item)."""
    definitions = schema.get("$defs", {})
    keys: set[str] = set()

    def walk(node: dict[str, Any], path: str) -> None:
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[1]]
        for alternative in node.get("anyOf", []):
            walk(alternative, path)
        if node.get("type") == "array" and "items" in node:
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.<name>")
        for name, child in node.get("properties", {}).items():
            key = f"{path}.{name}" if path else name
            keys.add(key)
            walk(child, key)

    walk(schema, "")
    return keys


def test_config_keys_are_documented() -> None:
    keys = config_keys(Config.model_json_schema())
    assert {"teams[].budgets.monthly", "price_book.entries[].cache_write_1h", "privacy.hash_key_env"} <= keys
    rows = reference.rows_with(section("Configuration file"), "key", "default", "meaning")
    listed = {key for row in rows for key in backticked(row["key"])}
    assert not keys - listed, f"config keys not in docs/reference.md: {sorted(keys - listed)}"
    assert not listed - keys, (
        f"docs/reference.md lists config keys the schema does not have: {sorted(listed - keys)}"
    )


# --- commands, ports, HTTP paths, layout ------------------------------------------------------


def subcommands(group: click.Group, prefix: str = "llmcost") -> Iterator[str]:
    """Every command and subcommand of the click application, as typed (``llmcost config check``)."""
    for name, command in group.commands.items():
        yield f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from subcommands(command, f"{prefix} {name}")


def test_commands_are_documented() -> None:
    commands = set(subcommands(cli))
    assert {"llmcost serve", "llmcost config check"} <= commands
    rows = reference.rows_with(section("Commands"), "command", "status")
    available = {name for row in rows if row["status"] == "available" for name in backticked(row["command"])}
    planned = {name for row in rows if row["status"] == "planned" for name in backticked(row["command"])}
    assert not commands - available, (
        f"commands not in docs/reference.md (or marked planned): {commands - available}"
    )
    assert not available - commands, (
        f"docs/reference.md says available, llmcost has no: {available - commands}"
    )
    assert not planned & commands, f"built, but docs/reference.md still says planned: {planned & commands}"


def test_default_ports_are_documented() -> None:
    ports = {name: value for name, value in vars(Settings()).items() if name.endswith("_port")}
    assert set(ports) == {"otlp_grpc_port", "otlp_http_port", "http_port"}
    listed = {
        name
        for row in reference.rows_with(section("Ports and HTTP paths"), "port")
        for name in backticked(row["port"])
    }
    assert {str(port) for port in ports.values()} <= listed


def http_paths(paths: Iterable[Path]) -> dict[str, str]:
    """String literals that are URL paths (``/v1/traces``, ``/metrics``, ...) in the HTTP handlers."""
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"/[\w./{}-]*", node.value)
            ):
                found.setdefault(node.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_http_paths_are_documented() -> None:
    handlers = [*sorted((COLLECTOR / "receive").rglob("*.py")), *sorted((COLLECTOR / "web").rglob("*.py"))]
    paths = http_paths(handlers)
    assert {"/v1/traces", "/metrics", "/healthz", "/readyz"} <= set(paths)
    listed = {token.split()[-1] for token in backticked(section("Ports and HTTP paths"))}
    missing = {path: where for path, where in paths.items() if path not in listed}
    assert not missing, f"HTTP paths not in docs/reference.md: {missing}"


def test_layers_are_documented() -> None:
    """The Layout section names every layer of the import-linter contracts, in their order."""
    # The layers array of the ``type = "layers"`` contract (read without tomllib: Python 3.10 has none).
    pyproject = (ROOT / "pyproject.toml").read_text()
    contract = re.search(r'type = "layers"\n(?:.*\n)*?layers = \[(.*?)\]', pyproject, re.DOTALL)
    assert contract, "pyproject.toml has no import-linter layers contract"
    layers = re.findall(r'"([^"]+)"', contract.group(1))
    assert len(layers) >= 5, layers
    layout = section("Layout")
    stages = {name for line in layers for name in (part.strip() for part in line.split("|"))}
    assert not stages - backticked(layout), f"layers not in the Layout section: {stages - backticked(layout)}"
    numbered = re.findall(r"^\d+\. (.+)$", layout, re.MULTILINE)
    assert [" | ".join(sorted(backticked(line))) for line in numbered] == [
        " | ".join(sorted(part.strip() for part in line.split("|"))) for line in layers
    ], "the Layout section's layer list is not the import-linter contract's"
