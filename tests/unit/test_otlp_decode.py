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


# --- property-based fuzzing: only the documented rejections, and no valid span lost ----------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from llmcost_collector.model import SpanView  # noqa: E402
from llmcost_collector.normalize import semconv  # noqa: E402
from llmcost_collector.normalize.span import SpanRejected, normalize_span  # noqa: E402

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Every attribute name the collector reads (all dialects), and some it does not.
KNOWN_KEYS = sorted(v for k, v in vars(semconv).items() if k.isupper() and isinstance(v, str))
KEYS = st.one_of(st.sampled_from(KNOWN_KEYS), st.sampled_from(["gen_ai.x", "llm.y", "http.route"]), st.text())
# Text with control characters, NUL and lone surrogates (which no UTF-8 encoder can write).
TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=30)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 10**9, 10**9 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(TEXT, NUMBERS, st.booleans(), st.binary(max_size=20), st.none())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)  # fmt: skip


def good_json_span() -> dict:
    return {"traceId": TRACE_HEX, "spanId": SPAN_HEX, "name": "chat gpt-4o",
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
            "attributes": [{"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                           {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                           {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "3"}}]}  # fmt: skip


def json_any_value(value: object) -> object:
    """An OTLP/JSON AnyValue for a fuzzed value, or the raw value itself (a wrong type)."""
    kinds = {str: "stringValue", bool: "boolValue", int: "intValue", float: "doubleValue"}
    kind = kinds.get(type(value))
    if kind == "intValue":
        return {kind: str(value)}
    return {kind: value} if kind else value


JSON_VALUES = st.recursive(
    st.one_of(TEXT, NUMBERS, st.booleans(), st.none()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
SPAN_FIELDS = ["traceId", "spanId", "name", "startTimeUnixNano", "endTimeUnixNano", "attributes", "status",
               "parentSpanId", "trace_id", "span_id"]  # fmt: skip


@st.composite
def hostile_json_span(draw: st.DrawFn) -> object:
    """A span with fuzzed attributes and some fields replaced by anything JSON can say."""
    if draw(st.booleans()):
        return draw(JSON_VALUES)  # not even an object
    span = good_json_span()
    span["spanId"] = "ffffffffffffffff"
    for key, value in draw(st.lists(st.tuples(KEYS, JSON_VALUES), max_size=6)):
        span["attributes"].append({"key": key, "value": json_any_value(value)})
    for field in draw(st.lists(st.sampled_from(SPAN_FIELDS), max_size=3, unique=True)):
        span[field] = draw(JSON_VALUES)
    return span


def json_body(*spans: object) -> bytes:
    doc = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}]}]}  # fmt: skip
    return json.dumps(doc).encode()


def assert_good_span_kept(spans: list[SpanView]) -> None:
    good = [span for span in spans if span.span_id == SPAN_HEX]
    assert len(good) == 1
    call = normalize_span(good[0])
    assert call is not None and call.usage.input_tokens == 12


def normalize_or_reject(span: SpanView) -> None:
    """Normalization either reads a call (or not-a-call) or raises the documented rejection."""
    try:
        normalize_span(span)
    except SpanRejected:
        pass


@FUZZ
@given(hostile_json_span(), st.booleans())
def test_fuzzed_json_span_costs_at_most_itself(hostile: object, hostile_first: bool) -> None:
    body = json_body(hostile, good_json_span()) if hostile_first else json_body(good_json_span(), hostile)
    decoded = decode_json(body)  # a hostile span is never the whole export's fault
    assert_good_span_kept(decoded.spans)
    assert len(decoded.spans) + len(decoded.invalid) + decoded.skipped == 2
    for span in decoded.spans:
        normalize_or_reject(span)


@FUZZ
@given(st.binary(max_size=400) | st.builds(lambda b, i, x: b[:i] + x + b[i:], st.just(json_body(good_json_span())), st.integers(0, 600), st.binary(min_size=1, max_size=8)))  # fmt: skip
def test_fuzzed_json_bytes_decode_or_raise_decode_error(body: bytes) -> None:
    try:
        decoded = decode_json(body)
    except DecodeError:
        return
    for span in decoded.spans:
        normalize_or_reject(span)


def any_value(value: object, target: AnyValue) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = max(-(2**63), min(2**63 - 1, value))
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value.encode("utf-8", "replace").decode("utf-8", "replace")
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            any_value(item, target.array_value.values.add())
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            kv = target.kvlist_value.values.add(key=key.encode("utf-8", "replace").decode())
            any_value(item, kv.value)


@FUZZ
@given(
    st.lists(st.tuples(KEYS, VALUES), max_size=8),
    st.binary(max_size=20),
    st.binary(max_size=12),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.booleans(),
)
def test_fuzzed_protobuf_span_costs_at_most_itself(
    attributes: list[tuple[str, object]], trace_id: bytes, span_id: bytes, start: int, end: int, first: bool
) -> None:
    request = _request()
    spans = request.resource_spans[0].scope_spans[0].spans
    hostile = spans.add()
    hostile.trace_id, hostile.span_id = trace_id, span_id
    hostile.start_time_unix_nano, hostile.end_time_unix_nano = start, end
    for key, value in attributes:
        any_value(value, hostile.attributes.add(key=key.encode("utf-8", "replace").decode()).value)
    if first:
        spans.insert(0, spans.pop())  # the hostile one before the good one
    decoded = decode_protobuf(request.SerializeToString())
    good = [span for span in decoded.spans if span.span_id == SPAN_HEX]
    assert len(good) == 1 and normalize_span(good[0]) is not None
    for span in decoded.spans:
        normalize_or_reject(span)


@FUZZ
@given(st.binary(max_size=600) | st.builds(lambda b, i, x: b[:i] + x + b[i + len(x):], st.just(_request().SerializeToString()), st.integers(0, 400), st.binary(min_size=1, max_size=6)))  # fmt: skip
def test_fuzzed_protobuf_bytes_decode_or_raise_decode_error(body: bytes) -> None:
    try:
        decoded = decode_protobuf(body)
    except DecodeError:
        return
    for span in decoded.spans:
        normalize_or_reject(span)


@FUZZ
@given(
    st.dictionaries(KEYS, VALUES, max_size=10),
    st.dictionaries(KEYS, VALUES, max_size=4),
    TEXT,
    st.integers(-5, 2**40),
)
def test_fuzzed_attributes_normalize_or_are_rejected(
    attributes: dict, resource: dict, scope: str, status: int
) -> None:  # type: ignore[type-arg]
    span = SpanView(trace_id=TRACE_HEX, span_id=SPAN_HEX, name="chat", start_time_ns=1, end_time_ns=2,
                    attributes=attributes, resource=resource, status_code=status, scope_name=scope)  # fmt: skip
    normalize_or_reject(span)
