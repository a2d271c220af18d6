"""docker-compose.yml, Dockerfile and Grafana provisioning hang together.

No Docker engine runs here, so the stack is checked statically: the compose file against the
compose-spec JSON schema (check-jsonschema's vendored copy), every file it mounts or builds from
exists, every path a container is told to read resolves through its mounts to a file in the
repository, and every host name in the Prometheus, Alertmanager and Grafana configs is a service
of the compose network listening on that port.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host source, container target) of a service's bind mounts; named volumes are skipped."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        elif volume.get("type") == "bind":
            source, target = volume["source"], volume["target"]
        else:
            continue
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a container sees at ``container_path`` through its bind mounts."""
    wanted = PurePosixPath(container_path)
    for source, target in bind_mounts(service):
        if wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents:
            return (ROOT / source / wanted.relative_to(target)).resolve()
    raise AssertionError(f"{container_path} is not mounted from the repository")


def flag(service: dict[str, Any], name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in service.get("command", []) if arg.startswith(f"--{name}=")]
    assert len(values) == 1, (name, service.get("command"))
    return values[0]


def published(service: dict[str, Any]) -> set[int]:
    return {int(str(port).split(":")[-1].split("/")[0]) for port in service.get("ports", [])}


def test_compose_file_matches_the_compose_spec_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_every_mounted_and_built_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for source, _ in bind_mounts(service):
            assert (ROOT / source).exists(), f"service {name} mounts missing {source}"
        build = service.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / (
                build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            )
            assert context.is_dir() and dockerfile.is_file(), name


