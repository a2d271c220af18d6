"""One ledger row per provider call, however many instrumentations saw it.

One call can reach the collector as several spans: the anthropic SDK traces itself and OpenLLMetry,
OpenInference or OpenLIT wrap the same method; ``opentelemetry-instrument`` loads every installed
instrumentor; LiteLLM drives the ``openai`` SDK that another instrumentation wraps. Two spans are
the same call when

* one is the **parent** of the other in the same trace (both LLM-call spans: wrappers nest), or
* they carry the same **provider response id** (``gen_ai.response.id``; OpenInference's response
  JSON), whichever trace they are in (LiteLLM starts its span in its logging thread), or
* they carry the same **call id** (``llmcost.call.id``), which otel_llmcost gives every span
  started during one SDK call another tracer traces: the key when a response id cannot be (a
  timeout before any answer; OpenInference's Anthropic stream span with outputs hidden, beside
  the SDK's own span that has one). A span may carry either key, both or neither.

Every call span the ledger has seen is kept in ``llm_call_spans`` with the key of the
``llm_calls`` row that holds its money (``billed_trace_id``, ``billed_span_id``): the suppressed
spans stay there as provenance, and a retried export of any of them is recognised and bills
nothing. Spans are grouped whichever arrives first and in whichever export: a later span joins
the group of an earlier one, and a span whose parent or child arrives later is joined by it.

What the row bills, when the spans disagree: the **usage** (and so the cost) of the span with the
better account — any tokens beat none (a peer's span of a call abandoned before any answer has
none, our estimate of it has the prompt), reported usage beats a local estimate, then the finer
token split (more token classes reported: cache reads, cache writes, their 1h part, reasoning,
audio) wins — and the
**attribution** of a span attributed to a team over one that fell to the default team (a peer's
own attribution mechanism may reach only its own span). On ties the first to arrive stays. When
the two come from different spans, the caller's ``merge(usage_entry, attribution_entry)`` builds
the row (the pipeline recomputes the chargeback for the team). When a later span improves the
row, the existing row takes the new account but keeps its key and start time (so its period never
moves), through ``SqlLedger._rewrite_rows``. Metrics never move for a suppressed span, also when it
improves a row: Prometheus counters keep what the first span said; the ledger is the source of truth.

Outcome records are not calls and never take part (``SpanLink`` is None for them).

Not merged: two rows already billed separately that a later span turns out to link (three
instrumentations nested A > B > C, exported A, then C, then B last). The later span joins the
first of them; the other row stays. Exporters send children before parents or a whole trace at
once, so the middle span does not come last in practice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from llmcost_collector.ledger.entry import COLUMNS, LedgerEntry
from llmcost_collector.ledger.schema import SPANS_TABLE, TABLE
from llmcost_collector.model import TEAM_FROM_DEFAULT

SPAN_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "response_id", "billed_trace_id", "billed_span_id",
    "ingested_at_ns", "call_id",
)  # fmt: skip
# What a stored span is read back as: its keys and the row that bills it.
_READ = tuple(column for column in SPAN_COLUMNS if column != "ingested_at_ns")

NEW = "new"  # billed: a new ledger row
DUPLICATE = "duplicate"  # this very span was seen before (a retried export): nothing billed
SUPPRESSED = "suppressed"  # another span of the same call holds the money

Key = tuple[str, str]
# merge(usage donor, attribution donor) -> the row: the first's usage and cost, the second's attribution
Merge = Callable[[LedgerEntry, LedgerEntry], LedgerEntry]
# fetch(sql with ? placeholders, params) -> rows
Fetch = Callable[[str, Sequence[object]], list[tuple]]
_CHUNK = 400  # pairs per IN list: far below both backends' parameter limits


class SpanLink(NamedTuple):
    """What ties a call span to other spans of the same call."""

    parent_span_id: str = ""
    response_id: str = ""
    call_id: str = ""


@dataclass
class Plan:
    """What one insert does: per entry its outcome, and the writes that follow from it."""

    outcomes: list[str]
    span_rows: list[tuple] = field(default_factory=list)  # llm_call_spans rows to insert
    replaced: dict[int, LedgerEntry] = field(default_factory=dict)  # entry index -> the row to insert instead
    rewrites: list[tuple[LedgerEntry, LedgerEntry]] = field(default_factory=list)  # (old, new)


def usage_rank(entry: LedgerEntry) -> tuple[bool, bool, int]:
    """Higher is the better account of the usage (see the module docstring)."""
    split = (
        entry.cache_read_tokens, entry.cache_write_tokens, entry.cache_write_1h_tokens,
        entry.reasoning_tokens, entry.input_audio_tokens, entry.output_audio_tokens,
    )  # fmt: skip
    counted = bool(entry.input_tokens or entry.output_tokens or any(split))
    return (counted, not entry.usage_estimated, sum(1 for n in split if n))


def attribution_rank(entry: LedgerEntry) -> bool:
    return entry.team_source != TEAM_FROM_DEFAULT


def _best(candidates: Sequence[LedgerEntry], merge: Merge | None) -> LedgerEntry:
    """The row for these spans of one call, earliest first (ties keep the earliest)."""
    order = range(len(candidates))
    usage = candidates[max(order, key=lambda i: (usage_rank(candidates[i]), -i))]
    attributed = candidates[max(order, key=lambda i: (attribution_rank(candidates[i]), -i))]
    if attribution_rank(attributed) == attribution_rank(usage):
        return usage
    if merge is None:  # no way to re-derive the chargeback here: attribution first
        return attributed
    return merge(usage, attributed)


def lock_keys(entries: Sequence[LedgerEntry], links: Sequence[SpanLink | None]) -> list[str]:
    """What concurrent writers must serialize on: the traces, response ids and call ids of call spans."""
    keys = {entry.trace_id for entry, link in zip(entries, links, strict=True) if link is not None}
    keys.update(link.response_id for link in links if link is not None and link.response_id)
    keys.update(link.call_id for link in links if link is not None and link.call_id)
    return sorted(keys)


class _Groups:
    """Union-find over entry indexes (int) and already-billed row keys (Key)."""

    def __init__(self) -> None:
        self.parent: dict[int | Key, int | Key] = {}

    def find(self, node: int | Key) -> int | Key:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: int | Key, b: int | Key) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def _pairs_in(
    fetch: Fetch, table: str, columns: Sequence[str], pair: tuple[str, str], pairs: Sequence[Key]
) -> list[tuple]:
    """Rows of ``table`` whose ``pair`` of columns is one of ``pairs``, by index lookups.

    A join with a VALUES list, not ``(a, b) IN (VALUES ...)``: SQLite answers the latter with a
    scan of the whole table.
    """
    select = ", ".join(f"t.{column}" for column in columns)
    rows: list[tuple] = []
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        values = ", ".join(["(?, ?)"] * len(chunk))
        rows += fetch(
            f"SELECT {select} FROM (VALUES {values}) AS v JOIN {table} AS t "
            f"ON t.{pair[0]} = v.column1 AND t.{pair[1]} = v.column2",
            [v for key in chunk for v in key],
        )
    return rows


def _keyed_in(fetch: Fetch, columns: Sequence[str], key: str, values: Sequence[str]) -> list[tuple]:
    """Stored spans whose ``key`` (``response_id`` or ``call_id``) is one of ``values``."""
    rows: list[tuple] = []
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        rows += fetch(
            f"SELECT {', '.join(columns)} FROM {SPANS_TABLE} "  # the condition the partial index has
            f"WHERE {key} <> '' AND {key} IN ({', '.join(['?'] * len(chunk))})",
            list(chunk),
        )
    return rows


def plan(
    fetch: Fetch,
    entries: Sequence[LedgerEntry],
    links: Sequence[SpanLink | None],
    now_ns: int,
    merge: Merge | None = None,
) -> Plan:
    """Decide, inside the insert transaction, what each entry is; nothing is written here."""
    outcomes = [NEW] * len(entries)
    first: dict[Key, int] = {}
    for index, entry in enumerate(entries):
        key = (entry.trace_id, entry.span_id)
        if key in first:
            outcomes[index] = DUPLICATE  # repeated inside this batch
        else:
            first[key] = index
    calls = {key: i for key, i in first.items() if links[i] is not None}
    if not calls:
        return Plan(outcomes)
    columns = _READ
    by_key, by_parent = ("trace_id", "span_id"), ("trace_id", "parent_span_id")
    seen = {(row[0], row[1]) for row in _pairs_in(fetch, SPANS_TABLE, columns, by_key, list(calls))}
    fresh: dict[Key, int] = {}
    for key, index in calls.items():
        if key in seen:
            outcomes[index] = DUPLICATE
        else:
            fresh[key] = index
    if not fresh:
        return Plan(outcomes)
    link_of = {index: links[index] or SpanLink() for index in fresh.values()}
    parents = sorted(
        {(t, link_of[i].parent_span_id) for (t, _), i in fresh.items() if link_of[i].parent_span_id}
    )
    responses = sorted({link.response_id for link in link_of.values() if link.response_id})
    call_ids = sorted({link.call_id for link in link_of.values() if link.call_id})
    related = _pairs_in(fetch, SPANS_TABLE, columns, by_key, parents) if parents else []
    related += _pairs_in(fetch, SPANS_TABLE, columns, by_parent, sorted(fresh))
    related += _keyed_in(fetch, columns, "response_id", responses) if responses else []
    related += _keyed_in(fetch, columns, "call_id", call_ids) if call_ids else []

    # Only spans linked to another (in the batch or stored) enter the union-find: a span linked to
    # nothing, the common case, is its own row without any bookkeeping (see the end).
    groups = _Groups()
    by_response: dict[str, int | Key] = {}
    by_call: dict[str, int | Key] = {}
    for (trace_id, _), index in fresh.items():
        link = link_of[index]
        if link.parent_span_id:
            parent = fresh.get((trace_id, link.parent_span_id))
            if parent is not None:
                groups.union(index, parent)
        if link.response_id:
            other = by_response.setdefault(link.response_id, index)
            if other != index:
                groups.union(index, other)
        if link.call_id:
            other = by_call.setdefault(link.call_id, index)
            if other != index:
                groups.union(index, other)
    children: dict[Key, list[int]] = {}  # (trace, parent span) -> fresh spans under it
    for (trace_id, _), index in fresh.items():
        if link_of[index].parent_span_id:
            children.setdefault((trace_id, link_of[index].parent_span_id), []).append(index)
    for trace_id, span_id, parent_span_id, response_id, billed_trace, billed_span, call_id in related:
        billed: Key = (billed_trace, billed_span)
        parent = fresh.get((trace_id, parent_span_id))  # the stored span is a child of a fresh one
        if parent is not None:
            groups.union(parent, billed)
        for index in children.get((trace_id, span_id), ()):  # a fresh span is a child of the stored one
            groups.union(index, billed)
        if response_id and response_id in by_response:
            groups.union(by_response[response_id], billed)
        if call_id and call_id in by_call:
            groups.union(by_call[call_id], billed)

    members: dict[int | Key, list[int | Key]] = {}
    for node in list(groups.parent):
        members.setdefault(groups.find(node), []).append(node)
    billed_rows = sorted({n for group in members.values() for n in group if isinstance(n, tuple)})
    existing = _existing_entries(fetch, billed_rows) if billed_rows else {}

    result = Plan(outcomes)
    for (trace_id, span_id), index in fresh.items():  # linked to nothing: a call seen once
        if index not in groups.parent:
            link = link_of[index]
            result.span_rows.append(
                (trace_id, span_id, link.parent_span_id, link.response_id, trace_id, span_id, now_ns,
                 link.call_id)
            )  # fmt: skip
    for group in members.values():
        indexes = sorted(n for n in group if isinstance(n, int))
        if not indexes:
            continue
        stored = sorted(n for n in group if isinstance(n, tuple) and n in existing)
        fresh_entries = [entries[i] for i in indexes]
        if not stored and len(indexes) == 1:  # linked only to rows no longer in the ledger
            entry, link = entries[indexes[0]], link_of[indexes[0]]
            result.span_rows.append(
                (entry.trace_id, entry.span_id, link.parent_span_id, link.response_id, entry.trace_id,
                 entry.span_id, now_ns, link.call_id)
            )  # fmt: skip
            continue
        if stored:
            target = stored[0]
            old = existing[target]
            best = _best([old, *fresh_entries], merge)
            if best is not old and best != old:
                result.rewrites.append((old, _take_over(old, best)))
            winner: int | None = None
        else:
            best = _best(fresh_entries, merge)
            # the row is keyed on the span whose usage it bills
            donor = next((i for i in indexes if entries[i] is best), None)
            if donor is None:  # merged: the usage donor's key
                donor = max(indexes, key=lambda i: (usage_rank(entries[i]), -i))
                result.replaced[donor] = _take_over(entries[donor], best)
            winner = donor
            target = (entries[donor].trace_id, entries[donor].span_id)
        for index in indexes:
            if index != winner:
                outcomes[index] = SUPPRESSED
            entry, link = entries[index], link_of[index]
            result.span_rows.append(
                (entry.trace_id, entry.span_id, link.parent_span_id, link.response_id, *target, now_ns,
                 link.call_id)
            )  # fmt: skip
    return result


def _existing_entries(fetch: Fetch, keys: Sequence[Key]) -> dict[Key, LedgerEntry]:
    rows = _pairs_in(fetch, TABLE, COLUMNS, ("trace_id", "span_id"), keys)
    return {(row[0], row[1]): LedgerEntry(*row) for row in rows}


def _take_over(old: LedgerEntry, better: LedgerEntry) -> LedgerEntry:
    """The better account under the row's identity: its key, times and ingest time."""
    return better._replace(
        trace_id=old.trace_id,
        span_id=old.span_id,
        start_time_ns=old.start_time_ns,
        end_time_ns=old.end_time_ns,
        ingested_at_ns=old.ingested_at_ns,
    )
