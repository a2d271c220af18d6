"""Bill against ledger, per UTC day x provider x model: capture rates, unseen models, gaps.

The ledger side is read from the daily rollups (``SqlLedger.costs`` bucketed by day, grouped by
provider and model), never from single calls, so a month of a busy org costs a few thousand rows.
Only providers that appear on a bill are read: a provider without a bill cannot be reconciled.

Capture rate is ledger / bill, separately in tokens (all classes added) and in dollars (the
ledger's contracted cost against the billed amount): 1 means every billed token was seen by the
collector; below 1, calls went uninstrumented (or spans were lost); above 1, the ledger counts
calls the provider did not bill (retries it deduplicated, response-cache hits are already 0).
Per-class differences (ledger - bill) show where tokens disagree: cached input, above all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal

from llmcost_collector.ledger import SqlLedger
from llmcost_collector.ledger.query import CostQuery, Filter
from llmcost_collector.money import format_usd, usd_to_nanos
from llmcost_collector.reconcile.bill import BillRow
from llmcost_collector.reconcile.names import ModelNames

TOKEN_CLASSES = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
RATIO_PLACES = Decimal("0.0001")
KEY_COLUMN = "property.api_key_id"


@dataclass
class Side:
    """Totals of one side of a line. ``None`` where that side does not say (a usage report has no
    dollars; a cost report no tokens)."""

    tokens: dict[str, int] | None = None
    requests: int | None = None
    cost_nanos: int | None = None
    list_nanos: int | None = None

    @property
    def total_tokens(self) -> int | None:
        return None if self.tokens is None else sum(self.tokens.values())

    def add_tokens(self, values: dict[str, int]) -> None:
        if self.tokens is None:
            self.tokens = dict.fromkeys(TOKEN_CLASSES, 0)
        for name, value in values.items():
            self.tokens[name] += value

    def add(self, attribute: str, value: int | None) -> None:
        if value is not None:
            setattr(self, attribute, (getattr(self, attribute) or 0) + value)


def ratio(numerator: int | None, denominator: int | None) -> Decimal | None:
    """ledger / bill to four places; None when the bill does not say or says 0."""
    if numerator is None or not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_PLACES)


@dataclass
class Line:
    day: date
    provider: str
    model: str  # the compared name (see ``names``)
    api_key: str = ""  # compared per API key only when asked (``by_api_key``)
    bill: Side = field(default_factory=Side)
    ledger: Side = field(default_factory=Side)
    bill_models: set[str] = field(default_factory=set)  # the bill's own spellings
    scopes: set[str] = field(default_factory=set)
    tiers: set[str] = field(default_factory=set)

    @property
    def billed(self) -> bool:
        return self.bill.tokens is not None or self.bill.cost_nanos is not None

    @property
    def seen(self) -> bool:
        return bool(self.ledger.requests)

    @property
    def token_capture(self) -> Decimal | None:
        return ratio(self.ledger.total_tokens or 0, self.bill.total_tokens)

    @property
    def cost_capture(self) -> Decimal | None:
        return ratio(self.ledger.cost_nanos or 0, self.bill.cost_nanos)

    @property
    def token_differences(self) -> dict[str, int] | None:
        """ledger - bill per token class, where the bill has tokens."""
        if self.bill.tokens is None:
            return None
        ledger = self.ledger.tokens or dict.fromkeys(TOKEN_CLASSES, 0)
        return {name: ledger[name] - self.bill.tokens[name] for name in TOKEN_CLASSES}

    @property
    def note(self) -> str:
        if not self.billed:
            return "not on the bill"
        if not self.model:
            return "no model on the bill"  # an image or tool line item: counted for the provider only
        if not self.seen:
            return "ledger never saw"
        return ""


@dataclass
class ProviderTotal:
    provider: str
    bill_tokens: int = 0  # over lines whose bill has tokens
    ledger_tokens: int = 0  # over the same lines
    bill_nanos: int = 0  # over lines whose bill has dollars
    ledger_nanos: int = 0  # over the same lines
    has_tokens: bool = False
    has_cost: bool = False

    @property
    def token_capture(self) -> Decimal | None:
        return ratio(self.ledger_tokens, self.bill_tokens) if self.has_tokens else None

    @property
    def cost_capture(self) -> Decimal | None:
        return ratio(self.ledger_nanos, self.bill_nanos) if self.has_cost else None

    @property
    def capture(self) -> Decimal | None:
        """The provider's capture ratio: dollars where the bill has them, else tokens."""
        return self.cost_capture if self.cost_capture is not None else self.token_capture


@dataclass
class Reconciliation:
    period: str
    lines: list[Line]
    totals: list[ProviderTotal]
    unseen_models: list[tuple[str, str]]  # (provider, model) billed but never in the ledger's period
    gap_days: list[tuple[str, date, str]]  # (provider, day, "bill" | "ledger": the side with nothing)
    outside_period: int = 0  # bill rows dropped because their day is not in the period


