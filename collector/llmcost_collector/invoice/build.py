"""Monthly invoices from the ledger: drafts, closing, and adjustments for closed periods.

An open period's invoices are drafts, computed on demand from ``SqlLedger.usage_ranges`` and
``active_users`` with today's config and price book. Money is charged on range lines: the month
cut only where a team's settings or a model's rates change (``chargeback.ranges``), so a month
without changes reads one rollup row per dimension combination, however many calls it holds.
The FOCUS grain (a charge per day) is those charges spread over the daily lines
(``chargeback.daily``), read only for the export and for closing. Closing a period stores each
team's invoice as issued, with the settings, prices and daily usage charges it used
(``ledger.invoice_store``); from then on the period's invoices are read back, never recomputed.

When a closed period would now come out differently (late spans, a re-price, a changed
config), the difference per team is booked as an adjustment line, a debit or a credit with the
original invoice number and a reason, on the first open period after it. Closing that period
records the adjustments, so each difference is billed once.

A reconciliation with the providers' bills (``llmcost reconcile --true-up --commitment``) records
per-team true-up and commitment amounts (``ledger.reconcile_lines``); an open period's drafts
bill them as lines of their own (kinds ``true_up`` and ``commitment``), at cost, no markup. One
recorded for a closed period, or changed after it closed, is the same kind of adjustment on the
next open period, with the reason "provider bill true-up" or "commitment, amortized".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from llmcost_collector.chargeback.daily import spread
from llmcost_collector.chargeback.engine import (
    ADJUSTMENT,
    COMMITMENT,
    TRUE_UP,
    Charge,
    InvoiceLine,
    PeriodCharges,
    TeamCharges,
    compute,
)
from llmcost_collector.chargeback.ranges import RangeCuts, merge
from llmcost_collector.chargeback.settings import ChargebackPlan
from llmcost_collector.config.schema import Config
from llmcost_collector.invoice.document import build_document, dumps, invoice_number
from llmcost_collector.ledger.invoice_store import Adjustment, InvoiceStore, IssuedInvoice
from llmcost_collector.ledger.reconcile_lines import ReconciledLine, ensure_table, lines_of
from llmcost_collector.ledger.sql import SqlLedger
from llmcost_collector.ledger.usage import UsageLine
from llmcost_collector.periods import epoch_ns
from llmcost_collector.price.pricer import Pricer
from llmcost_collector.price.rates import Rates


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar month (UTC), named ``YYYY-MM``: the invoicing period."""

    name: str
    start: date
    end: date  # exclusive: the first day of the next month

    @classmethod
    def parse(cls, text: str) -> Period:
        try:
            start = datetime.strptime(text, "%Y-%m").date()
        except ValueError:
            raise ValueError(f"period {text!r} is not a month written YYYY-MM (e.g. 2025-01)") from None
        return cls.of(start)

    @classmethod
    def of(cls, day: date) -> Period:
        start = day.replace(day=1)
        end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        return cls(start.strftime("%Y-%m"), start, end)

    @property
    def start_ns(self) -> int:
        return epoch_ns(datetime(self.start.year, self.start.month, 1, tzinfo=timezone.utc))

    @property
    def end_ns(self) -> int:
        return epoch_ns(datetime(self.end.year, self.end.month, 1, tzinfo=timezone.utc))


def _day_ns(day: date) -> int:
    return epoch_ns(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))


def _reason(issued: IssuedInvoice | None, now: TeamCharges | None) -> str:
    tokens = sum(now.tokens.values()) if now else 0
    contracted = now.contracted_nanos if now else 0
    if issued is None or tokens != issued.tokens:
        return "late usage"
    if contracted != issued.contracted_nanos:
        return "re-priced"
    return "chargeback settings changed"


# reconciliation line kind -> the reason of its adjustment when booked on a later period
RECONCILED_REASONS = {TRUE_UP: "provider bill true-up", COMMITMENT: "commitment, amortized"}


