"""Turn one span of any GenAI dialect into one canonical ``LlmCall``.

Dialects read (first match wins per field):

* OTel GenAI (current): ``gen_ai.usage.input_tokens`` *includes* cache reads and writes, which
  are reported in ``gen_ai.usage.cache_read.input_tokens`` / ``cache_write.input_tokens`` (named
  ``cache_creation.input_tokens`` before Aug 2026: both are read, the first found wins, never added);
  ``gen_ai.usage.output_tokens`` includes ``gen_ai.usage.reasoning.output_tokens``. Our own
  5m/1h split is ``llmcost.usage.cache_creation.{5m,1h}.input_tokens``.
* The anthropic SDK's own tracing: OTel names, writes as ``gen_ai.usage.cache_write.input_tokens``
  and ``anthropic.usage.cache_creation.ephemeral_{5m,1h}_input_tokens``; it adds cache into input.
* OTel GenAI (deprecated): ``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` /
  ``completion_tokens`` (same inclusion rules: they mirror OpenAI's usage block).
* OpenLLMetry: the names above plus ``gen_ai.usage.cache_read_input_tokens`` /
  ``cache_creation_input_tokens`` and ``gen_ai.usage.reasoning_tokens``; its Anthropic
  instrumentation adds cache tokens into input (``input_tokens = prompt + cache_read +
  cache_creation`` since it reports cache at all); ``traceloop.association.properties.*`` carry
  attribution.
* OpenInference: ``llm.token_count.prompt`` (``prompt_details.cache_read`` / ``cache_write`` are
  parts of it: its Anthropic instrumentations fold cache into the prompt count),
  ``llm.token_count.completion`` (``completion_details.reasoning`` is part of it),
  ``llm.model_name``, ``llm.provider`` / ``llm.system``.
* OpenLIT (scope ``openlit.*``, ``gen_ai.usage.cost`` or ``telemetry.sdk.name=openlit`` on the
  span itself): OTel names. Its Anthropic instrumentation sets ``gen_ai.usage.input_tokens`` to
  Anthropic's native ``input_tokens``, which EXCLUDES cache reads and writes. ``openlit.init()``
  also puts ``telemetry.sdk.name=openlit`` on the *resource* of every span in the process (the
  anthropic SDK's, ours), so the dialect is decided from span-level evidence only: the
  instrumentation scope and the span's attributes, never the resource.
* LiteLLM's OpenTelemetry callback (scope ``litellm``, ``litellm.call_id``): OTel names, input
  includes cache; the cache and reasoning split is only in ``metadata.usage_object``.

Peer-specific attribution and usage readers are in ``normalize/peers.py``.

The rule against double counting cached tokens, per dialect and provider:

1. OpenLIT + Anthropic: input excludes cache, so uncached = reported input.
2. Every other dialect: input includes cache (docs/reference.md), so uncached = input - read - write.
3. Safety net for unknown emitters of Anthropic-native usage: if an Anthropic-family provider
   (anthropic, aws.bedrock, gcp.vertex_ai) reports input *smaller* than its cache tokens, input
   cannot include them and is taken as uncached. For any other provider that is invalid.

An LLM span with invalid usage (negative, non-integer, NaN, over 10^9, cache > input, reasoning >
output, 1h writes > all writes, audio > its side) or a missing trace/span id raises ``SpanRejected``
with the reason: it is rejected via OTLP partial success and counted, never priced.
"""

from __future__ import annotations

import math

from llmcost_collector.model import OUTCOME_OPERATION, Attribution, LlmCall, SpanView, Usage
from llmcost_collector.normalize import peers
from llmcost_collector.normalize import semconv as sc
from llmcost_collector.providers import ALIASES, INPUT_EXCLUDES_CACHE

MAX_TOKENS = 10**9
# Operations that aggregate or orchestrate other calls: billing them would double count.
NOT_CALLS = frozenset({"invoke_agent", "create_agent", "execute_tool"})
OPENINFERENCE_CALL_KINDS = frozenset({"LLM", "EMBEDDING"})

