"""Anthropic's wire format: the Messages API, plain and streamed, and its error envelope.

Usage follows Anthropic's accounting: `input_tokens` excludes cache reads and writes, which are
reported separately; a stream's `message_start` carries the input side with a tiny
`output_tokens`, and `message_delta` carries the cumulative final counts.
"""

from __future__ import annotations

import uuid
from typing import Any

from llmcost_demo.fake_provider.scenario import Reply, Scenario, sse, text_pieces

PATHS = ("/v1/messages", "/v1/messages/count_tokens")

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (fake provider)."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization (fake provider).",
    ),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def error(status: int, message: str | None = None) -> Reply:
    """Anthropic's error envelope: {"type": "error", "error": {"type", "message"}, "request_id"}."""
    kind, default_message = _ERRORS.get(status, ("api_error", f"Error {status} (fake provider)."))
    request_id = _id("req_")
    headers = {"request-id": request_id}
    if status == 429:
        headers["retry-after"] = "1"
    body = {
        "type": "error",
        "error": {"type": kind, "message": message or default_message},
        "request_id": request_id,
    }
    return Reply(status=status, body=body, headers=headers)


def handle(path: str, body: dict[str, Any], scenario: Scenario) -> Reply:
    if scenario.error_status is not None:
        return error(scenario.error_status)
    if path == "/v1/messages/count_tokens":
        reply = Reply(body={"input_tokens": scenario.input_tokens})
    else:
        model = scenario.model or str(body.get("model") or "unknown-model")
        reply = _stream(scenario, model) if body.get("stream") else Reply(body=_message(scenario, model))
    reply.headers = {"request-id": _id("req_")}
    return reply


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def usage(s: Scenario, output_tokens: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "input_tokens": s.input_tokens,
        "cache_creation_input_tokens": s.cache_creation_tokens,
        "cache_read_input_tokens": s.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": s.cache_creation_5m,
            "ephemeral_1h_input_tokens": s.cache_creation_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if s.reasoning_tokens:
        data["output_tokens_details"] = {"thinking_tokens": s.reasoning_tokens}
    return data


def _message(s: Scenario, model: str) -> dict[str, Any]:
    return {
        "id": _id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": s.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage(s, s.output_tokens),
    }


def _stream(s: Scenario, model: str) -> Reply:
    start = {
        **_message(s, model),
        "content": [],
        "stop_reason": None,
        "usage": usage(s, min(1, s.output_tokens)),
    }
    final_usage = {
        k: v for k, v in usage(s, s.output_tokens).items() if k not in ("cache_creation", "service_tier")
    }
    steps: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    steps += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        for piece in text_pieces(s.text)
    ]
    steps += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": final_usage,
        },
        {"type": "message_stop"},
    ]
    return Reply(events=[sse(step, event=step["type"]) for step in steps])