def reconciled_line(line: ReconciledLine, period: Period) -> InvoiceLine:
    """A recorded true-up or commitment share as an invoice line: at cost, no markup."""
    if line.kind == TRUE_UP:
        target = f"{line.provider}/{line.model}" if line.model else f"{line.provider} (no model)"
        description, resource = f"provider bill true-up: {target} (bill - ledger)", f"{target} bill"
    else:
        description, resource = f"commitment {line.name}, amortized", line.name
    return InvoiceLine(
        line.kind,
        description,
        line.amount_nanos,
        provider=line.provider,
        model=line.model,
        contracted_nanos=line.amount_nanos,
        markup_percent=Decimal(0),
        start=period.start,
        end=period.end,
        allocated_resource=resource,
        allocation_method="proportional",
    )


def _team(charges: PeriodCharges, team: str) -> TeamCharges:
    found = charges.teams.get(team)
    if found is None:
        found = charges.teams[team] = TeamCharges(team, [])
    return found


_CHARGE_FIELDS = tuple(field.name for field in fields(Charge))


def charge_document(charge: Charge) -> dict[str, Any]:
    """A charge as JSON-ready values (field by field: ``asdict`` deep-copies, far slower)."""
    values = {name: getattr(charge, name) for name in _CHARGE_FIELDS}
    values["day"] = charge.day.isoformat()
    values["markup_percent"] = str(charge.markup_percent)
    return values


