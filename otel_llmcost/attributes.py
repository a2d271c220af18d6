"""Span attribute names emitted by otel_llmcost (the public names, docs/reference.md).

The OpenTelemetry names come from ``opentelemetry-semantic-conventions``, so a rename there is a
version bump here, not a hunt through string literals; only what it does not define yet is spelled
out below. The attribution names double as W3C Baggage keys, so a downstream service sees the same
names.
"""

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.attributes import session_attributes as _session
from opentelemetry.semconv._incubating.attributes import user_attributes as _user
from opentelemetry.semconv.attributes import deployment_attributes as _deployment
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import server_attributes as _server

# OpenTelemetry GenAI semantic conventions.
GEN_AI_PROVIDER_NAME = _gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_OPERATION_NAME = _gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_REQUEST_MODEL = _gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_MAX_TOKENS = _gen_ai.GEN_AI_REQUEST_MAX_TOKENS
GEN_AI_RESPONSE_MODEL = _gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_RESPONSE_ID = _gen_ai.GEN_AI_RESPONSE_ID
GEN_AI_RESPONSE_FINISH_REASONS = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_USAGE_INPUT_TOKENS = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS  # includes cache reads and writes
GEN_AI_USAGE_OUTPUT_TOKENS = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS  # includes reasoning
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = _gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = _gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
GEN_AI_CONVERSATION_ID = _gen_ai.GEN_AI_CONVERSATION_ID
GEN_AI_INPUT_MESSAGES = _gen_ai.GEN_AI_INPUT_MESSAGES
GEN_AI_OUTPUT_MESSAGES = _gen_ai.GEN_AI_OUTPUT_MESSAGES
SERVER_ADDRESS = _server.SERVER_ADDRESS
SERVER_PORT = _server.SERVER_PORT
ERROR_TYPE = _error.ERROR_TYPE
USER_ID = _user.USER_ID
SESSION_ID = _session.SESSION_ID
ENVIRONMENT = _deployment.DEPLOYMENT_ENVIRONMENT_NAME

# Cache writes under the GenAI conventions' August 2026 name (formerly
# ``gen_ai.usage.cache_creation.input_tokens``). opentelemetry-semantic-conventions 0.66b2 does not
# define it yet: replace with its constant once a release does.
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"

# Attribution.
TEAM = "llmcost.team"
FEATURE = "llmcost.feature"
USE_CASE = "llmcost.use_case"
USER_TIER = "llmcost.user_tier"
PROPERTY_PREFIX = "llmcost.property."
SESSION_NAME = "llmcost.session.name"
SESSION_PATH = "llmcost.session.path"

# Usage provenance and value-based chargeback.
USAGE_ESTIMATED = "llmcost.usage.estimated"
# One id per SDK call another tracer traces: every GenAI span started during the call carries it,
# so the collector bills spans of one call once even when they share neither trace nor response id.
CALL_ID = "llmcost.call.id"
CACHE_HIT = "llmcost.cache.hit"  # answered from the response cache: its usage was not consumed
CACHE_LOOKUP = "llmcost.cache.lookup"  # hit | miss: the call looked in the response cache
CACHE_AGE_S = "llmcost.cache.age_s"  # a hit's entry age, seconds
OUTCOME = "llmcost.outcome"
OUTCOME_COUNT = "llmcost.outcome.count"
# Anthropic's split of cache writes by TTL (priced differently); no convention has it.
CACHE_CREATION_5M = "llmcost.usage.cache_creation.5m.input_tokens"
CACHE_CREATION_1H = "llmcost.usage.cache_creation.1h.input_tokens"

# attribute() keyword -> attribute / baggage key.
ATTRIBUTION_KEYS = {
    "team": TEAM,
    "feature": FEATURE,
    "use_case": USE_CASE,
    "user_tier": USER_TIER,
    "user_id": USER_ID,
    "session_id": SESSION_ID,
    "session_name": SESSION_NAME,
    "session_path": SESSION_PATH,
    "environment": ENVIRONMENT,
}
# Environment variables that give service-wide defaults (OTEL_LLMCOST_TEAM, ...).
ENV_DEFAULTS = {f"OTEL_LLMCOST_{name.upper()}": key for name, key in ATTRIBUTION_KEYS.items()
                if name in ("team", "feature", "use_case", "user_tier", "environment")}  # fmt: skip
STAMPED_KEYS = frozenset(ATTRIBUTION_KEYS.values())
