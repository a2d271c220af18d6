"""Auto-instrumentation of the ``openai`` SDK: chat completions, responses, embeddings.

Sync and async, streaming and not, ``with_raw_response`` included; Azure OpenAI and any
OpenAI-compatible base URL (the provider name comes from the client's class and base URL).
Registered as the ``llmcost_openai`` ``opentelemetry_instrumentor`` entry point. Where another
instrumentation already wraps a method (openai-v2, OpenLLMetry, OpenLIT), it stands aside for that
method (``_common.MethodWrapping``); the collector bills the call once from the other span.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .. import attributes as a
from ..cache import lookup as response_cache
from ..estimate import estimate_tokens
from ..guard import Reservation, active_reserve_guard, check_budget
from ._common import (
    AsyncStreamProxy,
    CallSpan,
    MethodWrapping,
    RawStreamResponseProxy,
    StreamState,
    SyncStreamProxy,
    TokenUsage,
    beside_peer,
    client_endpoint,
    endpoint_of,
    get,
    is_raw,
    messages_text,
)

# Hosts of OpenAI-compatible APIs -> gen_ai.provider.name. Unknown hosts (gateways, local
# servers, the fake provider) stay "openai": the API shape is OpenAI's and the price is found by
# model id.
HOST_PROVIDERS = {
    "api.openai.com": "openai",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.fireworks.ai": "fireworks",
    "api.perplexity.ai": "perplexity",
    "generativelanguage.googleapis.com": "gcp.gemini",
}
TARGETS = (
    ("openai.resources.chat.completions.completions", "Completions", "AsyncCompletions", "chat"),
    ("openai.resources.responses.responses", "Responses", "AsyncResponses", "responses"),
    ("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", "embeddings"),
)


def provider_of(client: Any) -> str:
    if "Azure" in type(client).__name__:
        return "azure.ai.openai"
    host, _ = endpoint_of(client)
    if host.endswith((".openai.azure.com", ".cognitiveservices.azure.com")):
        return "azure.ai.openai"
    return HOST_PROVIDERS.get(host, "openai")


def chat_usage(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    return TokenUsage(
        input_tokens=get(usage, "prompt_tokens", default=0),
        output_tokens=get(usage, "completion_tokens", default=0),
        cache_read=get(usage, "prompt_tokens_details", "cached_tokens", default=0),
        reasoning=get(usage, "completion_tokens_details", "reasoning_tokens", default=0),
    )


def responses_usage(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    return TokenUsage(
        input_tokens=get(usage, "input_tokens", default=0),
        output_tokens=get(usage, "output_tokens", default=0),
        cache_read=get(usage, "input_tokens_details", "cached_tokens", default=0),
        reasoning=get(usage, "output_tokens_details", "reasoning_tokens", default=0),
    )


def embeddings_usage(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    return TokenUsage(input_tokens=get(usage, "prompt_tokens", default=0), output_tokens=0)


# --- per-API response readers ------------------------------------------------------------


def _record_chat(result: Any, call: CallSpan) -> None:
    try:  # the SDK's ChatCompletion: plain attribute reads on the hot path
        choices = result.choices or ()
        call.response(result.model, result.id, [c.finish_reason for c in choices])
        usage = result.usage
    except AttributeError:  # a dict or an unexpected shape
        call.response(get(result, "model"), get(result, "id"),
                      [get(c, "finish_reason") for c in get(result, "choices", default=())])  # fmt: skip
        usage = get(result, "usage")
    call.usage(chat_usage(usage))


def _observe_chat(chunk: Any, state: StreamState) -> None:
    state.model = get(chunk, "model") or state.model
    state.response_id = get(chunk, "id") or state.response_id
    for choice in get(chunk, "choices", default=()):
        text = get(choice, "delta", "content")
        if text:
            state.text_parts.append(text)
        if get(choice, "finish_reason"):
            state.finish_reasons.append(get(choice, "finish_reason"))
    usage = chat_usage(get(chunk, "usage"))
    if usage is not None:
        state.usage = usage
        state.final_usage = True


def _record_responses(result: Any, call: CallSpan) -> None:
    call.response(get(result, "model"), get(result, "id"), [get(result, "status")])
    call.usage(responses_usage(get(result, "usage")))


def _observe_responses(event: Any, state: StreamState) -> None:
    kind = get(event, "type")
    if kind == "response.output_text.delta":
        state.text_parts.append(get(event, "delta", default=""))
    elif kind in ("response.created", "response.completed", "response.incomplete", "response.failed"):
        response = get(event, "response")
        state.model = get(response, "model") or state.model
        state.response_id = get(response, "id") or state.response_id
        if kind != "response.created":
            state.finish_reasons = [get(response, "status")]
            usage = responses_usage(get(response, "usage"))
            if usage is not None:
                state.usage = usage
                state.final_usage = True


def _record_embeddings(result: Any, call: CallSpan) -> None:
    call.response(get(result, "model"))
    call.usage(embeddings_usage(get(result, "usage")))


READERS: dict[str, tuple[Callable[[Any, CallSpan], None], Callable[[Any, StreamState], None] | None]] = {
    "chat": (_record_chat, _observe_chat),
    "responses": (_record_responses, _observe_responses),
    "embeddings": (_record_embeddings, None),
}


def _input_text(operation: str, kwargs: dict[str, Any]) -> str:
    if operation == "chat":
        return messages_text(kwargs.get("messages"))
    value = kwargs.get("input")
    text = value if isinstance(value, str) else messages_text(value)
    instructions = kwargs.get("instructions")  # the Responses API's system prompt
    return f"{instructions}\n{text}" if isinstance(instructions, str) and instructions else text


def _estimator(operation: str) -> Callable[[dict[str, Any]], Callable[[], int]]:
    """The request's input tokens counted offline, when asked (a call abandoned after sending)."""
    return lambda kwargs: lambda: estimate_tokens(_input_text(operation, kwargs))


