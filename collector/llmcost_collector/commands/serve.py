"""`llmcost serve`: run the collector (OTLP receivers, ledger, metrics, API)."""

from __future__ import annotations

import argparse
import json
import logging

HELP = "Run the collector: OTLP on 4317/4318, metrics, API and web page on 9464."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", dest="config_path", help="YAML config file (default: $LLMCOST_CONFIG)")
    parser.add_argument(
        "--ledger-url", help="sqlite:///path.db (default) or postgresql://... ($LLMCOST_LEDGER_URL)"
    )
    parser.add_argument("--host", help="address to bind (default 0.0.0.0; $LLMCOST_HOST)")
    parser.add_argument("--otlp-grpc-port", type=int, help="OTLP/gRPC port (default 4317)")
    parser.add_argument("--otlp-http-port", type=int, help="OTLP/HTTP port (default 4318)")
    parser.add_argument("--http-port", type=int, help="metrics/API/web port (default 9464)")
    parser.add_argument("--no-grpc", action="store_true", help="do not start the OTLP/gRPC receiver")
    parser.add_argument(
        "--session-idle-seconds", type=float, help="a session ends after this idle time (300)"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: what log shippers parse without configuration."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def run(args: argparse.Namespace) -> int:
    from ..app import CollectorApp, Settings
    from ..config import ConfigError

    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    settings = Settings.from_env(
        config_path=args.config_path,
        ledger_url=args.ledger_url,
        host=args.host,
        otlp_grpc_port=args.otlp_grpc_port,
        otlp_http_port=args.otlp_http_port,
        http_port=args.http_port,
        session_idle_seconds=args.session_idle_seconds,
    )
    if args.no_grpc:
        settings.enable_grpc = False
    try:
        app = CollectorApp(settings).start()
    except ConfigError as exc:
        print(f"llmcost serve: invalid configuration:\n{exc}")
        return 2
    except OSError as exc:
        print(f"llmcost serve: cannot start: {exc}")
        return 1
    print("llmcost collector ready: " + json.dumps(app.urls()), flush=True)
    app.serve_forever()
    return 0
