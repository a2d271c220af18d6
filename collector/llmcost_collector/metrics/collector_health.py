"""The collector's own health metrics (``llmcost_collector_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SelfMetrics:
    """The collector's own health: what it received, rejected, queued and how fast it commits."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.spans_received = Counter(
            "llmcost_collector_spans_received", "Spans received.", ("transport",), registry=registry
        )
        self.spans_skipped = Counter(
            "llmcost_collector_spans_skipped", "Received spans that are not LLM calls.", registry=registry
        )
        self.spans_rejected = Counter(
            "llmcost_collector_spans_rejected", "LLM spans rejected (partial success).", ("reason",),
            registry=registry,
        )  # fmt: skip
        self.spans_duplicate = Counter(
            "llmcost_collector_spans_duplicate",
            "LLM spans already in the ledger (retries).",
            registry=registry,
        )
        self.spans_suppressed = Counter(
            "llmcost_collector_spans_suppressed",
            "LLM spans of a provider call another span already bills (several instrumentations).",
            registry=registry,
        )
        self.exports_refused = Counter(
            "llmcost_collector_exports_refused",
            "Whole exports refused (overload, size, decode, auth).",
            ("reason",),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "llmcost_collector_queue_depth_spans", "Spans waiting for the ledger writer.", registry=registry
        )
        self.commit_seconds = Histogram(
            "llmcost_collector_ledger_commit_seconds",
            "Ledger commit latency per group commit.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.label_values_truncated = Counter(
            "llmcost_collector_label_values_truncated",
            "Metric label values cut to labels.max_value_length.",
            ("label",),
            registry=registry,
        )
        self.label_sets_collapsed = Counter(
            "llmcost_collector_label_sets_collapsed",
            "New cost label sets past labels.max_label_sets, counted in the all-__other__ series.",
            registry=registry,
        )
        self.config_reloads = Counter(
            "llmcost_collector_config_reloads", "Configuration reloads.", ("result",), registry=registry
        )
