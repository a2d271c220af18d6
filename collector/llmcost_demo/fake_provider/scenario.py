"""What the fake provider should answer: token counts, text, failures and timing.

A `Scenario` is the single knob tests, the demo and benchmarks turn. Token fields follow each
provider's own accounting, so the instrumentation sees exactly what the real APIs report:
OpenAI's prompt count includes cached tokens, Anthropic's `input_tokens` excludes cache reads
and writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Scenario:
    input_tokens: int = 12
    """OpenAI: prompt_tokens (includes cached). Anthropic: input_tokens (excludes cache read/creation)."""
    output_tokens: int = 8
    """Includes reasoning tokens."""
    cached_tokens: int = 0
    """OpenAI cached_tokens; Anthropic cache_read_input_tokens."""
    cache_creation_5m: int = 0
    """Anthropic only: cache_creation.ephemeral_5m_input_tokens."""
    cache_creation_1h: int = 0
    """Anthropic only: cache_creation.ephemeral_1h_input_tokens."""
    reasoning_tokens: int = 0
    """OpenAI reasoning_tokens (Anthropic: output_tokens_details.thinking_tokens when > 0)."""
    model: str | None = None
    """Response model; None echoes the request's model."""
    text: str = "Hello from the fake provider."
    error_status: int | None = None
    """Answer with this HTTP status and the provider's error body (429 adds retry-after)."""
    cut_stream_after: int | None = None
    """Streaming only: send this many SSE events, then drop the connection mid-body."""
    delay_s: float = 0.0
    """Sleep this long before answering (to exercise client timeouts)."""
    stall_stream_after: int | None = None
    """Streaming only: send this many SSE events, then nothing more, keeping the connection open
    (a stream that stops mid-answer, for client read timeouts), until the client leaves."""

    @property
    def cache_creation_tokens(self) -> int:
        return self.cache_creation_5m + self.cache_creation_1h

    @classmethod
    def from_json(cls, raw: str) -> Scenario:
        """Parse the `x-fake-scenario` header; raises ValueError on anything but known fields."""
        try:
            data: Any = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"x-fake-scenario is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("x-fake-scenario must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"x-fake-scenario has unknown fields: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake provider received it, with the scenario it was answered with."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    scenario: Scenario


@dataclass
class Reply:
    """A wire module's answer: a JSON body, or a list of ready-made SSE frames to stream."""

    status: int = 200
    body: dict[str, Any] | None = None
    events: list[bytes] | None = None
    headers: dict[str, str] | None = None


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event frame (`event:` line only when the provider sends one)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def text_pieces(text: str) -> list[str]:
    """Split the answer into word-sized deltas, as streamed output arrives."""
    pieces: list[str] = []
    for word in text.split(" "):
        if pieces:
            pieces[-1] += " "
        pieces.append(word)
    return [p for p in pieces if p]
