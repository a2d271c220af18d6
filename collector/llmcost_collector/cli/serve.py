"""`llmcost serve`: run the collector (OTLP receivers, ledger, metrics, API)."""

from __future__ import annotations

import argparse
import gc
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


# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD_RECORD_KEYS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: what log shippers parse without configuration.

    Structured fields passed with ``extra=`` (a refused config's path and line, say) become keys
    of the object; values JSON cannot encode are written as text.
    """

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_KEYS and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def tune_garbage_collector() -> None:
    """Make the cyclic GC cheap for a long-running ingest process.

    Every export allocates thousands of short-lived objects, and with the default gen-0 threshold
    (700) the collector runs a dozen times per batch, each full pass also walking the hundreds of
    thousands of objects the imported libraries keep alive forever. Freezing what startup created
    moves it out of every later pass, and a higher threshold runs the young pass once per batch or
    so. Garbage is still collected: ingest objects are freed by reference counting, cycles later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def run(args: argparse.Namespace) -> int:
    from llmcost_collector.app import CollectorApp, Settings
    from llmcost_collector.config.schema import ConfigError

    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    settings = Settings.from_flags(
        config_path=args.config_path,
        ledger_url=args.ledger_url,
        host=args.host,
        otlp_grpc_port=args.otlp_grpc_port,
        otlp_http_port=args.otlp_http_port,
        http_port=args.http_port,
        session_idle_seconds=args.session_idle_seconds,
        enable_grpc=False if args.no_grpc else None,
    )
    try:
        app = CollectorApp(settings).start()
    except ConfigError as exc:
        print(f"llmcost serve: invalid configuration:\n{exc}")
        return 2
    except OSError as exc:
        print(f"llmcost serve: cannot start: {exc}")
        return 1
    tune_garbage_collector()
    print("llmcost collector ready: " + json.dumps(app.urls()), flush=True)
    app.serve_forever()
    return 0