def _bill_side(line: Line, row: BillRow) -> None:
    line.bill_models.add(row.model)
    if row.scope:
        line.scopes.add(row.scope)
    if row.tier:
        line.tiers.add(row.tier)
    if row.has_tokens:
        line.bill.add_tokens({name: getattr(row, name) or 0 for name in TOKEN_CLASSES})
    line.bill.add("requests", row.requests)
    line.bill.add("cost_nanos", None if row.cost_usd is None else usd_to_nanos(row.cost_usd))
    line.bill.add("list_nanos", None if row.list_usd is None else usd_to_nanos(row.list_usd))


def reconcile(
    ledger: SqlLedger,
    rows: Iterable[BillRow],
    start_ns: int,
    end_ns: int,
    period: str,
    names: ModelNames | None = None,
    by_api_key: bool = False,
) -> Reconciliation:
    """Compare the bill ``rows`` with the ledger over ``[start_ns, end_ns)`` (whole UTC days).

    ``by_api_key`` splits each line by API key: the bill's ``api_key_id`` against the ledger's
    ``api_key_id`` property (``llmcost.property.api_key_id``, which also selects key-scoped
    price-book entries). The ledger keeps properties on the calls, not in the rollups, so this
    reads the calls of the period; cost reports carry no key, so it suits usage reports.
    """
    names = names or ModelNames()
    first = _day(start_ns)
    last = _day(end_ns - 1)
    lines: dict[tuple[date, str, str, str], Line] = {}

    def line(day: date, provider: str, model: str, api_key: str) -> Line:
        key = (day, provider, names.canonical(provider, model, day), api_key if by_api_key else "")
        if key not in lines:
            lines[key] = Line(*key)
        return lines[key]

    outside = 0
    for row in rows:
        if not first <= row.day <= last:
            outside += 1
            continue
        _bill_side(line(row.day, row.provider, row.model, row.api_key), row)
    providers = sorted({key[1] for key in lines})
    if providers:
        group = ("provider", "model", KEY_COLUMN) if by_api_key else ("provider", "model")
        query = CostQuery(start_ns, end_ns, group, (Filter("provider", tuple(providers)),), bucket="day")
        for cost in ledger.costs(query):
            assert cost.bucket is not None
            requests = cost["requests"] - cost["cache_hits"]  # a response-cache hit reached no provider
            if requests <= 0 and not cost["input_tokens"] + cost["output_tokens"]:
                continue
            key = cost.group.get(KEY_COLUMN, "")
            target = line(cost.bucket.date(), cost.group["provider"], cost.group["model"], key)
            target.ledger.add_tokens(
                {
                    "input_tokens": cost["input_tokens"],
                    "cache_read_tokens": cost["cache_read_tokens"],
                    "cache_write_tokens": cost["cache_write_tokens"],
                    "output_tokens": cost["output_tokens"] + cost["reasoning_tokens"],
                }
            )
            target.ledger.add("requests", requests)
            target.ledger.add("cost_nanos", cost["contracted_nanos"])
            target.ledger.add("list_nanos", cost["list_nanos"])
    ordered = sorted(lines.values(), key=lambda item: (item.day, item.provider, item.model, item.api_key))
    return Reconciliation(period, ordered, _totals(ordered), _unseen(ordered), _gaps(ordered), outside)


def _day(ns: int) -> date:
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).date()


def _totals(lines: Sequence[Line]) -> list[ProviderTotal]:
    totals: dict[str, ProviderTotal] = {}
    for item in lines:
        total = totals.setdefault(item.provider, ProviderTotal(item.provider))
        if item.bill.tokens is not None:
            total.has_tokens = True
            total.bill_tokens += item.bill.total_tokens or 0
            total.ledger_tokens += item.ledger.total_tokens or 0
        if item.bill.cost_nanos is not None:
            total.has_cost = True
            total.bill_nanos += item.bill.cost_nanos
            total.ledger_nanos += item.ledger.cost_nanos or 0
    return [totals[name] for name in sorted(totals)]


def _unseen(lines: Sequence[Line]) -> list[tuple[str, str]]:
    seen = {(item.provider, item.model) for item in lines if item.seen}
    billed = {(item.provider, item.model) for item in lines if item.billed and item.model}
    return sorted(billed - seen)


def _gaps(lines: Sequence[Line]) -> list[tuple[str, date, str]]:
    billed: dict[str, set[date]] = defaultdict(set)
    seen: dict[str, set[date]] = defaultdict(set)
    for item in lines:
        if item.billed:
            billed[item.provider].add(item.day)
        if item.seen:
            seen[item.provider].add(item.day)
    gaps = []
    for provider in sorted(set(billed) | set(seen)):
        gaps += [(provider, day, "ledger") for day in billed[provider] - seen[provider]]
        gaps += [(provider, day, "bill") for day in seen[provider] - billed[provider]]
    return sorted(gaps, key=lambda gap: (gap[0], gap[1]))


def usd(nanos: int | None) -> str:
    return "" if nanos is None else format_usd(nanos)
