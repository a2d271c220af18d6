"""Our instrumentors of the ``openai`` and ``anthropic`` SDKs (and LiteLLM's logging context), and
``instrument()`` for all that are installed.

The instrumentors only wrap SDK methods, as OpenTelemetry's own instrumentors do: they never touch
the TracerProvider they are given. Whoever sets up tracing adds the attribution processor and the
exporter (``otel_llmcost.configure()`` in code, the ``llmcost`` distro and configurator under
``opentelemetry-instrument``). The SDK modules are imported only when instrumented, so importing
this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_instrumented: list[Any] = []


def instrument(tracer_provider: object | None = None) -> list[str]:
    """Instrument every supported SDK that is installed; returns their names.

    ``tracer_provider`` defaults to the global one (a later ``trace.set_tracer_provider`` is
    followed, as for any OTel instrumentation). Already instrumented SDKs are left as they are.
    """
    from .anthropic import AnthropicInstrumentor
    from .litellm import LiteLLMInstrumentor
    from .openai import OpenAIInstrumentor

    done = []
    targets = (
        (OpenAIInstrumentor, "openai"),
        (AnthropicInstrumentor, "anthropic"),
        (LiteLLMInstrumentor, "litellm"),
    )
    for cls, sdk in targets:
        try:
            importlib.import_module(sdk)
        except ImportError:  # not installed (or unusable): nothing to instrument
            continue
        instrumentor = cls()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=tracer_provider)
            _instrumented.append(instrumentor)
        done.append(sdk)
    return done


def uninstrument() -> None:
    """Undo what ``instrument()`` did (SDKs instrumented by someone else stay instrumented)."""
    while _instrumented:
        _instrumented.pop().uninstrument()
