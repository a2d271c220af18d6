"""The response cache with the real SDKs against the fake provider: hits make no HTTP request."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from llmcost_collector.cli.main import cli
from llmcost_demo.fake_provider import FakeProvider, Scenario

import otel_llmcost
from otel_llmcost.cache import MemoryBackend, RedisBackend, SQLiteBackend
from tests.integration.conftest import FAR_FUTURE, Collectors, config_file, export, metric
from tests.support import require_binary, start_process, stop_process

from .helpers import MESSAGES, MODEL, SNAPSHOT, Otel, attrs, claude, client

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


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server (Debian's) on a free loopback port, without persistence."""
    binary = require_binary("redis-server")
    pytest.importorskip("redis")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc, _ = start_process(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        re.compile(r"(Ready to accept connections)"),
    )  # fmt: skip
    yield f"redis://127.0.0.1:{port}/0"
    stop_process(proc)


def test_redis_backend_is_shared_by_replicas(oai: Otel, fake: FakeProvider, redis_url: str) -> None:
    c = client(fake)
    with otel_llmcost.cache(ttl=60, backend=RedisBackend(redis_url)):  # one replica
        first = c.chat.completions.create(**CHAT)
    with otel_llmcost.cache(ttl=60, backend=RedisBackend(redis_url)):  # another, same Redis
        second = c.chat.completions.create(**CHAT)
    assert len(fake.requests) == 1 and second == first
    assert [attrs(s)["llmcost.cache.lookup"] for s in oai.spans()] == ["miss", "hit"]


def test_redis_outage_degrades_to_misses(oai: Otel, fake: FakeProvider) -> None:
    pytest.importorskip("redis")
    c = client(fake)
    dead = RedisBackend("redis://127.0.0.1:1/0")  # nothing listens there
    with otel_llmcost.cache(ttl=60, backend=dead):
        c.chat.completions.create(**CHAT)
        c.chat.completions.create(**CHAT)
    assert len(fake.requests) == 2
    assert all(attrs(s)["llmcost.cache.lookup"] == "miss" for s in oai.spans())


# --- the collector's accounting of a known sequence -----------------------------------------------

ACCOUNTING_CONFIG = """
teams:
  - name: support
    budgets: {monthly: 100}
price_book:
  entries:
    - {name: faq-rates, provider: openai, model: "gpt-4o*", input: 2, cache_read: 1, output: 10}
"""
FAQ = Scenario(input_tokens=1200, cached_tokens=200, output_tokens=300, model=SNAPSHOT)
# One provider call: 1000 uncached input x $2 + 200 cache reads x $1 + 300 output x $10 per million.
CALL_NANOS = 5_200_000
PROMPT_SAVED_NANOS = 200_000  # the 200 cache reads at $1 instead of $2 per million


