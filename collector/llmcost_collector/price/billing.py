"""What one call owes, and what caches saved it, priced at the call's own time.

Why one place: ingest and ``llmcost reprice`` must agree, or a re-price would bill a response-cache
hit in full. The rules:

* A response-cache hit made no provider call: it owes $0 (both layers), and what it would have
  cost at the rates in force when it was served (the hit's time, not the original call's) is its
  response-cache saving. An unpriced hit saves nothing until it is re-priced.
* A provider prompt-cache read is billed at the cache-read rate; the saving is what those tokens
  would have cost at the full input rate, minus what they did cost (contracted layer), in dollars.
  It is computed by pricing the same usage with the cached tokens as plain input, so tiered rates
  (chosen by total input, unchanged) and negotiated prices apply exactly as for the call itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmcost_collector.model import Cost, LlmCall, Usage
from llmcost_collector.price.pricer import Pricer


@dataclass(slots=True)
class Bill:
    cost: Cost
    savings_nanos: int = 0  # response cache: the whole call avoided
    prompt_cache_savings_nanos: int = 0  # provider prompt cache: read rate instead of input rate


def bill(pricer: Pricer, call: LlmCall) -> Bill:
    cost = pricer.price(call)
    if call.cache_hit:
        owed = Cost(
            cost.status,
            None if cost.list_nanos is None else 0,
            None if cost.contracted_nanos is None else 0,
            cost.price_source,
            cost.price_id,
            cost.price_effective_from,
            cost.reason,
        )
        return Bill(owed, savings_nanos=cost.contracted_nanos or 0)
    usage = call.usage
    if not usage.cache_read_tokens or cost.contracted_nanos is None or call.is_outcome_record:
        return Bill(cost)
    # Built directly, not with dataclasses.replace (several times slower, on the ingest hot path).
    uncached = Usage(
        input_tokens=usage.input_tokens + usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        input_audio_tokens=usage.input_audio_tokens,
        output_audio_tokens=usage.output_audio_tokens,
        estimated=usage.estimated,
    )
    full = pricer.price(call, uncached).contracted_nanos
    saved = 0 if full is None else max(0, full - cost.contracted_nanos)
    return Bill(cost, prompt_cache_savings_nanos=saved)