def _start(tracer: trace.Tracer, operation: str, instance: Any, kwargs: dict[str, Any]) -> CallSpan:
    provider, host, port = client_endpoint(get(instance, "_client"), provider_of)
    span_operation = "chat" if operation == "responses" else operation
    extra = {a.GEN_AI_REQUEST_MAX_TOKENS: kwargs.get("max_tokens") or kwargs.get("max_output_tokens")}
    call = CallSpan(
        tracer, span_operation, provider, str(kwargs.get("model", "")), (host, port), extra,
        estimate_input=_estimator(operation)(kwargs),
    )  # fmt: skip
    call.content(a.GEN_AI_INPUT_MESSAGES, kwargs.get("messages") or kwargs.get("input"))
    return call


def _finish(operation: str, result: Any, call: CallSpan, kwargs: dict[str, Any], proxy: type) -> Any:
    """Record a plain response and end the span, or hand back a stream proxy that will."""
    record, observe = READERS[operation]
    if kwargs.get("stream") is True and observe is not None:
        state = StreamState(call, observe, lambda: estimate_tokens(_input_text(operation, kwargs)))
        return RawStreamResponseProxy(result, state, proxy) if is_raw(result) else proxy(result, state)
    try:
        record(result.parse() if is_raw(result) else result, call)  # parse() is cached by the SDK
    finally:
        call.finish()
    return result


# --- response cache (otel_llmcost.cache): a hit never reaches the SDK's HTTP layer ----------


def _cache_plan(operation: str, instance: Any, kwargs: dict[str, Any]) -> response_cache.Plan | None:
    provider, host, port = client_endpoint(get(instance, "_client"), provider_of)
    return response_cache.plan("openai", operation, provider, host, port, kwargs)


def _serve_hit(
    tracer: trace.Tracer, operation: str, instance: Any, kwargs: dict[str, Any], cached: response_cache.Plan,
    proxy: type, is_async: bool,
) -> Any:  # fmt: skip
    """The cached answer, through the same span path as a real one (its usage, flagged a hit)."""
    call = _start(tracer, operation, instance, kwargs)
    call.span.set_attributes(cached.attributes())
    result = response_cache.replay_stream(cached.hit, is_async) if cached.stream else cached.hit
    return _finish(operation, result, call, kwargs, proxy)


# --- budget guard, reserve mode (otel_llmcost.guard): before the request leaves the process -----

