"""Decode OTLP trace exports (protobuf or JSON) into ``SpanView`` records.

Only spans that look like LLM calls are materialized: a span whose attribute keys carry no
GenAI prefix is counted and skipped before any of its values are converted, which keeps the
cost of non-LLM traffic to one pass over the keys.

The JSON decoder is written by hand on purpose: OTLP/JSON encodes trace and span ids as hex
strings, while ``google.protobuf.json_format.Parse`` would read them as base64 and silently
produce different ids (and so break exactly-once billing on retries).
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from llmcost_collector.model import DecodedExport, SpanView

# Attribute-key prefixes that mark a span as an LLM call in any dialect we read.
LLM_KEY_PREFIXES = ("gen_ai.", "llm.")
OUTCOME_KEY = "llmcost.outcome"
# What ``_is_llm_keys`` looks for in the newline-joined keys: a prefix at the start of a key.
_GEN_AI_NEEDLE, _LLM_NEEDLE = ("\n" + prefix for prefix in LLM_KEY_PREFIXES)
_OUTCOME_LINE = "\n" + OUTCOME_KEY + "\n"


class DecodeError(ValueError):
    """The body is not a decodable OTLP trace export (HTTP 400 / gRPC INVALID_ARGUMENT)."""


class SpanInvalid(ValueError):
    """One span cannot be billed as sent; it is rejected alone (partial success)."""


# Timestamps are stored as signed 64-bit integers (SQLite INTEGER, PostgreSQL BIGINT): a span
# time outside [0, 2**63) would fail the ledger write of every export committed with it.
MAX_TIME_NS = 2**63 - 1
# A JSON body can spell a UTF-16 surrogate (``"\\ud800"``) that no encoder can write; only bodies
# containing such an escape pay for the per-span check.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def checked_time(value: int, field: str) -> int:
    """``value`` when it fits the ledger's int64 nanoseconds, else the span is refused."""
    if not 0 <= value <= MAX_TIME_NS:
        raise SpanInvalid(f"{field} {value} is outside 0..2**63-1 nanoseconds")
    return value


