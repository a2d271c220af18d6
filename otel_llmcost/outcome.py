"""Business outcomes for value-based chargeback (e.g. $0.50 per resolved ticket)."""

from __future__ import annotations

from opentelemetry import trace

from . import attributes as a

_TRACER_NAME = "otel_llmcost"


def record_outcome(name: str, count: int = 1, **properties: object) -> None:
    """Record that ``count`` outcomes named ``name`` happened, attributed like an LLM call.

    Emitted as a short span of its own (``outcome {name}``) carrying ``llmcost.outcome`` and
    ``llmcost.outcome.count``; the attribution processor stamps the team, feature, user and session
    in force, and the collector counts it in ``llmcost_outcomes_total`` and the ledger.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    tracer = trace.get_tracer(_TRACER_NAME)
    attributes: dict[str, object] = {a.OUTCOME: name, a.OUTCOME_COUNT: count}
    attributes.update({a.PROPERTY_PREFIX + k: str(v) for k, v in properties.items()})
    with tracer.start_as_current_span(f"outcome {name}", attributes=attributes):  # type: ignore[arg-type]
        pass
