"""The one row type every importer returns, and the file-kind detection that picks the importer.

Bills disagree on almost everything: OpenAI counts cached tokens inside ``input_tokens``,
Anthropic reports them apart and its costs in cents, CUR has one line per token class, FOCUS one
per SKU. A ``BillRow`` is the common shape after each importer has undone its provider's habits:
the token classes are disjoint, as in the ledger (``input_tokens`` is *uncached* input), and money
is ``Decimal`` USD. A usage report fills the tokens and leaves the costs ``None``; a cost report
the other way round, so a usage file and a cost file of one provider add up to one picture.
Which importer reads a file is decided in ``files``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any


class BillError(ValueError):
    """A file that is not a bill of the expected kind (or of any kind, when detecting)."""


@dataclass(frozen=True, slots=True)
class BillRow:
    """One day's usage or cost of one model (and project, API key or principal) on a bill.

    ``model`` is the bill's own spelling (a dated snapshot, a CUR usage-type part); ``compare``
    maps it to the name the ledger uses. ``None`` token counts mean the bill does not say;
    ``cost_usd`` is what was billed (after discounts), ``list_usd`` the list amount where given.
    """

    day: date
    provider: str  # gen_ai.provider.name: openai, anthropic, aws.bedrock, ...
    model: str
    source: str  # the importer: openai-usage, openai-costs, anthropic-usage, ...
    scope: str = ""  # project_id, api_key_id, workspace_id or IAM principal, when the bill has it
    api_key: str = ""  # the provider's API key id, when the bill is grouped by it
    tier: str = ""  # batch, priority, flex, ... ("" when standard or not said)
    input_tokens: int | None = None  # uncached input
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    output_tokens: int | None = None
    requests: int | None = None
    cost_usd: Decimal | None = None
    list_usd: Decimal | None = None
    item: str = ""  # the bill's line label (line_item, description, usage type, SKU)

    @property
    def has_tokens(self) -> bool:
        return any(
            v is not None
            for v in (self.input_tokens, self.cache_read_tokens, self.cache_write_tokens, self.output_tokens)
        )

    @property
    def total_tokens(self) -> int:
        return sum(
            v or 0
            for v in (self.input_tokens, self.cache_read_tokens, self.cache_write_tokens, self.output_tokens)
        )


def with_tokens(row: BillRow, token_class: str, tokens: int) -> BillRow:
    """``row`` with one token class set (the lines of CUR and FOCUS bill one class each)."""
    values: dict[str, Any] = {token_class: tokens}
    return replace(row, **values)


def decimal(value: object, where: str) -> Decimal:
    """A bill's amount (number or decimal string) as an exact ``Decimal``; floats from JSON are
    read through their shortest repr (``0.06`` stays 0.06, never 0.059999...)."""
    if isinstance(value, bool) or value is None:
        raise BillError(f"{where}: amount {value!r} is not a number")
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise BillError(f"{where}: amount {value!r} is not a number") from None


def count(value: object) -> int:
    """A token or request count; absent and null are 0."""
    if value in (None, ""):
        return 0
    return int(Decimal(str(value)))


def unix_day(seconds: object) -> date:
    return datetime.fromtimestamp(int(str(seconds)), timezone.utc).date()


def iso_day(text: str) -> date:
    """The UTC day of an RFC 3339 / ISO 8601 timestamp or date (``2026-11-03T00:00:00Z``)."""
    text = text.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.date()
