"""Writes the hostile-input corpus beside it: one file per case, the raw HTTP request a client
sends (framing included, so lying lengths are cases too) after one ``# expect`` line with the
collector's answer: ``status``, and for a 200 the spans ``rejected`` and ``billed``.

The files are the regression suite (``test_collector_hostile_inputs.py`` sends each to a
collector); this script is how they were made and how a new case is added:
``python tests/integration/hostile/make_corpus.py`` rewrites them all.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

HERE = Path(__file__).parent
JSON, PROTOBUF = "application/json", "application/x-protobuf"
START = "1767225600000000000"  # 2026-01-01T00:00:00Z


def attr(key: str, value: object) -> dict:
    if isinstance(value, dict):
        return {"key": key, "value": value}
    if isinstance(value, str):
        return {"key": key, "value": {"stringValue": value}}
    return {"key": key, "value": {"intValue": str(value)}}


def span(case: int, n: int, **changes: object) -> dict:
    """A billable gpt-4o span of trace ``case`` (so each case's rows are its own)."""
    doc: dict = {
        "traceId": f"{case:032x}",
        "spanId": f"{n:016x}",
        "name": "chat gpt-4o",
        "startTimeUnixNano": START,
        "endTimeUnixNano": str(int(START) + 1_000_000),
        "attributes": [
            attr("gen_ai.provider.name", "openai"),
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.request.model", "gpt-4o"),
            attr("gen_ai.usage.input_tokens", 1000),
            attr("gen_ai.usage.output_tokens", 200),
            attr("llmcost.team", "hostile"),
        ],
    }
    doc.update(changes)
    return doc


def with_attr(case: int, n: int, key: str, value: object) -> dict:
    doc = span(case, n)
    doc["attributes"] = [a for a in doc["attributes"] if a["key"] != key] + [attr(key, value)]
    return doc


def export(*spans: object) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [attr("service.name", "hostile")]},
                    "scopeSpans": [{"scope": {"name": "corpus"}, "spans": list(spans)}],
                }
            ]
        }
    ).encode()


def beside_good(case: int, bad: object) -> bytes:
    """The hostile span next to a good one in the same export: the good one must be billed."""
    return export(span(case, 1), bad)


def request(body: bytes, content_type: str = JSON, *, extra: str = "", length: str | None = None) -> bytes:
    head = f"POST /v1/traces HTTP/1.1\r\nHost: collector\r\nContent-Type: {content_type}\r\n{extra}"
    head += f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    return head.encode() + body


def protobuf(case: int, mutate) -> bytes:  # type: ignore[no-untyped-def]
    """A good span and a mutated copy, as protobuf."""
    from google.protobuf import json_format

    doc = json.loads(beside_good(case, span(case, 2)))
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:  # protobuf JSON ids are base64
        s["traceId"] = _b64(bytes.fromhex(s["traceId"]))
        s["spanId"] = _b64(bytes.fromhex(s["spanId"]))
    message = json_format.ParseDict(doc, ExportTraceServiceRequest())
    mutate(message.resource_spans[0].scope_spans[0].spans[1])
    return message.SerializeToString()


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


