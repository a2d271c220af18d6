"""A period's spend report as numbers, read from the ledger's rollups (never the calls, for whole
calendar months; other ranges read what ``SqlLedger.costs`` reads for them).

Every amount is integer nano-dollars of **contracted** cost (what the organisation pays), as in
``/api/v1/spend``'s ``cost_usd``. Nothing here divides or rounds: averages, shares and rates are
left to ``render``, which applies the one rounding rule.

* The tree: environment, then feature, by cost (``costs`` grouped by environment and feature).
* Users: ``costs`` grouped by user id and tier (the per-user rollup for whole months); a user who
  changed tier within the period is one user with both tiers.
* Cache: response-cache hits (calls answered from a cache, at no cost) per lookup (calls that
  looked in the cache), their savings, the share of input tokens read from the provider's prompt
  cache and what those reads saved (the read rate instead of the input rate).
* Sessions: runs and total per session name (``ledger/sessions.py``).
* Outcomes: per outcome name, how many were recorded and the cost of the calls of the (team,
  feature) scopes that recorded it: "cost per resolved ticket" is that cost over that count.
* User tiers: calls made for an identified user (``user_id`` set), per tier: users, calls, cost
  and outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmcost_collector.ledger import Ledger
from llmcost_collector.ledger.query import CostQuery, CostRow, Filter
from llmcost_collector.ledger.sessions import SessionQuery


@dataclass(frozen=True)
class Node:
    """An environment or a feature: its calls and cost, and its features when an environment."""

    name: str
    requests: int
    cost_nanos: int
    children: tuple[Node, ...] = ()
    unpriced: int = 0  # calls whose cost is missing from cost_nanos until re-priced


@dataclass(frozen=True)
class UserLine:
    user_id: str
    tiers: tuple[str, ...]
    requests: int
    cost_nanos: int
    cache_hits: int
    savings_nanos: int
    cache_lookups: int = 0
    unpriced: int = 0


@dataclass(frozen=True)
class Cache:
    requests: int
    hits: int  # calls answered from a response cache
    savings_nanos: int
    cache_read_tokens: int
    input_tokens: int  # all input consumed: uncached + cache reads + cache writes (hits consumed none)
    lookups: int = 0  # calls that looked in the response cache: hit rate = hits / lookups
    prompt_cache_savings_nanos: int = 0


@dataclass(frozen=True)
class SessionLine:
    session_name: str
    runs: int
    total_nanos: int
    unpriced: int = 0


@dataclass(frozen=True)
class OutcomeLine:
    outcome: str
    count: int
    cost_nanos: int  # the calls of the scopes that recorded the outcome
    unpriced: int = 0  # unpriced calls among them


@dataclass(frozen=True)
class TierLine:
    tier: str
    users: int
    requests: int
    cost_nanos: int
    outcomes: int
    unpriced: int = 0


@dataclass(frozen=True)
class Report:
    label: str
    start_ns: int
    end_ns: int
    requests: int
    errors: int
    unpriced: int
    cost_nanos: int
    list_nanos: int
    chargeback_nanos: int
    environments: tuple[Node, ...]
    top_users: tuple[UserLine, ...]
    cache: Cache
    sessions: tuple[SessionLine, ...]
    outcomes: tuple[OutcomeLine, ...]
    tiers: tuple[TierLine, ...]


def _by_cost(node: Node) -> tuple[int, int, str]:
    return (-node.cost_nanos, -node.requests, node.name)


def _tree(rows: list[CostRow]) -> tuple[Node, ...]:
    features: dict[str, list[Node]] = {}
    for row in rows:
        if row["requests"]:
            env = row.group["environment"]
            features.setdefault(env, []).append(
                Node(row.group["feature"], row["requests"], row["contracted_nanos"], unpriced=row["unpriced"])
            )
    envs = [
        Node(
            env,
            sum(f.requests for f in feats),
            sum(f.cost_nanos for f in feats),
            tuple(sorted(feats, key=_by_cost)),
            sum(f.unpriced for f in feats),
        )
        for env, feats in features.items()
    ]
    return tuple(sorted(envs, key=_by_cost))


def _users(rows: list[CostRow]) -> list[UserLine]:
    merged: dict[str, list] = {}
    for row in rows:
        user = row.group["user_id"]
        if not user or not row["requests"]:
            continue
        line = merged.setdefault(user, [set(), 0, 0, 0, 0, 0, 0])
        line[0].add(row.group["user_tier"])
        line[1] += row["requests"]
        line[2] += row["contracted_nanos"]
        line[3] += row["cache_hits"]
        line[4] += row["savings_nanos"]
        line[5] += row["cache_lookups"]
        line[6] += row["unpriced"]
    users = [UserLine(u, tuple(sorted(v[0])), *v[1:]) for u, v in merged.items()]
    return sorted(users, key=lambda u: (-u.cost_nanos, -u.requests, u.user_id))


def _tiers(rows: list[CostRow]) -> tuple[TierLine, ...]:
    tiers: dict[str, list] = {}
    for row in rows:
        if not row.group["user_id"]:
            continue
        line = tiers.setdefault(row.group["user_tier"], [set(), 0, 0, 0, 0])
        if row["requests"]:
            line[0].add(row.group["user_id"])
        line[1] += row["requests"]
        line[2] += row["contracted_nanos"]
        line[3] += row["outcome_count"]
        line[4] += row["unpriced"]
    out = [TierLine(t, len(v[0]), *v[1:]) for t, v in tiers.items() if v[1] or v[3]]
    return tuple(sorted(out, key=lambda t: (-t.cost_nanos, t.tier)))


def _outcomes(rows: list[CostRow]) -> tuple[OutcomeLine, ...]:
    scope_cost: dict[tuple[str, str], int] = {}
    scope_unpriced: dict[tuple[str, str], int] = {}
    recorded: dict[str, list] = {}
    for row in rows:
        scope = (row.group["team"], row.group["feature"])
        if row["requests"]:
            scope_cost[scope] = scope_cost.get(scope, 0) + row["contracted_nanos"]
            scope_unpriced[scope] = scope_unpriced.get(scope, 0) + row["unpriced"]
        if row.group["outcome"] and row["outcome_count"]:
            line = recorded.setdefault(row.group["outcome"], [0, set()])
            line[0] += row["outcome_count"]
            line[1].add(scope)
    out = [
        OutcomeLine(
            name,
            count,
            sum(scope_cost.get(s, 0) for s in scopes),
            sum(scope_unpriced.get(s, 0) for s in scopes),
        )
        for name, (count, scopes) in recorded.items()
    ]
    return tuple(sorted(out, key=lambda o: (-o.count, o.outcome)))


def build_report(
    ledger: Ledger,
    start_ns: int,
    end_ns: int,
    *,
    label: str = "",
    top: int = 5,
    filters: tuple[Filter, ...] = (),
) -> Report:
    """The report of the calls that started in ``[start_ns, end_ns)``; ``top`` users; with
    ``filters`` (a team-scoped reader's teams), of the matching calls only."""
    tree_rows = ledger.costs(CostQuery(start_ns, end_ns, ("environment", "feature"), filters))
    user_rows = ledger.costs(CostQuery(start_ns, end_ns, ("user_id", "user_tier"), filters))
    outcome_rows = ledger.costs(CostQuery(start_ns, end_ns, ("team", "feature", "outcome"), filters))
    sessions = ledger.session_summary(SessionQuery(start_ns, end_ns, filters))

    def total(measure: str) -> int:
        return sum(row[measure] for row in tree_rows)

    return Report(
        label=label,
        start_ns=start_ns,
        end_ns=end_ns,
        requests=total("requests"),
        errors=total("errors"),
        unpriced=total("unpriced"),
        cost_nanos=total("contracted_nanos"),
        list_nanos=total("list_nanos"),
        chargeback_nanos=total("chargeback_nanos"),
        environments=_tree(tree_rows),
        top_users=tuple(_users(user_rows)[:top]),
        cache=Cache(
            requests=total("requests"),
            hits=total("cache_hits"),
            savings_nanos=total("savings_nanos"),
            cache_read_tokens=total("cache_read_tokens"),
            input_tokens=total("input_tokens") + total("cache_read_tokens") + total("cache_write_tokens"),
            lookups=total("cache_lookups"),
            prompt_cache_savings_nanos=total("prompt_cache_savings_nanos"),
        ),
        sessions=tuple(SessionLine(s.session_name, s.runs, s.total_nanos, s.unpriced) for s in sessions),
        outcomes=_outcomes(outcome_rows),
        tiers=_tiers(user_rows),
    )
