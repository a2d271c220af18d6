"""Budget enforcement before the provider call, opt-in: ``otel_llmcost.guard(url)``.

Two modes. *Cached* (the default) checks an in-memory copy of the budget status; *reserve*
(``mode="reserve"``) asks the collector, before each instrumented provider call, to reserve the
call's maximum cost, and settles the reservation when the call ends (success, error, cancellation,
a stream closed early). A reservation is granted only while spend + outstanding reservations +
this call's maximum stay within every hard limit of its scope, atomically on the collector's
ledger database, so concurrent calls on any number of processes never overshoot a cap while each
call's real cost stays within its estimate (the input is counted locally; output is priced at the
request's max tokens); beyond that, by what the calls in flight cost over their estimates.

Cached mode: a daemon thread reads the collector's ``GET /api/v1/budgets/status`` every
``refresh_seconds``; ``check()`` compares the call's scope with the last answer in memory, so it
adds no network latency. Overshoot is bounded by what is spent between two refreshes (plus the
calls already in flight): a budget is refused from the first refresh that sees it spent. When
the collector cannot be read, ``fail_closed`` decides: refuse every call in the scope of a hard
limit, or let calls through (the default). Only the standard library is used.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, overload

from opentelemetry import trace

from . import attributes as a
from .context import current_attribution, env_defaults

__all__ = ["BudgetExceededError", "BudgetGuard", "Reservation", "ReserveGuard", "guard"]

log = logging.getLogger(__name__)
STATUS_PATH = "/api/v1/budgets/status"
# Scope keys of the reserve API -> the attribution keys that carry them.
_SCOPE_KEYS = {"team": a.TEAM, "environment": a.ENVIRONMENT, "feature": a.FEATURE, "user_tier": a.USER_TIER,
               "user_id": a.USER_ID}  # fmt: skip

# Scope keys of the status API -> the attribution (baggage) keys that carry them.
_BAGGAGE = {"team": "llmcost.team", "feature": "llmcost.feature", "user_tier": "llmcost.user_tier"}


class BudgetExceededError(RuntimeError):
    """A call refused before it left the process: its scope is over a hard budget limit."""

    def __init__(
        self, budget: Mapping[str, Any], scope: Mapping[str, str], spent: str, message: str | None = None
    ) -> None:
        self.budget = dict(budget)
        self.scope = dict(scope)
        self.limit_usd = str(budget.get("amount_usd", "?"))
        self.spent_usd = spent
        super().__init__(
            message
            or f"budget {budget['budget']!r} ({budget['scope']}, {budget['period']}) exceeded: "
            f"spent ${spent} of limit ${budget['amount_usd']} for scope "
            + ", ".join(f"{k}={v}" for k, v in sorted(scope.items()))
        )


def _auth_headers(token: str | None) -> dict[str, str]:
    """The collector's access token, when it requires one (a read token for the status, an
    ingest token for reservations)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


class BudgetGuard:
    def __init__(
        self,
        status_url: str,
        *,
        refresh_seconds: float = 5.0,
        fail_closed: bool = False,
        token: str | None = None,
    ) -> None:
        self._url = status_url
        self._headers = _auth_headers(token)
        self._interval = refresh_seconds
        self._fail_closed = fail_closed
        self._budgets: list[dict[str, Any]] | None = None
        self._failed = False
        self._stop = threading.Event()
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="otel-llmcost-guard", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        """Read the status now (the background thread calls this every ``refresh_seconds``)."""
        try:
            request = urllib.request.Request(self._url, headers=self._headers)
            with urllib.request.urlopen(request, timeout=5) as response:
                budgets = [b for b in json.loads(response.read())["budgets"] if b.get("hard_limit")]
        except (OSError, ValueError, KeyError):
            self._failed = True
            return
        self._budgets, self._failed = budgets, False

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()

    def close(self) -> None:
        """Stop refreshing; instrumented calls are no longer checked against this guard."""
        global _active_cached
        if _active_cached is self:
            _active_cached = None
        self._stop.set()

    def check(self, **scope: str) -> None:
        """Raise ``BudgetExceededError`` if the call's scope (``team``, ``feature``,
        ``environment``, ``user_tier``, ``user_id``; default: the current attribution) is over
        a hard limit."""
        attribution = current_attribution()
        for key, name in {**_BAGGAGE, "user_id": "user.id"}.items():
            if key not in scope and name in attribution:
                scope[key] = attribution[name]
        budgets = self._budgets
        if budgets is None or self._failed:
            if self._fail_closed:
                raise BudgetExceededError(
                    {"budget": "?", "scope": "collector unreachable", "period": "-", "amount_usd": "?"},
                    scope,
                    "?",
                )
            return
        for budget in budgets:
            filters = budget.get("scope_filters", {})
            if any(scope.get(k) != v for k, v in filters.items()):
                continue
            if budget.get("per_user"):
                over = {u["user_id"]: u["spent_usd"] for u in budget.get("users_over", [])}
                if scope.get("user_id") in over:
                    raise BudgetExceededError(budget, scope, over[scope["user_id"]])
            elif budget.get("state") == "exceeded":
                raise BudgetExceededError(budget, scope, budget["spent_usd"])


