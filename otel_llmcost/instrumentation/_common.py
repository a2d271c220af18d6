"""What the OpenAI and Anthropic instrumentors share: the call span, usage recording, streams.

A call span follows the OTel GenAI conventions: ``"{operation} {model}"``, kind CLIENT, every
token class, ``error.type`` on failure. Streams are wrapped in transparent proxies that observe
each item as the caller consumes it and end the span exactly once: when the stream is exhausted,
closed, exits its ``with`` block, fails, or is garbage-collected after being dropped early.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import wrapt
from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import attributes as a
from ..abandoned import abandoned_after_sending, estimated_prompt, request_estimate
from ..estimate import estimate_tokens
from ..guard import Reservation, check_budget

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


# wrapt 2 proxies derive from BaseObjectProxy (ObjectProxy is a subclass of it); wrapt 1 has only
# ObjectProxy. A plain SDK method may have ``__wrapped__`` too (functools.wraps), so that is no sign.
_PROXIES = tuple(t for t in (getattr(wrapt, "BaseObjectProxy", None), wrapt.ObjectProxy) if t is not None)


class MethodWrapping:
    """Wraps SDK methods, standing aside where another instrumentation already wraps one.

    OpenTelemetry instrumentations (openai-v2, OpenLLMetry, OpenLIT, OpenInference's Anthropic one)
    wrap SDK methods with ``wrapt``, so such a method is a ``wrapt.ObjectProxy`` on its class: that
    call is traced already and a second span of ours would only be suppressed by the collector.
    Such a method gets the ``beside`` wrapper instead, when one is given: no span, only what the
    other tracer's span cannot know (``beside_peer``). Only what was wrapped here is unwrapped again.
    """

    def __init__(self) -> None:
        self.wrapped: list[tuple[type, str, Any]] = []  # (class, method name, the wrapper installed)

    def wrap(
        self,
        module: str,
        cls: str,
        name: str,
        wrapper: Callable[..., Any],
        beside: Callable[..., Any] | None = None,
    ) -> bool:
        """Wrap ``cls.name`` with ``wrapper`` (True), or, when another instrumentation wrapped it
        first, with ``beside`` if given (False: that call is not traced by us)."""
        owner = getattr(importlib.import_module(module), cls)
        traced = isinstance(vars(owner).get(name), _PROXIES)
        chosen = beside if traced else wrapper
        if chosen is None:
            return False
        wrapt.wrap_function_wrapper(module, f"{cls}.{name}", chosen)
        self.wrapped.append((owner, name, vars(owner)[name]))
        return not traced

    def unwrap_all(self) -> None:
        """Put back what each wrapper of ours wrapped, read from the class itself (through the
        class, a wrapt wrapper is a bound copy). A wrapper another instrumentation put on top of
        ours since is left in place, ours inside it: unwrapping would take theirs away too."""
        while self.wrapped:
            owner, name, installed = self.wrapped.pop()
            if vars(owner).get(name) is installed:
                setattr(owner, name, vars(owner)[name].__wrapped__)


def beside_peer(
    estimator_of: Callable[[dict[str, Any]], Callable[[], int]], *, is_async: bool
) -> Callable[..., Any]:
    """The wrapper of a method another instrumentation traces: no span of ours, only the budget
    guard's check and, for that tracer's span, the call's input estimate and call id
    (``abandoned.request_estimate``): a timeout it traced is then billed its prompt, once."""
    if is_async:

        async def wrapper_async(
            wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]
        ) -> Any:
            check_budget()
            with request_estimate(estimator_of(kwargs)):
                return await wrapped(*args, **kwargs)

        return wrapper_async

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        check_budget()
        with request_estimate(estimator_of(kwargs)):
            return wrapped(*args, **kwargs)

    return wrapper


class _SameCallManager(wrapt.ObjectProxy):
    """A stream manager another instrumentation returned: entering it (where the SDK sends the
    request and starts its own span) happens inside the same call's estimate and call id."""

    def __init__(self, manager: Any, estimate: Callable[[], int], call_id: str) -> None:
        super().__init__(manager)
        self._self_estimate = estimate
        self._self_call_id = call_id

    def __enter__(self) -> Any:
        with request_estimate(self._self_estimate, self._self_call_id):
            return self.__wrapped__.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self.__wrapped__.__exit__(*exc)

    async def __aenter__(self) -> Any:
        with request_estimate(self._self_estimate, self._self_call_id):
            return await self.__wrapped__.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc)


