"""A loopback fake LLM provider speaking OpenAI's and Anthropic's exact wire formats.

The real `openai` and `anthropic` SDKs work against it unmodified, so tests, the demo and
benchmarks exercise the instrumentation over the real wire without network or API keys.
"""

from llmcost_demo.fake_provider.scenario import RecordedRequest, Scenario
from llmcost_demo.fake_provider.server import SCENARIO_HEADER, FakeProvider

__all__ = ["SCENARIO_HEADER", "FakeProvider", "RecordedRequest", "Scenario"]
