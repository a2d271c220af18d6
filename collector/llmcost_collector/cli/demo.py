"""`llmcost demo`: collector + fake provider + traffic through the real SDKs, with a live summary.

The demo lives in ``llmcost_demo``, which the service never imports (a layer contract); this
command is the one allowed edge, imported inside the command so ``llmcost --help`` does not pay
for the SDKs.
"""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address for the collector's ports")
@click.option("--otlp-http-port", type=int, default=4318, show_default=True)
@click.option("--otlp-grpc-port", type=int, default=4317, show_default=True)
@click.option("--http-port", type=int, default=9464, show_default=True, help="metrics/API/web port")
@click.option("--ledger-url", help="default: a fresh SQLite file in a temp directory")
@click.option(
    "--rate", type=float, default=20.0, show_default=True, help="calls per second per traffic thread"
)
@click.option("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
@click.option("--summary-every", type=float, default=5.0, show_default=True, help="seconds between summaries")
@click.option(
    "--send-to",
    metavar="URL",
    help="export the traffic's spans to this OTLP/HTTP traces endpoint (e.g. an OpenTelemetry "
    "Collector in front of llmcost replicas) instead of starting a collector",
)
def demo(
    host: str,
    otlp_http_port: int,
    otlp_grpc_port: int,
    http_port: int,
    ledger_url: str | None,
    rate: float,
    duration: float | None,
    summary_every: float,
    send_to: str | None,
) -> None:
    """Run the demo: collector, fake provider and traffic via real SDKs.

    The collector, a fake LLM provider and synthetic traffic through the real openai and
    anthropic SDKs, with a spend summary every few seconds.
    """
    from llmcost_demo.demo import demo_settings, run_demo

    try:
        run_demo(
            demo_settings(host, otlp_http_port, otlp_grpc_port, http_port, ledger_url),
            rate=rate,
            duration=duration,
            summary_every=summary_every,
            out=click.echo,
            send_to=send_to,
        )
    except OSError as exc:
        raise click.ClickException(
            f"cannot start the demo ({exc}); is another collector using the ports? "
            "Try --otlp-http-port/--otlp-grpc-port/--http-port."
        ) from None
