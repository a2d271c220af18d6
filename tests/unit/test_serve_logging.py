"""`llmcost serve` logs one JSON object per line, with the structured fields callers attach."""

from __future__ import annotations

import json
import logging

from llmcost_collector.cli.serve import JsonLogFormatter


def _format(record: logging.LogRecord) -> dict:
    return json.loads(JsonLogFormatter().format(record))


def test_extra_fields_become_keys_of_the_json_object() -> None:
    record = logging.makeLogRecord(
        {
            "name": "llmcost_collector.config.watch",
            "levelno": logging.ERROR,
            "levelname": "ERROR",
            "msg": "config reload refused: %d problem(s)",
            "args": (1,),
            "event": "config_error",
            "config_path": "/etc/llmcost.yaml",
            "line": 12,
            "column": 5,
        }
    )
    doc = _format(record)
    assert doc["msg"] == "config reload refused: 1 problem(s)"
    assert doc["level"] == "error" and doc["logger"] == "llmcost_collector.config.watch"
    assert (doc["event"], doc["config_path"], doc["line"], doc["column"]) == (
        "config_error",
        "/etc/llmcost.yaml",
        12,
        5,
    )


def test_plain_records_carry_no_internal_logrecord_attributes() -> None:
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello"})
    assert set(_format(record)) == {"ts", "level", "logger", "msg"}


def test_values_json_cannot_encode_are_written_as_text() -> None:
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "m", "when": object})
    assert _format(record)["when"] == str(object)


def test_a_ledger_password_is_masked_in_messages_and_tracebacks() -> None:
    """The serve handler's filter masks URL passwords and known secrets in the message and the
    logged traceback (here the ledger's own error, which quotes the mistyped URL)."""
    import io

    from llmcost_collector.ledger import open_ledger
    from llmcost_collector.redact import RedactingFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RedactingFilter(["s3cret-pw", "an/other"]))
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    log.propagate = False
    url = "postgres-sql://llmcost:s3cret-pw@db:5432/llmcost"
    try:
        try:
            open_ledger(url)
        except ValueError as exc:
            log.exception("cannot open %s: %s", url, exc)
        log.warning("secrets s3cret-pw, an/other and an%2Fother")  # known secrets, also URL-encoded
    finally:
        log.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "s3cret" not in stream.getvalue() and "other" not in stream.getvalue()
    assert first["msg"].startswith("cannot open postgres-sql://llmcost:***@db:5432/llmcost: unsupported")
    assert "ValueError: unsupported ledger URL 'postgres-sql://llmcost:***@db:5432/llmcost'" in first["exc"]
    assert second["msg"] == "secrets ***, *** and ***"
