"""A throwaway real PostgreSQL 15 cluster for tests and benchmarks.

``PostgresCluster`` runs ``initdb`` in a temporary directory and starts ``postgres`` on 127.0.0.1
and a free port, with its unix socket in that directory and trust authentication; ``stop()``
shuts it down (``pg_ctl stop -m fast``, ``immediate`` if that hangs) and deletes the directory.
PostgreSQL refuses to run as root, so as root both run as the ``postgres`` OS user (``runuser``,
else ``su``) and the temporary directory is handed to that user.

Fixtures (import them into the test module that uses them):

* ``pg_cluster`` — the session's cluster (started once, about a second);
* ``postgres_url`` — session-scoped: ``postgresql://postgres@127.0.0.1:PORT/DB`` of one database
  created for the session;
* ``pg_url`` — a fresh, empty database per test on the same cluster (``ledger_url`` in
  ``tests/integration/conftest.py`` gives a test both backends in turn).

They skip locally when PostgreSQL is not installed and fail in CI (``tests.support.require_binary``).
Benchmarks use ``available_initdb()`` and ``PostgresCluster`` directly (they never skip or fail).
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import find_binary, require_binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    """``args`` run as the ``postgres`` user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *args]
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(args)]


def _temp_root() -> Path:
    """A new private directory. As root it lives in /tmp: the ``postgres`` user must be able to
    reach it (``$TMPDIR`` may be a root-only directory), and a short path keeps the unix socket
    path under its 107-byte limit."""
    parent = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="llmcost-pg-", dir=parent))


class PostgresCluster:
    """One private PostgreSQL server. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, initdb: str, *, durable: bool = False) -> None:
        self.durable = durable  # fsync on, as in production (benchmarks); tests need no crash safety
        self.bin_dir = Path(initdb).parent
        self.root = _temp_root()
        self.data = self.root / "data"
        self.port = 0
        self._names = itertools.count()
        self._started = False

    @property
    def url(self) -> str:
        """Base URL; append ``/dbname``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o700)
        self._run([str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--locale=C", "--no-sync"])  # fmt: skip
        options = f"-k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=100"
        if not self.durable:
            # A test cluster needs no crash safety; this keeps tests fast.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        # A port picked free can be taken before the server binds it: try a few.
        for attempt in range(5):
            self.port = _free_port()
            try:
                self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", f"-p {self.port} {options}",
                           "-l", str(self.root / "server.log"), "-w", "-t", "30", "start"])  # fmt: skip
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        self._started = True
        return self

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.url}/{name}"

    def stop(self) -> None:
        if self._started:
            pg_ctl = str(self.bin_dir / "pg_ctl")
            for mode, timeout in (("fast", 20), ("immediate", 20)):
                try:
                    done = subprocess.run(
                        _as_postgres(
                            [pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", str(timeout), "stop"]
                        ),
                        capture_output=True,
                        timeout=timeout + 5,
                    )
                except subprocess.TimeoutExpired:
                    continue
                if done.returncode == 0:
                    break
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(_as_postgres(args), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.root / "server.log"
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}\n{detail}")


def available_initdb() -> str | None:
    """``initdb`` if PostgreSQL is installed (for benchmarks, which never skip or fail on it)."""
    return find_binary("initdb")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster(require_binary("initdb")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_url(pg_cluster: PostgresCluster) -> str:
    """``postgresql://postgres@127.0.0.1:PORT/DB``: one database for the whole session."""
    return pg_cluster.create_database()


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster) -> str:
    """URL of a fresh, empty database on the session's cluster."""
    return pg_cluster.create_database()
