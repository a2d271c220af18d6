"""Both sides of the wire spell the contract's attribute names the same way."""

from __future__ import annotations

from llmcost_collector.normalize import semconv
from llmcost_collector.normalize.span import CACHE_WRITE_KEYS

from otel_llmcost import attributes


def test_emitted_names_are_the_names_the_collector_reads() -> None:
    pairs = {
        attributes.TEAM: semconv.LLMCOST_TEAM,
        attributes.FEATURE: semconv.LLMCOST_FEATURE,
        attributes.USE_CASE: semconv.LLMCOST_USE_CASE,
        attributes.USER_TIER: semconv.LLMCOST_USER_TIER,
        attributes.PROPERTY_PREFIX: semconv.LLMCOST_PROPERTY_PREFIX,
        attributes.USER_ID: semconv.USER_ID,
        attributes.SESSION_ID: semconv.SESSION_ID,
        attributes.SESSION_NAME: semconv.LLMCOST_SESSION_NAME,
        attributes.SESSION_PATH: semconv.LLMCOST_SESSION_PATH,
        attributes.ENVIRONMENT: semconv.DEPLOYMENT_ENVIRONMENT_NAME,
        attributes.USAGE_ESTIMATED: semconv.LLMCOST_USAGE_ESTIMATED,
        attributes.CACHE_HIT: semconv.LLMCOST_CACHE_HIT,
        attributes.OUTCOME: semconv.LLMCOST_OUTCOME,
        attributes.OUTCOME_COUNT: semconv.LLMCOST_OUTCOME_COUNT,
        attributes.CACHE_CREATION_5M: semconv.LLMCOST_USAGE_CACHE_CREATION_5M,
        attributes.CACHE_CREATION_1H: semconv.LLMCOST_USAGE_CACHE_CREATION_1H,
        attributes.GEN_AI_USAGE_INPUT_TOKENS: semconv.GEN_AI_USAGE_INPUT_TOKENS,
        attributes.GEN_AI_USAGE_OUTPUT_TOKENS: semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
        attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        attributes.GEN_AI_PROVIDER_NAME: semconv.GEN_AI_PROVIDER_NAME,
        attributes.GEN_AI_REQUEST_MODEL: semconv.GEN_AI_REQUEST_MODEL,
        attributes.GEN_AI_RESPONSE_MODEL: semconv.GEN_AI_RESPONSE_MODEL,
    }
    assert [emitted for emitted, read in pairs.items() if emitted != read] == []


def test_cache_writes_go_out_under_a_name_the_collector_reads() -> None:
    """The in-service side emits the renamed ``gen_ai.usage.cache_write.input_tokens``."""
    assert attributes.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS == "gen_ai.usage.cache_write.input_tokens"
    assert attributes.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS in CACHE_WRITE_KEYS