def call_scope(**scope: str) -> dict[str, str]:
    """The call's scope for the reserve API: given keys, else the attribution in force (baggage,
    then the ``OTEL_LLMCOST_*`` service defaults)."""
    attribution = {**env_defaults(), **current_attribution()}
    out = {key: attribution[name] for key, name in _SCOPE_KEYS.items() if attribution.get(name)}
    out.update({k: v for k, v in scope.items() if v})
    return out


class Reservation:
    """One call's hold on the collector; ``settle`` ends it (once; later calls do nothing).

    A reservation without an id holds nothing: no hard limit applies to the scope, or the
    collector could not be reached and the guard fails open.
    """

    def __init__(
        self, guard: ReserveGuard | None, body: Mapping[str, Any], reservation_id: str | None
    ) -> None:
        self._guard = guard
        self._body = body
        self.reservation_id = reservation_id
        self.settled: str | None = None
        self.attached = False  # handed to an SDK's own span, which settles it as it ends

    def settle(
        self, outcome: str, usage: Mapping[str, int] | None = None, *, response_model: str = "",
        trace_id: str = "", span_id: str = "",
    ) -> None:  # fmt: skip
        """``outcome``: success, error, cancelled or partial; ``usage`` in the collector's terms
        (disjoint: ``input_tokens`` uncached, ``cache_read_tokens``, ``cache_write_tokens``,
        ``output_tokens``). Sent in the background: the caller never waits for it."""
        if self.settled is not None:
            return
        self.settled = outcome
        if self._guard is None or self.reservation_id is None:
            return
        body: dict[str, Any] = {
            "reservation_id": self.reservation_id, "outcome": outcome, "scope": self._body["scope"],
            "trace_id": trace_id, "span_id": span_id,
        }  # fmt: skip
        if usage is not None:
            body["usage"] = {
                "provider": self._body["provider"], "model": self._body["model"],
                "response_model": response_model, **usage,
            }  # fmt: skip
        self._guard.send_settlement(body)

    def settle_span(self, attributes: Mapping[str, Any], error: BaseException | None, span: Any) -> None:
        """Settle from a finished call span's attributes (what the instrumentors call)."""
        total_in = int(attributes.get(a.GEN_AI_USAGE_INPUT_TOKENS, 0) or 0)
        cache_read = int(attributes.get(a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0) or 0)
        cache_write = int(attributes.get(a.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, 0) or 0)
        has_usage = a.GEN_AI_USAGE_INPUT_TOKENS in attributes or a.GEN_AI_USAGE_OUTPUT_TOKENS in attributes
        usage = (
            {"input_tokens": max(0, total_in - cache_read - cache_write), "cache_read_tokens": cache_read,
             "cache_write_tokens": cache_write,
             "output_tokens": int(attributes.get(a.GEN_AI_USAGE_OUTPUT_TOKENS, 0) or 0),
             "reasoning_tokens": int(attributes.get(a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, 0) or 0)}
            if has_usage else None
        )  # fmt: skip
        if error is not None:
            outcome = "error" if isinstance(error, Exception) else "cancelled"
        else:
            outcome = "partial" if attributes.get(a.USAGE_ESTIMATED) else "success"
        context = span.get_span_context()
        self.settle(
            outcome, usage, response_model=str(attributes.get(a.GEN_AI_RESPONSE_MODEL, "")),
            trace_id=format(context.trace_id, "032x") if context.is_valid else "",
            span_id=format(context.span_id, "016x") if context.is_valid else "",
        )  # fmt: skip


