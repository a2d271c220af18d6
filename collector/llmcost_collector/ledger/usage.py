"""Daily usage lines: what invoices, FOCUS exports and reports read instead of single calls.

A ``UsageLine`` is the sum of every call of one UTC day that shares the money dimensions below.
Token classes are disjoint, as in the metrics: ``input_tokens`` is uncached input and
``output_tokens`` excludes reasoning, so adding every class gives the call's total once.
Outcome records (``record_outcome``) are not requests: they only add to ``outcome_count``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# The money dimensions a usage line is keyed by, after its day. ``model`` is the billed model
# (the response model when the provider reported one, else the requested one).
DIMENSIONS = (
    "team", "team_source", "feature", "use_case", "environment", "service_name", "provider", "model",
    "user_tier", "status", "price_status", "outcome", "currency",
)  # fmt: skip

# Summed measures, in the order ``UsageLine`` declares them. The rollup tables were created with
# ``MEASURES_V3`` (migrations 3 and 6 build exactly those); later ones are added by their migration.
MEASURES_V3 = (
    "requests", "errors", "unpriced", "outcome_count", "cache_hits", "estimated",
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens",
    "reasoning_tokens", "input_audio_tokens", "output_audio_tokens",
    "list_nanos", "contracted_nanos", "chargeback_nanos", "savings_nanos",
)  # fmt: skip
MEASURES_V9 = ("cache_lookups", "prompt_cache_savings_nanos")
MEASURES = MEASURES_V3 + MEASURES_V9


@dataclass(frozen=True, slots=True)
class UsageLine:
    """Totals of one UTC day and one combination of ``DIMENSIONS``.

    Money is integer nano-dollars; an unpriced call adds 0 to the cost sums and 1 to ``unpriced``
    (its ``price_status`` dimension says so too), so a line is never silently $0.
    """

    day: date
    team: str
    team_source: str
    feature: str
    use_case: str
    environment: str
    service_name: str
    provider: str
    model: str
    user_tier: str
    status: str
    price_status: str
    outcome: str
    currency: str
    requests: int  # LLM calls (outcome records excluded)
    errors: int  # calls whose status is error
    unpriced: int
    outcome_count: int
    cache_hits: int  # calls answered from a response cache (cost 0, savings recorded)
    estimated: int  # calls whose usage was estimated locally
    input_tokens: int  # uncached input
    cache_read_tokens: int
    cache_write_tokens: int  # all cache writes, cache_write_1h_tokens of them at the 1h TTL
    cache_write_1h_tokens: int
    output_tokens: int  # excluding reasoning
    reasoning_tokens: int
    input_audio_tokens: int
    output_audio_tokens: int
    list_nanos: int
    contracted_nanos: int
    chargeback_nanos: int
    savings_nanos: int  # response cache: what its hits would have cost when they were served
    cache_lookups: int = 0  # calls that looked in the response cache (hits and misses)
    prompt_cache_savings_nanos: int = 0  # provider prompt cache: cached tokens at the read rate vs input

    @property
    def total_input_tokens(self) -> int:
        """Input including cache reads and writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_output_tokens(self) -> int:
        """Output including reasoning."""
        return self.output_tokens + self.reasoning_tokens
