"""One call's trip through the response cache, as the instrumentors use it.

``plan()`` decides (options in force, raw responses, determinism) and computes the key;
``Plan.load()`` asks the backend; a hit is rebuilt with the SDK's own pydantic types from the
stored JSON (a stream as a replay of its chunk objects); a miss stores the answer once it is
complete: a plain response at once, a stream only when it ran to its end with the provider's
usage in it, so a replay is the same chunk sequence, usage included.

Every backend error is a miss (logged, then the backend rests a few seconds), never a failed call.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import wrapt

from .. import attributes as a
from ..context import current_attribution, env_defaults
from .backends import Backend
from .key import cache_key, canonical_body, nondeterministic, raw_response
from .options import CACHE_LOOKUP, CacheOptions, call_options, default_backend, default_scope

log = logging.getLogger(__name__)
OPTION = "llmcost_cache"  # the per-call keyword, removed before the SDK sees the request
FORMAT = 1
REST_AFTER_FAILURE_S = 5.0


@dataclass(frozen=True)
class SdkTypes:
    """Where a response and its stream items are defined (``module:name``), and when a recorded
    stream is complete enough to replay."""

    response: str
    chunk: str | None
    complete: Callable[[list[dict[str, Any]]], bool] | None = None


def _openai_chat_complete(chunks: list[dict[str, Any]]) -> bool:
    return bool(chunks) and chunks[-1].get("usage") is not None


def _responses_complete(events: list[dict[str, Any]]) -> bool:
    return any(
        e.get("type") == "response.completed" and (e.get("response") or {}).get("usage") for e in events
    )


def _anthropic_complete(events: list[dict[str, Any]]) -> bool:
    kinds = [e.get("type") for e in events]
    return (
        bool(kinds)
        and kinds[0] == "message_start"
        and "message_delta" in kinds
        and kinds[-1] == "message_stop"
    )


TYPES = {
    ("openai", "chat"): SdkTypes("openai.types.chat:ChatCompletion", "openai.types.chat:ChatCompletionChunk",
                                 _openai_chat_complete),
    ("openai", "responses"): SdkTypes("openai.types.responses:Response",
                                      "openai.types.responses:ResponseStreamEvent", _responses_complete),
    ("openai", "embeddings"): SdkTypes("openai.types:CreateEmbeddingResponse", None),
    ("anthropic", "messages"): SdkTypes("anthropic.types:Message", "anthropic.types:RawMessageStreamEvent",
                                        _anthropic_complete),
}  # fmt: skip

_adapters: dict[str, Any] = {}


def _adapter(path: str) -> Any:
    """A pydantic TypeAdapter of an SDK type (models and the event unions alike), built once."""
    found = _adapters.get(path)
    if found is None:
        from pydantic import TypeAdapter

        module, name = path.split(":")
        found = _adapters[path] = TypeAdapter(getattr(importlib.import_module(module), name))
    return found


def _dump(obj: Any) -> Any:
    return obj.model_dump(mode="json", warnings=False)


class _Rests:
    """Backends that failed lately are skipped for a while: a dead Redis costs one timeout, not one per call."""

    def __init__(self) -> None:
        self._until: dict[int, float] = {}
        self._lock = threading.Lock()

    def resting(self, backend: Backend) -> bool:
        until = self._until.get(id(backend))
        return until is not None and time.monotonic() < until

    def failed(self, backend: Backend, what: str, error: Exception) -> None:
        with self._lock:
            first = not self.resting(backend)
            self._until[id(backend)] = time.monotonic() + REST_AFTER_FAILURE_S
        if first:
            log.warning("response cache %s failed (%s: %s): calls go to the provider", what,
                        type(error).__name__, error)  # fmt: skip


RESTS = _Rests()


def namespace(scope: str, attribution: Mapping[str, str]) -> str:
    """The tenant part of a key: the team (or team and user) the call is charged to."""
    team = attribution.get(a.TEAM, "")
    if scope == "team+user":
        return json.dumps([team, attribution.get(a.USER_ID, "")])
    return json.dumps([team])


@dataclass
class Plan:
    """One cacheable call: its key, and after ``load()`` the hit (if any)."""

    options: CacheOptions
    backend: Backend
    key: str
    types: SdkTypes
    stream: bool
    outcome: str = "miss"
    age_s: float = 0.0
    hit: Any = field(default=None, repr=False)  # the rebuilt response, or its list of chunks

    def load(self) -> bool:
        """True on a hit (then ``replay()``); a backend error is a miss."""
        if RESTS.resting(self.backend):
            return False
        try:
            raw = self.backend.get(self.key)
        except Exception as exc:
            RESTS.failed(self.backend, "lookup", exc)
            return False
        if raw is None:
            return False
        try:
            entry = json.loads(raw)
            age = time.time() - float(entry["at"])
            if (
                entry.get("v") != FORMAT
                or bool(entry.get("stream")) != self.stream
                or age > self.options.ttl_s
            ):
                return False  # another format, or older than this scope accepts
            self.hit = self._rebuild(entry["data"])
        except Exception as exc:  # damaged, or no longer fits the installed SDK's types: a miss
            log.debug("cached response not usable (%s): treated as a miss", exc)
            return False
        self.age_s, self.outcome = max(0.0, age), "hit"
        return True

    def attributes(self) -> dict[str, Any]:
        if self.outcome == "hit":
            return {a.CACHE_LOOKUP: "hit", a.CACHE_HIT: True, a.CACHE_AGE_S: round(self.age_s, 3)}
        return {a.CACHE_LOOKUP: "miss"}

    def _rebuild(self, data: Any) -> Any:
        """The stored JSON as the SDK returns it: its response type, or its chunk objects in order."""
        if not self.stream:
            return _adapter(self.types.response).validate_python(data)
        assert self.types.chunk is not None
        adapter = _adapter(self.types.chunk)
        return [adapter.validate_python(item) for item in data]

    def save(self, data: Any) -> None:
        if RESTS.resting(self.backend):
            return
        try:
            value = json.dumps({"v": FORMAT, "at": time.time(), "stream": self.stream, "data": data},
                               separators=(",", ":")).encode()  # fmt: skip
            self.backend.set(self.key, value, self.options.ttl_s)
        except Exception as exc:
            RESTS.failed(self.backend, "store", exc)

    def keep(self, result: Any, is_async: bool) -> Any:
        """On a miss: store a plain response now, or hand back a stream that stores itself."""
        if not self.stream:
            try:
                self.save(_dump(result))
            except Exception as exc:  # not an SDK model: nothing to keep
                log.debug("response not cached: %s", exc)
            return result
        return (AsyncRecorder if is_async else SyncRecorder)(result, self)

    def recorded(self, chunks: list[dict[str, Any]]) -> None:
        complete = self.types.complete
        if complete is not None and complete(chunks):
            self.save(chunks)


@contextlib.contextmanager
def looked_up(cached: Plan | None) -> Iterator[None]:
    """While an SDK that traces itself sends the request: its span gets the lookup (the processor)."""
    if cached is None:
        yield
        return
    token = CACHE_LOOKUP.set(cached.outcome)
    try:
        yield
    finally:
        CACHE_LOOKUP.reset(token)


def plan(
    sdk: str, operation: str, provider: str, host: str, port: int | None, kwargs: dict[str, Any]
) -> Plan | None:
    """The cache plan of a call about to be sent, or None (no cache in force, or bypassed).

    Removes the per-call ``llmcost_cache`` keyword from ``kwargs`` in any case.
    """
    options = call_options(kwargs.pop(OPTION, None))
    if options is None:
        return None
    types = TYPES.get((sdk, operation))
    stream = kwargs.get("stream") is True
    if types is None or raw_response(kwargs) or (stream and (not options.streams or types.chunk is None)):
        return None
    body = canonical_body(operation, kwargs)
    if not options.force and nondeterministic(operation, body):
        return None
    attribution = {**env_defaults(), **current_attribution()}
    endpoint = f"{operation}@{host}:{port or ''}"
    key = cache_key(
        namespace(options.scope or default_scope(), attribution), provider, endpoint,
        str(kwargs.get("model", "")), options.bucket, body,
    )  # fmt: skip
    backend = options.backend if options.backend is not None else default_backend()
    return Plan(options, backend, key, types, stream)


# --- streams ------------------------------------------------------------------------------------


class ReplayStream:
    """A cached stream: the same chunk objects in the same order, iterable once, closable."""

    response = None  # no HTTP response behind a replay

    def __init__(self, chunks: list[Any]) -> None:
        self._chunks = iter(chunks)

    def __iter__(self) -> ReplayStream:
        return self

    def __next__(self) -> Any:
        return next(self._chunks)

    def __enter__(self) -> ReplayStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._chunks = iter(())


class AsyncReplayStream:
    response = None

    def __init__(self, chunks: list[Any]) -> None:
        self._chunks = iter(chunks)

    def __aiter__(self) -> AsyncReplayStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._chunks)
        except StopIteration:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> AsyncReplayStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._chunks = iter(())


def replay_stream(chunks: list[Any], is_async: bool) -> Any:
    return AsyncReplayStream(chunks) if is_async else ReplayStream(chunks)


class SyncRecorder(wrapt.ObjectProxy):
    """The SDK's stream, recording each chunk's JSON; stored when the stream reaches its end."""

    def __init__(self, wrapped: Any, plan: Plan) -> None:
        super().__init__(wrapped)
        self._self_plan = plan
        self._self_chunks: list[dict[str, Any]] | None = []

    def __iter__(self) -> SyncRecorder:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self.__wrapped__)
        except StopIteration:
            chunks, self._self_chunks = self._self_chunks, None
            if chunks is not None:
                self._self_plan.recorded(chunks)
            raise
        except BaseException:
            self._self_chunks = None  # a broken stream is never replayed
            raise
        if self._self_chunks is not None:
            try:
                self._self_chunks.append(_dump(item))
            except Exception:
                self._self_chunks = None
        return item

    def __enter__(self) -> SyncRecorder:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.__wrapped__.__exit__(*exc)


class AsyncRecorder(wrapt.ObjectProxy):
    def __init__(self, wrapped: Any, plan: Plan) -> None:
        super().__init__(wrapped)
        self._self_plan = plan
        self._self_chunks: list[dict[str, Any]] | None = []

    def __aiter__(self) -> AsyncRecorder:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            chunks, self._self_chunks = self._self_chunks, None
            if chunks is not None:
                self._self_plan.recorded(chunks)
            raise
        except BaseException:
            self._self_chunks = None
            raise
        if self._self_chunks is not None:
            try:
                self._self_chunks.append(_dump(item))
            except Exception:
                self._self_chunks = None
        return item

    async def __aenter__(self) -> AsyncRecorder:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc)
