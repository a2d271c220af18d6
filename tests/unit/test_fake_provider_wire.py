"""Scenario parsing and SSE framing of the fake provider, without sockets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmcost_demo.fake_provider import Scenario
from llmcost_demo.fake_provider.scenario import sse, text_pieces


@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=30))
def test_text_pieces_rejoin_to_the_text(text: str) -> None:
    pieces = text_pieces(text)
    assert "".join(pieces) == text
    assert all(pieces)


def test_scenario_from_header_json() -> None:
    s = Scenario.from_json('{"input_tokens": 100, "cache_creation_1h": 7, "error_status": 429}')
    assert (s.input_tokens, s.cache_creation_1h, s.cache_creation_tokens, s.error_status) == (100, 7, 7, 429)
    assert s.output_tokens == Scenario().output_tokens


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"input_tokens": 1, "nope": 2}', "unknown fields: nope"),
    ],
)
def test_scenario_from_header_rejects_garbage(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Scenario.from_json(raw)


def test_sse_frames() -> None:
    assert sse("[DONE]") == b"data: [DONE]\n\n"
    frame = sse({"type": "ping"}, event="ping").decode()
    head, data = frame.rstrip("\n").split("\n")
    assert head == "event: ping" and json.loads(data.removeprefix("data: ")) == {"type": "ping"}
