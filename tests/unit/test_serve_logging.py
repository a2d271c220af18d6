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
