"""Zero-code setup: ``opentelemetry-instrument python app.py`` with otel-llmcost alone installed.

``opentelemetry-instrument`` loads one ``opentelemetry_distro`` and one ``opentelemetry_configurator``
entry point, then every ``opentelemetry_instrumentor``. Without a configurator nothing builds a
TracerProvider, so our instrumentors' spans would go nowhere; ``opentelemetry-distro`` provides
one, but defaults to OTLP over gRPC, which otel-llmcost does not install. These two classes, both
registered as ``llmcost`` in ``pyproject.toml``, fill that gap:

* :class:`LLMCostDistro` sets environment defaults before the SDK reads them, the way
  ``opentelemetry-distro`` does: OTLP over HTTP/protobuf (the exporter otel-llmcost depends on),
  and the OTLP trace exporter whenever an OTLP endpoint is given;
* :class:`LLMCostConfigurator` is the SDK's own configurator (every standard ``OTEL_*`` variable
  is honoured as usual) with our :class:`~otel_llmcost.processor.AttributionSpanProcessor` added
  to the provider it builds.

With no exporter configured at all, the spans are recorded but not sent: that is said once, on
stderr, because a service whose chargeback silently goes nowhere is worse than a noisy start. An
explicit ``OTEL_TRACES_EXPORTER=none`` is a choice and stays quiet.

With ``opentelemetry-distro`` installed as well, pick ours with ``OTEL_PYTHON_DISTRO=llmcost`` and
``OTEL_PYTHON_CONFIGURATOR=llmcost``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
)
from opentelemetry.util._once import Once

from .processor import AttributionSpanProcessor
from .setup import ensure_processor

NO_EXPORTER_MESSAGE = (
    "otel-llmcost: no trace exporter is configured, so LLM call spans are not sent anywhere; "
    "set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://llmcost-collector:4318) or OTEL_TRACES_EXPORTER"
)
_no_exporter_said = Once()
# The SDK's declarative configuration file (newer SDKs than our floor define the constant).
CONFIG_FILE = "OTEL_CONFIG_FILE"


class LLMCostDistro(BaseDistro):
    """Environment defaults for the SDK configurator; the variables a user set always win."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault(OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf")
        endpoint_given = os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT) or os.environ.get(
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
        )
        if endpoint_given and not os.environ.get(OTEL_TRACES_EXPORTER):
            os.environ[OTEL_TRACES_EXPORTER] = "otlp"


class LLMCostConfigurator(_OTelSDKConfigurator):
    """The SDK's configurator, with the attribution processor on the TracerProvider it sets."""

    def _configure(self, **kwargs: Any) -> None:
        processors = [AttributionSpanProcessor(), *(kwargs.pop("span_processors", None) or ())]
        super()._configure(span_processors=processors, **kwargs)
        if os.environ.get(CONFIG_FILE):
            # Declarative configuration ignores span_processors and names its own exporters.
            ensure_processor(trace.get_tracer_provider())
        elif not os.environ.get(OTEL_TRACES_EXPORTER, "").strip():
            _no_exporter_said.do_once(_say_no_exporter)


def _say_no_exporter() -> None:
    print(NO_EXPORTER_MESSAGE, file=sys.stderr, flush=True)
