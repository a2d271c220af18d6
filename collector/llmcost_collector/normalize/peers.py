"""What other instrumentations carry outside the GenAI attribute names, read span by span.

* OpenInference: ``using_attributes(metadata=..., tags=...)`` puts a JSON object text in
  ``metadata`` and a list in ``tag.tags``; the response id is only inside ``output.value`` (the
  response JSON, when outputs are captured).
* OpenLIT: ``openlit.using_attributes({...})`` / ``custom_span_attributes`` put the user's own
  keys on the span as they are (``team``, ``user.id``, ...).
* LiteLLM: team fields of the caller's virtual key (``metadata.user_api_key_team_alias``, ...),
  and the provider's usage block as Python literal text in ``metadata.usage_object``: its cache
  and reasoning split is on the span nowhere else.

Every reader is bounded (text length, nesting) and never raises: a malformed value is ignored, the
span is still billed on its GenAI names.
"""

from __future__ import annotations

import ast
import json
import re

from llmcost_collector.normalize import semconv as sc

# Keys a tool's free-form attribution (OpenInference metadata, OpenLIT attributes, OpenLLMetry
# association properties) may use for our fields; anything else becomes a property.
FIELD_KEYS = {
    "team": "team",
    "feature": "feature",
    "use_case": "use_case",
    "user_tier": "user_tier",
    "user_id": "user_id",
    "user.id": "user_id",
    "session_id": "session_id",
    "session.id": "session_id",
    "environment": "environment",
}
# LiteLLM: attribute -> field, first non-empty wins per field.
LITELLM_FIELDS = (
    (sc.LITELLM_TEAM_ALIAS, "team"),
    (sc.LITELLM_TEAM_ID, "team"),
    (sc.LITELLM_END_USER_ID, "user_id"),
    (sc.LITELLM_USER_ID, "user_id"),
)
MAX_TEXT = 8192
_RESPONSE_ID = re.compile(r'\{\s*"id"\s*:\s*"([^"\\]{1,200})"')


def output_response_id(attrs: dict[str, object]) -> str:
    """The ``"id"`` a response JSON in ``output.value`` starts with (OpenInference), else ""."""
    value = attrs.get(sc.OI_OUTPUT_VALUE)
    if not isinstance(value, str):
        return ""
    match = _RESPONSE_ID.match(value, 0, 400)
    return match.group(1) if match else ""


def openinference_metadata(attrs: dict[str, object]) -> dict[str, str]:
    """``metadata`` (JSON object text) and ``tag.tags`` as flat string pairs; {} when absent."""
    out: dict[str, str] = {}
    raw = attrs.get(sc.OI_METADATA)
    if isinstance(raw, str) and raw and len(raw) <= MAX_TEXT:
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            out.update({str(k): str(v) for k, v in parsed.items() if v is not None and v != ""})
    tags = attrs.get(sc.OI_TAGS)
    if isinstance(tags, (list, tuple)) and tags:
        out["tags"] = ",".join(str(tag) for tag in tags)
    return out


def openlit_attributes(attrs: dict[str, object]) -> dict[str, str]:
    """The user's own keys OpenLIT copied onto the span that name one of our fields."""
    return {key: str(attrs[key]) for key in FIELD_KEYS if attrs.get(key) not in (None, "")}


def litellm_attribution(attrs: dict[str, object]) -> dict[str, str]:
    """field -> value from the LiteLLM key's team and end-user fields (empty strings skipped)."""
    out: dict[str, str] = {}
    for key, field in LITELLM_FIELDS:
        value = attrs.get(key)
        if field not in out and isinstance(value, str) and value:
            out[field] = value
    return out


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def litellm_usage(attrs: dict[str, object]) -> dict[str, int]:
    """Token classes from ``metadata.usage_object``, under the GenAI names; {} when unreadable.

    The text is a Python ``repr`` of the usage dict (single quotes, ``None``), so it is read with
    ``ast.literal_eval``, which evaluates literals only, after a length cap.
    """
    raw = attrs.get(sc.LITELLM_USAGE_OBJECT)
    if not isinstance(raw, str) or not raw.startswith("{") or len(raw) > MAX_TEXT:
        return {}
    try:
        usage = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return {}
    if not isinstance(usage, dict):
        return {}
    prompt = usage.get("prompt_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = usage.get("completion_tokens_details")
    completion = completion if isinstance(completion, dict) else {}
    split = prompt.get("cache_creation_token_details")
    split = split if isinstance(split, dict) else {}
    found = {
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: _int(usage.get("cache_read_input_tokens"))
        or _int(prompt.get("cached_tokens")),
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: _int(usage.get("cache_creation_input_tokens"))
        or _int(prompt.get("cache_creation_tokens")),
        sc.LLMCOST_USAGE_CACHE_CREATION_5M: _int(split.get("ephemeral_5m_input_tokens")),
        sc.LLMCOST_USAGE_CACHE_CREATION_1H: _int(split.get("ephemeral_1h_input_tokens")),
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: _int(completion.get("reasoning_tokens")),
    }
    return {key: value for key, value in found.items() if value}
