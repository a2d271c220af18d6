"""The ingest pipeline: decoded spans -> normalized, attributed, priced calls -> ledger -> metrics.

Receivers call ``IngestPipeline.ingest`` from their own threads. Normalizing and pricing happen
there; the ledger writes happen on one writer thread that drains every waiting export into a
single transaction (group commit). ``ingest`` returns only after the transaction holding its rows
has committed, so acknowledging an export means its money is durable: a client that never got
the acknowledgement retries, and the (trace_id, span_id) key makes the retry a no-op.

Memory is bounded by the policy's ``queue_capacity_spans``: past it ``ingest`` raises ``Overloaded`` at once and the
receiver answers 503/UNAVAILABLE with Retry-After, which OTLP exporters retry. Receivers call
``check_capacity`` before they read or decode an export, so a full queue costs a refused export
nothing but its headers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import compress

from llmcost_collector.ledger import NEW, SUPPRESSED, Ledger, LedgerEntry, SpanLink
from llmcost_collector.ledger.entry import storage_fault
from llmcost_collector.metrics.collector_health import SelfMetrics
from llmcost_collector.metrics.cost import BilledCall, CostMetrics
from llmcost_collector.metrics.sessions import SessionCostTracker
from llmcost_collector.model import TEAM_FROM_SPAN, DecodedExport, LlmCall, SpanView
from llmcost_collector.normalize.span import SpanRejected, normalize_span
from llmcost_collector.policy import IngestPolicy
from llmcost_collector.price.billing import bill
from llmcost_collector.price.pricer import Pricer

log = logging.getLogger(__name__)

# (span attributes, resource attributes, asserted team, asserted feature) -> (team, source, feature)
AttributionResolver = Callable[[Mapping[str, object], Mapping[str, object], str, str], tuple[str, str, str]]


class Overloaded(Exception):
    """The writer queue is full; the client should retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"ingest queue full, retry after {retry_after:.0f}s")
        self.retry_after = retry_after


class LedgerUnavailable(Exception):
    """The ledger did not commit this export (error or timeout); nothing was acknowledged."""


class DeadlineExceeded(Exception):
    """The client's deadline passed before its export was queued: nothing of it was committed."""


# A row the ledger refused for what it holds (not for the ledger's state): rejected, never retried.
REFUSED = "refused"