def test_collector_counts_hits_lookups_and_savings_exactly(
    oai: Otel, fake: FakeProvider, collector: Collectors
) -> None:
    """Two FAQ questions through the cache (A, A, A, B), then a sampling call that bypasses it:
    3 provider calls, 4 lookups, 2 hits. The collector bills the hits $0, counts their avoided
    cost as savings, never counts their tokens, and says so in metrics, report, costs API,
    budget status and invoice credit lines."""
    app = collector(ACCOUNTING_CONFIG)
    c = client(fake)
    fake.push(FAQ, FAQ, FAQ)
    question_a = {**CHAT, "messages": [{"role": "user", "content": "How do I reset my password?"}]}
    question_b = {**CHAT, "messages": [{"role": "user", "content": "Where is my invoice?"}]}
    with otel_llmcost.attribute(team="support", feature="faq"), otel_llmcost.cache(backend=MemoryBackend()):
        for request in (question_a, question_a, question_a, question_b):
            c.chat.completions.create(**request)
        c.chat.completions.create(**{**question_a, "temperature": 0.7})  # sampling: no lookup
    assert len(fake.requests) == 3
    export(app, oai.spans())

    rows = sorted(app.ledger.entries(0, FAR_FUTURE), key=lambda e: e.start_time_ns)
    assert [(e.cache_lookup, e.cache_hit, e.contracted_cost_nanos, e.savings_nanos,
             e.prompt_cache_savings_nanos) for e in rows] == [
        (1, 0, CALL_NANOS, 0, PROMPT_SAVED_NANOS),
        (1, 1, 0, CALL_NANOS, 0),
        (1, 1, 0, CALL_NANOS, 0),
        (1, 0, CALL_NANOS, 0, PROMPT_SAVED_NANOS),
        (0, 0, CALL_NANOS, 0, PROMPT_SAVED_NANOS),
    ]  # fmt: skip

    team = {"team": "support", "feature": "faq"}
    series = {**team, "environment": "", "provider": "openai", "model": SNAPSHOT}
    assert metric(app, "llmcost_cache_lookups_total", **team) == 4
    assert metric(app, "llmcost_cache_hits_total", **team, kind="response") == 2
    assert metric(app, "llmcost_cache_savings_usd_total", **team, kind="response") == pytest.approx(0.0104)
    assert metric(app, "llmcost_cache_hits_total", **team, kind="prompt_cache") == 3
    assert metric(app, "llmcost_cache_savings_usd_total", **team, kind="prompt_cache") == pytest.approx(
        0.0006
    )
    # tokens of the 3 provider calls only: the hits' replayed usage is not consumed
    assert metric(app, "llmcost_tokens_total", **series, token_type="input") == 3 * 1000
    assert metric(app, "llmcost_tokens_total", **series, token_type="cache_read") == 3 * 200
    assert metric(app, "llmcost_tokens_total", **series, token_type="output") == 3 * 300
    assert metric(app, "llmcost_cost_usd_total", **series) == pytest.approx(3 * CALL_NANOS / 1e9)

    period = time.strftime("%Y-%m", time.gmtime())
    ledger = ["--ledger-url", app.settings.ledger_url]
    done = CliRunner().invoke(cli, ["report", "--period", period, "--format", "json", *ledger])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["cache"] == {
        "requests": 5, "lookups": 4, "hits": 2, "hit_rate": "0.500000", "savings_usd": "0.010400000",
        "prompt_cache_read_share": "0.166667", "prompt_cache_savings_usd": "0.000600000",
    }  # fmt: skip  # 600 cache reads of 3600 consumed input tokens

    api = app.urls()["api"].replace("/api/v1/spend", "/api/v1/costs")
    (row,) = json.loads(urllib.request.urlopen(f"{api}?group_by=team,feature", timeout=10).read())["rows"]
    assert (row["cache_lookups"], row["cache_hits"], row["cache_hit_rate"]) == (4, 2, "0.500000")
    assert (row["savings_usd"], row["prompt_cache_savings_usd"]) == ("0.010400000", "0.000600000")
    assert row["contracted_cost_usd"] == "0.015600000"
    assert row["tokens"] == {
        "input": 3000,
        "cache_read": 600,
        "cache_write": 0,
        "output": 900,
        "reasoning": 0,
    }

    status_url = app.urls()["api"].replace("/api/v1/spend", "/api/v1/budgets/status")
    budgets = json.loads(urllib.request.urlopen(status_url, timeout=10).read())["budgets"]
    (monthly,) = [
        b for b in budgets if b["scope_filters"] == {"team": "support"} and b["period"] == "monthly"
    ]
    assert Decimal(monthly["spent_usd"]) == Decimal("0.0156")  # the 3 provider calls, never the hits

    config = ["--config", str(config_file(app))]
    done = CliRunner().invoke(cli, ["invoice", "--period", period, "--team", "support", "--format", "json",
                                    *ledger, *config])  # fmt: skip
    assert done.exit_code == 0, done.output
    (invoice,) = json.loads(done.stdout)
    credits = {line["kind"]: line for line in invoice["lines"] if line["informational"]}
    assert (
        credits["response_cache_savings"]["amount_usd"],
        credits["response_cache_savings"]["quantity"],
    ) == (
        "-0.010400000",
        2,
    )
    assert credits["prompt_cache_savings"]["amount_usd"] == "-0.000600000"
    assert invoice["total_usd"] == "0.015600000"  # shown, never deducted: at cost, the 3 calls


def test_a_lookup_survives_the_merge_with_the_sdks_own_span(
    ant: Otel, fake: FakeProvider, collector: Collectors
) -> None:
    """The anthropic SDK traces itself beside ours: the collector bills the miss once (two spans,
    one row) and keeps it a lookup, whichever span's usage it keeps."""
    app = collector()
    c = claude(fake)
    kwargs = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": MESSAGES}
    with otel_llmcost.attribute(team="support", feature="faq"), otel_llmcost.cache(backend=MemoryBackend()):
        c.messages.create(**kwargs)
        c.messages.create(**kwargs)
    assert len(fake.requests) == 1
    export(app, ant.spans())
    rows = sorted(app.ledger.entries(0, FAR_FUTURE), key=lambda e: e.start_time_ns)
    assert [(e.cache_lookup, e.cache_hit) for e in rows] == [(1, 0), (1, 1)]
    assert metric(app, "llmcost_cache_lookups_total", team="support", feature="faq") == 2