INPUT_KEYS = (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_PROMPT_TOKENS, sc.OI_PROMPT_TOKENS)
OUTPUT_KEYS = (sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_USAGE_COMPLETION_TOKENS, sc.OI_COMPLETION_TOKENS)
CACHE_READ_KEYS = (
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.TRACELOOP_CACHE_READ_INPUT_TOKENS,
    sc.OI_PROMPT_CACHE_READ,
)
CACHE_WRITE_KEYS = (
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,  # the current name; also the anthropic SDK's own tracing
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,  # its name before August 2026
    sc.TRACELOOP_CACHE_CREATION_INPUT_TOKENS,
    sc.OI_PROMPT_CACHE_WRITE,
)
CACHE_WRITE_1H_KEYS = (
    sc.LLMCOST_USAGE_CACHE_CREATION_1H,
    sc.ANTHROPIC_CACHE_CREATION_EPHEMERAL_1H,
)
CACHE_WRITE_5M_KEYS = (
    sc.LLMCOST_USAGE_CACHE_CREATION_5M,
    sc.ANTHROPIC_CACHE_CREATION_EPHEMERAL_5M,
)
REASONING_KEYS = (
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    sc.TRACELOOP_REASONING_TOKENS,
    sc.OI_COMPLETION_REASONING,
)
AUDIO_INPUT_KEYS = (sc.TRACELOOP_INPUT_AUDIO_TOKENS, sc.OI_PROMPT_AUDIO)
AUDIO_OUTPUT_KEYS = (sc.TRACELOOP_OUTPUT_AUDIO_TOKENS, sc.OI_COMPLETION_AUDIO)
PROVIDER_KEYS = (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM, sc.OI_PROVIDER, sc.OI_SYSTEM)
# Keys only OpenLLMetry sets (``llm.request.type`` is on every one of its LLM spans).
OPENLLMETRY_MARKERS = (
    sc.TRACELOOP_REQUEST_TYPE,
    sc.TRACELOOP_SPAN_KIND,
    sc.TRACELOOP_ENTITY_NAME,
    sc.TRACELOOP_CACHE_READ_INPUT_TOKENS,
)
TRACELOOP_ATTRIBUTION = peers.FIELD_KEYS


class SpanRejected(ValueError):
    """An LLM span that cannot be billed; the message says why (sent back as partial success)."""