# OpenAI's documented chat framing: about 3 tokens per message and 3 to prime the reply.
FRAME_TOKENS_PER_MESSAGE = 4
FRAME_TOKENS_PER_REQUEST = 3


def _hold(operation: str, instance: Any, kwargs: dict[str, Any], span: Any) -> Reservation | None:
    """Reserve the call's maximum cost (raises ``BudgetExceededError`` when refused): its input
    counted locally with the chat framing, its output at the request's max tokens per choice."""
    guard = active_reserve_guard()
    if guard is None:
        return None
    provider, _, _ = client_endpoint(get(instance, "_client"), provider_of)
    messages = kwargs.get("messages") if operation == "chat" else kwargs.get("input")
    count = len(messages) if isinstance(messages, list) else 1
    input_tokens = (
        estimate_tokens(_input_text(operation, kwargs))
        + FRAME_TOKENS_PER_MESSAGE * count
        + FRAME_TOKENS_PER_REQUEST
    )
    if operation == "embeddings":
        max_output: int | None = 0
    else:
        limit = (
            kwargs.get("max_completion_tokens") or kwargs.get("max_tokens") or kwargs.get("max_output_tokens")
        )
        n = kwargs.get("n")
        choices = n if isinstance(n, int) and n > 0 else 1
        max_output = (limit if isinstance(limit, int) else guard.default_max_tokens) * choices
    return guard.reserve(
        provider=provider,
        model=str(kwargs.get("model", "")),
        input_tokens=input_tokens,
        max_output_tokens=max_output,
        span=span,
    )


def _wrapper(tracer: trace.Tracer, operation: str) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        cached = _cache_plan(operation, instance, kwargs)
        if cached is not None and cached.load():
            return _serve_hit(tracer, operation, instance, kwargs, cached, SyncStreamProxy, False)
        check_budget()  # cached mode: refused before anything is sent
        call = _start(tracer, operation, instance, kwargs)
        # Refused: the span is dropped unended (never exported), as no call was made.
        call.hold = _hold(operation, instance, kwargs, call.span)
        if cached is not None:
            call.span.set_attributes(cached.attributes())
        with call:
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
        if cached is not None:
            result = cached.keep(result, is_async=False)
        return _finish(operation, result, call, kwargs, SyncStreamProxy)

    return wrapper


def _async_wrapper(tracer: trace.Tracer, operation: str) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        cached = _cache_plan(operation, instance, kwargs)
        if cached is not None and cached.load():
            return _serve_hit(tracer, operation, instance, kwargs, cached, AsyncStreamProxy, True)
        check_budget()  # cached mode: refused before anything is sent
        call = _start(tracer, operation, instance, kwargs)
        if active_reserve_guard() is not None:  # a blocking HTTP call: off the event loop, context along
            call.hold = await asyncio.to_thread(_hold, operation, instance, kwargs, call.span)
        if cached is not None:
            call.span.set_attributes(cached.attributes())
        with call:
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
        if cached is not None:
            result = cached.keep(result, is_async=True)
        if is_raw(result) and kwargs.get("stream") is not True:
            try:  # legacy raw responses parse synchronously, the newer async ones asynchronously
                parsed = result.parse()
                READERS[operation][0](await parsed if inspect.isawaitable(parsed) else parsed, call)
            finally:
                call.finish()
            return result
        return _finish(operation, result, call, kwargs, AsyncStreamProxy)

    return wrapper


class OpenAIInstrumentor(BaseInstrumentor):
    """Spans with token usage and attribution for every OpenAI SDK call.

    It only wraps the SDK's methods: the provider it is given (or the global one) is left as it is.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.40",)

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, tracer_provider=kwargs.get("tracer_provider"))
        self._methods = MethodWrapping()
        for module, sync_cls, async_cls, operation in TARGETS:
            estimator = _estimator(operation)
            self._methods.wrap(module, sync_cls, "create", _wrapper(tracer, operation),
                               beside=beside_peer(estimator, is_async=False))  # fmt: skip
            self._methods.wrap(module, async_cls, "create", _async_wrapper(tracer, operation),
                               beside=beside_peer(estimator, is_async=True))  # fmt: skip

    def _uninstrument(self, **kwargs: Any) -> None:
        self._methods.unwrap_all()
