"""Auto-instrumentation of the ``anthropic`` SDK: ``messages.create`` and ``messages.stream``.

Sync and async; the Bedrock and Vertex clients share the same resource classes, so they are
covered too (provider ``aws.bedrock`` / ``gcp.vertex_ai``). Anthropic reports ``input_tokens``
*excluding* cache reads and writes; the span's ``gen_ai.usage.input_tokens`` includes them, as
the OTel GenAI conventions say, so nothing is double counted downstream.
Registered as the ``llmcost_anthropic`` ``opentelemetry_instrumentor`` entry point.

Recent ``anthropic`` releases trace themselves: a client whose own OpenTelemetry tracing is on
(the default; off with ``open_telemetry=False`` or ``ANTHROPIC_OPEN_TELEMETRY=false``) already
gives every call a GenAI CLIENT span (scope ``com.anthropic.sdk.python``) with the usage, input
including cache tokens. A second span per call would bill it twice, so for such a client this
instrumentor stands aside, decided per call from the client itself; the attribution processor
stamps team/feature/user on the SDK's spans and the collector reads their attribute names. It
still offers the SDK's span an estimate of the request, taken if the call is abandoned after
sending (``otel_llmcost.abandoned``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection
from contextlib import ExitStack
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .. import attributes as a
from ..abandoned import request_estimate
from ..cache import lookup as response_cache
from ..estimate import estimate_tokens
from ..guard import Reservation, active_reserve_guard, check_budget, holding
from ._common import (
    AsyncStreamProxy,
    CallSpan,
    MethodWrapping,
    RawStreamResponseProxy,
    StreamState,
    SyncStreamProxy,
    TokenUsage,
    beside_peer,
    beside_peer_stream,
    client_endpoint,
    get,
    is_raw,
    messages_text,
)

MODULE = "anthropic.resources.messages.messages"


def traces_itself(client: Any) -> bool:
    """True when this client emits its own GenAI span per call (anthropic SDKs with ``_tracing``)."""
    try:
        return getattr(client, "_tracer", None) is not None
    except Exception:
        return False


def provider_of(client: Any) -> str:
    declared = getattr(client, "_gen_ai_provider_name", None)  # set by the SDK's platform clients
    if isinstance(declared, str) and declared != "anthropic":
        return declared
    name = type(client).__name__
    if "Bedrock" in name:
        return "aws.bedrock"
    if "Vertex" in name:
        return "gcp.vertex_ai"
    return "anthropic"


def anthropic_usage(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    cache_read = get(usage, "cache_read_input_tokens", default=0)
    cache_creation = get(usage, "cache_creation_input_tokens", default=0)
    split = get(usage, "cache_creation")
    return TokenUsage(
        input_tokens=get(usage, "input_tokens", default=0) + cache_read + cache_creation,
        output_tokens=get(usage, "output_tokens", default=0),
        cache_read=cache_read,
        cache_creation=cache_creation,
        cache_creation_5m=get(split, "ephemeral_5m_input_tokens"),
        cache_creation_1h=get(split, "ephemeral_1h_input_tokens"),
        reasoning=get(usage, "output_tokens_details", "thinking_tokens", default=0),
    )


def _record(message: Any, call: CallSpan) -> None:
    call.response(get(message, "model"), get(message, "id"), [get(message, "stop_reason")])
    call.usage(anthropic_usage(get(message, "usage")))


def _record_snapshot(message: Any, call: CallSpan) -> None:
    """The stream helper's message so far. Before ``message_delta`` (no ``stop_reason``) its usage
    is ``message_start``'s: exact input, output ~1; the output received is then estimated."""
    usage = anthropic_usage(get(message, "usage"))
    if usage is not None and get(message, "stop_reason") is None:
        received = estimate_tokens(
            "".join(str(get(block, "text") or "") for block in get(message, "content", default=()))
        )
        if received > usage.output_tokens:
            usage.output_tokens = received
            usage.estimated = True
    call.response(get(message, "model"), get(message, "id"), [get(message, "stop_reason")])
    call.usage(usage)


