"""The response cache with the real SDKs against the fake provider: hits make no HTTP request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from llmcost_demo.fake_provider import FakeProvider

import otel_llmcost
from otel_llmcost.cache import MemoryBackend, RedisBackend, SQLiteBackend

from .helpers import MESSAGES, MODEL, Otel, attrs, claude, client

CHAT = {"model": MODEL, "messages": MESSAGES, "temperature": 0}


def test_second_identical_call_is_a_hit_with_no_request(oai: Otel, fake: FakeProvider) -> None:
    c = client(fake)
    with otel_llmcost.attribute(team="a"), otel_llmcost.cache(ttl=60, backend=MemoryBackend()):
        first = c.chat.completions.create(**CHAT)
        second = c.chat.completions.create(**CHAT)
    assert len(fake.requests) == 1
    assert type(second) is type(first) and second == first
    miss, hit = oai.spans()
    assert attrs(miss)["llmcost.cache.lookup"] == "miss" and "llmcost.cache.hit" not in attrs(miss)
    assert attrs(hit)["llmcost.cache.hit"] is True and attrs(hit)["llmcost.cache.lookup"] == "hit"
    assert attrs(hit)["gen_ai.usage.input_tokens"] == attrs(miss)["gen_ai.usage.input_tokens"]


def test_streamed_hit_replays_chunk_for_chunk(oai: Otel, fake: FakeProvider) -> None:
    c = client(fake)
    request = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with otel_llmcost.cache(ttl=60, backend=MemoryBackend()):
        first = list(c.chat.completions.create(**request))
        second = list(c.chat.completions.create(**request))
    assert len(fake.requests) == 1
    assert second == first and len(first) > 2


def test_anthropic_message_hit(ours_only: Otel, fake: FakeProvider) -> None:
    c = claude(fake)
    kwargs = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": MESSAGES}
    with otel_llmcost.cache(ttl=60, backend=MemoryBackend()):
        first = c.messages.create(**kwargs)
        second = c.messages.create(**kwargs)
    assert len(fake.requests) == 1 and second == first


def test_teams_never_share_entries(oai: Otel, fake: FakeProvider) -> None:
    c = client(fake)
    with otel_llmcost.cache(ttl=60, backend=MemoryBackend()):
        with otel_llmcost.attribute(team="a"):
            c.chat.completions.create(**CHAT)
        with otel_llmcost.attribute(team="b"):
            c.chat.completions.create(**CHAT)
    assert len(fake.requests) == 2


def test_sampling_request_bypasses_unless_forced(oai: Otel, fake: FakeProvider) -> None:
    c = client(fake)
    with otel_llmcost.cache(ttl=60, backend=MemoryBackend()):
        for _ in range(2):
            c.chat.completions.create(**{**CHAT, "temperature": 0.7})
        assert len(fake.requests) == 2
        assert "llmcost.cache.lookup" not in attrs(oai.spans()[0])
        for _ in range(2):
            c.chat.completions.create(**{**CHAT, "temperature": 0.7}, llmcost_cache={"force": True})
    assert len(fake.requests) == 3


def test_ttl_expiry(oai: Otel, fake: FakeProvider) -> None:
    c = client(fake)
    with otel_llmcost.cache(ttl=0.2, backend=MemoryBackend()):
        c.chat.completions.create(**CHAT)
        time.sleep(0.3)
        c.chat.completions.create(**CHAT)
    assert len(fake.requests) == 2


def test_sqlite_backend_is_shared_by_instances(oai: Otel, fake: FakeProvider, tmp_path: Path) -> None:
    c = client(fake)
    path = tmp_path / "cache.db"
    with otel_llmcost.cache(ttl=60, backend=SQLiteBackend(path)):
        first = c.chat.completions.create(**CHAT)
    with otel_llmcost.cache(ttl=60, backend=SQLiteBackend(path)):
        second = c.chat.completions.create(**CHAT)
    assert len(fake.requests) == 1 and second == first


def test_redis_outage_degrades_to_misses(oai: Otel, fake: FakeProvider) -> None:
    pytest.importorskip("redis")
    c = client(fake)
    dead = RedisBackend("redis://127.0.0.1:1/0")  # nothing listens there
    with otel_llmcost.cache(ttl=60, backend=dead):
        c.chat.completions.create(**CHAT)
        c.chat.completions.create(**CHAT)
    assert len(fake.requests) == 2
    assert all(attrs(s)["llmcost.cache.lookup"] == "miss" for s in oai.spans())
