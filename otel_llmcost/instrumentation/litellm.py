"""Keep LiteLLM's spans attributed when LiteLLM logs them from another thread.

LiteLLM's OpenTelemetry callback (``litellm.callbacks = ["otel"]``) creates its span when the call
is logged, not when it is made. For a stream that happens in LiteLLM's logging thread pool (and
for async calls in its logging worker), where the caller's context, and so the Baggage that
``otel_llmcost.attribute()`` set, is not current: the span would reach the collector without a
team. This instrumentor remembers the caller's attribution Baggage on each call's ``Logging``
object (created in the caller's context by ``litellm.completion``) and makes it current while
that object's success and failure handlers run, when nothing else is current there.

Only the attribution entries of the Baggage are carried, never the caller's span: LiteLLM would
otherwise write its attributes onto that span instead of creating its own. No span is created
here. Registered as the ``llmcost_litellm`` ``opentelemetry_instrumentor`` entry point and run by
``otel_llmcost.instrument()`` when LiteLLM is installed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import baggage, context
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from ..attributes import PROPERTY_PREFIX, STAMPED_KEYS

MODULE = "litellm.litellm_core_utils.litellm_logging"
HANDLERS = ("success_handler", "async_success_handler", "failure_handler", "async_failure_handler")
_SAVED = "_llmcost_baggage"


def _attribution(ctx: context.Context | None = None) -> dict[str, object]:
    return {
        k: v for k, v in baggage.get_all(ctx).items() if k in STAMPED_KEYS or k.startswith(PROPERTY_PREFIX)
    }


def _remember(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    saved = _attribution()
    if saved:
        try:
            setattr(instance, _SAVED, saved)
        except Exception:  # never break the caller's call over attribution
            pass
    return result


def _caller_context(instance: Any) -> context.Context | None:
    """A context with the caller's attribution Baggage, when it is not current already."""
    saved = getattr(instance, _SAVED, None)
    if not saved or _attribution():
        return None
    ctx = context.Context()
    for key, value in saved.items():
        ctx = baggage.set_baggage(key, value, context=ctx)
    return ctx


def _in_caller_context(
    wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]
) -> Any:
    ctx = _caller_context(instance)
    if ctx is None:
        return wrapped(*args, **kwargs)
    if inspect.iscoroutinefunction(wrapped):

        async def run() -> Any:
            token = context.attach(ctx)
            try:
                return await wrapped(*args, **kwargs)
            finally:
                context.detach(token)

        return run()
    token = context.attach(ctx)
    try:
        return wrapped(*args, **kwargs)
    finally:
        context.detach(token)


class LiteLLMInstrumentor(BaseInstrumentor):
    def instrumentation_dependencies(self) -> Collection[str]:
        return ("litellm >= 1.40",)

    def _instrument(self, **kwargs: Any) -> None:
        wrap_function_wrapper(MODULE, "Logging.__init__", _remember)
        for name in HANDLERS:
            wrap_function_wrapper(MODULE, f"Logging.{name}", _in_caller_context)

    def _uninstrument(self, **kwargs: Any) -> None:
        import importlib

        logging_class = importlib.import_module(MODULE).Logging
        for name in ("__init__", *HANDLERS):
            unwrap(logging_class, name)
