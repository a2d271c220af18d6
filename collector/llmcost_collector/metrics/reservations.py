"""Counters of the guard's reserve mode: reservations answered, and reservations leaked.

A leak is a reservation that expired without being settled (a process that died mid-call, a
settlement that never arrived): it stopped holding budget at its expiry. Each is counted once, by
the replica that marked it, so the sum over replicas is exact. Labels are bounded: budget names
come from the configuration, results are a fixed set.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

RESULTS = ("granted", "refused", "unpriced")


class ReservationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.leaks = Counter(
            "llmcost_budget_reservation_leaks",
            "Budget reservations that expired unsettled, per budget.",
            ("budget",),
            registry=registry,
        )
        self.answers = Counter(
            "llmcost_budget_reservations",
            "Budget reservation requests answered: granted, refused (over a hard limit), unpriced "
            "(refused: no price and no ceiling).",
            ("result",),
            registry=registry,
        )
        for result in RESULTS:
            self.answers.labels(result)

    def leaked(self, budget: str, count: int) -> None:
        self.leaks.labels(budget).inc(count)
