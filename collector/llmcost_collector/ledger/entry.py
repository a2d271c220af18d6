"""One ledger row: a priced LLM call flattened into columns.

The row keeps every token class, every cost layer, every attribution field and the pricing
provenance, so invoices, FOCUS exports, tiered markups and re-pricing can all be computed from
the ledger alone, long after the spans are gone.
"""

from __future__ import annotations

import json
import operator
from typing import NamedTuple, get_type_hints

from llmcost_collector.model import PRICED, UNPRICED, Attribution, Cost, LlmCall, Usage


class LedgerEntry(NamedTuple):
    """The flat column values of one ``llm_calls`` row, in column order (see ``schema.py``).

    Build it with ``from_call``; ``to_call`` and ``cost`` rebuild the model objects for
    re-pricing. Booleans are stored as 0/1 and ``properties`` as sorted JSON object text.

    A named tuple because the entry *is* the row: ``executemany`` binds it as it is, and building
    one is a single tuple allocation on the ingest hot path. Change a field with ``_replace``.
    """

    trace_id: str
    span_id: str
    start_time_ns: int
    end_time_ns: int
    ingested_at_ns: int
    provider: str
    operation: str
    request_model: str
    response_model: str
    server_address: str
    dialect: str
    team: str
    team_source: str
    feature: str
    use_case: str
    user_id: str
    user_tier: str
    session_id: str
    session_name: str
    session_path: str
    environment: str
    service_name: str
    properties: str  # JSON object text
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    reasoning_tokens: int
    input_audio_tokens: int
    output_audio_tokens: int
    usage_estimated: int  # 0/1
    status: str
    error_type: str
    cache_hit: int  # 0/1
    outcome: str
    outcome_count: int
    price_status: str  # priced | unpriced
    list_cost_nanos: int | None
    contracted_cost_nanos: int | None
    chargeback_nanos: int | None
    savings_nanos: int  # response-cache savings: what a cache hit would have cost
    currency: str
    price_source: str
    price_id: str
    price_effective_from: str
    unpriced_reason: str
    repriced_at_ns: int | None = None
    # Migration 9, appended as the database appends them.
    cache_lookup: int = 0  # 0/1: the call looked in the response cache (hit or miss)
    prompt_cache_savings_nanos: int = 0  # provider prompt cache: cached tokens at the read rate vs input

    @classmethod
    def from_call(
        cls,
        call: LlmCall,
        cost: Cost,
        chargeback_nanos: int | None,
        ingested_at_ns: int,
        savings_nanos: int = 0,
        prompt_cache_savings_nanos: int = 0,
    ) -> LedgerEntry:
        a = call.attribution
        u = call.usage
        return cls(
            call.trace_id, call.span_id, call.start_time_ns, call.end_time_ns, ingested_at_ns,
            call.provider, call.operation, call.request_model, call.response_model, call.server_address,
            call.dialect, a.team, a.team_source, a.feature, a.use_case, a.user_id, a.user_tier, a.session_id,
            a.session_name, a.session_path, a.environment, a.service_name,
            json.dumps(a.properties, sort_keys=True) if a.properties else "{}",
            u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cache_write_1h_tokens, u.output_tokens,
            u.reasoning_tokens, u.input_audio_tokens, u.output_audio_tokens, int(u.estimated),
            call.status, call.error_type, int(call.cache_hit), call.outcome, call.outcome_count,
            cost.status, cost.list_nanos, cost.contracted_nanos, chargeback_nanos, savings_nanos, "USD",
            cost.price_source, cost.price_id, cost.price_effective_from, cost.reason, None,
            int(call.cache_lookup), prompt_cache_savings_nanos,
        )  # fmt: skip

    def to_call(self) -> LlmCall:
        """The call this row was made from (for re-pricing)."""
        return LlmCall(
            trace_id=self.trace_id,
            span_id=self.span_id,
            start_time_ns=self.start_time_ns,
            end_time_ns=self.end_time_ns,
            provider=self.provider,
            operation=self.operation,
            request_model=self.request_model,
            response_model=self.response_model,
            usage=Usage(
                input_tokens=self.input_tokens,
                cache_read_tokens=self.cache_read_tokens,
                cache_write_tokens=self.cache_write_tokens,
                cache_write_1h_tokens=self.cache_write_1h_tokens,
                output_tokens=self.output_tokens,
                reasoning_tokens=self.reasoning_tokens,
                input_audio_tokens=self.input_audio_tokens,
                output_audio_tokens=self.output_audio_tokens,
                estimated=bool(self.usage_estimated),
            ),
            attribution=Attribution(
                team=self.team,
                feature=self.feature,
                use_case=self.use_case,
                user_id=self.user_id,
                user_tier=self.user_tier,
                session_id=self.session_id,
                session_name=self.session_name,
                session_path=self.session_path,
                environment=self.environment,
                service_name=self.service_name,
                properties=json.loads(self.properties or "{}"),
                team_source=self.team_source,
            ),
            status=self.status,
            error_type=self.error_type,
            cache_hit=bool(self.cache_hit),
            cache_lookup=bool(self.cache_lookup),
            outcome=self.outcome,
            outcome_count=self.outcome_count,
            server_address=self.server_address,
            dialect=self.dialect,
        )

    @property
    def cost(self) -> Cost:
        return Cost(
            status=self.price_status,
            list_nanos=self.list_cost_nanos,
            contracted_nanos=self.contracted_cost_nanos,
            price_source=self.price_source,
            price_id=self.price_id,
            price_effective_from=self.price_effective_from,
            reason=self.unpriced_reason,
        )

    def values(self) -> tuple:
        """The column values in ``COLUMNS`` order, as the insert binds them."""
        return tuple(self)


