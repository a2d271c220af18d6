"""docker-compose.yml, Dockerfile and Grafana provisioning hang together.

No Docker engine runs here, so the stack is checked statically: the compose file against the
compose-spec JSON schema (check-jsonschema's vendored copy), every file it mounts or builds from
exists, every path a container is told to read resolves through its mounts to a file in the
repository, every host name in the OpenTelemetry Collector, Prometheus, Alertmanager and Grafana
configs is a service of the compose network listening on that port, and the OpenTelemetry
Collector's pipelines use only components it defines. The topology itself (GenAI filter, routing
by trace id, two replicas on one PostgreSQL, Prometheus scraping both) runs for real with processes.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from llmcost_collector.ledger import open_ledger
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.conftest import FAR_FUTURE
from tests.pg import pg_cluster, pg_url  # noqa: F401  (fixtures)
from tests.support import require_binary, running_prometheus, start_process, stop_process, wait_for

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


REPLICAS = ("llmcost-1", "llmcost-2")


def dockerfile_targets() -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)$", (ROOT / "Dockerfile").read_text(), flags=re.M))


def test_two_collector_replicas_share_the_postgres_ledger(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    assert "profiles" not in postgres, "the replicas' ledger must start with a plain `docker compose up`"
    assert "healthcheck" in postgres
    env = postgres["environment"]
    user, database = env["POSTGRES_USER"], env["POSTGRES_DB"]
    ledger_url = f"postgresql://{user}:${{POSTGRES_PASSWORD:-llmcost}}@postgres:5432/{database}"
    published_ports = []
    for name in REPLICAS:
        replica = services[name]
        assert replica["build"]["context"] == "." and replica["build"]["target"] in dockerfile_targets()
        assert replica["command"][0] == "serve"
        environment = replica["environment"]
        assert environment["LLMCOST_LEDGER_URL"] == ledger_url, name
        config = host_path(replica, environment["LLMCOST_CONFIG"])
        assert config == (ROOT / "examples" / "llmcost.yaml").resolve() and config.is_file()
        # started only once PostgreSQL answers; reported healthy once /readyz does
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "/readyz" in " ".join(replica["healthcheck"]["test"])
        [port] = replica["ports"]
        host, container = str(port).split(":")
        assert container == "9464"
        published_ports.append(host)
    assert len(set(published_ports)) == len(REPLICAS), "each replica's web port is published apart"


def test_services_start_in_order(compose: dict[str, Any]) -> None:
    """A ``service_healthy`` condition waits for a service that has a health check."""
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for other, condition in depends.items() if isinstance(depends, dict) else ():
            assert other in services, (name, other)
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[other], (
                    f"{name} waits for {other}, which has no health check"
                )
    assert set(services["otelcol"]["depends_on"]) == set(REPLICAS)


def test_demo_traffic_goes_through_the_opentelemetry_collector(compose: dict[str, Any]) -> None:
    from llmcost_collector.cli.demo import demo

    service = compose["services"]["demo"]
    assert service["build"]["target"] == "demo" and "demo" in dockerfile_targets()
    params = demo.make_context("llmcost demo", service["command"][1:]).params
    url = urlsplit(params["send_to"])
    assert (url.hostname, url.port, url.path) == ("otelcol", 4318, "/v1/traces")


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
    for hostname in otelcol_config()["exporters"]["loadbalancing"]["resolver"]["static"]["hostnames"]:
        host, port = hostname.rsplit(":", 1)
        found.append(("otelcol loadbalancing", host, int(port)))
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
    "otelcol": {4317, 4318, 13133},
    "llmcost-1": {4317, 4318, 9464},
    "llmcost-2": {4317, 4318, 9464},
    "demo": set(),  # sends only
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
    for command in (cmd, *(compose["services"][name]["command"] for name in REPLICAS)):
        assert command[0] == "serve"
        args = serve.make_context("llmcost serve", command[1:]).params
        # inside a container, loopback is unreachable from the other services
        assert args["host"] == "0.0.0.0"
        assert args["http_host"] == "0.0.0.0"  # the API port binds loopback unless told otherwise
        # ports stay the contract's defaults that the compose file publishes and Prometheus scrapes
        assert args["otlp_grpc_port"] is None and args["otlp_http_port"] is None and args["http_port"] is None


# --- the OpenTelemetry Collector in front ------------------------------------------------------

OTELCOL_CONFIG = ROOT / "otelcol" / "config.yaml"


def otelcol_config() -> dict[str, Any]:
    return yaml.safe_load(OTELCOL_CONFIG.read_text())


def test_otelcol_pipelines_use_only_configured_components(compose: dict[str, Any]) -> None:
    service = compose["services"]["otelcol"]
    [config_flag] = [arg for arg in service["command"] if arg.startswith("--config=")]
    assert host_path(service, config_flag.split("=", 1)[1]) == OTELCOL_CONFIG.resolve()
    config = otelcol_config()
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    kinds = ("receivers", "processors", "exporters")
    used: dict[str, set[str]] = {kind: set() for kind in kinds}
    for name, pipeline in config["service"]["pipelines"].items():
        assert name.split("/")[0] in {"traces", "metrics", "logs"}, name
        for kind in kinds:
            assert pipeline.get(kind) or kind == "processors", (name, kind)
            missing = set(pipeline.get(kind, [])) - set(config[kind])
            assert not missing, f"pipeline {name} uses undefined {kind}: {missing}"
            used[kind] |= set(pipeline.get(kind, []))
    for kind in kinds:
        assert used[kind] == set(config[kind]), f"{kind} defined but in no pipeline"
    [traces] = [p for n, p in config["service"]["pipelines"].items() if n.startswith("traces")]
    # the memory limiter goes first, so it refuses data before any other work is done
    assert traces["processors"][0] == "memory_limiter" and "filter/genai" in traces["processors"]
    assert set(published(service)) == {4317, 4318}
    balancer = config["exporters"]["loadbalancing"]
    assert balancer["routing_key"] == "traceID"
    targets = [h.rsplit(":", 1)[0] for h in balancer["resolver"]["static"]["hostnames"]]
    assert sorted(targets) == sorted(REPLICAS)


def kept_attributes() -> set[str]:
    """The attributes the GenAI filter keeps a span for: it drops a span only when all are absent."""
    [condition] = otelcol_config()["processors"]["filter/genai"]["traces"]["span"]
    parts = re.split(r"\s+and\s+", condition.strip())
    keys = [re.fullmatch(r'attributes\["([\w.]+)"\] == nil', part) for part in parts]
    assert all(keys), condition
    return {key.group(1) for key in keys if key}


def test_the_genai_filter_keeps_exactly_what_llmcost_bills() -> None:
    """The spans the filter keeps are the spans the collector reads a call (or an outcome) from:
    one name more in the code would be dropped in front of it, one less would add load."""
    from llmcost_collector.normalize import semconv
    from llmcost_collector.normalize.span import CALL_MODEL_KEYS

    assert kept_attributes() == {*CALL_MODEL_KEYS, semconv.LLMCOST_OUTCOME}


def _traffic(traces: int) -> list[ReadableSpan]:
    """Traces as services send them: an HTTP request span with one to three LLM calls under it,
    and now and then an outcome record; two teams, two models."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "topology-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for n in range(traces):
        team, model = ("search", "gpt-4o") if n % 3 else ("support", "gpt-4o-mini")
        with tracer.start_as_current_span("POST /answer"):
            for call in range(1 + n % 3):
                with tracer.start_as_current_span(f"chat {model}") as span:
                    span.set_attributes(
                        {
                            "gen_ai.operation.name": "chat",
                            "gen_ai.provider.name": "openai",
                            "gen_ai.request.model": model,
                            "gen_ai.usage.input_tokens": 1000 + 17 * n,
                            "gen_ai.usage.cache_read.input_tokens": 100 * call,
                            "gen_ai.usage.output_tokens": 50 + n,
                            "llmcost.team": team,
                            "llmcost.feature": "answers",
                        }
                    )
            if n % 5 == 0:
                with tracer.start_as_current_span("outcome") as span:
                    span.set_attributes({"llmcost.outcome": "ticket_resolved", "llmcost.team": team})
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _through_the_filter(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    keys = kept_attributes()
    return [s for s in spans if any((s.attributes or {}).get(k) is not None for k in keys)]


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.mark.needs_prometheus
def test_two_replicas_on_one_postgres_scraped_by_prometheus(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    """The compose topology with processes: spans filtered as otelcol/config.yaml filters them
    and routed by trace id to two ``llmcost serve`` replicas on one PostgreSQL ledger (each
    export sent twice, as a retry would); Prometheus scrapes both. The sum of the replicas'
    counters is the ledger, and both replicas' ledger gauges report the same ledger."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    require_binary("prometheus")  # before starting anything
    replicas = [
        start_process(
            [sys.executable, "-m", "llmcost_collector", "serve", "--host", "127.0.0.1", "--ledger-url", pg_url,
             "--otlp-grpc-port", "0", "--otlp-http-port", "0", "--http-port", "0"],
            re.compile(r"llmcost collector ready: (\{.*\})"),
        )
        for _ in REPLICAS
    ]  # fmt: skip
    try:
        urls = [json.loads(found) for _, found in replicas]
        spans = _traffic(60)
        kept = _through_the_filter(spans)
        assert len(kept) < len(spans)  # the HTTP spans stop at the filter
        routed: list[list[ReadableSpan]] = [[] for _ in replicas]
        for span in kept:  # every span of a trace to the same replica, as routing_key: traceID does
            assert span.context is not None
            routed[span.context.trace_id % len(replicas)].append(span)
        assert all(routed), "both replicas get traffic"
        for batch, url in zip(routed, urls, strict=True):
            exporter = OTLPSpanExporter(endpoint=url["otlp_grpc"], insecure=True)
            try:
                for _ in range(2):  # a retried export is billed once
                    assert exporter.export(batch) is SpanExportResult.SUCCESS
            finally:
                exporter.shutdown()

        ledger = open_ledger(pg_url, migrate=False)
        try:
            rows = ledger.spend(0, FAR_FUTURE, group_by=("team",))
        finally:
            ledger.close()
        llm_calls = sum(1 for s in kept if (s.attributes or {}).get("gen_ai.request.model"))
        assert sum(r.requests for r in rows) == llm_calls
        charged = {r.group["team"]: Decimal(r.chargeback_nanos or r.contracted_nanos or 0) for r in rows}
        cost = sum((Decimal(r.contracted_nanos or 0) for r in rows), Decimal(0))

        targets = [urlsplit(u["metrics"]).netloc for u in urls]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ROOT / "prometheus/rules/llmcost.rules.yml")],
            "scrape_configs": [{"job_name": "llmcost", "static_configs": [{"targets": targets}]}],
        }
        with running_prometheus(config, tmp_path) as prometheus:
            _check_scrapes(prometheus, llm_calls, cost, charged)
    finally:
        for proc, _ in replicas:
            stop_process(proc)


def _check_scrapes(prometheus: str, llm_calls: int, cost: Decimal, charged: dict[str, Decimal]) -> None:
    """Prometheus scraping both replicas: summed counters equal the ledger; the ledger gauges
    agree between replicas and with the ledger."""

    def scraped() -> bool:
        try:
            up = _query(prometheus, "up")
            rules = _query(prometheus, "team_period:llmcost_spend_usd:max")
        except OSError:
            return False
        return len(up) == 2 and all(r["value"][1] == "1" for r in up) and bool(rules)

    wait_for(scraped, timeout=60)

    requests = _query(prometheus, "sum(llmcost_requests_total)")
    assert int(float(requests[0]["value"][1])) == llm_calls
    per_replica = _query(prometheus, "sum by (instance) (llmcost_requests_total)")
    assert len(per_replica) == 2 and all(float(r["value"][1]) > 0 for r in per_replica)
    [total] = _query(prometheus, "sum(llmcost_cost_usd_total)")
    assert Decimal(total["value"][1]) == pytest.approx(cost.scaleb(-9), rel=Decimal("1e-9"))
    # every replica reports the whole ledger's month to date, so min and max agree per team
    monthly = 'llmcost_spend_usd{period="monthly"}'
    highest = {
        r["metric"]["team"]: Decimal(r["value"][1]) for r in _query(prometheus, f"max by (team) ({monthly})")
    }
    lowest = {
        r["metric"]["team"]: Decimal(r["value"][1]) for r in _query(prometheus, f"min by (team) ({monthly})")
    }
    assert highest == lowest
    assert set(highest) == set(charged)
    for team, nanos in charged.items():
        assert highest[team] == pytest.approx(nanos.scaleb(-9), rel=Decimal("1e-9")), team
