"""Offline token estimates for calls whose provider reported no usage.

Used only when a stream carried no usage block (an OpenAI stream without
``stream_options.include_usage``); the span is then flagged ``llmcost.usage.estimated=true`` so
nobody mistakes it for billing data. The estimate needs no network and no BPE files: OpenAI's
published rule of thumb of about four characters of English per token, never less than one
token for non-empty text. When ``tiktoken`` is installed *and* its encoding files are already in
its local cache, that exact count is used instead; it is never downloaded.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Any

CHARS_PER_TOKEN = 4


@lru_cache(maxsize=1)
def _cached_encoding() -> Any:
    try:
        import tiktoken
        import tiktoken.load
    except ImportError:
        return None
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if not cache_dir or not os.path.isdir(cache_dir) or not os.listdir(cache_dir):
        return None  # no local BPE files: tiktoken would try to download them
    try:
        return tiktoken.get_encoding("o200k_base")
    except Exception:
        return None


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    encoding = _cached_encoding()
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))
