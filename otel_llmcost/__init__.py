"""otel_llmcost: attribute every LLM call in your service to a team, feature, user and session."""
