"""Budget status, exact from the ledger: what each configured budget has spent this period."""

from llmcost_collector.budget.status import BudgetStatus, UserSpend, budget_status, period_of, status_json

__all__ = ["BudgetStatus", "UserSpend", "budget_status", "period_of", "status_json"]
