"""``POST /api/v1/budgets/reserve`` and ``/settle``: the guard's reserve mode over HTTP.

The estimate is the collector's own price of the call's maximum usage (the input the guard counted,
its cache reads and writes, and ``max_output_tokens`` of output) through the same ``Pricer`` and
chargeback the ledger uses, so tiers, cache rates and the price book apply as they will to the
real call. Holding and settling are ``budget.reserve``'s; this module only validates and answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from llmcost_collector.budget.reserve import (
    CallScope,
    Estimate,
    Granted,
    Refused,
    Reservations,
    UnknownReservation,
)
from llmcost_collector.config.budgets import Enforcement
from llmcost_collector.model import Attribution, LlmCall, Usage
from llmcost_collector.money import format_usd, usd_to_nanos
from llmcost_collector.periods import epoch_ns

TOKENS = Field(0, ge=0, le=10**9)


class ReserveScope(BaseModel):
    """The call's attribution, as its spans will carry it ("" = not set)."""

    model_config = ConfigDict(extra="forbid")
    team: str = Field("", max_length=128)
    environment: str = Field("", max_length=128)
    feature: str = Field("", max_length=128)
    user_tier: str = Field("", max_length=128)
    user_id: str = Field("", max_length=256)
    service_name: str = Field(
        "", max_length=256, description="the service's service.name (attribution rules)"
    )


class ReserveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: ReserveScope = Field(default_factory=ReserveScope)
    provider: str = Field(min_length=1, max_length=100, description="gen_ai.provider.name, e.g. openai")
    model: str = Field(min_length=1, max_length=200, description="the request's model")
    input_tokens: int = Field(0, ge=0, le=10**9, description="uncached input tokens (the guard's estimate)")
    cache_read_tokens: int = TOKENS
    cache_write_tokens: int = TOKENS
    max_output_tokens: int = Field(
        ge=0, le=10**9, description="the request's max tokens: output is priced at this"
    )
    ttl_seconds: float | None = Field(
        None, gt=0, le=86_400, description="default: enforcement.reservation_ttl_seconds"
    )
    trace_id: str = Field(
        "", pattern=r"^([0-9a-f]{32})?$", description="the call span's trace id, if started"
    )
    span_id: str = Field("", pattern=r"^([0-9a-f]{16})?$", description="the call span's span id, if started")


class SettleUsage(BaseModel):
    """What the call used, as its span reports it (input uncached, output including reasoning)."""

    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=200, description="the request's model")
    response_model: str = Field("", max_length=200)
    input_tokens: int = TOKENS
    cache_read_tokens: int = TOKENS
    cache_write_tokens: int = TOKENS
    output_tokens: int = TOKENS
    reasoning_tokens: int = TOKENS


class SettleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reservation_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    scope: ReserveScope = Field(default_factory=ReserveScope, description="as reserved (prices the charge)")
    outcome: Literal["success", "error", "cancelled", "partial"]
    usage: SettleUsage | None = Field(None, description="absent: nothing known, the hold is released")
    trace_id: str = Field("", pattern=r"^([0-9a-f]{32})?$", description="the call span's trace id")
    span_id: str = Field("", pattern=r"^([0-9a-f]{16})?$", description="the call span's span id")


