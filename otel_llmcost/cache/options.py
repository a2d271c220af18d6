"""When the response cache is in force, and how: ``with otel_llmcost.cache(ttl=...)``, the per-call
``llmcost_cache=`` option, and the process defaults (``configure_cache`` / environment).

Scopes are a contextvar, so they follow asyncio tasks; inner scopes and per-call options override
outer ones field by field.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, TypeVar

from .backends import Backend, MemoryBackend, backend_from_url

F = TypeVar("F", bound=Callable[..., Any])
Scope = Literal["team", "team+user"]
SCOPES = ("team", "team+user")
URL_ENV = "OTEL_LLMCOST_CACHE_URL"
SCOPE_ENV = "OTEL_LLMCOST_CACHE_SCOPE"
DEFAULT_TTL_S = 86400.0


@dataclass(frozen=True)
class CacheOptions:
    """One lookup's settings. ``backend`` None = the process default (``configure_cache``);
    ``scope`` None = the configured namespace (team, or team + user)."""

    enabled: bool = True
    ttl_s: float = DEFAULT_TTL_S
    backend: Backend | None = None
    scope: Scope | None = None
    bucket: str = ""  # callers wanting variety spread one request over several entries
    force: bool = False  # cache even non-deterministic requests (temperature > 0, n > 1, tools)
    streams: bool = True  # cache streams (replayed chunk for chunk when complete with usage)

    def merged(self, override: Mapping[str, Any]) -> CacheOptions:
        return replace(self, **{k: v for k, v in override.items() if v is not None})


# The lookup of a call being sent by an SDK that traces itself: the processor stamps its span.
CACHE_LOOKUP: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "llmcost_cache_lookup", default=None
)
_SCOPE: contextvars.ContextVar[CacheOptions | None] = contextvars.ContextVar("llmcost_cache", default=None)
_OPTION_NAMES = {f.name for f in fields(CacheOptions)}


def _given(ttl: float | None, **values: Any) -> dict[str, Any]:
    if ttl is not None:
        if ttl <= 0:
            raise ValueError("cache ttl must be > 0 seconds")
        values["ttl_s"] = float(ttl)
    if values.get("scope") is not None and values["scope"] not in SCOPES:
        raise ValueError(f"cache scope must be one of {SCOPES}, not {values['scope']!r}")
    if values.get("bucket") is not None:
        values["bucket"] = str(values["bucket"])
    return values


class cache:
    """Answer identical, deterministic LLM requests made inside from the response cache.

    ``with otel_llmcost.cache(ttl=86400):`` (or as a decorator of sync and async functions). A hit
    returns the SDK's own object type, makes no provider request and is billed $0; its avoided cost
    is counted as savings. ``bucket`` keeps separate entries for the same request (variety);
    ``force`` caches requests that sample (temperature > 0, ``n`` > 1, tools); ``enabled=False``
    turns an outer scope off. Per call: ``create(..., llmcost_cache=True | False | {"ttl": ...})``.
    """

    def __init__(
        self,
        ttl: float | None = None,
        *,
        backend: Backend | None = None,
        scope: Scope | None = None,
        bucket: str | int | None = None,
        force: bool | None = None,
        streams: bool | None = None,
        enabled: bool = True,
    ) -> None:
        self.values = _given(
            ttl, backend=backend, scope=scope, bucket=bucket, force=force, streams=streams, enabled=enabled
        )
        self._tokens: list[contextvars.Token[CacheOptions | None]] = []

    def __enter__(self) -> cache:
        outer = _SCOPE.get() or CacheOptions()
        self._tokens.append(_SCOPE.set(outer.merged(self.values)))
        return self

    def __exit__(self, *exc: object) -> None:
        _SCOPE.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        values = self.values
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with cache(**_as_arguments(values)):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with cache(**_as_arguments(values)):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _as_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "ttl_s" in out:
        out["ttl"] = out.pop("ttl_s")
    return out


def call_options(option: Any) -> CacheOptions | None:
    """The options in force for one call: the scope's, overridden by its ``llmcost_cache=``."""
    current = _SCOPE.get()
    if option is None:
        return current if current is not None and current.enabled else None
    base = current or CacheOptions()
    if option is True:
        found = replace(base, enabled=True)
    elif option is False:
        return None
    elif isinstance(option, CacheOptions):
        found = option
    elif isinstance(option, Mapping):
        values = dict(option)
        unknown = set(values) - _OPTION_NAMES - {"ttl"}
        if unknown:
            raise TypeError(f"llmcost_cache: unknown options {sorted(unknown)}")
        found = base.merged(_given(values.pop("ttl", None), **{"enabled": True, **values}))
    else:
        raise TypeError("llmcost_cache= takes True, False, a dict of cache() options or CacheOptions")
    return found if found.enabled else None


# --- process defaults ---------------------------------------------------------------------------

_defaults_lock = threading.Lock()
_default_backend: Backend | None = None
_default_scope: Scope | None = None


def configure_cache(backend: Backend | str | None = None, scope: Scope | None = None) -> None:
    """Process-wide defaults: the backend (object or URL, see ``backend_from_url``) and the tenant
    namespace, ``"team"`` (default) or ``"team+user"`` (users never share an answer either).
    Unset, they come from ``OTEL_LLMCOST_CACHE_URL`` and ``OTEL_LLMCOST_CACHE_SCOPE``."""
    global _default_backend, _default_scope
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"cache scope must be one of {SCOPES}, not {scope!r}")
    with _defaults_lock:
        _default_backend = backend_from_url(backend) if isinstance(backend, str) else backend
        _default_scope = scope


def default_backend() -> Backend:
    global _default_backend
    found = _default_backend
    if found is None:
        with _defaults_lock:
            if _default_backend is None:
                url = os.environ.get(URL_ENV)
                _default_backend = backend_from_url(url) if url else MemoryBackend()
            found = _default_backend
    return found


def default_scope() -> Scope:
    if _default_scope is not None:
        return _default_scope
    env = os.environ.get(SCOPE_ENV, "team")
    return env if env in SCOPES else "team"  # type: ignore[return-value]
