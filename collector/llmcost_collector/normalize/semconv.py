"""Attribute names the collector reads: the public names (docs/reference.md) plus the other dialects.

OpenTelemetry's names come from opentelemetry-semantic-conventions; the rest are ours or the
other dialects'. Every name the normalizer reads is a constant here, so the reference test can
check each is documented. All are plain strings, so the hot path compares strings, not enum members.
"""

from opentelemetry.semconv._incubating.attributes import deployment_attributes as _deployment
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.attributes import session_attributes as _session
from opentelemetry.semconv._incubating.attributes import user_attributes as _user
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import server_attributes as _server
from opentelemetry.semconv.attributes import service_attributes as _service

# OpenTelemetry GenAI semantic conventions (current), from opentelemetry-semantic-conventions.
GEN_AI_PROVIDER_NAME = _gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_OPERATION_NAME = _gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_REQUEST_MODEL = _gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_RESPONSE_MODEL = _gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_USAGE_INPUT_TOKENS = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = _gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
# The pre-August-2026 name of the cache-write count (the package has no cache_write name yet).
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = _gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"  # the new name
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = _gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
GEN_AI_CONVERSATION_ID = _gen_ai.GEN_AI_CONVERSATION_ID
ERROR_TYPE = _error.ERROR_TYPE
SERVER_ADDRESS = _server.SERVER_ADDRESS
GEN_AI_RESPONSE_ID = _gen_ai.GEN_AI_RESPONSE_ID  # the provider's id of the call: dedupe key
# OpenLIT sets it on each of its spans too ("openlit"); only the span's value names the dialect.
TELEMETRY_SDK_NAME = "telemetry.sdk.name"

# Deprecated GenAI names still emitted by older instrumentations.
GEN_AI_SYSTEM = _gen_ai.GEN_AI_SYSTEM
GEN_AI_USAGE_PROMPT_TOKENS = _gen_ai.GEN_AI_USAGE_PROMPT_TOKENS
GEN_AI_USAGE_COMPLETION_TOKENS = _gen_ai.GEN_AI_USAGE_COMPLETION_TOKENS
ENDUSER_ID = "enduser.id"  # deprecated for user.id

# Attribution (docs/reference.md).
LLMCOST_TEAM = "llmcost.team"
LLMCOST_FEATURE = "llmcost.feature"
LLMCOST_USE_CASE = "llmcost.use_case"
LLMCOST_USER_TIER = "llmcost.user_tier"
LLMCOST_PROPERTY_PREFIX = "llmcost.property."
USER_ID = _user.USER_ID
SESSION_ID = _session.SESSION_ID
LLMCOST_SESSION_NAME = "llmcost.session.name"
LLMCOST_SESSION_PATH = "llmcost.session.path"
DEPLOYMENT_ENVIRONMENT_NAME = _deployment.DEPLOYMENT_ENVIRONMENT_NAME
DEPLOYMENT_ENVIRONMENT = "deployment.environment"  # deprecated resource attribute
SERVICE_NAME = _service.SERVICE_NAME
LLMCOST_USAGE_ESTIMATED = "llmcost.usage.estimated"
LLMCOST_CALL_ID = "llmcost.call.id"  # one SDK call another tracer traced (otel_llmcost.abandoned)
LLMCOST_CACHE_HIT = "llmcost.cache.hit"
LLMCOST_CACHE_LOOKUP = "llmcost.cache.lookup"  # hit | miss: the call looked in the response cache
LLMCOST_OUTCOME = "llmcost.outcome"
LLMCOST_OUTCOME_COUNT = "llmcost.outcome.count"
# Finer cache-write split (Anthropic 5m/1h TTLs); not in the OTel registry yet.
LLMCOST_USAGE_CACHE_CREATION_1H = "llmcost.usage.cache_creation.1h.input_tokens"
LLMCOST_USAGE_CACHE_CREATION_5M = "llmcost.usage.cache_creation.5m.input_tokens"

# OpenLLMetry (traceloop).
TRACELOOP_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read_input_tokens"
TRACELOOP_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation_input_tokens"
TRACELOOP_ASSOCIATION_PREFIX = "traceloop.association.properties."
LLM_USAGE_TOTAL_TOKENS = "llm.usage.total_tokens"
TRACELOOP_REASONING_TOKENS = "gen_ai.usage.reasoning_tokens"
TRACELOOP_INPUT_AUDIO_TOKENS = "gen_ai.usage.input_audio_tokens"
TRACELOOP_OUTPUT_AUDIO_TOKENS = "gen_ai.usage.output_audio_tokens"
# Keys only OpenLLMetry sets (``llm.request.type`` is on every one of its LLM spans).
TRACELOOP_REQUEST_TYPE = "llm.request.type"
TRACELOOP_SPAN_KIND = "traceloop.span.kind"
TRACELOOP_ENTITY_NAME = "traceloop.entity.name"

# The anthropic SDK's own tracing (besides the OTel names): the cache-write split by TTL.
ANTHROPIC_CACHE_CREATION_EPHEMERAL_1H = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
ANTHROPIC_CACHE_CREATION_EPHEMERAL_5M = "anthropic.usage.cache_creation.ephemeral_5m_input_tokens"

# OpenInference (Arize).
OI_MODEL_NAME = "llm.model_name"
OI_PROVIDER = "llm.provider"
OI_SYSTEM = "llm.system"
OI_PROMPT_TOKENS = "llm.token_count.prompt"
OI_COMPLETION_TOKENS = "llm.token_count.completion"
OI_PROMPT_CACHE_READ = "llm.token_count.prompt_details.cache_read"
OI_PROMPT_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
OI_COMPLETION_REASONING = "llm.token_count.completion_details.reasoning"
OI_PROMPT_AUDIO = "llm.token_count.prompt_details.audio"
OI_COMPLETION_AUDIO = "llm.token_count.completion_details.audio"
OI_EMBEDDING_MODEL_NAME = "embedding.model_name"  # EMBEDDING spans carry no llm.model_name
OI_SPAN_KIND = "openinference.span.kind"
OI_SESSION_ID = _session.SESSION_ID
OI_USER_ID = _user.USER_ID
# ``using_attributes(metadata=..., tags=...)``: a JSON object text and a list of strings.
OI_METADATA = "metadata"
OI_TAGS = "tag.tags"
# The response as JSON text (when OpenInference captures outputs): its "id" is the response id.
OI_OUTPUT_VALUE = "output.value"

# OpenLIT.
OPENLIT_COST = "gen_ai.usage.cost"

# LiteLLM's own OpenTelemetry callback (``callbacks=["otel"]``, scope ``litellm``).
LITELLM_CALL_ID = "litellm.call_id"
LITELLM_TEAM_ALIAS = "metadata.user_api_key_team_alias"
LITELLM_TEAM_ID = "metadata.user_api_key_team_id"
LITELLM_END_USER_ID = "metadata.user_api_key_end_user_id"
LITELLM_USER_ID = "metadata.user_api_key_user_id"
# The provider's usage block as Python literal text: the only place the cache and reasoning split is.
LITELLM_USAGE_OBJECT = "metadata.usage_object"
