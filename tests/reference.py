"""Reading ``docs/reference.md``, the list of the project's public names, for the tests that check it.

The reference is hand-written Markdown. A name counts as listed when it is written in backticks
in the section it belongs to; tables are read by their header cells, so a test can ask for "the
labels of metric X" without the test keeping its own copy of the list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"

_BACKTICKED = re.compile(r"`([^`\n]+)`")


@cache
def _text() -> str:
    return REFERENCE.read_text()


def section(title: str) -> str:
    """The text under the level-2 heading ``## title``, subsections included."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", _text(), re.MULTILINE | re.DOTALL)
    assert match, f"docs/reference.md has no section '## {title}'"
    return match.group(1)


def backticked(text: str) -> set[str]:
    return set(_BACKTICKED.findall(text))


def is_listed(name: str, listed: set[str]) -> bool:
    """``name`` is written in ``listed``; a prefix such as ``llmcost.property.`` counts as listed
    when the reference writes it as ``llmcost.property.<name>`` or ``llmcost.property.*``."""
    if name in listed:
        return True
    return name.endswith(".") and any(token.startswith(name) and token[len(name)] in "<*" for token in listed)


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``text``, as rows keyed by the header cells."""
    found: list[list[dict[str, str]]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines) - 1:
        if lines[index].startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[index + 1].strip()):
            header = _cells(lines[index])
            rows = []
            index += 2
            while index < len(lines) and lines[index].startswith("|"):
                rows.append(dict(zip(header, _cells(lines[index]), strict=False)))
                index += 1
            found.append(rows)
        else:
            index += 1
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def rows_with(text: str, *headers: str) -> list[dict[str, str]]:
    """The rows of every table in ``text`` whose header has all of ``headers``."""
    return [row for table in tables(text) for row in table if table and set(headers) <= set(table[0])]


@dataclass(frozen=True)
class DocumentedMetric:
    name: str  # as scraped: counters with their _total suffix
    type: str  # counter, gauge, histogram
    labels: frozenset[str]
    planned: bool


def metrics() -> dict[str, DocumentedMetric]:
    """The metrics tables of "## Prometheus metrics": name -> type and label names."""
    found = {}
    for row in rows_with(section("Prometheus metrics"), "metric", "type", "labels"):
        for name in backticked(row["metric"]):
            found[name] = DocumentedMetric(
                name=name,
                type=row["type"].split()[0],
                labels=frozenset(backticked(row["labels"])),
                planned="planned" in row["type"],
            )
    assert found, "no metrics table in docs/reference.md"
    return found


def never_labels() -> set[str]:
    """The names the reference says are never metric labels (its "**Never a label:**" sentence)."""
    match = re.search(r"\*\*Never a label:\*\*(.*?)(?:\n\n|\Z)", section("Prometheus metrics"), re.DOTALL)
    assert match, "docs/reference.md does not say what is never a label"
    return backticked(match.group(1))


def recording_rules() -> set[str]:
    return {
        name
        for row in rows_with(section("Prometheus metrics"), "series", "from")
        for name in backticked(row["series"])
    }


def alerts() -> dict[str, tuple[frozenset[str], bool]]:
    """Alert name -> (its labels, planned)."""
    found = {}
    for row in rows_with(section("Alerts"), "alert", "labels"):
        for name in backticked(row["alert"]):
            found[name] = (frozenset(backticked(row["labels"])), "planned" in row["alert"])
    assert found, "no alerts table in docs/reference.md"
    return found
