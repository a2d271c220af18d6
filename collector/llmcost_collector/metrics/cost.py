"""Prometheus metrics of the collector (names and labels listed in docs/reference.md).

Counters move only for rows the ledger newly inserted, so a retried export never inflates them.
Per batch, increments are first summed per label set and then applied once each: a batch of
512 calls from a handful of teams touches a handful of children, not 512 x 8.
Ledger-derived gauges (period-to-date spend, budgets) are in ``metrics.gauges``.

Series are bounded twice: each label by its cap (``metrics.labels``), and the label sets by a
budget, ``max_label_sets`` distinct (team, feature, environment, provider, model) sets: past it a
new set is counted in the one set whose five labels are all ``__other__`` (``on_collapsed`` counts
it), so ``llmcost_cost_usd`` has at most budget + 1 series, ``llmcost_tokens`` five times that and
``llmcost_requests`` twice, however many teams times features times models arrive.

A response-cache hit consumed no tokens: it moves the request, hit, lookup and savings counters
and never the token counter (its span carries the original usage only so the saving can be priced).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from llmcost_collector.metrics.labels import OTHER, LabelCaps
from llmcost_collector.model import Cost, LlmCall
from llmcost_collector.money import nanos_to_float_usd

COST_LABELS = ("team", "feature", "environment", "provider", "model")
TOKEN_TYPES = ("input", "cache_read", "cache_write", "output", "reasoning")  # disjoint classes
ALL_OTHER = (OTHER,) * len(COST_LABELS)
DEFAULT_MAX_LABEL_SETS = 10_000
SESSION_COST_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 100)


@dataclass(slots=True)
class BilledCall:
    """A newly ledgered call with the amounts the metrics need."""

    call: LlmCall
    cost: Cost
    chargeback_nanos: int | None
    savings_nanos: int = 0  # response-cache savings: what the call would have cost
    prompt_cache_savings_nanos: int = 0  # prompt-cache reads at the read rate instead of the input rate


class CostMetrics:
    """The contract's cost, token, request and outcome counters plus the session histogram."""

    def __init__(
        self,
        registry: CollectorRegistry,
        caps: LabelCaps,
        *,
        max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
        on_collapsed: Callable[[], None] | None = None,
    ) -> None:
        self.caps = caps
        self.max_label_sets = max_label_sets  # a reload may change it; admitted sets stay
        self._on_collapsed = on_collapsed
        self._capped: dict[tuple[str, ...], tuple[str, ...]] = {}  # raw label values -> exported ones
        self._sets: set[tuple[str, ...]] = {ALL_OTHER}  # label sets exported so far
        self.cost = Counter(
            "llmcost_cost_usd", "Provider cost at contracted rates, USD.", COST_LABELS, registry=registry
        )
        self.chargeback = Counter(
            "llmcost_chargeback_usd",
            "Amount billed to teams (markups and fees included), USD.",
            ("team", "feature", "environment"),
            registry=registry,
        )
        self.tokens = Counter(
            "llmcost_tokens",
            "Tokens by disjoint class: input (uncached), cache_read, cache_write, "
            "output (excluding reasoning), reasoning.",
            (*COST_LABELS, "token_type"),
            registry=registry,
        )
        self.requests = Counter(
            "llmcost_requests", "LLM calls by outcome.", (*COST_LABELS, "status"), registry=registry
        )
        self.unpriced = Counter(
            "llmcost_unpriced_requests",
            "Calls whose model has no known price: stored, not priced, re-priceable later.",
            ("provider", "model"),
            registry=registry,
        )
        self.cache_hits = Counter(
            "llmcost_cache_hits", "Cache hits.", ("team", "feature", "kind"), registry=registry
        )
        self.cache_savings = Counter(
            "llmcost_cache_savings_usd",
            "What caches saved, USD: response-cache hits in full, prompt-cache reads at the read rate.",
            ("team", "feature", "kind"),
            registry=registry,
        )
        self.cache_lookups = Counter(
            "llmcost_cache_lookups",
            "Response-cache lookups (hits and misses): hit rate = hits / lookups.",
            ("team", "feature"),
            registry=registry,
        )
        self.outcomes = Counter(
            "llmcost_outcomes", "Business outcomes for value-based chargeback.", ("team", "outcome"),
            registry=registry,
        )  # fmt: skip
        self.session_cost = Histogram(
            "llmcost_session_cost_usd",
            "Total cost of a finished session (workflow), USD, by session name.",
            ("session_name",),
            buckets=SESSION_COST_BUCKETS,
            registry=registry,
        )

    def forget_label_values(self) -> None:
        """Drop the memo of capped label values, after the caps or allow-lists changed."""
        self._capped = {}

    def record(self, billed: Iterable[BilledCall]) -> None:
        """Add a batch of newly ledgered calls.

        Two passes: per call, integer sums go into one small list per raw label set (a batch has a
        handful of them); then, per label set, the labels are capped and each counter child is
        incremented once. Money stays integer nano-dollars until that last step.
        """
        sums: dict[tuple[str, ...], list[int]] = {}
        outcomes: dict[tuple[str, str], int] = defaultdict(int)
        for item in billed:
            call = item.call
            attribution = call.attribution
            if call.is_outcome_record:  # an outcome, not a provider call: no request, token or cost
                outcomes[(attribution.team, call.outcome)] += call.outcome_count or 1
                continue
            usage = call.usage
            raw = (attribution.team, attribution.feature, attribution.environment, call.provider, call.model)
            row = sums.get(raw)
            if row is None:
                row = sums[raw] = [0] * _SUM_FIELDS
            row[_ERRORS if call.status == "error" else _OK] += 1
            if not call.cache_hit:  # a hit's usage is the original call's, not consumed again
                row[_INPUT] += usage.input_tokens
                row[_CACHE_READ] += usage.cache_read_tokens
                row[_CACHE_WRITE] += usage.cache_write_tokens
                row[_OUTPUT] += usage.output_tokens - usage.reasoning_tokens
                row[_REASONING] += usage.reasoning_tokens
            contracted = item.cost.contracted_nanos
            if contracted is None:
                row[_UNPRICED] += 1
            else:
                row[_PRICED] += 1
                row[_COST] += contracted
            if item.chargeback_nanos is not None:
                row[_CHARGED] += 1
                row[_CHARGEBACK] += item.chargeback_nanos
            if call.cache_lookup:
                row[_LOOKUPS] += 1
            if call.cache_hit:
                row[_RESPONSE_HITS] += 1
                row[_SAVINGS] += item.savings_nanos
            elif usage.cache_read_tokens:
                row[_PROMPT_HITS] += 1
                row[_PROMPT_SAVINGS] += item.prompt_cache_savings_nanos
            if call.outcome:
                outcomes[(attribution.team, call.outcome)] += call.outcome_count or 1
        self._apply(sums, outcomes)

    def _labels(self, raw: tuple[str, ...]) -> tuple[str, ...]:
        key = self._capped.get(raw)
        if key is None:
            cap = self.caps.value
            key = tuple(cap(label, value) for label, value in zip(COST_LABELS, raw, strict=True))
            if key not in self._sets:
                if len(self._sets) <= self.max_label_sets:  # the all-__other__ set is the extra one
                    self._sets.add(key)
                else:
                    key = ALL_OTHER
                    if self._on_collapsed is not None:
                        self._on_collapsed()
            if len(self._capped) < 100_000:
                self._capped[raw] = key
        return key

    def _apply(self, sums: dict[tuple[str, ...], list[int]], outcomes: dict[tuple[str, str], int]) -> None:
        # Several raw label sets may share capped labels (``__other__``): merge before incrementing.
        merged: dict[tuple[str, ...], list[int]] = {}
        for raw, row in sums.items():
            key = self._labels(raw)
            held = merged.get(key)
            if held is None:
                merged[key] = row
            else:
                merged[key] = [a + b for a, b in zip(held, row, strict=True)]
        by_team_feature: dict[tuple[str, ...], list[int]] = {}
        for key, row in merged.items():
            team, feature, environment, provider, model = key
            for status, count in (("ok", row[_OK]), ("error", row[_ERRORS])):
                if count:
                    self.requests.labels(*key, status).inc(count)
            for kind, index in _TOKEN_FIELDS:
                if row[index]:
                    self.tokens.labels(*key, kind).inc(row[index])
            if row[_PRICED]:
                self.cost.labels(*key).inc(nanos_to_float_usd(row[_COST]))
            if row[_UNPRICED]:
                self.unpriced.labels(provider, model).inc(row[_UNPRICED])
            if row[_CHARGED]:
                self.chargeback.labels(team, feature, environment).inc(nanos_to_float_usd(row[_CHARGEBACK]))
            totals = by_team_feature.setdefault((team, feature), [0, 0, 0, 0, 0])
            for i, index in enumerate((_RESPONSE_HITS, _SAVINGS, _PROMPT_HITS, _PROMPT_SAVINGS, _LOOKUPS)):
                totals[i] += row[index]
        for (team, feature), (hits, savings, prompt_hits, prompt_savings, lookups) in by_team_feature.items():
            if lookups:
                self.cache_lookups.labels(team, feature).inc(lookups)
            if hits:
                self.cache_hits.labels(team, feature, "response").inc(hits)
            if savings:
                self.cache_savings.labels(team, feature, "response").inc(nanos_to_float_usd(savings))
            if prompt_hits:
                self.cache_hits.labels(team, feature, "prompt_cache").inc(prompt_hits)
            if prompt_savings:
                self.cache_savings.labels(team, feature, "prompt_cache").inc(
                    nanos_to_float_usd(prompt_savings)
                )
        cap = self.caps.value
        for (team, outcome), count in outcomes.items():
            self.outcomes.labels(cap("team", team), cap("outcome", outcome)).inc(count)


# Per-label-set sums in ``CostMetrics.record`` (indexes into one list of integers).
(
    _OK, _ERRORS, _INPUT, _CACHE_READ, _CACHE_WRITE, _OUTPUT, _REASONING, _PRICED, _COST, _UNPRICED, _CHARGED,
    _CHARGEBACK, _RESPONSE_HITS, _SAVINGS, _PROMPT_HITS, _PROMPT_SAVINGS, _LOOKUPS,
) = range(17)  # fmt: skip
_SUM_FIELDS = 17
_TOKEN_FIELDS = (
    ("input", _INPUT), ("cache_read", _CACHE_READ), ("cache_write", _CACHE_WRITE), ("output", _OUTPUT),
    ("reasoning", _REASONING),
)  # fmt: skip