def nested_kvlist(depth: int) -> dict:
    value: dict = {"stringValue": "leaf"}
    for _ in range(depth):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def cases() -> dict[str, tuple[str, bytes]]:
    c: dict[str, tuple[str, bytes]] = {}
    n = iter(range(1, 1000))

    def add(name: str, expect: str, raw: bytes) -> None:
        c[name] = (expect, raw)

    # nesting
    add("nesting_json_arrays", "400", request(b"[" * 200_000))
    k = next(n)
    deep = (
        b'{"kvlistValue": {"values": [{"key": "k", "value": ' * 5000
        + b'{"stringValue": "leaf"}'
        + b"}]}}" * 5000
    )
    body = beside_good(k, with_attr(k, 2, "x.deep", {"stringValue": "__DEEP__"}))
    add("nesting_attribute_kvlist_deep", "400", request(body.replace(b'{"stringValue": "__DEEP__"}', deep)))
    k = next(n)
    add(
        "nesting_attribute_kvlist_shallow",
        "200 rejected=0 billed=2",
        request(beside_good(k, with_attr(k, 2, "x.nest", nested_kvlist(50)))),
    )
    # huge and negative numbers, NaN
    for name, value in [
        ("huge", "99999999999999999999999"),
        ("negative", "-5"),
        ("over_a_billion", "1000000001"),
    ]:
        k = next(n)
        add(
            f"number_tokens_{name}",
            "200 rejected=1 billed=1",
            request(beside_good(k, with_attr(k, 2, "gen_ai.usage.input_tokens", {"intValue": value}))),
        )
    for name, literal in [("nan", "NaN"), ("infinity", "Infinity"), ("minus_infinity", "-Infinity")]:
        k = next(n)
        body = beside_good(k, with_attr(k, 2, "gen_ai.usage.input_tokens", {"doubleValue": "__X__"}))
        add(
            f"number_tokens_{name}",
            "200 rejected=1 billed=1",
            request(body.replace(b'"__X__"', literal.encode())),
        )
    k = next(n)
    add(
        "number_tokens_fraction",
        "200 rejected=1 billed=1",
        request(beside_good(k, with_attr(k, 2, "gen_ai.usage.input_tokens", {"doubleValue": 10.5}))),
    )
    for name, value in [
        ("2_pow_63", str(2**63)),
        ("negative", "-1"),
        ("float_1e23", 1e23),
        ("garbage", "soon"),
        ("2_pow_64", str(2**64)),
    ]:
        k = next(n)
        add(
            f"number_start_time_{name}",
            "200 rejected=1 billed=1",
            request(beside_good(k, span(k, 2, startTimeUnixNano=value))),
        )
    # control and unicode characters
    k = next(n)
    add(
        "text_nul_in_team",
        "200 rejected=1 billed=1",
        request(beside_good(k, with_attr(k, 2, "llmcost.team", "a\x00b"))),
    )
    k = next(n)
    add(
        "text_lone_surrogate",
        "200 rejected=1 billed=1",
        request(beside_good(k, with_attr(k, 2, "llmcost.feature", "x")).replace(b'"x"', b'"\\ud800"')),
    )
    k = next(n)
    add(
        "text_control_characters",
        "200 rejected=0 billed=2",
        request(beside_good(k, with_attr(k, 2, "llmcost.feature", "\x01\x1b[31mred\x7f\r\n"))),
    )
    k = next(n)
    add(
        "text_unicode",
        "200 rejected=0 billed=2",
        request(beside_good(k, with_attr(k, 2, "llmcost.feature", "检索 🚀 \u202eevil\u200b"))),
    )
    k = next(n)
    add(
        "text_invalid_utf8",
        "400",
        request(beside_good(k, with_attr(k, 2, "llmcost.feature", "XE9X")).replace(b"XE9X", b"\xe9")),
    )
    # 1 MB values
    for key in ("llmcost.feature", "session.id", "gen_ai.request.model", "llmcost.team"):
        k = next(n)
        add(
            f"size_1mb_{key.replace('.', '_')}",
            "200 rejected=1 billed=1",
            request(beside_good(k, with_attr(k, 2, key, "v" * 1_000_000))),
        )
    k = next(n)
    # the span name is not stored: a long one costs nothing
    add(
        "size_1mb_span_name",
        "200 rejected=0 billed=2",
        request(beside_good(k, span(k, 2, name="n" * 1_000_000))),
    )
    # wrong types
    k = next(n)
    for name, changes in [
        ("trace_id_number", {"traceId": 12345}),
        ("attributes_object", {"attributes": {"a": 1}}),
        ("start_time_list", {"startTimeUnixNano": [1]}),
        ("status_string", {"status": "ERROR"}),
    ]:
        k = next(n)
        add(f"type_{name}", "200 rejected=1 billed=1", request(beside_good(k, span(k, 2, **changes))))
    k = next(n)
    add("type_span_is_a_string", "200 rejected=1 billed=1", request(beside_good(k, "span")))
    k = next(n)
    add(
        "type_tokens_as_string_value",
        "200 rejected=1 billed=1",
        request(beside_good(k, with_attr(k, 2, "gen_ai.usage.input_tokens", "1000"))),
    )
    k = next(n)
    add(
        "type_int_value_object",
        "200 rejected=1 billed=1",
        request(beside_good(k, with_attr(k, 2, "gen_ai.usage.input_tokens", {"intValue": {"n": 1}}))),
    )
    add("type_top_level_array", "400", request(b"[]"))
    add("type_resource_spans_string", "400", request(b'{"resourceSpans": "x"}'))
    # wrong-length ids
    for name, changes in [
        ("trace_id_30_hex", {"traceId": "ab" * 15}),
        ("span_id_18_hex", {"spanId": "ab" * 9}),
        ("span_id_not_hex", {"spanId": "zz" * 8}),
        ("span_id_missing", {"spanId": None}),
    ]:
        k = next(n)
        add(f"id_{name}", "200 rejected=1 billed=1", request(beside_good(k, span(k, 2, **changes))))
    k = next(n)
    add(
        "id_protobuf_trace_id_15_bytes",
        "200 rejected=1 billed=1",
        request(protobuf(k, lambda s: setattr(s, "trace_id", b"\x01" * 15)), PROTOBUF),
    )
    k = next(n)
    add(
        "id_protobuf_span_id_empty",
        "200 rejected=1 billed=1",
        request(protobuf(k, lambda s: setattr(s, "span_id", b"")), PROTOBUF),
    )
    k = next(n)
    add(
        "number_protobuf_start_time_uint64_max",
        "200 rejected=1 billed=1",
        request(protobuf(k, lambda s: setattr(s, "start_time_unix_nano", 2**64 - 1)), PROTOBUF),
    )
    add("protobuf_garbage", "400", request(b"\xff\x00garbage", PROTOBUF))
    add("protobuf_truncated", "400", request(protobuf(next(n), lambda s: None)[:-7], PROTOBUF))
    # gzip bombs and broken gzip
    add(
        "gzip_bomb_zeros",
        "413",
        request(gzip.compress(b"\x00" * (64 * 1024 * 1024)), PROTOBUF, extra="Content-Encoding: gzip\r\n"),
    )
    add(
        "gzip_bomb_json_spaces",
        "413",
        request(gzip.compress(b"{" + b" " * (32 * 1024 * 1024) + b"}"), extra="Content-Encoding: gzip\r\n"),
    )
    k = next(n)
    add(
        "gzip_truncated",
        "400",
        request(gzip.compress(beside_good(k, span(k, 2)))[:-12], extra="Content-Encoding: gzip\r\n"),
    )
    add("gzip_claimed_but_plain", "400", request(b"{}", extra="Content-Encoding: gzip\r\n"))
    # lying lengths
    k = next(n)
    good = beside_good(k, span(k, 2))
    add("length_shorter_than_body", "400", request(good, length=str(len(good) // 2)))
    add("length_longer_than_body", "408", request(good[:100], length="1000"))
    add("length_negative", "400", request(b"{}", length="-1"))
    add("length_not_a_number", "400", request(b"{}", length="12abc"))
    add("length_over_the_cap", "413", request(b"", length="1000000000"))
    add("length_two_values", "400", request(b"{}", extra="Content-Length: 7\r\n"))
    add(
        "length_chunk_size_negative",
        "400",
        request(b"", extra="Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
        + b"-1\r\n{}\r\n0\r\n\r\n",
    )
    add(
        "length_chunk_size_huge",
        "408",  # announced, never sent: cut off at the body deadline
        request(b"", extra="Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
        + b"ffffffffffff\r\n"
        + b" " * 65536,
    )
    return c


def main() -> None:
    for old in HERE.glob("*.http"):
        old.unlink()
    for name, (expect, raw) in cases().items():
        (HERE / f"{name}.http").write_bytes(f"# expect {expect}\n".encode() + raw)


if __name__ == "__main__":
    main()
