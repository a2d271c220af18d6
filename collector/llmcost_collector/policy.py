"""The ingest policy: what a configuration file means for each export, built once per load.

A reload builds a whole new ``IngestPolicy`` (attribution rules, chargeback, privacy, limits) and
swaps one reference, so an export is processed under one configuration from start to end, never
half the old rules and half the new ones. Building can fail (an invalid file never gets here:
the loader refuses it), and then the running policy stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from llmcost_collector.attribute.mapping import AttributeMapping
from llmcost_collector.attribute.privacy import IdentifierScrubber, make_scrubber
from llmcost_collector.attribute.rules import AttributionRules
from llmcost_collector.auth import INGEST, AccessPolicy, Denied, Grant
from llmcost_collector.chargeback.per_call import make_chargeback
from llmcost_collector.config.schema import Config
from llmcost_collector.model import LlmCall

ChargebackRule = Callable[[LlmCall, "int | None"], "int | None"]


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """What the receivers enforce before the pipeline sees an export."""

    access: AccessPolicy = field(default_factory=AccessPolicy)
    max_body_bytes: int = 16 * 1024 * 1024
    max_in_flight: int = 64
    queue_capacity_spans: int = 200_000

    def ingest_grant(self, header: str | None) -> Grant:
        """The exporter's grant, if its token has the ingest role; ``Denied`` (401/403) otherwise."""
        return self.access.authorize(header, INGEST)


__all__ = ["Denied", "IngestLimits", "IngestPolicy"]


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    rules: AttributionRules
    chargeback: ChargebackRule
    scrub_identifiers: IdentifierScrubber | None
    limits: IngestLimits
    attribute_mapping: AttributeMapping = field(default_factory=AttributeMapping)

    @classmethod
    def from_config(cls, config: Config) -> IngestPolicy:
        ingest = config.ingest
        return cls(
            rules=AttributionRules(config.attribution),
            chargeback=make_chargeback(config),
            scrub_identifiers=make_scrubber(config.privacy),
            limits=IngestLimits(
                access=AccessPolicy.from_config(config),
                max_body_bytes=ingest.max_body_bytes,
                max_in_flight=ingest.max_in_flight,
                queue_capacity_spans=ingest.queue_capacity_spans,
            ),
            attribute_mapping=AttributeMapping(config.attribution.from_attributes),
        )