def _observe(event: Any, state: StreamState) -> None:
    kind = get(event, "type")
    if kind == "message_start":
        message = get(event, "message")
        state.model = get(message, "model")
        state.response_id = get(message, "id")
        state.usage = anthropic_usage(get(message, "usage"))
    elif kind == "message_delta":
        state.final_usage = True  # the final, cumulative counts
        reason = get(event, "delta", "stop_reason")
        if reason:
            state.finish_reasons = [reason]
        delta = get(event, "usage")
        if delta is not None and state.usage is not None:
            # message_delta carries cumulative counts; input/cache fields only when they changed.
            state.usage.output_tokens = get(delta, "output_tokens", default=state.usage.output_tokens)
            if get(delta, "input_tokens") is not None:
                updated = anthropic_usage(delta)
                if updated is not None:
                    previous = state.usage
                    updated.output_tokens = previous.output_tokens
                    # the TTL split of cache writes is only in message_start: keep it
                    if (
                        updated.cache_creation_5m is None
                        and updated.cache_creation == previous.cache_creation
                    ):
                        updated.cache_creation_5m = previous.cache_creation_5m
                        updated.cache_creation_1h = previous.cache_creation_1h
                    state.usage = updated
    elif kind == "content_block_delta":
        text = get(event, "delta", "text")
        if text:
            state.text_parts.append(text)


def _start(tracer: trace.Tracer, instance: Any, kwargs: dict[str, Any]) -> CallSpan:
    provider, host, port = client_endpoint(get(instance, "_client"), provider_of)
    call = CallSpan(
        tracer, "chat", provider, str(kwargs.get("model", "")), (host, port),
        {a.GEN_AI_REQUEST_MAX_TOKENS: kwargs.get("max_tokens")}, estimate_input=_estimator(kwargs),
    )  # fmt: skip
    call.content(a.GEN_AI_INPUT_MESSAGES, kwargs.get("messages"))
    return call


def _request_text(kwargs: dict[str, Any]) -> str:
    """The text the request sends the model: the system prompt, then the messages."""
    system = kwargs.get("system")
    if isinstance(system, str):
        system_text = system
    else:
        system_text = "\n".join(str(get(block, "text") or "") for block in system or ())
    return "\n".join(part for part in (system_text, messages_text(kwargs.get("messages"))) if part)


def _estimator(kwargs: dict[str, Any]) -> Callable[[], int]:
    return lambda: estimate_tokens(_request_text(kwargs))


# --- budget guard, reserve mode (otel_llmcost.guard): before the request leaves the process -----

FRAME_TOKENS_PER_MESSAGE = 4  # roles and separators: Anthropic publishes no figure, OpenAI's is used
FRAME_TOKENS_PER_REQUEST = 3


def _hold(instance: Any, kwargs: dict[str, Any], span: Any) -> Reservation | None:
    """Reserve the call's maximum cost (raises ``BudgetExceededError`` when refused). A request
    with ``cache_control`` may write its whole prompt to the cache, which costs more than input:
    its prompt is reserved as cache writes."""
    guard = active_reserve_guard()
    if guard is None:
        return None
    provider, _, _ = client_endpoint(get(instance, "_client"), provider_of)
    messages = kwargs.get("messages")
    count = len(messages) if isinstance(messages, list) else 1
    prompt = (
        estimate_tokens(_request_text(kwargs)) + FRAME_TOKENS_PER_MESSAGE * count + FRAME_TOKENS_PER_REQUEST
    )
    cached = "cache_control" in repr((kwargs.get("system"), messages, kwargs.get("tools")))
    limit = kwargs.get("max_tokens")
    return guard.reserve(
        provider=provider,
        model=str(kwargs.get("model", "")),
        input_tokens=0 if cached else prompt,
        cache_write_tokens=prompt if cached else 0,
        max_output_tokens=limit if isinstance(limit, int) else None,
        span=span,
    )


# --- response cache (otel_llmcost.cache): a hit never reaches the SDK's HTTP layer ----------


