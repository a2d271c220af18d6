"""The records that flow through the collector: one normalized LLM call, its usage and its cost.

Everything downstream of the OTLP decoder (pricing, ledger, metrics, invoices) speaks these
types only, so a new dialect or a new ledger backend never touches the others.

Money is integer nano-dollars everywhere (see ``llmcost_collector.money``), never a float.

The records are treated as immutable once built; they are plain (not frozen) slotted dataclasses
only because frozen ones cost a microsecond more to construct on the ingest hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Status of a call's pricing.
PRICED = "priced"
UNPRICED = "unpriced"  # model unknown: tokens stored, cost NULL, re-priceable by `llmcost reprice`

# Where the team of a row came from (recorded per row, for audit).
TEAM_FROM_SPAN = "span"
TEAM_FROM_RULE = "rule"
TEAM_FROM_DEFAULT = "default"
TEAM_OVERRIDDEN = "overridden"
UNATTRIBUTED_TEAM = "unattributed"

# The operation of a business-outcome record (``record_outcome``): it is counted as an outcome,
# never as a provider call, so it moves no request, token or cost counter.
OUTCOME_OPERATION = "outcome"


@dataclass(slots=True)
class Usage:
    """Canonical token usage of one call.

    Token classes are disjoint, except that ``reasoning_tokens`` is part of ``output_tokens``
    and the audio counts are parts of their side. ``input_tokens`` is *uncached* input only, so
    ``total_input_tokens`` = input + cache read + cache write, which is what OTel's
    ``gen_ai.usage.input_tokens`` reports and what Anthropic's own ``input_tokens`` does not.
    """

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0  # all cache writes; ``cache_write_1h_tokens`` of them at the 1h TTL
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    estimated: bool = False  # counted locally, not reported by the provider

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def cache_write_5m_tokens(self) -> int:
        return self.cache_write_tokens - self.cache_write_1h_tokens

    @property
    def total_tokens(self) -> int:
        return self.total_input_tokens + self.output_tokens


@dataclass(slots=True)
class Attribution:
    """Who and what a call is charged to. ``team`` is never empty after attribution rules ran."""

    team: str = ""
    feature: str = ""
    use_case: str = ""
    user_id: str = ""
    user_tier: str = ""
    session_id: str = ""
    session_name: str = ""
    session_path: str = ""
    environment: str = ""
    service_name: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    team_source: str = TEAM_FROM_SPAN


@dataclass(slots=True)
class LlmCall:
    """One LLM call, as read from one span of whichever dialect produced it."""

    trace_id: str  # 32 lowercase hex chars
    span_id: str  # 16 lowercase hex chars
    start_time_ns: int
    end_time_ns: int
    provider: str
    operation: str
    request_model: str
    response_model: str
    usage: Usage
    attribution: Attribution
    status: str = "ok"  # ok | error
    error_type: str = ""
    cache_hit: bool = False  # served from the response cache: no provider call was made
    cache_lookup: bool = False  # looked in the response cache (hit or miss): hit rate = hits / lookups
    outcome: str = ""
    outcome_count: int = 0
    server_address: str = ""
    dialect: str = "otel"  # otel | otel-deprecated | openllmetry | openinference | openlit | litellm
    # How the ledger recognises other spans of the same provider call (``ledger/dedupe.py``).
    response_id: str = ""  # the provider's id of the response, "" when the span has none
    call_id: str = ""  # otel_llmcost's llmcost.call.id: one SDK call another tracer traced
    parent_span_id: str = ""  # 16 hex chars, "" for a root span

    @property
    def is_outcome_record(self) -> bool:
        """A business outcome (``record_outcome``), not an LLM call."""
        return self.operation == OUTCOME_OPERATION

    @property
    def model(self) -> str:
        """The model actually billed: the response model when the provider reported one."""
        return self.response_model or self.request_model


@dataclass(slots=True)
class Cost:
    """Cost layers of one call, kept apart as FOCUS does.

    ``list_nanos`` is the public list price; ``contracted_nanos`` is what the org actually pays
    after its price book (negotiated rates, discounts); chargeback (markups, fees) is computed
    from the contracted cost by the chargeback rules and stored beside it in the ledger.
    ``None`` amounts mean unpriced, never zero.
    """

    status: str  # PRICED | UNPRICED
    list_nanos: int | None
    contracted_nanos: int | None
    price_source: str = ""  # "genai-prices" | "price-book" | ""
    price_id: str = ""  # e.g. "openai/gpt-4o-mini" or "price-book:acme-openai-2026"
    price_effective_from: str = ""  # ISO date the applied price took effect
    reason: str = ""  # why unpriced

    @staticmethod
    def unpriced(reason: str) -> Cost:
        return Cost(status=UNPRICED, list_nanos=None, contracted_nanos=None, reason=reason)


@dataclass(slots=True)
class SpanView:
    """The parts of one decoded OTLP span the collector needs, independent of wire encoding.

    Attribute values are plain Python values (str, int, float, bool, bytes, list, dict), as the
    OTLP ``AnyValue`` carried them. ``status_code`` uses OTLP numbering: 0 unset, 1 ok, 2 error.
    """

    trace_id: str
    span_id: str
    name: str
    start_time_ns: int
    end_time_ns: int
    attributes: dict[str, object]
    resource: dict[str, object]
    status_code: int = 0
    status_message: str = ""
    scope_name: str = ""
    parent_span_id: str = ""  # 16 lowercase hex chars; "" for a root span


@dataclass(slots=True)
class DecodedExport:
    """One OTLP export as the receivers hand it to the pipeline: LLM spans and what was not."""

    spans: list[SpanView] = field(default_factory=list)
    skipped: int = 0  # spans that are not LLM calls
    invalid: list[str] = field(default_factory=list)  # reasons for spans rejected at decode time
