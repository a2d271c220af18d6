"""The cache key of a request, and whether the request is deterministic enough to cache.

Key = SHA-256 of the tenant namespace, provider, endpoint (API + host), model, the caller's bucket
and the canonical request body: keys sorted, SDK sentinels and ``None`` dropped, ``extra_body``
merged in, transport-only options (headers, timeouts) left out, and values equal to the API's
default removed, so ``n=1`` and no ``n`` share one entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Options that shape the HTTP exchange, not the answer.
TRANSPORT_ONLY = frozenset({"extra_headers", "extra_query", "timeout", "llmcost_cache"})
# The APIs' documented defaults: a request that spells one out asks for the same answer.
DEFAULTS: dict[str, dict[str, Any]] = {
    "chat": {"n": 1, "stream": False, "top_p": 1, "presence_penalty": 0,
             "frequency_penalty": 0, "logprobs": False},
    "responses": {"stream": False, "top_p": 1},
    "embeddings": {"encoding_format": "float"},
    "messages": {"stream": False},
}  # fmt: skip
RAW_RESPONSE_HEADER = "x-stainless-raw-response"


def _absent(value: Any) -> bool:
    """None, or the SDKs' ``NOT_GIVEN`` / ``omit`` sentinels (matched by class, not imported)."""
    return value is None or type(value).__name__ in ("NotGiven", "Omit")


def _plain(value: Any) -> Any:
    """JSON-ready form: pydantic models dumped, mappings and sequences walked, sentinels dropped."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json", exclude_unset=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if not _absent(v)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _same(value: Any, default: Any) -> bool:
    """Equal as the API reads them: 1 and 1.0 alike, but never True and 1."""
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return bool(value == default)


def canonical_body(operation: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name in TRANSPORT_ONLY or _absent(value):
            continue
        if name == "extra_body" and isinstance(value, Mapping):
            body.update(_plain(value))
            continue
        body[name] = _plain(value)
    for name, default in DEFAULTS.get(operation, {}).items():
        if name in body and _same(body[name], default):
            del body[name]
    if not body.get("stream"):
        body.pop("stream_options", None)  # only read by streams
    return body


def cache_key(
    namespace: str, provider: str, endpoint: str, model: str, bucket: str, body: Mapping[str, Any]
) -> str:
    text = json.dumps(
        [namespace, provider, endpoint, model, bucket, body],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def nondeterministic(operation: str, body: Mapping[str, Any]) -> str:
    """Why the answer may differ between identical requests ("" when it should not).

    A request that asks for variety bypasses: a ``temperature`` above 0 (a request that sets none
    leaves sampling to the provider and is cached: the caller opted in), several choices, tools
    (which may act on the world), server-side conversation state and background jobs.
    """
    if operation == "embeddings":
        return ""
    temperature = body.get("temperature", 0)
    if not isinstance(temperature, (int, float)) or temperature > 0:
        return "temperature"
    if body.get("n", 1) != 1:
        return "n"
    if body.get("tools") and body.get("tool_choice") not in ("none", {"type": "none"}):
        return "tools"
    if body.get("previous_response_id") or body.get("conversation") or body.get("background"):
        return "server_state"
    return ""


def raw_response(kwargs: Mapping[str, Any]) -> bool:
    """A ``with_raw_response`` / ``with_streaming_response`` call (the SDK marks it with a header)."""
    headers = kwargs.get("extra_headers")
    if not isinstance(headers, Mapping):
        return False
    return any(str(k).lower() == RAW_RESPONSE_HEADER for k in headers)
