"""otel_llmcost: attribute every LLM call in your service to a team, feature, user and session.

    import otel_llmcost
    otel_llmcost.configure(endpoint="http://llmcost-collector:4318/v1/traces", service_name="checkout")
    otel_llmcost.instrument()
    with otel_llmcost.attribute(team="marketing", feature="chat", user_id=user.id):
        client.chat.completions.create(...)

Importing this package is cheap: the SDKs are imported only when instrumented.
"""

from .cache import cache, configure_cache
from .context import attribute, current_attribution
from .guard import BudgetExceededError, BudgetGuard, Reservation, ReserveGuard, guard
from .instrumentation import instrument, uninstrument
from .outcome import record_outcome
from .processor import AttributionSpanProcessor
from .setup import configure, ensure_processor

__all__ = [
    "AttributionSpanProcessor",
    "BudgetExceededError",
    "BudgetGuard",
    "Reservation",
    "ReserveGuard",
    "attribute",
    "cache",
    "configure",
    "configure_cache",
    "current_attribution",
    "ensure_processor",
    "guard",
    "instrument",
    "record_outcome",
    "uninstrument",
]
__version__ = "0.1.0"
