"""`llmcost serve`: run the collector (OTLP receivers, ledger, metrics, API)."""

from __future__ import annotations

import gc
import json
import logging

import click

from llmcost_collector.cli.output import ConfigInvalid, ledger_errors
from llmcost_collector.redact import RedactingFilter, redact, url_password

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
            doc["exc"] = record.exc_text or self.formatException(record.exc_info)
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


@click.command()
@click.option("--config", "config_path", help="YAML config file (default: $LLMCOST_CONFIG)")
@click.option("--ledger-url", help="sqlite:///path.db (default) or postgresql://... ($LLMCOST_LEDGER_URL)")
@click.option("--host", help="address the OTLP ports bind (default 0.0.0.0; $LLMCOST_HOST)")
@click.option(
    "--http-host", help="address the metrics/API/web port binds (default 127.0.0.1; $LLMCOST_HTTP_HOST)"
)
@click.option("--otlp-grpc-port", type=int, help="OTLP/gRPC port (default 4317)")
@click.option("--otlp-http-port", type=int, help="OTLP/HTTP port (default 4318)")
@click.option("--http-port", type=int, help="metrics/API/web port (default 9464)")
@click.option("--no-grpc", is_flag=True, help="do not start the OTLP/gRPC receiver")
@click.option("--session-idle-seconds", type=float, help="a session ends after this idle time (300)")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
def serve(
    config_path: str | None,
    ledger_url: str | None,
    host: str | None,
    http_host: str | None,
    otlp_grpc_port: int | None,
    otlp_http_port: int | None,
    http_port: int | None,
    no_grpc: bool,
    session_idle_seconds: float | None,
    log_level: str,
) -> None:
    """Run the collector: OTLP in; priced ledger, metrics, API out.

    OTLP/gRPC on 4317, OTLP/HTTP on 4318; metrics, API and web page on 9464. Each option
    overrides its environment variable, which overrides the default.
    """
    from llmcost_collector.app import CollectorApp, Settings
    from llmcost_collector.config.schema import ConfigError

    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    redacting = RedactingFilter()
    handler.addFilter(redacting)
    logging.basicConfig(level=log_level.upper(), handlers=[handler], force=True)
    settings = Settings.from_flags(
        config_path=config_path,
        ledger_url=ledger_url,
        host=host,
        http_host=http_host,
        otlp_grpc_port=otlp_grpc_port,
        otlp_http_port=otlp_http_port,
        http_port=http_port,
        session_idle_seconds=session_idle_seconds,
        enable_grpc=False if no_grpc else None,
    )
    secrets = [p for p in (url_password(settings.ledger_url),) if p]
    redacting.secrets = tuple(secrets)
    try:
        app = CollectorApp(settings).start()
    except ConfigError as exc:
        raise ConfigInvalid(exc) from None
    except ledger_errors() as exc:  # ports in use (OSError), a ledger that cannot be opened
        raise click.ClickException(f"cannot start: {redact(str(exc), secrets)}") from None
    # the configured tokens too: never expected in a message, masked if one ever is
    redacting.secrets += tuple(secret.decode() for secret, _ in app.limits.access.tokens)
    tune_garbage_collector()
    ready = {**app.urls(), "ledger": redact(settings.ledger_url, secrets)}
    click.echo("llmcost collector ready: " + json.dumps(ready))
    app.serve_forever()
