"""A service that already runs another GenAI instrumentation, then adds otel_llmcost.

``python -m tests.peers.service SETUP OTLP_BASE_URL FAKE_PROVIDER_URL`` sets up tracing the way a
user of SETUP does, adds ``otel_llmcost.configure()`` (our attribution processor; the exporter is
the standard OTLP/HTTP one), makes each call kind of ``CALLS`` for real against the fake provider
inside ``otel_llmcost.attribute(team=TEAM, feature=<call kind>)``, flushes and exits. Each setup
runs in a process of its own: instrumentors patch the SDKs process-wide, as in production.

The fake provider answers every call from the ``x-fake-scenario`` header the clients send, so the
usage is fixed by the request (see ``tests/peers/test_matrix.py`` for the expected bills).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from llmcost_demo.fake_provider import Scenario

# No downloads: LiteLLM reads its bundled price map, OpenLIT the local file given to init().
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_LOG", "ERROR")
OPENLIT_PRICES = Path(__file__).with_name("openlit-pricing.json")

TEAM = "peers"
OPENAI_MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
# OpenAI's accounting: 1200 prompt tokens of which 200 cached; 300 completion of which 100 reasoning.
OPENAI_SCENARIO = Scenario(input_tokens=1200, cached_tokens=200, output_tokens=300, reasoning_tokens=100)
# Anthropic's accounting: 500 uncached + 1000 cache read + 300 (5m) + 100 (1h) cache written; 80 out.
ANTHROPIC_SCENARIO = Scenario(
    input_tokens=500, cached_tokens=1000, cache_creation_5m=300, cache_creation_1h=100, output_tokens=80
)
MESSAGES = [{"role": "user", "content": "Summarise the quarterly invoice."}]


def header(scenario: Scenario) -> dict[str, str]:
    return {"x-fake-scenario": json.dumps(asdict(scenario))}


def openai_client(fake: str) -> Any:
    import openai

    return openai.OpenAI(base_url=fake + "/v1", api_key="test", max_retries=0,
                         default_headers=header(OPENAI_SCENARIO))  # fmt: skip


def anthropic_client(fake: str) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=fake, api_key="test", max_retries=0,
                               default_headers=header(ANTHROPIC_SCENARIO))  # fmt: skip


def openai_chat(fake: str) -> None:
    openai_client(fake).chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)


def openai_chat_stream(fake: str) -> None:
    stream = openai_client(fake).chat.completions.create(
        model=OPENAI_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass


def openai_responses(fake: str) -> None:
    openai_client(fake).responses.create(model=OPENAI_MODEL, input=MESSAGES[0]["content"])


def anthropic_messages(fake: str) -> None:
    anthropic_client(fake).messages.create(model=CLAUDE, max_tokens=200, messages=MESSAGES)


def anthropic_stream(fake: str) -> None:
    with anthropic_client(fake).messages.stream(model=CLAUDE, max_tokens=200, messages=MESSAGES) as stream:
        stream.get_final_message()


def litellm_openai_chat(fake: str) -> None:
    import litellm

    litellm.completion(model=f"openai/{OPENAI_MODEL}", api_base=fake + "/v1", api_key="test",
                       messages=MESSAGES, extra_headers=header(OPENAI_SCENARIO))  # fmt: skip


def litellm_openai_stream(fake: str) -> None:
    import litellm

    stream = litellm.completion(model=f"openai/{OPENAI_MODEL}", api_base=fake + "/v1", api_key="test",
                                messages=MESSAGES, extra_headers=header(OPENAI_SCENARIO), stream=True,
                                stream_options={"include_usage": True})  # fmt: skip
    for _ in stream:
        pass


def litellm_anthropic(fake: str) -> None:
    import litellm

    litellm.completion(model=f"anthropic/{CLAUDE}", api_base=fake, api_key="test", max_tokens=200,
                       messages=MESSAGES, extra_headers=header(ANTHROPIC_SCENARIO))  # fmt: skip


def openai_chat_timeout(fake: str) -> None:
    """Given up on after sending: the provider answers after 2 s, the client waits 0.5 s."""
    import openai

    client = openai.OpenAI(base_url=fake + "/v1", api_key="test", max_retries=0, timeout=0.5,
                           default_headers=header(replace(OPENAI_SCENARIO, delay_s=2)))  # fmt: skip
    try:
        client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)
    except openai.APITimeoutError:
        return
    raise AssertionError("the call was expected to time out")


def anthropic_timeout(fake: str) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=fake, api_key="test", max_retries=0, timeout=0.5,
                                 default_headers=header(replace(ANTHROPIC_SCENARIO, delay_s=2)))  # fmt: skip
    try:
        client.messages.create(model=CLAUDE, max_tokens=200, messages=MESSAGES)
    except anthropic.APITimeoutError:
        return
    raise AssertionError("the call was expected to time out")


SDK_CALLS: dict[str, Callable[[str], None]] = {
    "openai-chat": openai_chat,
    "openai-chat-stream": openai_chat_stream,
    "openai-responses": openai_responses,
    "anthropic-messages": anthropic_messages,
    "anthropic-stream": anthropic_stream,
}
# Calls the client abandons after sending (SDK setups): billed their prompt, estimated, once.
ABANDONED_CALLS: dict[str, Callable[[str], None]] = {
    "openai-chat-timeout": openai_chat_timeout,
    "anthropic-timeout": anthropic_timeout,
}
LITELLM_CALLS: dict[str, Callable[[str], None]] = {
    "litellm-openai-chat": litellm_openai_chat,
    "litellm-openai-stream": litellm_openai_stream,
    "litellm-anthropic": litellm_anthropic,
}


def openinference_metadata(fake: str) -> None:
    from openinference.instrumentation import using_attributes

    with using_attributes(
        metadata={"team": "oi-team", "feature": "oi-metadata"}, user_id="u-2", tags=["beta"]
    ):
        openai_chat(fake)


def openlit_attributes(fake: str) -> None:
    import openlit

    with openlit.using_attributes({"team": "openlit-team", "user.id": "u-2"}):
        anthropic_messages(fake)
    with openlit.using_attributes({"app.owner_team": "mapped-team"}):  # attribution.from_attributes
        openai_chat(fake)


def litellm_key_team(fake: str) -> None:
    import litellm

    litellm.completion(model=f"openai/{OPENAI_MODEL}", api_base=fake + "/v1", api_key="test", messages=MESSAGES,
                       extra_headers=header(OPENAI_SCENARIO),
                       metadata={"user_api_key_team_alias": "litellm-team"})  # fmt: skip


# Calls attributed by the tool's own mechanism only (no otel_llmcost.attribute() around them).
TOOL_ATTRIBUTION: dict[str, Callable[[str], None]] = {
    "openinference": openinference_metadata,
    "openlit": openlit_attributes,
    "litellm": litellm_key_team,
}


def calls_of(setup: str) -> dict[str, Callable[[str], None]]:
    return LITELLM_CALLS if setup == "litellm" else SDK_CALLS


def instrument(setup: str, otlp: str) -> None:
    """What a user of ``setup`` has in their service before adding otel_llmcost."""
    if setup == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument()
    elif setup == "openllmetry":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetryOpenAI

        OpenLLMetryOpenAI().instrument()
        AnthropicInstrumentor().instrument()
    elif setup in ("openinference", "openinference-hidden"):
        if setup == "openinference-hidden":  # outputs not recorded: no response JSON, so no response id
            os.environ["OPENINFERENCE_HIDE_OUTPUTS"] = "true"
        from openinference.instrumentation.anthropic import AnthropicInstrumentor as OIAnthropic
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIOpenAI

        OIOpenAI().instrument()
        OIAnthropic().instrument()
    elif setup == "openlit":
        import openlit

        # OpenLIT creates the TracerProvider and its exporter (the resource says telemetry.sdk.name=openlit).
        openlit.init(otlp_endpoint=otlp, pricing_json=str(OPENLIT_PRICES), disable_metrics=True,
                     disable_events=True, application_name="peer-openlit")  # fmt: skip
    elif setup == "litellm":
        import litellm

        litellm.callbacks = ["otel"]


def main() -> None:
    setup, otlp, fake = sys.argv[1:4]
    from opentelemetry import trace

    import otel_llmcost

    instrument(setup, otlp)
    # The user then adds otel_llmcost: attribution on every GenAI span, and our instrumentors
    # (which stand aside where the call is already traced). Under opentelemetry-instrument the
    # distro did both already.
    if setup != "all":
        exporting = setup == "openlit"  # OpenLIT's provider already exports to the collector
        otel_llmcost.configure(
            endpoint=None if exporting else otlp + "/v1/traces", service_name=f"peer-{setup}"
        )
        otel_llmcost.instrument()
    abandoned = {} if setup == "litellm" else ABANDONED_CALLS
    for kind, call in {**calls_of(setup), **abandoned}.items():
        with otel_llmcost.attribute(team=TEAM, feature=kind, user_id="u-1"):
            call(fake)
    if setup in TOOL_ATTRIBUTION:
        TOOL_ATTRIBUTION[setup](fake)
    time.sleep(0.5)  # LiteLLM logs from its own thread after the call returned
    provider = trace.get_tracer_provider()
    provider.force_flush()  # type: ignore[attr-defined]
    provider.shutdown()  # type: ignore[attr-defined]
    print("done", flush=True)


if __name__ == "__main__":
    main()