class ReserveGuard:
    """Reserve mode: instrumented calls reserve before they are sent and settle when they end.

    Settlements go out on one background thread in the order calls ended (``flush`` waits for
    them). A settlement that cannot be delivered leaves the reservation to expire on the
    collector (counted there as a leak). Only the standard library is used.
    """

    def __init__(
        self, url: str, *, fail_closed: bool = False, default_max_tokens: int = 4096,
        ttl_seconds: float | None = None, timeout: float = 5.0, token: str | None = None,
    ) -> None:  # fmt: skip
        base = url[: -len(STATUS_PATH)] if url.endswith(STATUS_PATH) else url
        self._headers = {"content-type": "application/json", **_auth_headers(token)}
        self._base = base.rstrip("/")
        self._fail_closed = fail_closed
        self.default_max_tokens = default_max_tokens
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._send, name="otel-llmcost-settle", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def _post(self, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self._base + path, data=json.dumps(body).encode(), method="POST",
            headers=self._headers,
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            try:
                return err.code, json.loads(err.read())
            except ValueError:
                return err.code, {}

    def reserve(
        self, *, provider: str, model: str, input_tokens: int, max_output_tokens: int | None = None,
        cache_read_tokens: int = 0, cache_write_tokens: int = 0, span: Any = None, **scope: str,
    ) -> Reservation:  # fmt: skip
        """Reserve one call's maximum cost, or raise ``BudgetExceededError`` (over a hard limit,
        an unpriced model without a ceiling, or an unreachable collector when failing closed).

        ``span``, the call's span (started, not ended), lets the collector stop counting the hold
        as soon as that span is in the ledger, before the settlement arrives."""
        body: dict[str, Any] = {
            "scope": call_scope(**scope), "provider": provider or "openai", "model": model,
            "input_tokens": input_tokens, "cache_read_tokens": cache_read_tokens,
            "cache_write_tokens": cache_write_tokens,
            "max_output_tokens": self.default_max_tokens if max_output_tokens is None else max_output_tokens,
        }  # fmt: skip
        if self._ttl is not None:
            body["ttl_seconds"] = self._ttl
        service = _service_name(span)
        if service and "service_name" not in body["scope"]:
            body["scope"]["service_name"] = service
        if span is not None and span.get_span_context().is_valid:
            context = span.get_span_context()
            body["trace_id"], body["span_id"] = (
                format(context.trace_id, "032x"),
                format(context.span_id, "016x"),
            )
        try:
            status, answer = self._post("/api/v1/budgets/reserve", body)
        except (OSError, ValueError) as exc:
            status, answer = 0, {"error": str(exc)}
        if status == 200:
            return Reservation(self, body, answer.get("reservation_id") if answer.get("holds") else None)
        if status == 409:
            budget = {"budget": answer.get("budget", "?"), "scope": answer.get("scope", ""),
                      "period": answer.get("period", ""), "amount_usd": answer.get("limit_usd", "?")}  # fmt: skip
            raise BudgetExceededError(
                budget, body["scope"], answer.get("spent_usd", "?"), answer.get("error")
            )
        # unreachable, or an answer that is no decision (5xx, 400): the configured failure mode
        if self._fail_closed:
            raise BudgetExceededError(
                {"budget": "?", "scope": "collector unreachable", "period": "-", "amount_usd": "?"},
                body["scope"], "?",
                f"budget reservation failed (collector unreachable or refused: {status or answer.get('error')}); "
                "failing closed for scope " + ", ".join(f"{k}={v}" for k, v in sorted(body["scope"].items())),
            )  # fmt: skip
        log.warning("budget reservation failed (%s): failing open", status or answer.get("error"))
        return Reservation(None, body, None)

    def send_settlement(self, body: dict[str, Any]) -> None:
        self._queue.put(body)

    def _send(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if body is None:
                    return
                self._post("/api/v1/budgets/settle", body)
            except Exception as exc:  # the reservation expires on the collector: a counted leak
                log.warning("budget settlement failed: %s", exc)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every settlement queued so far was sent."""
        if self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Stop reserving for instrumented calls; send what is queued."""
        global _active
        if _active is self:
            _active = None
        self.flush()
        self._queue.put(None)
        atexit.unregister(self.flush)


_active: ReserveGuard | None = None
# The cached-mode guard instrumented calls are checked against (the last one started).
_active_cached: BudgetGuard | None = None


def check_budget() -> None:
    """Cached mode, automatic: every instrumented SDK call runs the running guard's ``check``
    for the attribution in force before it is sent, so an over-limit scope gets
    ``BudgetExceededError`` before any request leaves the process. It reads the last status in
    memory: no added latency."""
    cached = _active_cached
    if cached is not None:
        cached.check()


def _service_name(span: Any) -> str:
    """The service's ``service.name`` (the collector's attribution rules match on it): from the
    call span's resource, else the global tracer provider's."""
    resource = getattr(span, "resource", None) or getattr(trace.get_tracer_provider(), "resource", None)
    value = getattr(resource, "attributes", {}).get("service.name") if resource is not None else None
    return str(value) if value else ""


# The reservation of a call our instrumentor lets an SDK trace itself, while the SDK runs.
REQUEST_HOLD: ContextVar[Reservation | None] = ContextVar("llmcost_request_hold", default=None)


@contextmanager
def holding(hold: Reservation | None) -> Iterator[None]:
    """Offer ``hold`` to the GenAI span an SDK starts inside this block (``AttributionSpanProcessor``
    calls ``settle_on_end``); settle it here if no such span took it."""
    if hold is None:
        yield
        return
    token = REQUEST_HOLD.set(hold)
    try:
        yield
    except BaseException as exc:
        if not hold.attached:
            hold.settle("error" if isinstance(exc, Exception) else "cancelled")
        raise
    else:
        if not hold.attached:
            hold.settle("success")  # nothing traced the call: no usage known, the hold is released
    finally:
        REQUEST_HOLD.reset(token)


def settle_on_end(span: Any, hold: Reservation) -> None:
    """Make an SDK's own call span (still open) settle ``hold`` right after it ends, from its
    attributes: only that span's ``end`` is wrapped. The SDK ends its span while handling the
    call's exception, so the exception is at hand."""
    hold.attached = True
    end = span.end

    def ending(end_time: int | None = None) -> None:
        error = sys.exc_info()[1]
        end(end_time)
        try:
            attrs = span.attributes or {}
            failed = error is not None and (a.ERROR_TYPE in attrs or not isinstance(error, Exception))
            hold.settle_span(attrs, error if failed else None, span)
        except Exception:  # accounting must never break the caller's call
            pass

    span.end = ending


def active_reserve_guard() -> ReserveGuard | None:
    """The reserve-mode guard instrumented calls go through, if one is running."""
    return _active


@overload
def guard(
    url: str,
    *,
    mode: Literal["cached"] = "cached",
    refresh_seconds: float = 5.0,
    fail_closed: bool = False,
    token: str | None = None,
) -> BudgetGuard: ...


@overload
def guard(
    url: str,
    *,
    mode: Literal["reserve"],
    fail_closed: bool = False,
    default_max_tokens: int = 4096,
    ttl_seconds: float | None = None,
    token: str | None = None,
) -> ReserveGuard: ...


def guard(
    url: str, *, mode: Literal["cached", "reserve"] = "cached", refresh_seconds: float = 5.0,
    fail_closed: bool = False, default_max_tokens: int = 4096, ttl_seconds: float | None = None,
    token: str | None = None,
) -> BudgetGuard | ReserveGuard:  # fmt: skip
    """Start a budget guard on the collector (its status URL, or the API port's base URL).

    ``mode="cached"``: every call made through the instrumented SDKs is checked against the last
    status read (refreshed every ``refresh_seconds``) before it is sent; ``.check()`` does the
    same by hand for other SDKs (``BudgetGuard``).
    ``mode="reserve"``: every call made through the instrumented SDKs reserves its maximum cost
    before it is sent (``default_max_tokens`` when the request sets none) and settles when it
    ends; ``.close()`` stops it (``ReserveGuard``). ``fail_closed`` refuses calls when the
    collector cannot be reached; by default they go through. ``token``: the collector's access
    token when it requires one (cached mode reads the status: a ``read`` token, which a team's
    token limits to that team's budgets; reserve mode: an ``ingest`` token).
    """
    if mode == "reserve":
        global _active
        reserve = ReserveGuard(
            url, fail_closed=fail_closed, default_max_tokens=default_max_tokens, ttl_seconds=ttl_seconds,
            token=token,
        )  # fmt: skip
        _active = reserve
        return reserve
    if mode != "cached":
        raise ValueError(f"guard mode must be 'cached' or 'reserve', not {mode!r}")
    global _active_cached
    cached = BudgetGuard(url, refresh_seconds=refresh_seconds, fail_closed=fail_closed, token=token)
    _active_cached = cached
    return cached
