"""OpenAI's wire format: chat completions, responses and embeddings, plain and streamed.

Bodies follow the shapes the `openai` SDK's types describe (openai/types/...), so the real SDK
parses every response into typed objects with usage filled in exactly as OpenAI reports it.
"""

from __future__ import annotations

import base64
import math
import struct
import time
import uuid
from functools import lru_cache
from typing import Any

from llmcost_demo.fake_provider.scenario import Reply, Scenario, sse, text_pieces

PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings")

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid request (fake provider).", None),
    401: ("invalid_request_error", "Incorrect API key provided (fake provider).", "invalid_api_key"),
    403: ("invalid_request_error", "You are not allowed to access this resource (fake provider).", None),
    404: ("invalid_request_error", "The model does not exist or you do not have access to it.",
          "model_not_found"),
    429: ("requests", "Rate limit reached for requests (fake provider). Please try again in 1s.",
          "rate_limit_exceeded"),
    500: ("server_error", "The server had an error while processing your request. Sorry about that!", None),
    503: ("server_error", "The engine is currently overloaded, please try again later.", None),
}  # fmt: skip


def error(status: int, message: str | None = None, code: str | None = None) -> Reply:
    """OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}."""
    kind, default_message, default_code = _ERRORS.get(
        status, ("server_error", f"Error {status} (fake provider).", None)
    )
    headers = {"x-request-id": _id("req_")}
    if status == 429:
        headers["retry-after"] = "1"
    body = {
        "error": {
            "message": message or default_message,
            "type": kind,
            "param": None,
            "code": code or default_code,
        }
    }
    return Reply(status=status, body=body, headers=headers)


def handle(path: str, body: dict[str, Any], scenario: Scenario) -> Reply:
    if scenario.error_status is not None:
        return error(scenario.error_status)
    model = scenario.model or str(body.get("model") or "unknown-model")
    if path == "/v1/chat/completions":
        reply = _chat_stream(body, scenario, model) if body.get("stream") else _chat(scenario, model)
    elif path == "/v1/responses":
        reply = (
            _responses_stream(scenario, model)
            if body.get("stream")
            else Reply(body=_response(scenario, model))
        )
    else:
        reply = _embeddings(body, scenario, model)
    reply.headers = {"x-request-id": _id("req_"), "openai-processing-ms": "1"}
    return reply


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


# --- chat completions ---------------------------------------------------------------------------


def chat_usage(s: Scenario) -> dict[str, Any]:
    return {
        "prompt_tokens": s.input_tokens,
        "completion_tokens": s.output_tokens,
        "total_tokens": s.input_tokens + s.output_tokens,
        "prompt_tokens_details": {"cached_tokens": s.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": s.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat(s: Scenario, model: str) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": s.text, "refusal": None, "annotations": []}
    return Reply(
        body={
            "id": _id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": chat_usage(s),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
    )


def _chat_stream(body: dict[str, Any], s: Scenario, model: str) -> Reply:
    """Chunks, then (only with stream_options.include_usage) a `choices: []` usage chunk, then [DONE]."""
    options = body.get("stream_options") or {}
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    head = {
        "id": _id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data = {
            **head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            data["usage"] = None
        return sse(data)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in text_pieces(s.text)]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(sse({**head, "choices": [], "usage": chat_usage(s)}))
    events.append(sse("[DONE]"))
    return Reply(events=events)


# --- responses ----------------------------------------------------------------------------------


def responses_usage(s: Scenario) -> dict[str, Any]:
    return {
        "input_tokens": s.input_tokens,
        "input_tokens_details": {"cached_tokens": s.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": s.output_tokens,
        "output_tokens_details": {"reasoning_tokens": s.reasoning_tokens},
        "total_tokens": s.input_tokens + s.output_tokens,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [_text_part(text)] if status == "completed" else []
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _response(
    s: Scenario, model: str, rid: str | None = None, item_id: str | None = None, status: str = "completed"
) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": rid or _id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": [_message_item(item_id or _id("msg_"), s.text, "completed")] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": responses_usage(s) if done else None,
        "user": None,
        "metadata": {},
    }


def _responses_stream(s: Scenario, model: str) -> Reply:
    """The typed event sequence OpenAI streams; `response.completed` carries the usage."""
    rid, item_id = _id("resp_"), _id("msg_")
    pending = _response(s, model, rid, item_id, status="in_progress")
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": pending}),
        ("response.in_progress", {"response": pending}),
        (
            "response.output_item.added",
            {"output_index": 0, "item": _message_item(item_id, "", "in_progress")},
        ),
        ("response.content_part.added", {**where, "part": _text_part("")}),
    ]
    steps += [
        ("response.output_text.delta", {**where, "delta": p, "logprobs": []}) for p in text_pieces(s.text)
    ]
    steps += [
        ("response.output_text.done", {**where, "text": s.text, "logprobs": []}),
        ("response.content_part.done", {**where, "part": _text_part(s.text)}),
        (
            "response.output_item.done",
            {"output_index": 0, "item": _message_item(item_id, s.text, "completed")},
        ),
        ("response.completed", {"response": _response(s, model, rid, item_id)}),
    ]
    events = [
        sse({"type": kind, "sequence_number": n, **data}, event=kind) for n, (kind, data) in enumerate(steps)
    ]
    return Reply(events=events)


# --- embeddings ---------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _vector(dimensions: int) -> tuple[list[float], str]:
    """A fixed unit vector (float32-exact) and its base64 form, computed once per size."""
    raw = [math.sin(i + 1.0) for i in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(x / norm for x in raw))
    floats = list(struct.unpack(f"<{dimensions}f", packed))
    return floats, base64.b64encode(packed).decode()


def _embeddings(body: dict[str, Any], s: Scenario, model: str) -> Reply:
    """One embedding per input; `encoding_format: base64` (the SDK's default) gets float32 base64."""
    raw_input = body.get("input")
    if isinstance(raw_input, list) and raw_input and not isinstance(raw_input[0], int):
        count = len(raw_input)
    else:
        count = 1  # a string, or one token array
    dims = body.get("dimensions")
    floats, b64 = _vector(dims if isinstance(dims, int) and 0 < dims <= 8192 else 1536)
    vector: Any = b64 if body.get("encoding_format") == "base64" else floats
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
    usage = {"prompt_tokens": s.input_tokens, "total_tokens": s.input_tokens}
    return Reply(body={"object": "list", "data": data, "model": model, "usage": usage})
