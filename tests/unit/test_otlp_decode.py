"""OTLP decoding: protobuf and JSON give the same SpanViews; JSON ids are hex, not base64."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from llmcost_collector.receive.decode import DecodeError, decode_json, decode_protobuf
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"
PARENT_HEX = "00f067aa0ba902b7"


def _request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="svc")))
    ss = rs.scope_spans.add()
    ss.scope.name = "scope"
    llm = ss.spans.add()
    llm.trace_id = bytes.fromhex(TRACE_HEX)
    llm.span_id = bytes.fromhex(SPAN_HEX)
    llm.parent_span_id = bytes.fromhex(PARENT_HEX)  # the ledger groups nested spans of one call
    llm.name = "chat gpt-4o"
    llm.start_time_unix_nano = 1_700_000_000_000_000_000
    llm.end_time_unix_nano = 1_700_000_001_000_000_000
    llm.status.code = 2
    llm.attributes.extend(
        [
            KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o")),
            KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=12)),
            KeyValue(key="llmcost.cache.hit", value=AnyValue(bool_value=True)),
            KeyValue(key="x.ratio", value=AnyValue(double_value=0.5)),
        ]
    )
    llm.attributes.add(key="gen_ai.response.finish_reasons").value.array_value.values.add(string_value="stop")
    other = ss.spans.add()
    other.trace_id = bytes(16)
    other.span_id = bytes(8)
    other.name = "GET /"
    other.attributes.append(KeyValue(key="http.method", value=AnyValue(string_value="GET")))
    return request


def test_protobuf_materializes_only_llm_spans() -> None:
    decoded = decode_protobuf(_request().SerializeToString())
    assert decoded.skipped == 1
    (span,) = decoded.spans
    assert (span.trace_id, span.span_id) == (TRACE_HEX, SPAN_HEX)
    assert span.attributes == {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 12,
        "llmcost.cache.hit": True,
        "x.ratio": 0.5,
        "gen_ai.response.finish_reasons": ["stop"],
    }
    assert span.resource == {"service.name": "svc"}
    assert (span.status_code, span.scope_name, span.name) == (2, "scope", "chat gpt-4o")
    assert span.end_time_ns - span.start_time_ns == 1_000_000_000


def test_json_matches_protobuf_and_reads_hex_ids() -> None:
    request = _request()
    doc = json.loads(json_format.MessageToJson(request))
    # OTLP/JSON mandates hex ids and protobuf's JSON mapping uses base64: write them as OTLP says.
    span_doc = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span_doc["traceId"], span_doc["spanId"], span_doc["parentSpanId"] = TRACE_HEX, SPAN_HEX, PARENT_HEX
    del doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    decoded = decode_json(json.dumps(doc).encode())
    (span,) = decoded.spans
    expected = decode_protobuf(request.SerializeToString()).spans[0]
    assert span == expected
    assert span.parent_span_id == PARENT_HEX
    # The pitfall this decoder exists for: json_format reads the hex id as base64 bytes.
    parsed = json_format.Parse(json.dumps(doc), ExportTraceServiceRequest())
    assert parsed.resource_spans[0].scope_spans[0].spans[0].trace_id.hex() != TRACE_HEX


def test_json_accepts_enum_names_and_string_int64() -> None:
    body = {
        "resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": TRACE_HEX.upper(), "spanId": SPAN_HEX, "name": "x",
            "startTimeUnixNano": "5", "endTimeUnixNano": "9",
            "status": {"code": "STATUS_CODE_ERROR"},
            "attributes": [{"key": "gen_ai.usage.output_tokens", "value": {"intValue": "7"}}],
        }]}]}]
    }  # fmt: skip
    (span,) = decode_json(json.dumps(body).encode()).spans
    assert (span.trace_id, span.status_code, span.start_time_ns, span.attributes) == (
        TRACE_HEX, 2, 5, {"gen_ai.usage.output_tokens": 7},
    )  # fmt: skip


def test_bad_ids_are_per_span_rejections_not_whole_export_errors() -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "zz", "spanId": SPAN_HEX, "name": "bad", "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "m"}}]},
    ]}]}]}  # fmt: skip
    decoded = decode_json(json.dumps(body).encode())
    assert decoded.spans == [] and len(decoded.invalid) == 1 and "'bad'" in decoded.invalid[0]


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"resourceSpans": 3}'])
def test_undecodable_json_raises(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_json(body)


def test_a_span_of_the_wrong_shape_is_rejected_alone() -> None:
    decoded = decode_json(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": 3}, 7]}]}]}')
    assert decoded.spans == [] and len(decoded.invalid) == 2


def test_undecodable_protobuf_raises() -> None:
    with pytest.raises(DecodeError):
        decode_protobuf(b"\xff\xff\xff\xff")


@pytest.mark.parametrize(
    ("keys", "is_llm"),
    [
        (["gen_ai.request.model"], True),
        (["http.method", "llm.model_name"], True),
        (["llmcost.outcome"], True),
        (["llmcost.outcome.count"], False),  # only the outcome name marks an outcome record
        (["my.gen_ai.thing", "xllm.model"], False),  # the prefix must start the key
        (["http.route", "db.system"], False),
        ([], False),
    ],
)
def test_llm_spans_are_recognized_by_key_prefix(keys: list[str], is_llm: bool) -> None:
    from llmcost_collector.receive.decode import _is_llm_keys

    assert _is_llm_keys(keys) is is_llm
