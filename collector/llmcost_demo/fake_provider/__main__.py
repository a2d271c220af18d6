"""`python -m llmcost_demo.fake_provider`: serve until SIGTERM/SIGINT, announcing the URL."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from llmcost_demo.fake_provider.scenario import Scenario
from llmcost_demo.fake_provider.server import FakeProvider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmcost_demo.fake_provider", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--scenario", help="default scenario as JSON, e.g. '{\"input_tokens\": 100}'")
    args = parser.parse_args(argv)
    default = Scenario.from_json(args.scenario) if args.scenario else None

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    provider = FakeProvider(args.host, args.port, default=default).start()
    print(f"fake provider listening on {provider.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        provider.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
