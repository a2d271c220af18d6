"""Tracing set up in code: an SDK TracerProvider exporting to the collector, with attribution.

The instrumentors never add span processors (OpenTelemetry's own do not either); this module is
where the :class:`AttributionSpanProcessor` and the OTLP exporter are put on a provider. Under
``opentelemetry-instrument`` the ``llmcost`` configurator (``otel_llmcost.distro``) does the same
from the standard environment variables.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .attributes import ENVIRONMENT
from .processor import AttributionSpanProcessor

log = logging.getLogger(__name__)
DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
_exporting: set[tuple[int, str]] = set()  # (provider, endpoint) pairs already exporting


def ensure_processor(provider: object) -> bool:
    """Add our processor to an SDK TracerProvider once; False for a no-op/foreign provider."""
    if not isinstance(provider, TracerProvider):
        return False
    active = getattr(provider, "_active_span_processor", None)
    processors = getattr(active, "_span_processors", ())
    if any(isinstance(p, AttributionSpanProcessor) for p in processors):
        return True
    provider.add_span_processor(AttributionSpanProcessor())
    return True


def configure(
    endpoint: str | None = None,
    service_name: str | None = None,
    *,
    environment: str | None = None,
    headers: dict[str, str] | None = None,
    export_interval_seconds: float = 5.0,
    capture_content: bool | None = None,
) -> TracerProvider:
    """Send LLM spans to the collector with attribution; returns the SDK TracerProvider in use.

    - The app has no SDK TracerProvider yet: installs one (resource from ``service_name``,
      ``environment`` and the usual ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``) with a
      BatchSpanProcessor exporting OTLP/HTTP to ``endpoint`` (default
      ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``http://localhost:4318/v1/traces``) and our
      :class:`AttributionSpanProcessor`.
    - The app already has one: adds our processor only (its exporters stay as they are), plus an
      OTLP exporter to ``endpoint`` when one is given explicitly.

    Calling it again adds nothing twice. ``capture_content=True`` records prompts and completions
    on spans (off by default; same as ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``).
    """
    if capture_content is not None:
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = (
            "true" if capture_content else "false"
        )
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        ensure_processor(current)
        if endpoint:
            _add_exporter(current, endpoint, headers, export_interval_seconds)
        return current
    from opentelemetry.sdk.resources import SERVICE_NAME

    attributes: dict[str, str] = {SERVICE_NAME: service_name} if service_name else {}
    if environment:
        attributes[ENVIRONMENT] = environment
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(AttributionSpanProcessor())
    endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", DEFAULT_ENDPOINT)
    _add_exporter(provider, endpoint, headers, export_interval_seconds)
    trace.set_tracer_provider(provider)
    return provider


def _add_exporter(
    provider: TracerProvider, endpoint: str, headers: dict[str, str] | None, interval: float
) -> None:
    key = (id(provider), endpoint)
    if key in _exporting:
        return
    _exporting.add(key)
    provider.add_span_processor(_exporter(endpoint, headers, interval))


def _exporter(endpoint: str, headers: dict[str, str] | None, interval: float) -> BatchSpanProcessor:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=headers),
                              schedule_delay_millis=int(interval * 1000))  # fmt: skip
