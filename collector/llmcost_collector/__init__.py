"""llmcost_collector: the collector-side processor of otel-llmcost.

Receives OTLP spans, normalizes every GenAI dialect into one call record, prices it with
effective-dated list prices and the org price book, writes an idempotent ledger and exposes
Prometheus metrics and an HTTP API. The ledger is the source of truth for money.
"""

__version__ = "0.1.0"
