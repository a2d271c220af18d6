"""Where cached responses live: an in-memory LRU (the default), a SQLite file, or Redis.

A backend stores opaque bytes under a key for a TTL; it knows nothing of SDKs or tenants (the key
already carries the tenant's namespace, ``cache.key``). Backends may raise on any failure: the
caller (``cache.lookup``) turns every backend error into a miss, never into a failed LLM call.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import sqlite3


class Backend(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_s: float) -> None: ...


class MemoryBackend:
    """A process-local LRU bounded by entry count and total bytes; expired entries are misses."""

    def __init__(self, max_entries: int = 1024, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("MemoryBackend needs max_entries >= 1 and max_bytes >= 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            expires_at, value = found
            if expires_at <= time.time():
                del self._entries[key]
                self._bytes -= len(value)
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self.max_bytes:
            return  # larger than the whole cache: not kept
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._entries[key] = (time.time() + ttl_s, value)
            self._bytes += len(value)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= len(evicted)


class SQLiteBackend:
    """A SQLite file shared by the processes of one host (WAL mode; one connection per thread).

    Expired rows are misses at once and are purged every ``purge_every`` writes.
    """

    TABLE = "llmcost_response_cache"

    def __init__(self, path: str | os.PathLike[str], timeout_s: float = 1.0, purge_every: int = 1000) -> None:
        self.path = os.fspath(path)
        self.timeout_s = timeout_s
        self.purge_every = purge_every
        self._local = threading.local()
        self._writes = 0
        self._connect()  # fail early on a bad path; creates the table

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        import sqlite3  # here: importing otel_llmcost stays cheap

        conn = sqlite3.connect(
            self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.TABLE} "
            "(key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL NOT NULL)"
        )
        self._local.conn, self._local.pid = conn, os.getpid()  # a forked child reconnects
        return conn

    def get(self, key: str) -> bytes | None:
        row = (
            self._connect()
            .execute(f"SELECT value FROM {self.TABLE} WHERE key = ? AND expires_at > ?", (key, time.time()))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        conn = self._connect()
        now = time.time()
        conn.execute(
            f"INSERT OR REPLACE INTO {self.TABLE} (key, value, expires_at) VALUES (?, ?, ?)",
            (key, value, now + ttl_s),
        )
        self._writes += 1
        if self._writes % self.purge_every == 0:
            conn.execute(f"DELETE FROM {self.TABLE} WHERE expires_at <= ?", (now,))


class RedisBackend:
    """Redis (redis-py, the ``otel-llmcost[redis]`` extra), shared by every replica.

    Short socket timeouts by default: a slow or absent Redis must cost a call little before the
    lookup gives up and the call goes to the provider.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        client: Any = None,
        prefix: str = "llmcost:cache:",
        socket_timeout_s: float = 0.25,
    ) -> None:
        if client is None:
            import redis

            client = redis.Redis.from_url(
                url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s
            )
        self.client = client
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        value = self.client.get(self.prefix + key)
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.client.set(self.prefix + key, value, px=max(1, int(ttl_s * 1000)))


def backend_from_url(url: str) -> Backend:
    """``memory://?max_entries=N``, ``sqlite:///path/to/file.db`` or ``redis://host:port/db``
    (``rediss://`` too), as in ``OTEL_LLMCOST_CACHE_URL``."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        query = {k: int(v[-1]) for k, v in parse_qs(parts.query).items()}
        return MemoryBackend(**query)
    if parts.scheme == "sqlite":
        path = parts.path if not parts.netloc else parts.netloc + parts.path
        if not path:
            raise ValueError(f"{url!r}: sqlite:///path/to/file.db needs a path")
        return SQLiteBackend(path)
    if parts.scheme in ("redis", "rediss", "unix"):
        return RedisBackend(url)
    raise ValueError(f"{url!r}: the response cache speaks memory://, sqlite:/// and redis://")
