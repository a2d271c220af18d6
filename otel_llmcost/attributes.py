"""Span attribute names emitted by otel_llmcost (public names: docs/reference.md).

The attribution names double as W3C Baggage keys, so a downstream service sees the same names.
"""

# OpenTelemetry GenAI semantic conventions.
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # includes cache reads and writes
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"  # includes reasoning
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# Attribution.
TEAM = "llmcost.team"
FEATURE = "llmcost.feature"
USE_CASE = "llmcost.use_case"
USER_TIER = "llmcost.user_tier"
PROPERTY_PREFIX = "llmcost.property."
USER_ID = "user.id"
SESSION_ID = "session.id"
SESSION_NAME = "llmcost.session.name"
SESSION_PATH = "llmcost.session.path"
ENVIRONMENT = "deployment.environment.name"

# Usage provenance and value-based chargeback.
USAGE_ESTIMATED = "llmcost.usage.estimated"
CACHE_HIT = "llmcost.cache.hit"
OUTCOME = "llmcost.outcome"
OUTCOME_COUNT = "llmcost.outcome.count"
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