def _cache_plan(instance: Any, kwargs: dict[str, Any]) -> response_cache.Plan | None:
    provider, host, port = client_endpoint(get(instance, "_client"), provider_of)
    return response_cache.plan("anthropic", "messages", provider, host, port, kwargs)


def _serve_hit(
    tracer: trace.Tracer, instance: Any, kwargs: dict[str, Any], cached: response_cache.Plan, is_async: bool
) -> Any:
    """The cached answer on a span of ours (also for clients that trace themselves: the SDK makes
    no call, so no span), through the same readers as a real answer, flagged a hit."""
    call = _start(tracer, instance, kwargs)
    call.span.set_attributes(cached.attributes())
    if cached.stream:
        state = StreamState(call, _observe, _estimator(kwargs))
        replay = response_cache.replay_stream(cached.hit, is_async)
        return AsyncStreamProxy(replay, state) if is_async else SyncStreamProxy(replay, state)
    try:
        _record(cached.hit, call)
    finally:
        call.finish()
    return cached.hit


def _create_wrapper(tracer: trace.Tracer) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        cached = _cache_plan(instance, kwargs)
        if cached is not None and cached.load():
            return _serve_hit(tracer, instance, kwargs, cached, is_async=False)
        check_budget()  # cached mode: refused before anything is sent
        if traces_itself(get(instance, "_client")):
            hold = _hold(instance, kwargs, None)
            with request_estimate(_estimator(kwargs)), response_cache.looked_up(cached), holding(hold):
                result = wrapped(*args, **kwargs)  # for the SDK's span, if the call is abandoned
            return result if cached is None else cached.keep(result, is_async=False)
        call = _start(tracer, instance, kwargs)
        call.hold = _hold(instance, kwargs, call.span)  # refused: the span is dropped unended
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
        if kwargs.get("stream") is True:
            state = StreamState(call, _observe, _estimator(kwargs))
            if is_raw(result):
                return RawStreamResponseProxy(result, state, SyncStreamProxy)
            return SyncStreamProxy(result, state)
        try:
            _record(result.parse() if is_raw(result) else result, call)
        finally:
            call.finish()
        return result

    return wrapper


def _async_create_wrapper(tracer: trace.Tracer) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        cached = _cache_plan(instance, kwargs)
        if cached is not None and cached.load():
            return _serve_hit(tracer, instance, kwargs, cached, is_async=True)
        check_budget()  # cached mode: refused before anything is sent
        if traces_itself(get(instance, "_client")):
            hold = await asyncio.to_thread(_hold, instance, kwargs, None) if active_reserve_guard() else None
            with request_estimate(_estimator(kwargs)), response_cache.looked_up(cached), holding(hold):
                result = await wrapped(*args, **kwargs)  # for the SDK's span, if the call is abandoned
            return result if cached is None else cached.keep(result, is_async=True)
        call = _start(tracer, instance, kwargs)
        if active_reserve_guard() is not None:  # a blocking HTTP call: off the event loop, context along
            call.hold = await asyncio.to_thread(_hold, instance, kwargs, call.span)
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
        if kwargs.get("stream") is True:
            state = StreamState(call, _observe, _estimator(kwargs))
            if is_raw(result):
                return RawStreamResponseProxy(result, state, AsyncStreamProxy)
            return AsyncStreamProxy(result, state)
        try:
            message = result.parse() if is_raw(result) else result
            _record(await message if inspect.isawaitable(message) else message, call)
        finally:
            call.finish()
        return result

    return wrapper


