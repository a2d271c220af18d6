"""Calls the client gave up on after sending them: providers bill what they consumed.

A call abandoned after its request went out (a client timeout, a cancelled task, a connection cut
mid-answer) reports no usage, yet the provider processed the prompt and bills it. Such a call gets
an offline estimate of its prompt (``otel_llmcost.estimate``), flagged ``llmcost.usage.estimated``.
A provider error answer (``APIStatusError``: 4xx/5xx with a body) consumed nothing and a
connection that never opened sent nothing: those stay at zero tokens.

Our instrumentors estimate on their own spans. For a call somebody else traces (the SDK's own
span in recent ``anthropic`` releases, or another instrumentation that wrapped the method first:
openai-v2, OpenLLMetry, OpenLIT, OpenInference), the instrumentor only sets ``TRACED_ELSEWHERE``
(the input estimate and a fresh call id) while the call runs, and ``AttributionSpanProcessor``
hands both to every
GenAI span that starts meanwhile: the estimate is added as such a span ends if the call was
abandoned after sending (``estimate_on_end``), and the shared ``llmcost.call.id`` lets the
collector bill two such spans of one call once when they share no trace and not both a response
id (a timeout before any answer; a stream span recorded without outputs).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import StatusCode

from . import attributes as a

# Transport errors raised before the request reached the provider (no connection, no free pooled
# connection): nothing was sent. By class name, in the exception and those it was raised from,
# since the SDKs wrap them (httpx for openai, httpx2 for anthropic).
NOT_SENT_ERRORS = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol"})
# Errors of a request that was sent and then given up on: a read that timed out, a connection the
# server cut mid-answer.
SENT_ERRORS = frozenset({"APITimeoutError", "APIConnectionError", "ReadTimeout", "WriteTimeout",
                         "RemoteProtocolError", "ReadError", "WriteError", "TimeoutException"})  # fmt: skip


@dataclass(frozen=True)
class TracedElsewhere:
    """The SDK call our instrumentor lets another tracer trace: its input estimate and call id."""

    estimate: Callable[[], int]
    call_id: str


TRACED_ELSEWHERE: ContextVar[TracedElsewhere | None] = ContextVar("llmcost_traced_elsewhere", default=None)
# Usage keys of the dialects in the field: a span that has one was not left without usage.
USAGE_KEYS = (a.GEN_AI_USAGE_INPUT_TOKENS, "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens",
              "llm.token_count.prompt")  # fmt: skip


def _causes(error: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def abandoned_after_sending(error: BaseException) -> bool:
    """Whether a failed call was given up on by the client after its request went out.

    Cancellation (``CancelledError``, ``KeyboardInterrupt``, which are no ``Exception``) is taken
    as abandoning a request in flight; an error answer or a connection never opened is not.
    """
    if not isinstance(error, Exception):
        return True
    names = {cls.__name__ for cause in _causes(error) for cls in type(cause).__mro__}
    if "APIStatusError" in names or names & NOT_SENT_ERRORS:
        return False
    return bool(names & SENT_ERRORS)


def estimated_prompt(input_tokens: int) -> dict[str, Any]:
    """The usage attributes of an abandoned call: its estimated prompt, no output received."""
    return {
        a.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        a.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
        a.USAGE_ESTIMATED: True,
    }


@contextmanager
def request_estimate(estimate: Callable[[], int], call_id: str | None = None) -> Iterator[str]:
    """Offer ``estimate`` and a call id (``call_id``, or a new one; yielded) to the GenAI spans
    another tracer starts inside this block: one SDK call, or a later part of it (a stream's
    ``__enter__``, where the request is sent) entered again with the same id."""
    call = TracedElsewhere(estimate, call_id or uuid.uuid4().hex)
    token = TRACED_ELSEWHERE.set(call)
    try:
        yield call.call_id
    finally:
        TRACED_ELSEWHERE.reset(token)


def failed(span: Any, error: BaseException) -> bool:
    """Whether ``span`` is ending for ``error``: it says so (``error.type``, an error status or an
    exception event, as each instrumentation records it), or the call was cancelled."""
    if not isinstance(error, Exception) or a.ERROR_TYPE in (span.attributes or {}):
        return True
    status = getattr(span, "status", None)
    if status is not None and status.status_code is StatusCode.ERROR:
        return True
    return any(event.name == "exception" for event in getattr(span, "events", ()) or ())


def estimate_on_end(span: Any, estimate: Callable[[], int]) -> None:
    """Make ``span`` (an SDK span, still open) take the estimate when it ends abandoned.

    The SDK ends its span while handling the call's exception, so the exception is at hand; the
    span is still writable then, which no span processor hook offers (``on_end`` gets a read-only
    copy). Only the span's own ``end`` is wrapped, for this span alone.
    """
    end = span.end

    def ending(end_time: int | None = None) -> None:
        try:
            error = sys.exc_info()[1]
            attrs = span.attributes or {}
            if (
                error is not None
                and span.is_recording()
                and not any(key in attrs for key in USAGE_KEYS)
                and failed(span, error)
                and abandoned_after_sending(error)
            ):
                span.set_attributes(estimated_prompt(estimate()))
        except Exception:  # accounting must never break the caller's call
            pass
        end(end_time)

    span.end = ending