def _tokens(attrs: dict[str, object], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = attrs.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpanRejected(f"{key} must be an integer, got {type(value).__name__} {value!r}")
        if isinstance(value, float):
            if math.isnan(value) or math.isinf(value) or not value.is_integer():
                raise SpanRejected(f"{key} must be an integer, got {value!r}")
            value = int(value)
        if value < 0:
            raise SpanRejected(f"{key} is negative ({value})")
        if value > MAX_TOKENS:
            raise SpanRejected(f"{key} is absurd ({value} > 10^9 tokens)")
        return value
    return None


def _provider(attrs: dict[str, object]) -> str:
    for key in PROVIDER_KEYS:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            value = value.lower()
            return ALIASES.get(value, value)
    return ""


def _dialect(attrs: dict[str, object], scope: str = "") -> str:
    """The dialect from span-level evidence: the instrumentation scope and the span's attributes."""
    if sc.OI_SPAN_KIND in attrs or sc.OI_PROMPT_TOKENS in attrs or scope.startswith("openinference"):
        return "openinference"
    if scope == "litellm" or sc.LITELLM_CALL_ID in attrs:
        return "litellm"  # before OpenLLMetry: LiteLLM spans also carry ``llm.request.type``
    if any(key in attrs for key in OPENLLMETRY_MARKERS):
        return "openllmetry"
    if (
        scope.startswith("openlit")
        or sc.OPENLIT_COST in attrs
        or attrs.get(sc.TELEMETRY_SDK_NAME) == "openlit"
    ):
        return "openlit"
    if sc.GEN_AI_PROVIDER_NAME in attrs:
        return "otel"
    if sc.GEN_AI_SYSTEM in attrs or sc.GEN_AI_USAGE_PROMPT_TOKENS in attrs:
        return "otel-deprecated"
    return "otel"


# The attributes a call's model is read from; a span with none of them is not a call. An
# OpenTelemetry Collector in front of llmcost filters on the same list (otelcol/config.yaml).
CALL_MODEL_KEYS = (
    sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_RESPONSE_MODEL,
    sc.OI_MODEL_NAME,
    sc.OI_EMBEDDING_MODEL_NAME,
)


def is_llm_call(attrs: dict[str, object]) -> bool:
    """Cheap test: a model name, and not an orchestration span that aggregates other calls."""
    if attrs.get(sc.GEN_AI_OPERATION_NAME) in NOT_CALLS:
        return False
    kind = attrs.get(sc.OI_SPAN_KIND)
    if kind is not None and kind not in OPENINFERENCE_CALL_KINDS:
        return False
    return any(map(attrs.get, CALL_MODEL_KEYS))


def input_excludes_cache(dialect: str, provider: str) -> bool:
    """True where a dialect reports the provider's native input count, which leaves cache out."""
    return dialect == "openlit" and provider == "anthropic"


def normalize_usage(
    attrs: dict[str, object], provider: str, estimated: bool = False, dialect: str = "otel"
) -> Usage:
    reported_input = _tokens(attrs, INPUT_KEYS) or 0
    output = _tokens(attrs, OUTPUT_KEYS) or 0
    cache_read = _tokens(attrs, CACHE_READ_KEYS) or 0
    cache_write = _tokens(attrs, CACHE_WRITE_KEYS) or 0
    write_1h = _tokens(attrs, CACHE_WRITE_1H_KEYS) or 0
    write_5m = _tokens(attrs, CACHE_WRITE_5M_KEYS)
    if cache_write == 0 and (write_1h or write_5m):
        cache_write = write_1h + (write_5m or 0)
    reasoning = _tokens(attrs, REASONING_KEYS) or 0
    cached = cache_read + cache_write
    if input_excludes_cache(dialect, provider):
        uncached = reported_input
    elif reported_input >= cached:
        uncached = reported_input - cached
    elif provider in INPUT_EXCLUDES_CACHE:
        uncached = reported_input  # Anthropic's native usage: input excludes cache tokens
    else:
        raise SpanRejected(
            f"cache tokens ({cache_read} read + {cache_write} written) exceed input tokens ({reported_input})"
        )
    if write_1h > cache_write:
        raise SpanRejected(f"1h cache writes ({write_1h}) exceed cache writes ({cache_write})")
    if reasoning > output:
        raise SpanRejected(f"reasoning tokens ({reasoning}) exceed output tokens ({output})")
    audio_in = _tokens(attrs, AUDIO_INPUT_KEYS) or 0
    audio_out = _tokens(attrs, AUDIO_OUTPUT_KEYS) or 0
    if audio_in > uncached + cached or audio_out > output:
        raise SpanRejected("audio tokens exceed the side they belong to")
    # Audio is priced as part of the uncached input; audio beyond it was served from the cache
    # (no dialect reports the cached-audio split), so it stays in cache_read at that rate.
    audio_in = min(audio_in, uncached)
    return Usage(
        input_tokens=uncached,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
        output_tokens=output,
        reasoning_tokens=reasoning,
        input_audio_tokens=audio_in,
        output_audio_tokens=audio_out,
        estimated=estimated,
    )


PROPERTY_PREFIXES = (sc.LLMCOST_PROPERTY_PREFIX, sc.TRACELOOP_ASSOCIATION_PREFIX)


def _text(value: object, fallback: object = None) -> str:
    """An attribute value as text; ``fallback`` (a lower-priority key's value) when it is empty."""
    if value is None or value == "":
        value = fallback
        if value is None or value == "":
            return ""
    return value if isinstance(value, str) else str(value)


def normalize_attribution(
    attrs: dict[str, object], resource: dict[str, object], dialect: str = "otel"
) -> Attribution:
    merged = {**resource, **attrs} if resource else attrs  # span attributes win over resource ones
    get = merged.get
    attribution = Attribution(
        team=_text(get(sc.LLMCOST_TEAM)),
        feature=_text(get(sc.LLMCOST_FEATURE)),
        use_case=_text(get(sc.LLMCOST_USE_CASE)),
        user_id=_text(get(sc.USER_ID), get(sc.ENDUSER_ID)),
        user_tier=_text(get(sc.LLMCOST_USER_TIER)),
        session_id=_text(get(sc.SESSION_ID), get(sc.GEN_AI_CONVERSATION_ID)),
        session_name=_text(get(sc.LLMCOST_SESSION_NAME)),
        session_path=_text(get(sc.LLMCOST_SESSION_PATH)),
        environment=_text(get(sc.DEPLOYMENT_ENVIRONMENT_NAME), get(sc.DEPLOYMENT_ENVIRONMENT)),
        service_name=_text(resource.get(sc.SERVICE_NAME), attrs.get(sc.SERVICE_NAME)),
    )
    # Custom properties are rare: one C-level join and two substring tests decide whether the
    # per-key loop is needed at all (a false positive only costs that loop).
    keys_text = "\n".join(attrs)
    if sc.LLMCOST_PROPERTY_PREFIX in keys_text or sc.TRACELOOP_ASSOCIATION_PREFIX in keys_text:
        _read_properties(attrs, attribution)
    if dialect == "openinference":
        _fill(attribution, peers.openinference_metadata(attrs))
    elif dialect == "openlit":
        _fill(attribution, peers.openlit_attributes(attrs))
    elif dialect == "litellm":
        for field, value in peers.litellm_attribution(attrs).items():
            if not getattr(attribution, field):
                setattr(attribution, field, value)
    return attribution


def _fill(attribution: Attribution, pairs: dict[str, str]) -> None:
    """A tool's free-form attribution: keys naming our fields fill them when still empty (our own
    ``llmcost.*`` names win); the others become properties unless one of that name is set."""
    for key, value in pairs.items():
        field = peers.FIELD_KEYS.get(key)
        if field is None:
            attribution.properties.setdefault(key, value)
        elif not getattr(attribution, field):
            setattr(attribution, field, value)


def _read_properties(attrs: dict[str, object], attribution: Attribution) -> None:
    """``llmcost.property.*`` become properties; OpenLLMetry's association properties fill the
    attribution fields they name (when still empty) and are properties otherwise."""
    prefix = sc.LLMCOST_PROPERTY_PREFIX
    traceloop = sc.TRACELOOP_ASSOCIATION_PREFIX
    for key, value in attrs.items():
        if not key.startswith(PROPERTY_PREFIXES):
            continue
        if key.startswith(prefix):
            attribution.properties[key[len(prefix) :]] = str(value)
        else:
            name = key[len(traceloop) :]
            field = TRACELOOP_ATTRIBUTION.get(name)
            if field is None:
                attribution.properties[name] = str(value)
            elif not getattr(attribution, field):
                setattr(attribution, field, str(value))


def _flag(attrs: dict[str, object], key: str) -> bool:
    value = attrs.get(key)
    return value is True or (isinstance(value, str) and value.lower() == "true")


_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16


def _check_ids(span: SpanView) -> None:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 32 or len(span_id) != 16 or trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        raise SpanRejected(f"missing or invalid trace/span id ({trace_id!r}, {span_id!r})")


def normalize_span(span: SpanView) -> LlmCall | None:
    """The call this span describes; None when it is not an LLM call (or outcome record).

    OTLP lets any attribute hold any type: one the readers cannot use where they expect a string
    or a number (a list as the operation name, a map as the model) is a span that cannot be
    billed as sent, rejected with ``SpanRejected`` like invalid usage, never another exception.
    """
    try:
        return _normalize_span(span)
    except (TypeError, AttributeError) as exc:
        raise SpanRejected(f"an attribute has a type it cannot have ({str(exc)[:120]})") from None


def _normalize_span(span: SpanView) -> LlmCall | None:
    attrs = span.attributes
    outcome = attrs.get(sc.LLMCOST_OUTCOME)
    dialect = ""
    if not is_llm_call(attrs):
        if not outcome:
            return None
        provider = ""
        usage = Usage()
        operation = OUTCOME_OPERATION
    else:
        _check_ids(span)
        provider = _provider(attrs)
        dialect = _dialect(attrs, span.scope_name)
        usage_attrs = attrs
        if dialect == "litellm" and sc.LITELLM_USAGE_OBJECT in attrs:
            # the split LiteLLM keeps in its usage block, unless the span names a class itself
            extra = {k: v for k, v in peers.litellm_usage(attrs).items() if k not in attrs}
            usage_attrs = {**attrs, **extra} if extra else attrs
        usage = normalize_usage(usage_attrs, provider, _flag(attrs, sc.LLMCOST_USAGE_ESTIMATED), dialect)
        operation = str(attrs.get(sc.GEN_AI_OPERATION_NAME) or attrs.get(sc.OI_SPAN_KIND, "chat")).lower()
    outcome_count = _tokens(attrs, (sc.LLMCOST_OUTCOME_COUNT,)) if outcome else 0
    error_type = attrs.get(sc.ERROR_TYPE)
    cache_hit = _flag(attrs, sc.LLMCOST_CACHE_HIT)
    return LlmCall(
        trace_id=span.trace_id,
        span_id=span.span_id,
        start_time_ns=span.start_time_ns,
        end_time_ns=span.end_time_ns,
        provider=provider,
        operation=operation,
        request_model=str(
            attrs.get(sc.GEN_AI_REQUEST_MODEL)
            or attrs.get(sc.OI_MODEL_NAME)
            or attrs.get(sc.OI_EMBEDDING_MODEL_NAME)
            or ""
        ),
        response_model=str(attrs.get(sc.GEN_AI_RESPONSE_MODEL) or ""),
        usage=usage,
        attribution=normalize_attribution(attrs, span.resource, dialect),
        status="error" if span.status_code == 2 or error_type else "ok",
        error_type=str(error_type or (span.status_message if span.status_code == 2 else "") or ""),
        cache_hit=cache_hit,
        cache_lookup=cache_hit or attrs.get(sc.LLMCOST_CACHE_LOOKUP) in ("hit", "miss"),
        outcome=str(outcome or ""),
        outcome_count=(outcome_count if outcome_count is not None else 1) if outcome else 0,
        server_address=str(attrs.get(sc.SERVER_ADDRESS) or ""),
        dialect=dialect or _dialect(attrs, span.scope_name),
        response_id=_response_id(attrs) if dialect else "",
        call_id=_call_id(attrs) if dialect else "",
        parent_span_id=span.parent_span_id,
    )


def _response_id(attrs: dict[str, object]) -> str:
    value = attrs.get(sc.GEN_AI_RESPONSE_ID)
    if isinstance(value, str) and value:
        return value[:200]
    return peers.output_response_id(attrs)


def _call_id(attrs: dict[str, object]) -> str:
    """The id otel_llmcost gave every GenAI span started during one SDK call: it links two
    tracers' spans of that call when they share no trace and not both have a response id (a
    timeout before any answer; OpenInference's Anthropic stream with outputs hidden)."""
    value = attrs.get(sc.LLMCOST_CALL_ID)
    return value[:64] if isinstance(value, str) else ""
