"""Coverage-guided fuzzing (atheris, libFuzzer) of OTLP decoding and normalization.

Run by ``test_collector_hostile_inputs.py`` for a bounded number of inputs, seeded with the
bodies of this folder's hostile corpus: every input, read as OTLP protobuf, as OTLP/JSON and
gzipped, must either decode or raise ``DecodeError``, and every decoded span must normalize or be
rejected with ``SpanRejected``. Any other exception is a crash: atheris prints the input and exits
non-zero. By hand: ``python fuzz_decode.py CORPUS_DIR -runs=100000``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from llmcost_collector.normalize.span import SpanRejected, normalize_span
    from llmcost_collector.receive.admission import BudgetExhausted, ByteBudget, Charge
    from llmcost_collector.receive.decode import DecodeError, decode_json, decode_protobuf
    from llmcost_collector.receive.otlp_http import BodyTooLarge, gunzip_capped

LIMIT = 1 << 20


def one_input(data: bytes) -> None:
    bodies = [data]
    try:
        with Charge(ByteBudget(4 * LIMIT)) as charge:
            bodies.append(bytes(gunzip_capped(data, LIMIT, charge)))
    except (DecodeError, BodyTooLarge, BudgetExhausted):  # the refusals a gzip body may get
        pass
    for body in bodies:
        for decode in (decode_protobuf, decode_json):
            try:
                decoded = decode(body)
            except DecodeError:
                continue
            for span in decoded.spans:
                try:
                    normalize_span(span)
                except SpanRejected:
                    pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