def _json_time(value: object, field: str) -> int:
    """An OTLP/JSON uint64 time (a decimal string, or a number from lenient encoders)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpanInvalid(f"{field} must be a decimal string, not {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise SpanInvalid(f"{field} {value!r} is not a whole number of nanoseconds")
        return checked_time(int(value), field)
    try:
        return checked_time(int(value), field)
    except ValueError as exc:
        if isinstance(exc, SpanInvalid):
            raise
        raise SpanInvalid(f"{field} {str(value)[:40]!r} is not an integer") from None


_SCALAR_KINDS = frozenset({"string_value", "int_value", "double_value", "bool_value", "bytes_value"})


def _any_value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind in _SCALAR_KINDS:
        return getattr(value, kind)
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return None


def _attributes(kvs: Iterable[KeyValue]) -> dict[str, object]:
    return _values({kv.key: kv.value for kv in kvs})


def _values(raw: dict[str, AnyValue]) -> dict[str, object]:
    """Plain Python values; scalars inline: this runs for every attribute of every LLM span."""
    out: dict[str, object] = {}
    for key, value in raw.items():
        kind = value.WhichOneof("value")
        out[key] = getattr(value, kind) if kind in _SCALAR_KINDS else _any_value(value)
    return out


def _is_llm_keys(keys: Iterable[str]) -> bool:
    """GenAI keys mark an LLM call; ``llmcost.outcome`` marks a business outcome record.

    One C-level join and three substring searches instead of a Python loop over the keys: a key
    starts with a prefix exactly when the newline-joined text contains newline + prefix (keys
    with a newline in them are not attribute names any instrumentation emits).
    """
    text = "\n" + "\n".join(keys) + "\n"
    return _GEN_AI_NEEDLE in text or _LLM_NEEDLE in text or _OUTCOME_LINE in text


def decode_protobuf(body: bytes | bytearray) -> DecodedExport:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # protobuf raises DecodeError, but upb may raise others
        raise DecodeError(f"invalid OTLP protobuf: {exc}") from exc
    return decode_request(request)


def decode_request(request: ExportTraceServiceRequest) -> DecodedExport:
    """Walk an already-parsed request (the gRPC server hands us one)."""
    out = DecodedExport()
    for resource_spans in request.resource_spans:
        resource: dict[str, object] | None = None
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            for span in scope_spans.spans:
                # One pass over the wire attributes; values are converted for LLM spans only.
                raw = {kv.key: kv.value for kv in span.attributes}
                if not _is_llm_keys(raw):
                    out.skipped += 1
                    continue
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    out.invalid.append(f"span {span.name!r}: trace_id must be 16 bytes and span_id 8 bytes")
                    continue
                try:
                    start = checked_time(span.start_time_unix_nano, "start_time_unix_nano")
                    end = checked_time(span.end_time_unix_nano, "end_time_unix_nano")
                except SpanInvalid as exc:
                    out.invalid.append(f"span {span.span_id.hex()}: {exc}")
                    continue
                if resource is None:
                    resource = _attributes(resource_spans.resource.attributes)
                out.spans.append(
                    SpanView(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        name=span.name,
                        start_time_ns=start,
                        end_time_ns=end,
                        attributes=_values(raw),
                        resource=resource,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        scope_name=scope_name,
                        parent_span_id=span.parent_span_id.hex() if len(span.parent_span_id) == 8 else "",
                    )
                )
    return out


# --- OTLP/JSON ---------------------------------------------------------------------------


def _get(obj: dict, camel: str, snake: str, default: Any = None) -> Any:
    """OTLP/JSON uses lowerCamelCase; accept the proto field names too, as receivers must."""
    if camel in obj:
        return obj[camel]
    return obj.get(snake, default)


def _json_any_value(value: object) -> object:
    if not isinstance(value, dict):
        raise DecodeError("attribute value must be an AnyValue object")
    for key, item in value.items():
        if key in ("stringValue", "string_value"):
            return item
        if key in ("intValue", "int_value"):
            return int(item)  # int64 is a JSON string in OTLP/JSON
        if key in ("doubleValue", "double_value"):
            return float(item)
        if key in ("boolValue", "bool_value"):
            return bool(item)
        if key in ("arrayValue", "array_value"):
            return [_json_any_value(v) for v in (item or {}).get("values", [])]
        if key in ("kvlistValue", "kvlist_value"):
            return _json_attributes((item or {}).get("values", []))
        if key in ("bytesValue", "bytes_value"):
            return binascii.a2b_base64(item)
    return None


def _json_attributes(kvs: object) -> dict[str, object]:
    if not isinstance(kvs, list):
        raise DecodeError("attributes must be a list of {key, value}")
    out: dict[str, object] = {}
    for kv in kvs:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise DecodeError("attribute must be an object with a string key")
        out[kv["key"]] = _json_any_value(kv.get("value", {}))
    return out


def _json_hex_id(value: object, size: int) -> str | None:
    """Hex id of ``size`` bytes, lowercased; None when missing or malformed."""
    if not isinstance(value, str) or len(value) != size * 2:
        return None
    try:
        bytes.fromhex(value)
    except ValueError:
        return None
    return value.lower()


def decode_json(body: bytes | bytearray) -> DecodedExport:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"invalid OTLP JSON: {exc}") from exc
    except RecursionError as exc:  # e.g. 200,000 nested '[': an answer, not a dropped connection
        raise DecodeError("invalid OTLP JSON: nested too deeply") from exc
    if not isinstance(doc, dict):
        raise DecodeError("invalid OTLP JSON: top level must be an object")
    out = DecodedExport()
    check_text = _SURROGATE_ESCAPE.search(body) is not None
    try:
        for resource_spans in _get(doc, "resourceSpans", "resource_spans", []) or []:
            resource_obj = resource_spans.get("resource") or {}
            resource = _json_attributes(resource_obj.get("attributes", []))
            for scope_spans in _get(resource_spans, "scopeSpans", "scope_spans", []) or []:
                scope_name = str((scope_spans.get("scope") or {}).get("name", ""))
                if check_text and not _encodable((resource, scope_name)):
                    raise DecodeError("invalid OTLP JSON: a resource or scope string is not valid Unicode")
                for span in scope_spans.get("spans", []) or []:
                    if check_text and not _encodable(span):
                        name = span.get("name") if isinstance(span, dict) else None
                        out.invalid.append(f"span {name!r}: a string is not valid Unicode (lone surrogate)")
                        continue
                    try:
                        _decode_json_span(span, resource, scope_name, out)
                    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
                        # a wrong type in one span costs that span, not the export
                        out.invalid.append(f"span: invalid structure: {str(exc)[:200]}")
    except DecodeError:
        raise
    except (AttributeError, TypeError, ValueError) as exc:
        raise DecodeError(f"invalid OTLP JSON structure: {exc}") from exc
    except RecursionError as exc:
        raise DecodeError("invalid OTLP JSON: attribute values nested too deeply") from exc
    return out


def _encodable(value: object) -> bool:
    """False when a string anywhere in ``value`` holds a lone surrogate (not writable as UTF-8)."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _decode_json_span(span: dict, resource: dict[str, object], scope_name: str, out: DecodedExport) -> None:
    raw_attrs = span.get("attributes", []) or []
    if not isinstance(raw_attrs, list):  # unreadable, so not known to be no LLM call: rejected
        raise TypeError(f"attributes must be a list, not {type(raw_attrs).__name__}")
    if not _is_llm_keys(kv.get("key", "") for kv in raw_attrs if isinstance(kv, dict)):
        out.skipped += 1
        return
    name = str(span.get("name", ""))
    trace_id = _json_hex_id(_get(span, "traceId", "trace_id"), 16)
    span_id = _json_hex_id(_get(span, "spanId", "span_id"), 8)
    if trace_id is None or span_id is None:
        out.invalid.append(f"span {name[:80]!r}: traceId must be 32 and spanId 16 hex characters")
        return
    try:
        attributes = _json_attributes(raw_attrs)
        start = _json_time(_get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
        end = _json_time(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    except (DecodeError, ValueError, TypeError, OverflowError) as exc:
        out.invalid.append(f"span {span_id}: {str(exc)[:200]}")
        return
    parent_span_id = _json_hex_id(_get(span, "parentSpanId", "parent_span_id"), 8) or ""
    status = span.get("status") or {}
    code = status.get("code", 0)
    if isinstance(code, str):  # enum names are also valid in OTLP/JSON
        code = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}.get(code, 0)
    out.spans.append(
        SpanView(
            trace_id=trace_id,
            span_id=span_id,
            name=name,
            start_time_ns=start,
            end_time_ns=end,
            attributes=attributes,
            resource=resource,
            status_code=int(code),
            status_message=str(status.get("message", "")),
            scope_name=scope_name,
            parent_span_id=parent_span_id,
        )
    )
