"""Budget enforcement before the provider call, opt-in: ``otel_llmcost.guard(url)``.

Cached mode: a daemon thread reads the collector's ``GET /api/v1/budgets/status`` every
``refresh_seconds``; ``check()`` compares the call's scope with the last answer in memory, so it
adds no network latency. Overshoot is bounded by what is spent between two refreshes (plus the
calls already in flight): a budget is refused from the first refresh that sees it spent. When
the collector cannot be read, ``fail_closed`` decides: refuse every call in the scope of a hard
limit, or let calls through (the default). Only the standard library is used.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

from .context import current_attribution

__all__ = ["BudgetExceededError", "BudgetGuard", "guard"]

# Scope keys of the status API -> the attribution (baggage) keys that carry them.
_BAGGAGE = {"team": "llmcost.team", "feature": "llmcost.feature", "user_tier": "llmcost.user_tier"}


class BudgetExceededError(RuntimeError):
    """A call refused before it left the process: its scope is over a hard budget limit."""

    def __init__(self, budget: Mapping[str, Any], scope: Mapping[str, str], spent: str) -> None:
        self.budget = dict(budget)
        self.scope = dict(scope)
        super().__init__(
            f"budget {budget['budget']!r} ({budget['scope']}, {budget['period']}) exceeded: "
            f"spent ${spent} of limit ${budget['amount_usd']} for scope "
            + ", ".join(f"{k}={v}" for k, v in sorted(scope.items()))
        )


class BudgetGuard:
    def __init__(self, status_url: str, *, refresh_seconds: float = 5.0, fail_closed: bool = False) -> None:
        self._url = status_url
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
            with urllib.request.urlopen(self._url, timeout=5) as response:
                budgets = [b for b in json.loads(response.read())["budgets"] if b.get("hard_limit")]
        except (OSError, ValueError, KeyError):
            self._failed = True
            return
        self._budgets, self._failed = budgets, False

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()

    def close(self) -> None:
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


def guard(status_url: str, *, refresh_seconds: float = 5.0, fail_closed: bool = False) -> BudgetGuard:
    """Start a cached-mode guard on the collector's budget status API; call ``.check()``
    before each provider call."""
    return BudgetGuard(status_url, refresh_seconds=refresh_seconds, fail_closed=fail_closed)
