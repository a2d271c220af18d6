"""Attribution context: who a block of code's LLM calls are charged to.

Values live in W3C Baggage on the OpenTelemetry context, which is a ``contextvars`` value: they
follow asyncio tasks automatically, propagate to downstream services through the standard
``baggage`` propagator (so a service called by ``checkout`` can charge ``checkout``'s team), and
incoming baggage extracted by any OTel server instrumentation is honoured. Thread pools do not
inherit context by themselves: submit ``contextvars.copy_context().run`` (or attach
``opentelemetry.context.get_current()`` in the worker) to carry attribution into them.

Privacy: baggage travels in HTTP headers to every instrumented downstream call, including the LLM
provider when an HTTP client instrumentation injects it. Keep ``user_id`` a pseudonymous id.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from opentelemetry import baggage, context

from .attributes import ATTRIBUTION_KEYS, ENV_DEFAULTS, PROPERTY_PREFIX, SESSION_PATH, STAMPED_KEYS

F = TypeVar("F", bound=Callable[..., Any])


def _join_path(parent: str, child: str) -> str:
    """Compose session paths: ``/analyze`` + ``/extract`` -> ``/analyze/extract``."""
    if not parent or child.startswith(parent + "/") or child == parent:
        return child if child.startswith("/") or not child else "/" + child
    return parent.rstrip("/") + "/" + child.lstrip("/")


class attribute:
    """Attribute the LLM calls made inside to a team, feature, user, session, ...

    Usable as ``with attribute(team="marketing"):`` (a plain ``with`` is right in async code too:
    the scope is a contextvar, private to the task) or as a decorator on sync and async functions
    and generators. Inner scopes override outer ones; session paths compose (``/analyze`` then
    ``/extract`` gives ``/analyze/extract``; a relative ``extract`` appends too, an absolute path
    that already starts with the outer one is kept as is). ``**properties`` become
    ``llmcost.property.<name>``. ``None`` values leave the outer value in force.

    The values are W3C Baggage entries named like the span attributes (``llmcost.team``,
    ``user.id``, ``session.id``, ...), so ``opentelemetry.propagate.inject`` carries them to
    downstream services, and a service that extracts and attaches incoming baggage (any OTel
    server instrumentation does) charges its own LLM calls to the caller's team.
    """

    def __init__(
        self,
        team: str | None = None,
        feature: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        session_name: str | None = None,
        session_path: str | None = None,
        environment: str | None = None,
        user_tier: str | None = None,
        use_case: str | None = None,
        **properties: object,
    ) -> None:
        given = {
            "team": team, "feature": feature, "user_id": user_id, "session_id": session_id,
            "session_name": session_name, "session_path": session_path, "environment": environment,
            "user_tier": user_tier, "use_case": use_case,
        }  # fmt: skip
        self.values: dict[str, str] = {ATTRIBUTION_KEYS[k]: str(v) for k, v in given.items() if v is not None}
        for name, value in properties.items():
            if value is not None:
                self.values[PROPERTY_PREFIX + name] = str(value)
        self._tokens: list[object] = []

    def __enter__(self) -> attribute:
        ctx = context.get_current()
        for key, value in self.values.items():
            if key == SESSION_PATH:
                parent = baggage.get_baggage(SESSION_PATH, ctx)
                value = _join_path(str(parent) if parent else "", value)
            ctx = baggage.set_baggage(key, value, ctx)
        self._tokens.append(context.attach(ctx))
        return self

    def __exit__(self, *exc: object) -> None:
        context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def _fresh(self) -> attribute:
        clone = attribute.__new__(attribute)
        clone.values = self.values
        clone._tokens = []
        return clone

    def __call__(self, func: F) -> F:
        """Decorate a function, coroutine function or (async) generator function.

        For generators the scope is entered around each resumption, so it applies to the code in
        the generator however the caller interleaves it with other work.
        """
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                agen = func(*args, **kwargs)
                sent: Any = None
                while True:
                    with self._fresh():
                        try:
                            item = await agen.asend(sent)
                        except StopAsyncIteration:
                            return
                    sent = yield item

            return async_gen_wrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                gen = func(*args, **kwargs)
                sent: Any = None
                while True:
                    with self._fresh():
                        try:
                            item = gen.send(sent)
                        except StopIteration as stop:
                            return stop.value
                    sent = yield item

            return gen_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def env_defaults(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Service-wide attribution from ``OTEL_LLMCOST_TEAM``, ``OTEL_LLMCOST_FEATURE``, ..."""
    environ = os.environ if environ is None else environ
    return {key: environ[name] for name, key in ENV_DEFAULTS.items() if environ.get(name)}


def current_attribution(ctx: context.Context | None = None) -> dict[str, str]:
    """The attribution in force (baggage of ``ctx`` or the current context)."""
    out = {}
    for key, value in baggage.get_all(ctx).items():
        if key in STAMPED_KEYS or key.startswith(PROPERTY_PREFIX):
            out[key] = str(value)
    return out