def beside_peer_stream(estimator_of: Callable[[dict[str, Any]], Callable[[], int]]) -> Callable[..., Any]:
    """``beside_peer`` for a stream helper (Anthropic ``messages.stream``) another instrumentation
    wraps: its span starts when the helper is called, the SDK's own when the returned manager is
    entered, so both moments carry the same call id."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        check_budget()
        estimate = estimator_of(kwargs)
        with request_estimate(estimate) as call_id:
            manager = wrapped(*args, **kwargs)
        return _SameCallManager(manager, estimate, call_id)

    return wrapper


def capture_content() -> bool:
    return os.environ.get(CAPTURE_ENV, "").lower() == "true"


@dataclass
class TokenUsage:
    """Usage in OTel terms: input includes cache reads/writes, output includes reasoning."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    cache_creation_5m: int | None = None
    cache_creation_1h: int | None = None
    reasoning: int = 0
    estimated: bool = False

    def attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            a.GEN_AI_USAGE_INPUT_TOKENS: self.input_tokens,
            a.GEN_AI_USAGE_OUTPUT_TOKENS: self.output_tokens,
        }
        if self.cache_read:
            out[a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read
        if self.cache_creation:
            out[a.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = self.cache_creation
        if self.cache_creation_5m:
            out[a.CACHE_CREATION_5M] = self.cache_creation_5m
        if self.cache_creation_1h:
            out[a.CACHE_CREATION_1H] = self.cache_creation_1h
        if self.reasoning:
            out[a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning
        if self.estimated:
            out[a.USAGE_ESTIMATED] = True
        return out


def get(obj: Any, *path: str, default: Any = None) -> Any:
    """Attribute or key lookup along ``path`` on SDK objects or plain dicts; None-safe."""
    for name in path:
        if obj is None:
            return default
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return default if obj is None else obj


_endpoints: weakref.WeakKeyDictionary[Any, tuple[str, str, int | None]] = weakref.WeakKeyDictionary()


def endpoint_of(client: Any) -> tuple[str, int | None]:
    url = str(get(client, "base_url") or "")
    parts = urlsplit(url)
    return parts.hostname or "", parts.port


def client_endpoint(client: Any, provider_of: Callable[[Any], str]) -> tuple[str, str, int | None]:
    """(provider, host, port) of a client, computed once per client object (hot path)."""
    try:
        found = _endpoints.get(client)
    except TypeError:  # not weak-referenceable: compute every time
        found = None
    if found is None:
        host, port = endpoint_of(client)
        found = (provider_of(client), host, port)
        try:
            _endpoints[client] = found
        except TypeError:
            pass
    return found


class CallSpan:
    """One LLM call's span; ``finish`` is idempotent so every exit path may call it.

    ``estimate_input`` counts the request's input tokens offline; it is called only when the call
    is abandoned after sending with no usage reported (``otel_llmcost.abandoned``).
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        operation: str,
        provider: str,
        model: str,
        endpoint: tuple[str, int | None],
        extra: dict[str, Any] | None = None,
        estimate_input: Callable[[], int] | None = None,
    ) -> None:
        host, port = endpoint
        attrs: dict[str, Any] = {
            a.GEN_AI_OPERATION_NAME: operation,
            a.GEN_AI_PROVIDER_NAME: provider,
            a.GEN_AI_REQUEST_MODEL: model,
        }
        if host:
            attrs[a.SERVER_ADDRESS] = host
        if port:
            attrs[a.SERVER_PORT] = port
        if extra:
            attrs.update({k: v for k, v in extra.items() if v is not None})
        # Attribution at start, in the same write as the rest (the processor then has nothing to add
        # but defaults); samplers see it too.
        for key, value in baggage.get_all().items():
            if key in a.STAMPED_KEYS or key.startswith(a.PROPERTY_PREFIX):
                attrs[key] = str(value)
        self.span = tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attrs)
        self._done = False
        self._pending: dict[str, Any] = {}  # set in one call when the span ends (one lock, not many)
        self.estimate_input = estimate_input
        self.hold: Reservation | None = None  # the budget reservation to settle (reserve mode)

    def __enter__(self) -> CallSpan:
        """Make the span current while the SDK sends the request (HTTP spans and traceparent nest
        under it); cheaper than ``trace.use_span``, and the span stays open after the block."""
        self._token = context.attach(trace.set_span_in_context(self.span))
        return self

    def __exit__(self, *exc: object) -> None:
        context.detach(self._token)

    def response(
        self, model: Any = None, response_id: Any = None, finish_reasons: Iterable[Any] = ()
    ) -> None:
        if model:
            self._pending[a.GEN_AI_RESPONSE_MODEL] = str(model)
        if response_id:
            self._pending[a.GEN_AI_RESPONSE_ID] = str(response_id)
        reasons = [str(r) for r in finish_reasons if r]
        if reasons:
            self._pending[a.GEN_AI_RESPONSE_FINISH_REASONS] = reasons

    def usage(self, usage: TokenUsage | None) -> None:
        if usage is not None:
            self._pending.update(usage.attributes())

    def content(self, key: str, value: Any) -> None:
        if capture_content():
            self._pending[key] = json.dumps(value, default=str)

    def finish(self, error: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        if error is not None:
            self._pending[a.ERROR_TYPE] = type(error).__qualname__
            self.span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
            if (
                self.estimate_input is not None
                and a.GEN_AI_USAGE_INPUT_TOKENS not in self._pending
                and abandoned_after_sending(error)
            ):
                # Sent, then given up on before any answer: the prompt was consumed and is billed;
                # nothing was received, so no output is counted.
                self._pending.update(estimated_prompt(self.estimate_input()))
        if self._pending:
            self.span.set_attributes(self._pending)
        self.span.end()
        if self.hold is not None:
            try:  # after the span ended (and was handed to its exporter): the ledger's copy follows
                self.hold.settle_span(self._pending, error, self.span)
            except Exception:  # never let accounting break the caller's call
                pass


class StreamState:
    """Accumulates a stream's items into usage and response attributes, ends the span once."""

    def __init__(
        self,
        call: CallSpan,
        observe: Callable[[Any, StreamState], None],
        estimate_input: Callable[[], int],
    ) -> None:
        self.call = call
        self.observe_fn = observe
        self.estimate_input = estimate_input
        self.usage: TokenUsage | None = None
        self.model: Any = None
        self.response_id: Any = None
        self.finish_reasons: list[Any] = []
        self.text_parts: list[str] = []
        self.final_usage = False  # the provider's final usage arrived (observe functions set it)
        self.finished = False

    def observe(self, item: Any) -> None:
        try:
            self.observe_fn(item, self)
        except Exception:  # never let accounting break the caller's stream
            pass

    def finish(self, error: BaseException | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        usage = self.usage
        if usage is None:
            # The provider sent no usage (OpenAI without stream_options.include_usage, or a stream
            # cut before its usage chunk): the tokens were still processed and billed, so estimate
            # them locally and say so.
            usage = TokenUsage(
                input_tokens=self.estimate_input(),
                output_tokens=estimate_tokens("".join(self.text_parts)),
                estimated=True,
            )
        elif not self.final_usage and self.text_parts:
            # Usage came at the start (Anthropic's message_start: exact input, output so far ~1) and
            # the stream ended before the final counts: the output received is estimated.
            received = estimate_tokens("".join(self.text_parts))
            if received > usage.output_tokens:
                usage.output_tokens = received
                usage.estimated = True
        self.call.response(self.model, self.response_id, self.finish_reasons)
        self.call.usage(usage)
        self.call.finish(error)


class SyncStreamProxy(wrapt.ObjectProxy):
    def __init__(self, wrapped: Any, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self.__wrapped__)
        except StopIteration:
            self._self_state.finish()
            raise
        except BaseException as exc:
            self._self_state.finish(exc)
            raise
        self._self_state.observe(item)
        return item

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc)
        finally:
            self._self_state.finish(exc[1] if exc and isinstance(exc[1], Exception) else None)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish()

    def __del__(self) -> None:
        self._self_state.finish()


class AsyncStreamProxy(wrapt.ObjectProxy):
    def __init__(self, wrapped: Any, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_state.finish()
            raise
        except BaseException as exc:
            self._self_state.finish(exc)
            raise
        self._self_state.observe(item)
        return item

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc)
        finally:
            self._self_state.finish(exc[1] if exc and isinstance(exc[1], Exception) else None)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_state.finish()

    def __del__(self) -> None:
        self._self_state.finish()


class RawStreamResponseProxy(wrapt.ObjectProxy):
    """``with_raw_response.create(stream=True)``: the stream comes out of ``parse()``; proxy it there.

    ``parse()`` is cached by the SDK, so every call hands back the same stream proxy. A raw response
    dropped without ever being parsed still ends its span.
    """

    def __init__(self, wrapped: Any, state: StreamState, proxy: type) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_proxy_type = proxy
        self._self_proxies: dict[int, Any] = {}

    def _proxy(self, stream: Any) -> Any:
        found = self._self_proxies.get(id(stream))
        if found is None:
            found = self._self_proxies[id(stream)] = self._self_proxy_type(stream, self._self_state)
        return found

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        if inspect.isawaitable(parsed):

            async def later() -> Any:
                return self._proxy(await parsed)

            return later()
        return self._proxy(parsed)

    def __del__(self) -> None:
        if not self._self_proxies:
            self._self_state.finish()


def is_raw(result: Any) -> bool:
    """A ``with_raw_response`` result (legacy or new-style), not the parsed object.

    The class is asked first: on a parsed response (a pydantic model) a missing attribute goes
    through the model's ``__getattr__`` and raises, which costs microseconds on every call.
    """
    return hasattr(type(result), "parse") and hasattr(result, "http_response")


def messages_text(messages: Any) -> str:
    """Concatenated text of request messages, for a local input estimate."""
    if isinstance(messages, str):
        return messages
    parts: list[str] = []
    for message in messages or ():
        content = get(message, "content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(get(block, "text") or "") for block in content)
    return "\n".join(parts)