class Invoicing:
    """Invoices of one ledger under one configuration and price book."""

    def __init__(self, ledger: SqlLedger, config: Config, pricer: Pricer | None = None) -> None:
        self.ledger = ledger
        self.config = config
        self.pricer = pricer or Pricer(config.price_book)
        self.store = InvoiceStore(ledger)
        self.plan = ChargebackPlan(config)
        self._rates: dict[tuple[str, str, date], tuple[Rates | None, Rates | None]] = {}
        self._reconcile_table = False

    def reconciled(self, period: str) -> list[ReconciledLine]:
        """The true-up and commitment lines recorded for ``period`` (the table made once)."""
        if not self._reconcile_table:
            ensure_table(self.ledger)
            self._reconcile_table = True
        return lines_of(self.ledger, period, ensure=False)

    def rates(self, provider: str, model: str, day: date) -> tuple[Rates | None, Rates | None]:
        """Both layers' rates of a model on a UTC day (looked up once per day and model)."""
        key = (provider, model, day)
        found = self._rates.get(key)
        if found is None:
            found = self._rates[key] = self.pricer.layers(provider, model, _day_ns(day))
        return found

    def cuts(self, period: Period, lines: Iterable[UsageLine]) -> RangeCuts:
        """Where the period is cut for the teams and models of ``lines``."""
        teams: set[str] = set()
        models: set[tuple[str, str]] = set()
        for line in lines:
            teams.add(line.team)
            if line.requests:
                models.add((line.provider, line.model))
        return RangeCuts.of(period.start, period.end, self.plan, self.rates, teams, models)

    def range_lines(self, period: Period) -> list[UsageLine]:
        """The period's usage on range lines: the monthly rollup, read again cut at the days
        where some team's settings or some model's rates change when there are any (and once
        more should the lines read bring a new team or model with changes of its own)."""
        lines = self.ledger.usage_ranges(period.start_ns, period.end_ns)
        cuts = self.cuts(period, lines)
        used: list[date] = []
        while cuts.days() != used:
            used = cuts.days()
            read = self.ledger.usage_ranges(period.start_ns, period.end_ns, [_day_ns(day) for day in used])
            cuts = self.cuts(period, read)
            lines = merge(read, cuts)
        return lines

    def compute(self, period: Period) -> PeriodCharges:
        """The period's charges from the ledger as it is now (no adjustments), on range lines."""
        lines = self.range_lines(period)
        users = self.ledger.active_users(period.start_ns, period.end_ns)
        return compute(
            period.start, period.end, lines, users, self.plan, self.rates, self.config.team_names()
        )

    def daily_charges(self, period: Period, charges: PeriodCharges) -> list[Charge]:
        """Every team's usage charges per day (the FOCUS grain), in team order: the range charges
        spread over the period's daily lines; they add up to the range charges exactly."""
        ranged = [c for team in sorted(charges.teams) for c in charges.teams[team].charges]
        teams = {c.team for c in ranged}
        models = {(c.provider, c.model) for c in ranged}
        cuts = RangeCuts.of(period.start, period.end, self.plan, self.rates, teams, models)
        return spread(ranged, self.ledger.usage_lines(period.start_ns, period.end_ns), cuts)

    def adjustments(self, period: Period) -> list[Adjustment]:
        """Differences of closed periods booked on ``period``: the first open period after them."""
        closed = self.store.closed_periods()
        found: list[Adjustment] = []
        for name in closed:
            if name >= period.name:
                continue
            following = Period.of(Period.parse(name).end)
            while following.name in closed:
                following = Period.of(following.end)
            if following.name != period.name:
                continue
            issued = {invoice.team: invoice for invoice in self.store.invoices(name)}
            # (team, reason) -> nanos: the usage differences under "" (their reasons vary), the
            # reconciled kinds under theirs; what the issued invoices billed and what was booked since
            billed: dict[tuple[str, str], int] = {}
            for team, invoice in issued.items():
                for line in json.loads(invoice.document)["lines"]:
                    if line["kind"] in RECONCILED_REASONS and not line["informational"]:
                        key = (team, RECONCILED_REASONS[line["kind"]])
                        billed[key] = billed.get(key, 0) + line["amount_nanos"]
            booked: dict[tuple[str, str], int] = {}
            for adjustment in self.store.adjustments_for(name):
                reason = adjustment.reason if adjustment.reason in RECONCILED_REASONS.values() else ""
                key = (adjustment.team, reason)
                booked[key] = booked.get(key, 0) + adjustment.amount_nanos
            now = self.compute(Period.parse(name))
            for team in sorted(set(issued) | set(now.teams)):
                current = now.teams.get(team)
                was = issued[team].charges_nanos if team in issued else 0
                was -= sum(billed.get((team, reason), 0) for reason in RECONCILED_REASONS.values())
                delta = (current.total_nanos if current else 0) - was - booked.get((team, ""), 0)
                if delta:
                    number = issued[team].number if team in issued else invoice_number(name, team)
                    found.append(
                        Adjustment(period.name, team, name, number, _reason(issued.get(team), current), delta)
                    )
            recorded: dict[tuple[str, str], int] = {}
            for line in self.reconciled(name):
                key = (line.team, RECONCILED_REASONS[line.kind])
                recorded[key] = recorded.get(key, 0) + line.amount_nanos
            for key in sorted(set(recorded) | set(billed) | {k for k in booked if k[1]}):
                team, reason = key
                delta = recorded.get(key, 0) - billed.get(key, 0) - booked.get(key, 0)
                if delta:
                    number = issued[team].number if team in issued else invoice_number(name, team)
                    found.append(Adjustment(period.name, team, name, number, reason, delta))
        return found

    def draft(self, period: Period) -> tuple[PeriodCharges, list[Adjustment]]:
        charges = self.compute(period)
        for line in self.reconciled(period.name):
            reconciled = _team(charges, line.team)
            reconciled.lines.append(reconciled_line(line, period))
            reconciled.sort_lines()
        adjustments = self.adjustments(period)
        for adjustment in adjustments:
            team = _team(charges, adjustment.team)
            kind = "debit" if adjustment.amount_nanos > 0 else "credit"
            team.lines.append(
                InvoiceLine(
                    ADJUSTMENT,
                    f"adjustment ({kind}) to invoice {adjustment.ref_number}: {adjustment.reason}",
                    adjustment.amount_nanos,
                    reference=adjustment.ref_number,
                    reason=adjustment.reason,
                    start=Period.parse(adjustment.ref_period).start,
                    end=Period.parse(adjustment.ref_period).end,
                )
            )
            team.sort_lines()
        return charges, adjustments

    def _documents(self, period: Period, charges: PeriodCharges, status: str) -> list[dict[str, Any]]:
        documents = []
        for team in sorted(charges.teams):
            declared = self.config.team(team)
            documents.append(
                build_document(
                    period.name,
                    period.start,
                    period.end,
                    charges.teams[team],
                    status=status,
                    display_name=declared.display_name if declared else "",
                    coverage=charges.coverage,
                )
            )
        return documents

    def view(self, period: Period) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(every team's invoice, the usage charges at the FOCUS grain): as issued when the
        period is closed, else a draft computed now."""
        snapshot = self.store.snapshot(period.name)
        if snapshot is not None:
            documents = [json.loads(invoice.document) for invoice in self.store.invoices(period.name)]
            return documents, list(json.loads(snapshot[2]))
        charges, _ = self.draft(period)
        usage = [charge_document(c) for c in self.daily_charges(period, charges)]
        return self._documents(period, charges, "draft"), usage

    def invoices(self, period: Period, team: str | None = None) -> list[dict[str, Any]]:
        """Every team's invoice (or ``team``'s): as issued when closed, else a draft."""
        if self.store.is_closed(period.name):
            documents = [json.loads(invoice.document) for invoice in self.store.invoices(period.name)]
        else:
            documents = self._documents(period, self.draft(period)[0], "draft")
        return [doc for doc in documents if team is None or doc["team"] == team]

    def close(self, period: Period) -> list[dict[str, Any]]:
        """Issue the period's invoices: store them with their settings, prices and charges."""
        charges, adjustments = self.draft(period)
        documents = self._documents(period, charges, "closed")
        issued = [
            IssuedInvoice(
                period.name,
                doc["team"],
                doc["number"],
                doc["charges_nanos"],
                doc["total_nanos"],
                charges.teams[doc["team"]].contracted_nanos,
                sum(charges.teams[doc["team"]].tokens.values()),
                dumps(doc),
            )
            for doc in documents
        ]
        daily = self.daily_charges(period, charges)
        usage = [charge_document(c) for c in daily]
        self.store.close(
            period.name,
            dumps(self.settings_snapshot()),
            dumps(self.prices_snapshot(daily)),
            dumps(usage),
            issued,
            adjustments,
        )
        return documents

    def settings_snapshot(self) -> dict[str, Any]:
        teams = {team: [s.snapshot() for s in self.plan.history(team)] for team in self.config.team_names()}
        return {"chargeback": self.config.chargeback.model_dump(mode="json"), "teams": teams}

    def prices_snapshot(self, charges: Sequence[Charge]) -> dict[str, Any]:
        """The price book, and the rates of every model charged, as in force on its first day
        used (``charges`` per day)."""
        first_day: dict[tuple[str, str], date] = {}
        for charge in charges:
            key = (charge.provider, charge.model)
            if key not in first_day or charge.day < first_day[key]:
                first_day[key] = charge.day
        models = {}
        for (provider, model), day in sorted(first_day.items()):
            listed, contracted = self.rates(provider, model, day)
            models[f"{provider}/{model}"] = {
                "day": day.isoformat(),
                "list": _rates_snapshot(listed),
                "contracted": _rates_snapshot(contracted),
            }
        return {"price_book": self.config.price_book.model_dump(mode="json"), "models": models}


def _rates_snapshot(rates: Rates | None) -> dict[str, Any] | None:
    if rates is None:
        return None
    values: dict[str, Any] = {
        "source": rates.source,
        "price_id": rates.price_id,
        "effective_from": rates.effective_from,
    }
    for name in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
        rate = getattr(rates, name)
        values[name] = None if rate is None else str(rate if isinstance(rate, Decimal) else rate.base)
    return values