class RateLimitedLog:
    """At most ``burst`` records per ``interval`` seconds for one kind of per-span error; the
    number suppressed is reported with the next record let through (no log flood from a client
    that sends the same bad span a million times)."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0, burst: int = 5) -> None:
        self._log = logger
        self._interval = interval
        self._burst = burst
        self._lock = threading.Lock()
        self._window: dict[str, tuple[float, int, int]] = {}  # kind -> (start, emitted, dropped)

    def warning(self, kind: str, msg: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            start, emitted, dropped = self._window.get(kind, (now, 0, 0))
            if now - start >= self._interval:
                start, emitted = now, 0
            if emitted >= self._burst:
                self._window[kind] = (start, emitted, dropped + 1)
                return
            self._window[kind] = (start, emitted + 1, 0)
        if dropped:
            msg += " (%d similar messages suppressed)"
            args = (*args, dropped)
        self._log.warning(msg, *args, exc_info=exc_info)


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0  # LLM spans newly billed
    duplicates: int = 0  # LLM spans already in the ledger (a retry): accepted, not billed again
    suppressed: int = 0  # LLM spans of a call another span bills (of duplicates): not billed again
    skipped: int = 0  # not LLM spans
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        """Partial-success message: the first few reasons, enough to debug a client."""
        if not self.errors:
            return ""
        shown = "; ".join(self.errors[:5])
        more = len(self.errors) - 5
        return shown + (f"; and {more} more" if more > 0 else "")


@dataclass(slots=True, eq=False)
class _Job:
    entries: list[LedgerEntry]
    billed: list[BilledCall]
    links: list[SpanLink | None]
    done: threading.Event = field(default_factory=threading.Event)
    new_rows: int = 0
    suppressed: int = 0
    refused: list[str] = field(default_factory=list)  # reasons for rows the ledger refused
    error: BaseException | None = None


class IngestPipeline:
    def __init__(
        self,
        *,
        ledger: Ledger,
        pricer: Pricer,
        policy: IngestPolicy,
        cost_metrics: CostMetrics,
        sessions: SessionCostTracker,
        self_metrics: SelfMetrics,
        max_commit_rows: int = 8192,
        commit_timeout: float = 30.0,
    ) -> None:
        self.ledger = ledger
        self.pricer = pricer
        self.policy = policy  # swapped whole on reload; read once per export
        self.cost_metrics = cost_metrics
        self.sessions = sessions
        self.self_metrics = self_metrics
        self.max_commit_rows = max_commit_rows
        self.commit_timeout = commit_timeout
        self._jobs: deque[_Job] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self.committed_batches = 0
        self._span_log = RateLimitedLog(log)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._writer, name="llmcost-ledger-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after committing what is queued (receivers must be stopped first)."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout)

    @property
    def queued_spans(self) -> int:
        return self._queued

    def _overloaded(self) -> Overloaded:
        self.self_metrics.exports_refused.labels("overloaded").inc()
        return Overloaded(retry_after=max(1.0, self._queued / 20_000))

    def check_capacity(self) -> None:
        """Raise ``Overloaded`` when the queue is already full: called before an export is read or
        decoded, so that work is not spent on an export that ``ingest`` would refuse."""
        if self._queued >= self.policy.limits.queue_capacity_spans:
            raise self._overloaded()

    # --- receiver side ------------------------------------------------------------------

    def ingest(self, decoded: DecodedExport, transport: str, deadline: float | None = None) -> IngestResult:
        """Bill one export. Returns after commit; raises Overloaded or LedgerUnavailable, and
        ``DeadlineExceeded`` (nothing queued) when ``time.monotonic()`` is past ``deadline``
        once the export is priced: a client that has given up gets none of it committed."""
        result = IngestResult(skipped=decoded.skipped)
        received = len(decoded.spans) + decoded.skipped + len(decoded.invalid)
        self.self_metrics.spans_received.labels(transport).inc(received)
        if decoded.skipped:
            self.self_metrics.spans_skipped.inc(decoded.skipped)
        for reason in decoded.invalid:
            self._reject(result, reason, "invalid_span")
        entries: list[LedgerEntry] = []
        billed: list[BilledCall] = []
        links: list[SpanLink | None] = []
        now_ns = time.time_ns()
        policy = self.policy
        scrub = policy.scrub_identifiers
        resolve = policy.rules.resolve
        mapping = policy.attribute_mapping
        for span in decoded.spans:
            try:
                call = normalize_span(span)
                if call is None:
                    result.skipped += 1
                    self.self_metrics.spans_skipped.inc()
                    continue
                if mapping:
                    mapping.apply(call.attribution, span.attributes, span.resource)
                self._attribute(call, span, resolve)
                priced = bill(self.pricer, call)  # a response-cache hit owes $0, its saving beside
            except SpanRejected as exc:
                self._reject(result, f"span {span.span_id}: {exc}", "invalid_usage")
                continue
            except Exception as exc:  # a bug must cost one span (reported), not the whole export
                self._span_log.warning("internal", "cannot process span %s", span.span_id, exc_info=True)
                self._reject(
                    result, f"span {span.span_id}: internal error ({type(exc).__name__})", "internal"
                )
                continue
            cost, savings, prompt_savings = (
                priced.cost,
                priced.savings_nanos,
                priced.prompt_cache_savings_nanos,
            )
            chargeback = policy.chargeback(call, cost.contracted_nanos)
            entry = LedgerEntry.from_call(call, cost, chargeback, now_ns, savings, prompt_savings)
            if scrub is not None:
                user_id, session_id = scrub(entry.user_id, entry.session_id)
                entry = entry._replace(user_id=user_id, session_id=session_id)
            fault = storage_fault(entry)
            if fault is not None:
                self._reject(result, f"span {span.span_id}: {fault}", "invalid_span")
                continue
            entries.append(entry)
            billed.append(BilledCall(call, cost, chargeback, savings, prompt_savings))
            # A response-cache hit replays a stored response (and its id) without calling the
            # provider: it is its own row (the savings), never a duplicate of the original call.
            response_id, call_id = ("", "") if call.cache_hit else (call.response_id, call.call_id)
            links.append(None if call.outcome else SpanLink(call.parent_span_id, response_id, call_id))
        if entries:
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded("the client's deadline passed before the export was queued")
            job = self._enqueue(entries, billed, links, policy.limits.queue_capacity_spans)
            if not job.done.wait(self.commit_timeout):
                raise LedgerUnavailable("ledger commit timed out")
            if job.error is not None:
                raise LedgerUnavailable(f"ledger commit failed: {type(job.error).__name__}")
            for reason in job.refused:
                self._reject(result, reason, "ledger_refused")
            result.accepted = job.new_rows
            result.duplicates = len(entries) - job.new_rows - len(job.refused)
            result.suppressed = job.suppressed
            if result.duplicates - result.suppressed:
                self.self_metrics.spans_duplicate.inc(result.duplicates - result.suppressed)
            if result.suppressed:
                self.self_metrics.spans_suppressed.inc(result.suppressed)
        return result

    @staticmethod
    def _attribute(call: LlmCall, span: SpanView, resolve: AttributionResolver) -> None:
        """Team per rules and trust policy; a matching rule may also supply a missing feature."""
        attribution = call.attribution
        team, source, feature = resolve(span.attributes, span.resource, attribution.team, attribution.feature)
        attribution.team = team
        attribution.team_source = source if team else TEAM_FROM_SPAN
        attribution.feature = feature

    def _reject(self, result: IngestResult, reason: str, kind: str) -> None:
        """Count a rejected span; ``kind`` is a fixed label (invalid_span, invalid_usage, internal)."""
        result.rejected += 1
        result.errors.append(reason)
        self.self_metrics.spans_rejected.labels(kind).inc()

    def _enqueue(
        self,
        entries: list[LedgerEntry],
        billed: list[BilledCall],
        links: list[SpanLink | None],
        capacity: int,
    ) -> _Job:
        job = _Job(entries, billed, links)
        with self._cond:
            if not self._running:
                raise LedgerUnavailable("collector is shutting down")
            if self._queued + len(entries) > capacity and self._queued:
                raise self._overloaded()
            self._jobs.append(job)
            self._queued += len(entries)
            self.self_metrics.queue_depth.set(self._queued)
            self._cond.notify()
        return job

    # --- writer side --------------------------------------------------------------------

    def _take(self) -> list[_Job]:
        with self._cond:
            while not self._jobs and self._running:
                self._cond.wait(0.5)
            jobs: list[_Job] = []
            rows = 0
            while self._jobs and (not jobs or rows + len(self._jobs[0].entries) <= self.max_commit_rows):
                job = self._jobs.popleft()
                jobs.append(job)
                rows += len(job.entries)
            return jobs

    def _writer(self) -> None:
        while True:
            jobs = self._take()
            if not jobs:
                if not self._running:
                    return
                continue
            self._commit(jobs)

    def _commit(self, jobs: list[_Job]) -> None:
        entries = [entry for job in jobs for entry in job.entries]
        links = [link for job in jobs for link in job.links]
        started = time.perf_counter()
        refusals: dict[int, str] = {}
        try:
            outcomes = self._record_isolating(entries, links, 0, refusals)
        except Exception as exc:  # the ledger is down: fail these exports, clients retry
            self._span_log.warning(
                "commit",
                "ledger insert failed for %d rows: %s",
                len(entries),
                type(exc).__name__,
                exc_info=True,
            )
            for job in jobs:
                job.error = exc
            self._finish(jobs, len(entries))
            return
        self.self_metrics.commit_seconds.observe(time.perf_counter() - started)
        self.committed_batches += 1
        new_billed: list[BilledCall] = []
        new_session_ids: list[str] = []  # as the ledger stored them (privacy may hash or drop them)
        offset = 0
        for job in jobs:
            count = len(job.entries)
            job_outcomes = outcomes[offset : offset + count]
            job_flags = [outcome == NEW for outcome in job_outcomes]
            new_billed.extend(compress(job.billed, job_flags))  # metrics move for new rows only
            new_session_ids.extend(e.session_id for e in compress(job.entries, job_flags))
            job.new_rows = sum(job_flags)
            job.suppressed = job_outcomes.count(SUPPRESSED)
            job.refused = [refusals[i] for i in range(offset, offset + count) if i in refusals]
            offset += count
        try:
            self.cost_metrics.record(new_billed)
            self.sessions.add(new_billed, new_session_ids)
        except Exception:  # metrics are for trends; the ledger already has the money
            log.exception("updating metrics failed")
        self._finish(jobs, len(entries))

    def _record_isolating(
        self, entries: list[LedgerEntry], links: list[SpanLink | None], offset: int, refusals: dict[int, str]
    ) -> list[str]:
        """``ledger.record``; when the ledger refuses the batch for its contents (not for its own
        state), split it in halves and retry each, down to the single offending row, which gets
        ``REFUSED`` (its reason in ``refusals`` under its index in the whole batch). A clean batch
        costs one transaction; k bad rows cost about 2·k·log2(n) more. Errors of the ledger
        itself (connection lost, disk full) propagate: the whole batch is retried by its clients.
        """
        try:
            return self.ledger.record(entries, links, self._merge)
        except Exception as exc:
            if not self.ledger.refuses_data(exc):
                raise
            if len(entries) == 1:
                entry = entries[0]
                self._span_log.warning("refused", "ledger refused span %s: %s", entry.span_id, str(exc)[:200])
                refusals[offset] = f"span {entry.span_id}: ledger refused the row ({type(exc).__name__})"
                return [REFUSED]
        mid = len(entries) // 2
        return self._record_isolating(entries[:mid], links[:mid], offset, refusals) + self._record_isolating(
            entries[mid:], links[mid:], offset + mid, refusals
        )

    def _merge(self, usage: LedgerEntry, attributed: LedgerEntry) -> LedgerEntry:
        """One call seen by two spans: the usage and cost of one, the attribution of the other
        (``ledger/dedupe.py``), with the chargeback for that attribution's team."""
        call = usage.to_call()
        call.attribution = attributed.to_call().attribution  # already scrubbed, as stored
        call.cache_lookup = bool(usage.cache_lookup or attributed.cache_lookup)  # a lookup either saw
        chargeback = self.policy.chargeback(call, usage.contracted_cost_nanos)
        return LedgerEntry.from_call(
            call,
            usage.cost,
            chargeback,
            usage.ingested_at_ns,
            usage.savings_nanos,
            usage.prompt_cache_savings_nanos,
        )

    def _finish(self, jobs: list[_Job], rows: int) -> None:
        with self._cond:
            self._queued -= rows
            self.self_metrics.queue_depth.set(self._queued)
        for job in jobs:
            job.done.set()