def budgets_router(
    reservations: Reservations,
    estimate: Callable[[LlmCall], Estimate],
    enforcement: Callable[[], Enforcement],
    scrub_user: Callable[[str], str],
    attribute: Callable[[ReserveScope], tuple[str, str]],
    clock: Callable[[], datetime],
    answered: Callable[[str], None] = lambda _result: None,
    dependencies: Sequence[Any] = (),
) -> APIRouter:
    """The guard's reserve and settle routes; ``dependencies`` check who may call them."""
    router = APIRouter(tags=["budgets"], dependencies=list(dependencies))

    def call_of(provider: str, model: str, response_model: str, usage: Usage, scope: CallScope) -> LlmCall:
        now_ns = epoch_ns(clock())
        attribution = Attribution(
            team=scope.team, feature=scope.feature, user_id=scope.user_id, user_tier=scope.user_tier,
            environment=scope.environment,
        )  # fmt: skip
        return LlmCall(
            "0" * 32, "0" * 16, now_ns, now_ns, provider, "chat", model, response_model, usage, attribution
        )

    def scope_of(scope: ReserveScope) -> CallScope:
        """The scope as the ledger will attribute the call: team and feature through the
        collector's attribution rules (a service matched by ``service.name``), the user id as the
        privacy section stores it."""
        team, feature = attribute(scope)
        return CallScope(
            team=team, environment=scope.environment, feature=feature, user_tier=scope.user_tier,
            user_id=scrub_user(scope.user_id) if scope.user_id else "",
        )  # fmt: skip

    @router.post(
        "/api/v1/budgets/reserve",
        summary="Reserve a call's maximum cost against every hard-limit budget of its scope",
        description="Granted (200) only if, for each hard-limit budget in scope, the ledger's spend "
        "this period + outstanding reservations + this call's maximum cost (priced by the collector: "
        "input, cache reads and writes, `max_output_tokens` of output) stay within the amount; "
        "otherwise 409 with the budget, limit, spend and reservations. An unpriced model reserves "
        "`enforcement.unpriced_ceiling_usd`, or is refused (409, reason `unpriced`) without one. "
        "Settle it with `/api/v1/budgets/settle`; unsettled, it expires (a counted leak).",
        responses={
            409: {"description": "Refused: over a hard limit, or an unpriced model without a ceiling"}
        },
    )
    def reserve(body: ReserveRequest) -> Any:
        settings = enforcement()
        usage = Usage(
            input_tokens=body.input_tokens, cache_read_tokens=body.cache_read_tokens,
            cache_write_tokens=body.cache_write_tokens, output_tokens=body.max_output_tokens,
        )  # fmt: skip
        scope = scope_of(body.scope)
        cost = estimate(call_of(body.provider, body.model, "", usage, scope))
        ceiling = (
            None if settings.unpriced_ceiling_usd is None else usd_to_nanos(settings.unpriced_ceiling_usd)
        )
        ttl = body.ttl_seconds or settings.reservation_ttl_seconds
        answer = reservations.reserve(
            scope, cost, ceiling_nanos=ceiling, ttl_ns=int(ttl * 1e9),
            trace_id=body.trace_id, span_id=body.span_id,
        )  # fmt: skip
        if isinstance(answer, Refused):
            answered("unpriced" if answer.reason == "unpriced" else "refused")
            return JSONResponse(_refusal(answer, body), status_code=409)
        answered("granted")
        return _granted(answer, cost)

    @router.post(
        "/api/v1/budgets/settle",
        summary="End a reservation after the call: success, error, cancelled or partial",
        description="With the call's usage and span ids, its actual cost stays held only until the "
        "span reaches the ledger (then the ledger counts it, never both); without them the hold is "
        "released at once; an unpriced model's ceiling stays held to the end of the budget's period. "
        "`state` is `settled`, `released`, `unpriced`, or `expired` (too late: already a leak). "
        "404 for an unknown reservation.",
        responses={404: {"description": "No such reservation"}},
    )
    def settle(body: SettleRequest) -> Any:
        actual = None
        if body.usage is not None:
            u = body.usage
            usage = Usage(
                input_tokens=u.input_tokens, cache_read_tokens=u.cache_read_tokens,
                cache_write_tokens=u.cache_write_tokens, output_tokens=u.output_tokens,
                reasoning_tokens=u.reasoning_tokens,
            )  # fmt: skip
            actual = estimate(call_of(u.provider, u.model, u.response_model, usage, scope_of(body.scope)))
        try:
            done = reservations.settle(
                body.reservation_id, body.outcome, actual, trace_id=body.trace_id, span_id=body.span_id,
                hold_ns=int(enforcement().reservation_ttl_seconds * 1e9),
            )  # fmt: skip
        except UnknownReservation:
            return JSONResponse({"error": f"no reservation {body.reservation_id}"}, status_code=404)
        return {
            "reservation_id": done.reservation_id,
            "state": done.state,
            "held_usd": format_usd(done.held_nanos),
        }

    return router


def _granted(answer: Granted, cost: Estimate) -> dict[str, Any]:
    return {
        "granted": True,
        "reservation_id": answer.reservation_id,
        "expires_at": datetime.fromtimestamp(answer.expires_at_ns / 1e9, timezone.utc).isoformat(),
        "priced": cost.priced,
        "holds": [
            {
                "budget": h.budget.name,
                "scope": h.budget.scope.describe(),
                "amount_usd": format_usd(h.amount_nanos),
            }
            for h in answer.holds
        ],
    }


def _refusal(refused: Refused, body: ReserveRequest) -> dict[str, Any]:
    budget = refused.budget
    scope = {k: v for k, v in body.scope.model_dump().items() if v}
    who = ", ".join(f"{k}={v}" for k, v in sorted(scope.items())) or "organisation"
    name = budget.name if budget else "?"
    if refused.reason == "unpriced":
        message = (
            f"model {body.provider}/{body.model} has no price and no enforcement.unpriced_ceiling_usd is "
            f"set: refused under hard budget {name!r} for scope {who}"
        )
    else:
        message = (
            f"budget {name!r} ({budget.scope.describe() if budget else '?'}, {budget.period if budget else '?'}) "
            f"exceeded: spent ${format_usd(refused.spent_nanos)} + reserved ${format_usd(refused.reserved_nanos)} "
            f"+ this call up to ${format_usd(refused.estimate_nanos)} over limit "
            f"${format_usd(refused.limit_nanos)} for scope {who}"
        )
    return {
        "granted": False,
        "reason": refused.reason,
        "error": message,
        "budget": name,
        "scope": budget.scope.describe() if budget else "",
        "period": budget.period if budget else "",
        "basis": budget.basis if budget else "",
        "limit_usd": format_usd(refused.limit_nanos),
        "spent_usd": format_usd(refused.spent_nanos),
        "reserved_usd": format_usd(refused.reserved_nanos),
        "estimate_usd": format_usd(refused.estimate_nanos),
    }
