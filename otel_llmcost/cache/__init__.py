"""The opt-in response cache: identical deterministic LLM requests answered without a provider call.

    with otel_llmcost.cache(ttl=86400):
        client.chat.completions.create(model="gpt-4o-mini", messages=faq, temperature=0)

Entries are namespaced by tenant (the team, or team and user: ``configure_cache(scope=...)``), so
one team never reads another's answers. Backends: ``MemoryBackend`` (default, per process),
``SQLiteBackend`` (a file shared by the processes of a host), ``RedisBackend`` (shared by
replicas, ``otel-llmcost[redis]``). A hit's span says ``llmcost.cache.hit=true`` with the original
usage and the entry's age; the collector bills it $0 and counts what it avoided as savings.
"""

from .backends import Backend, MemoryBackend, RedisBackend, SQLiteBackend, backend_from_url
from .options import CacheOptions, cache, configure_cache

__all__ = [
    "Backend",
    "CacheOptions",
    "MemoryBackend",
    "RedisBackend",
    "SQLiteBackend",
    "backend_from_url",
    "cache",
    "configure_cache",
]
