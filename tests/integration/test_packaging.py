"""otel-llmcost as a user installs it, in real processes.

* Zero code: a fresh venv with ``pip install otel-llmcost[openai]`` and nothing else (no
  opentelemetry-distro, none of the dev requirements), an app that calls the real ``openai`` SDK
  against the fake provider process, run under ``opentelemetry-instrument`` with only the standard
  ``OTEL_*`` variables; its spans reach a real collector, whose ledger gets one attributed row.
* Without an exporter configured, the app says so once on stderr and still works.
* Importing the package does not pull in the SDKs or the exporter.

The venv is built once per run in a temporary directory (pip may use its wheel cache); the package
is installed from a copy of its sources, so nothing is built inside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from llmcost_collector.ledger.entry import LedgerEntry

from otel_llmcost.distro import NO_EXPORTER_MESSAGE
from tests.integration.conftest import Collectors

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FAR_FUTURE = time.time_ns() + 10**15
# The app: a plain service that knows nothing about tracing beyond otel_llmcost.attribute.
APP = textwrap.dedent(
    """
    import json, os, sys
    import openai
    import otel_llmcost

    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="test", max_retries=0)
    scenario = {"input_tokens": 1000, "cached_tokens": 200, "output_tokens": 500}

    def call():
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-fake-scenario": json.dumps(scenario)},
        )

    if os.environ.get("APP_TEAM"):
        with otel_llmcost.attribute(team=os.environ["APP_TEAM"], feature="chat"):
            result = call()
    else:
        result = call()
    print("app done", result.usage.prompt_tokens, flush=True)
    """
)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with otel-llmcost[openai] installed the way a user installs it."""
    root = tmp_path_factory.mktemp("zero-code")
    source = root / "otel-llmcost"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "otel_llmcost", source / "otel_llmcost", ignore=shutil.ignore_patterns("__pycache__")
    )
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    install = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", f"{source}[openai]"],
        capture_output=True, text=True, timeout=1200, env=_base_env(env_dir),
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    return env_dir


def _base_env(env_dir: Path) -> dict[str, str]:
    """The user's shell: the venv first on PATH, none of this test run's OTEL_* or PYTHONPATH."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR") or k.startswith("PIP_")}
    return {**keep, "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_app(venv: Path, workdir: Path, provider_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``opentelemetry-instrument python app.py`` in the venv (cwd outside the repository, so the
    installed package is the one imported)."""
    script = workdir / "app.py"
    script.write_text(APP)
    return subprocess.run(
        [str(venv / "bin" / "opentelemetry-instrument"), str(venv / "bin" / "python"), str(script), provider_url],
        cwd=workdir, env={**_base_env(venv), **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_venv_has_no_distro_but_ours(venv: Path) -> None:
    code = (
        "import importlib.util, importlib.metadata as m;"
        "print(importlib.util.find_spec('opentelemetry.distro') is None,"
        " sorted(e.name for e in m.entry_points(group='opentelemetry_distro')),"
        " importlib.util.find_spec('anthropic') is None)"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "['llmcost']", "True"]


@pytest.mark.parametrize(
    ("env", "team"),
    [
        # service-wide default team; the generic OTLP endpoint (a base URL); exporter implied
        ({"OTEL_LLMCOST_TEAM": "platform", "OTEL_EXPORTER_OTLP_ENDPOINT": "{base}"}, "platform"),
        # team from otel_llmcost.attribute in the app; the traces endpoint; exporter named
        (
            {
                "APP_TEAM": "marketing",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{traces}",
                "OTEL_TRACES_EXPORTER": "otlp",
            },
            "marketing",
        ),
    ],
    ids=["OTEL_LLMCOST_TEAM", "attribute"],
)
def test_zero_code_exports_attributed_spans_to_the_collector(
    venv: Path,
    tmp_path: Path,
    fake_provider: str,
    collector: Collectors,
    env: dict[str, str],
    team: str,
) -> None:
    app = collector(watch_config=False)
    traces = app.urls()["otlp_http"]
    urls = {"base": traces.removesuffix("/v1/traces"), "traces": traces}
    env = {name: value.format(**urls) for name, value in env.items()}
    done = run_app(venv, tmp_path, fake_provider, OTEL_SERVICE_NAME="checkout", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "app done 1000"  # the caller got the SDK's own answer
    assert "Traceback" not in done.stderr and NO_EXPORTER_MESSAGE not in done.stderr, done.stderr
    # The exporter flushed at exit and the collector acknowledges only after the ledger commit.
    rows: list[LedgerEntry] = list(app.ledger.entries(0, FAR_FUTURE))
    assert len(rows) == 1, rows
    (row,) = rows
    assert (row.team, row.service_name, row.provider, row.request_model) == (
        team,
        "checkout",
        "openai",
        "gpt-4o-mini",
    )
    # 1000 prompt tokens, 200 of them cached: the collector stores the uncached 800 apart
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (800, 200, 500)
    assert row.price_status == "priced"


def test_without_an_exporter_it_says_so_once_on_stderr(
    venv: Path, tmp_path: Path, fake_provider: str
) -> None:
    done = run_app(venv, tmp_path, fake_provider, OTEL_LLMCOST_TEAM="platform")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "app done 1000"  # the app works the same
    assert done.stderr.count(NO_EXPORTER_MESSAGE) == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_import_is_cheap() -> None:
    """Importing the package must not pull in the SDKs (or any heavy dependency)."""
    code = (
        "import sys, otel_llmcost; heavy = {'openai', 'anthropic', 'tiktoken', 'wrapt', 'httpx', 'requests',"
        " 'opentelemetry.exporter.otlp.proto.http', 'opentelemetry.instrumentation'};"
        " print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