class _StreamManagerProxy(wrapt.ObjectProxy):
    """``messages.stream(...)`` returns a manager; the request happens on enter, usage on exit."""

    def __init__(self, wrapped: Any, tracer: trace.Tracer, instance: Any, kwargs: dict[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_tracer = tracer
        self._self_instance = instance
        self._self_kwargs = kwargs
        self._self_call: CallSpan | None = None
        self._self_stream: Any = None

    def _begin(self) -> CallSpan:
        call = _start(self._self_tracer, self._self_instance, self._self_kwargs)
        call.hold = _hold(self._self_instance, self._self_kwargs, call.span)  # refused: span dropped
        self._self_call = call
        return call

    def _end(self, error: BaseException | None) -> None:
        call = self._self_call
        if call is None:
            return
        snapshot = None
        if self._self_stream is not None:
            snapshot_of = getattr(self._self_stream, "_current_snapshot_or_none", None)
            snapshot = snapshot_of() if snapshot_of else None
        if snapshot is not None:
            _record_snapshot(snapshot, call)
        call.finish(error)

    def __enter__(self) -> Any:
        call = self._begin()
        with call:
            try:
                self._self_stream = self.__wrapped__.__enter__()
            except BaseException as exc:
                call.finish(exc)
                raise
        return self._self_stream

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc)
        finally:
            self._end(exc[1] if exc and isinstance(exc[1], Exception) else None)

    async def __aenter__(self) -> Any:
        call = self._begin()
        with call:
            try:
                self._self_stream = await self.__wrapped__.__aenter__()
            except BaseException as exc:
                call.finish(exc)
                raise
        return self._self_stream

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc)
        finally:
            self._end(exc[1] if exc and isinstance(exc[1], Exception) else None)


class _HeldStreamManager(wrapt.ObjectProxy):
    """``messages.stream(...)`` of a client that traces itself, in reserve mode: the call reserves
    on enter and its reservation is offered to the SDK's span until exit (``guard.holding``)."""

    def __init__(self, wrapped: Any, instance: Any, kwargs: dict[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_instance = instance
        self._self_kwargs = kwargs
        self._self_stack = ExitStack()

    def __enter__(self) -> Any:
        self._self_stack.enter_context(holding(_hold(self._self_instance, self._self_kwargs, None)))
        try:
            return self.__wrapped__.__enter__()
        except BaseException as exc:
            self._self_stack.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc)
        finally:
            self._self_stack.__exit__(*exc)

    async def __aenter__(self) -> Any:
        hold = await asyncio.to_thread(_hold, self._self_instance, self._self_kwargs, None)
        self._self_stack.enter_context(holding(hold))
        try:
            return await self.__wrapped__.__aenter__()
        except BaseException as exc:
            self._self_stack.__exit__(type(exc), exc, exc.__traceback__)
            raise

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc)
        finally:
            self._self_stack.__exit__(*exc)


def _stream_wrapper(tracer: trace.Tracer) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        check_budget()  # the request is sent when the stream is entered, never before this
        if traces_itself(get(instance, "_client")):
            manager = wrapped(*args, **kwargs)
            return _HeldStreamManager(manager, instance, kwargs) if active_reserve_guard() else manager
        return _StreamManagerProxy(wrapped(*args, **kwargs), tracer, instance, kwargs)

    return wrapper


class AnthropicInstrumentor(BaseInstrumentor):
    """Spans with token usage (cache reads, 5m/1h cache writes) for every Anthropic SDK call.

    It only wraps the SDK's methods: the provider it is given (or the global one) is left as it is.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 0.40",)

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, tracer_provider=kwargs.get("tracer_provider"))
        self._methods = MethodWrapping()
        self._methods.wrap(MODULE, "Messages", "create", _create_wrapper(tracer),
                           beside=beside_peer(_estimator, is_async=False))  # fmt: skip
        self._methods.wrap(MODULE, "AsyncMessages", "create", _async_create_wrapper(tracer),
                           beside=beside_peer(_estimator, is_async=True))  # fmt: skip
        self._methods.wrap(MODULE, "Messages", "stream", _stream_wrapper(tracer),
                           beside=beside_peer_stream(_estimator))  # fmt: skip
        self._methods.wrap(MODULE, "AsyncMessages", "stream", _stream_wrapper(tracer),
                           beside=beside_peer_stream(_estimator))  # fmt: skip

    def _uninstrument(self, **kwargs: Any) -> None:
        self._methods.unwrap_all()
