"""`llmcost demo`: collector + fake provider + traffic through the real SDKs, with a live summary."""

from __future__ import annotations

import argparse

HELP = "Run the demo: collector, fake LLM provider and synthetic traffic through the real SDKs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address for the collector's ports")
    parser.add_argument("--otlp-http-port", type=int, default=4318)
    parser.add_argument("--otlp-grpc-port", type=int, default=4317)
    parser.add_argument("--http-port", type=int, default=9464, help="metrics/API/web port")
    parser.add_argument("--ledger-url", help="default: a fresh SQLite file in a temp directory")
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second per traffic thread")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--summary-every", type=float, default=5.0, help="seconds between summaries")


def run(args: argparse.Namespace) -> int:
    from llmcost_demo.demo import demo_settings, run_demo

    try:
        run_demo(
            demo_settings(
                args.host, args.otlp_http_port, args.otlp_grpc_port, args.http_port, args.ledger_url
            ),
            rate=args.rate,
            duration=args.duration,
            summary_every=args.summary_every,
            out=lambda text: print(text, flush=True),
        )
    except OSError as exc:
        print(f"llmcost demo: cannot start ({exc}); is another collector using the ports? "
              "Try --otlp-http-port/--otlp-grpc-port/--http-port.")  # fmt: skip
        return 1
    return 0