COLUMNS: tuple[str, ...] = LedgerEntry._fields
# Integer (BIGINT) columns; the rest are TEXT.
INT_COLUMNS = frozenset(
    name for name, kind in get_type_hints(LedgerEntry).items() if kind in (int, int | None)
)
STATUSES = (PRICED, UNPRICED)

# What one text column may hold. Longer values are refused with the span (a 1 MiB session id is
# not an identifier, and would be kept in memory and in every index that holds the column).
MAX_TEXT_CHARS = 4096
MAX_PROPERTIES_CHARS = 65536
_TEXT_INDEXES = tuple(i for i, name in enumerate(COLUMNS) if name not in INT_COLUMNS)
_PROPERTIES_INDEX = COLUMNS.index("properties")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


_SHORT_TEXTS = operator.itemgetter(*(i for i in _TEXT_INDEXES if i != _PROPERTIES_INDEX))
_INTEGERS = operator.itemgetter(*(i for i, name in enumerate(COLUMNS) if name in INT_COLUMNS))


def storage_fault(entry: LedgerEntry) -> str | None:
    """Why both ledgers would refuse this row (None when they would not).

    Checked per span before the group commit so that one bad row is rejected alone: PostgreSQL
    refuses NUL characters in text, and neither database stores an integer outside int64.
    Every row is checked, so the common answer (nothing wrong) comes from a few C-level passes
    over the row (a join, ``max`` and ``min``); only a row they flag is walked column by column
    for the message.
    """
    try:
        texts = "".join(filter(None, _SHORT_TEXTS(entry)))  # together within the cap: each one is
        properties = entry.properties or ""
        integers = tuple(filter(None, _INTEGERS(entry)))
        clean = (
            len(texts) <= MAX_TEXT_CHARS
            and len(properties) <= MAX_PROPERTIES_CHARS
            and "\x00" not in texts
            and "\x00" not in properties
            and (not integers or (max(integers) <= INT64_MAX and min(integers) >= INT64_MIN))
        )
    except TypeError:  # a value of an unexpected type: the column walk below says which
        clean = False
    return None if clean else _storage_fault_by_column(entry)


def _storage_fault_by_column(entry: LedgerEntry) -> str | None:
    for index in _TEXT_INDEXES:
        value = entry[index]
        if not isinstance(value, str):
            continue
        limit = MAX_PROPERTIES_CHARS if index == _PROPERTIES_INDEX else MAX_TEXT_CHARS
        if len(value) > limit:
            return f"{COLUMNS[index]} is {len(value)} characters (at most {limit})"
        if "\x00" in value:
            return f"{COLUMNS[index]} contains a NUL character"
    for index, value in enumerate(entry):
        if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            return f"{COLUMNS[index]} {value} is outside int64"
    return None
