"""The ``privacy`` section is applied before the ledger: user and session ids are stored as keyed
hashes or not at all, while the session histogram (in memory, by session name) still works."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from llmcost_collector.app import CollectorApp
from llmcost_collector.config.schema import load_config
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.conftest import FAR_FUTURE, Collectors, export

pytestmark = pytest.mark.integration


def send_call(app: CollectorApp, user_id: str, session_id: str) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
                "llmcost.team": "search",
                "user.id": user_id,
                "session.id": session_id,
                "llmcost.session.name": "Research",
            }
        )
    provider.shutdown()
    export(app, list(memory.get_finished_spans()))


@pytest.fixture
def collector_with(collector: Collectors) -> Callable[[str], CollectorApp]:
    """Start a collector with the given config; sessions go idle at once."""
    return lambda config_yaml: collector(config_yaml, session_idle_seconds=0.0)


def stored_ids(app: CollectorApp) -> list[tuple[str, str]]:
    return [(entry.user_id, entry.session_id) for entry in app.ledger.entries(0, FAR_FUTURE)]


def test_default_keeps_identifiers(collector_with: Callable[[str], CollectorApp]) -> None:
    app = collector_with("version: 1\n")
    send_call(app, "alice", "s-1")
    assert stored_ids(app) == [("alice", "s-1")]


def test_hash_and_drop(
    collector_with: Callable[[str], CollectorApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCOST_PRIVACY_KEY", "k1")
    app = collector_with("privacy: {user_id: hash, session_id: drop}\n")
    send_call(app, "alice", "s-1")
    send_call(app, "alice", "s-2")
    send_call(app, "bob", "s-3")
    ids = stored_ids(app)
    users = [user for user, _ in ids]
    assert all(session == "" for _, session in ids)
    assert "alice" not in users and "bob" not in users
    assert all(user.startswith("h:") and len(user) == 34 for user in users)
    assert sorted(users.count(user) for user in set(users)) == [1, 2]  # still groupable per user
    # Spend by user works on the hashes; nothing in the ledger names the people.
    by_user = app.ledger.spend(0, FAR_FUTURE, group_by=("user_id",))
    assert sorted(row.requests for row in by_user) == [1, 2]
    # The session histogram is fed in memory before scrubbing: three sessions observed by name
    # (closed here or by the collector's own sweeper: sessions go idle at once in this test).
    app.sessions.sweep()
    count = app.registry.get_sample_value("llmcost_session_cost_usd_count", {"session_name": "Research"})
    assert count == 3


def test_hash_depends_on_the_key(
    collector_with: Callable[[str], CollectorApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCOST_PRIVACY_KEY", "k1")
    first = collector_with("privacy: {user_id: hash}\n")
    send_call(first, "alice", "s-1")
    monkeypatch.setenv("LLMCOST_PRIVACY_KEY", "k2")
    second = collector_with("privacy: {user_id: hash}\n")
    send_call(second, "alice", "s-1")
    (a,), (b,) = stored_ids(first), stored_ids(second)
    assert a[0] != b[0] and a[1] == b[1] == "s-1"


def test_reload_switches_privacy_for_new_rows(collector_with: Callable[[str], CollectorApp]) -> None:
    app = collector_with("version: 1\n")
    send_call(app, "alice", "s-1")
    app.apply_config(load_config("c.yaml", text="privacy: {user_id: drop}\n"))
    send_call(app, "carol", "s-2")
    assert sorted(stored_ids(app)) == [("", "s-2"), ("alice", "s-1")]