def test_dockerfile_copies_only_files_in_the_build_context() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copies = re.findall(r"^COPY\s+(?!--from)(.+)$", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert copies
    for line in copies:
        *sources, _destination = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
            assert source.rstrip("/").split("/")[0] not in ignored, f"{source} is excluded by .dockerignore"
    # the collector package and its extras come from collector/pyproject.toml
    assert (ROOT / "collector" / "pyproject.toml").is_file()


def test_collector_service(compose: dict[str, Any]) -> None:
    collector = compose["services"]["llmcost"]
    assert collector["build"]["context"] == "."
    assert collector["command"][0] == "serve"
    assert {4317, 4318, 9464} <= published(collector)
    environment = collector["environment"]
    assert (
        host_path(collector, environment["LLMCOST_CONFIG"]) == (ROOT / "examples" / "llmcost.yaml").resolve()
    )
    assert host_path(collector, environment["LLMCOST_CONFIG"]).is_file(), "examples/llmcost.yaml is missing"
    # the default SQLite ledger lives on a named volume, so it survives container restarts
    ledger = re.fullmatch(r"\$\{LLMCOST_LEDGER_URL:-sqlite:///(/.+)\}", environment["LLMCOST_LEDGER_URL"])
    assert ledger, environment["LLMCOST_LEDGER_URL"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in collector["volumes"] if isinstance(v, str)}
    data_dir = str(PurePosixPath(ledger.group(1)).parent)
    assert volumes[data_dir] in compose["volumes"], "the ledger directory must be a named volume"


def test_postgres_profile(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["profiles"] == ["postgres"]
    env = postgres["environment"]
    url = f"postgresql://{env['POSTGRES_USER']}:llmcost@postgres:5432/{env['POSTGRES_DB']}"
    assert url in COMPOSE_FILE.read_text(), "the header should show the LLMCOST_LEDGER_URL for the profile"
    # services outside the profile must not depend on it, or `docker compose up` would fail
    for name, service in compose["services"].items():
        if "profiles" not in service:
            assert "postgres" not in service.get("depends_on", []), name


def test_prometheus_and_alertmanager_read_the_repository_configs(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    config_path = host_path(prometheus, flag(prometheus, "config.file"))
    assert config_path == (ROOT / "prometheus" / "prometheus.yml").resolve()
    config = yaml.safe_load(config_path.read_text())
    for rule_file in config["rule_files"]:
        assert (config_path.parent / rule_file).is_file(), rule_file

    alertmanager = compose["services"]["alertmanager"]
    assert (
        host_path(alertmanager, flag(alertmanager, "config.file"))
        == (ROOT / "alertmanager" / "alertmanager.yml").resolve()
    )


def _endpoints(compose: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(where, host, port) of every address the stack's configs point at."""
    found: list[tuple[str, str, int]] = []
    prometheus = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                found.append((f"scrape job {job['job_name']}", host, int(port)))
    for am in prometheus["alerting"]["alertmanagers"]:
        for static in am["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                found.append(("prometheus alerting", host, int(port)))
    alertmanager = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in alertmanager["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            url = urlsplit(hook["url"])
            assert url.hostname and url.port
            found.append((f"receiver {receiver['name']}", url.hostname, url.port))
    datasources = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/llmcost.yaml").read_text())
    for source in datasources["datasources"]:
        url = urlsplit(source["url"])
        assert url.hostname and url.port
        found.append((f"datasource {source['name']}", url.hostname, url.port))
    return found


# Ports the images listen on inside the network (their defaults, or set in the service environment).
LISTEN_PORTS = {
    "llmcost": {4317, 4318, 9464},
    "prometheus": {9090},
    "alertmanager": {9093},
    "grafana": {3000},
    "postgres": {5432},
}


def test_every_address_in_the_configs_is_a_compose_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    sink_port = int(services["alert-sink"]["environment"]["HTTP_PORT"])
    listen = {**LISTEN_PORTS, "alert-sink": {sink_port}}
    assert set(listen) == set(services)
    for where, host, port in _endpoints(compose):
        if host == "localhost":  # Prometheus scraping itself
            assert port == 9090, where
            continue
        assert host in services, f"{where}: {host} is not a compose service"
        assert port in listen[host], f"{where}: {host} does not listen on {port}"
        assert "profiles" not in services[host], f"{where}: {host} only runs with a profile"


def test_grafana_provisions_the_dashboards(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    provisioning = host_path(grafana, "/etc/grafana/provisioning")
    assert provisioning == (ROOT / "dashboards" / "provisioning").resolve()
    providers = yaml.safe_load((provisioning / "dashboards" / "llmcost.yaml").read_text())["providers"]
    assert len(providers) == 1 and providers[0]["type"] == "file"
    dashboard_dir = host_path(grafana, providers[0]["options"]["path"])
    assert (dashboard_dir / "llmcost-overview.json").is_file()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(grafana, home).is_file()

    datasources = yaml.safe_load((provisioning / "datasources" / "llmcost.yaml").read_text())["datasources"]
    prometheus = [d for d in datasources if d["type"] == "prometheus"]
    assert len(prometheus) == 1 and prometheus[0]["isDefault"]
    uids = {d["uid"] for d in datasources}

    for path in sorted(dashboard_dir.glob("*.json")):
        check_dashboard(json.loads(path.read_text()), uids)


DASHBOARD_UIDS = {
    "llmcost-overview",
    "llmcost-chargeback",
    "llmcost-sessions",
    "llmcost-efficiency",
    "llmcost-reliability",
}
MONEY = re.compile(r"llmcost_\w*usd|:llmcost_\w*usd")


def check_dashboard(dashboard: dict[str, Any], datasource_uids: set[str]) -> None:
    """Structural validity: unique ids, panels on the 24-column grid without overlap, datasources
    that exist, the shared template variables, a description on every panel, money in USD."""
    assert dashboard["uid"] in DASHBOARD_UIDS and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "team", "feature", "environment", "provider", "model"} <= set(variables)
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    assert variables["datasource"]["current"]["value"] in datasource_uids
    # every dashboard links to the others (they share the tag) keeping time range and variables
    [link] = [link for link in dashboard["links"] if link["type"] == "dashboards"]
    assert link["tags"] == ["otel-llmcost"] and "otel-llmcost" in dashboard["tags"]
    assert link["keepTime"] and link["includeVars"]

    def datasource_ok(ref: dict[str, str]) -> bool:
        return ref["type"] == "prometheus" and (
            ref["uid"] == "${datasource}" or ref["uid"] in datasource_uids
        )

    ids = []
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["description"].rstrip().endswith("?") or "?" in panel["description"], panel["title"]
        assert datasource_ok(panel["datasource"]), panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and datasource_ok(target["datasource"]), panel["title"]
        unit = panel["fieldConfig"]["defaults"]["unit"]
        assert unit, panel["title"]
        exprs = [t["expr"] for t in panel["targets"]]
        if all(MONEY.search(e) and "/" not in e and "_count" not in e for e in exprs):  # amounts only
            assert unit == "currencyUSD", panel["title"]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_the_dashboard_generator_reproduces_the_committed_json() -> None:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "dashboards" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    rendered = generate.render()
    assert {json.loads(text)["uid"] for text in rendered.values()} == DASHBOARD_UIDS
    for name, text in rendered.items():
        assert (ROOT / "dashboards" / name).read_text() == text, f"run python dashboards/generate.py ({name})"
    assert set(rendered) == {p.name for p in (ROOT / "dashboards").glob("*.json")}


def test_container_command_is_accepted_by_llmcost_serve(compose: dict[str, Any]) -> None:
    """The compose command and the image's default CMD parse with the real ``serve`` arguments."""
    from llmcost_collector.cli.serve import serve

    dockerfile = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT\s+(\[.*\])$", dockerfile, flags=re.MULTILINE)[-1])
    cmd = json.loads(re.findall(r"^CMD\s+(\[.*\])$", dockerfile, flags=re.MULTILINE)[-1])
    assert entrypoint == ["llmcost"]
    for command in (cmd, compose["services"]["llmcost"]["command"]):
        assert command[0] == "serve"
        args = serve.make_context("llmcost serve", command[1:]).params
        # inside a container, loopback is unreachable from the other services
        assert args["host"] == "0.0.0.0"
        # ports stay the contract's defaults that the compose file publishes and Prometheus scrapes
        assert args["otlp_grpc_port"] is None and args["otlp_http_port"] is None and args["http_port"] is None
