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

    Usable as ``with attribute(team="marketing"):``, ``async with``-free in async code (a plain
    ``with`` works there too), or as a decorator on sync and async functions. Inner scopes
    override outer ones; session paths compose. ``**properties`` become
    ``llmcost.property.<name>``.
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
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

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
