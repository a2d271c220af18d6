"""Price-book ``include``: entries kept in other files, such as a catalogue (``model-catalog.json``).

A configuration file's ``price_book.include`` (or a price-book file's own ``include``) names
YAML/JSON price-book files, relative to the file that includes them. Their entries come after the
including file's own, file by file, so the organisation's entries win over a catalogue's (the
first matching entry prices a call). Each included file is validated as a price book and its
problems are reported at its own file, line and column; a file that does not exist, or that
includes others in turn, is reported at the ``include`` line that names it. Includes do not nest:
a catalogue is data, and one level keeps "which entry wins" readable.
"""

from __future__ import annotations

from pathlib import Path

from llmcost_collector.config.yaml_loader import ConfigError, ConfigIssue, Loc, dotted, load_model, parse_yaml
from llmcost_collector.price.pricebook import PriceBook


def error_at(source: Path, text: str, loc: Loc, message: str) -> ConfigError:
    line, column = parse_yaml(text, str(source)).position(loc)
    return ConfigError(str(source), [ConfigIssue(line, column, dotted(loc), message)])


def included_paths(book: PriceBook, source: Path) -> list[Path]:
    """The files ``book`` (read from ``source``) includes, resolved against its directory."""
    return [source.parent / name for name in book.include]


def with_includes(book: PriceBook, source: Path, text: str, at: Loc = ()) -> PriceBook:
    """``book`` with the entries of the files it includes appended; ``at`` is where the book sits
    in ``source`` (``("price_book",)`` in a configuration file). Raises ``ConfigError``."""
    if not book.include:
        return book
    entries = list(book.entries)
    for index, path in enumerate(included_paths(book, source)):
        if not path.is_file():
            raise error_at(source, text, (*at, "include", index), f"cannot include {path}: no such file")
        included = load_model(path, PriceBook)
        if included.include:
            nested = path.read_text(encoding="utf-8")
            raise error_at(path, nested, ("include",), "an included price book cannot include others")
        entries.extend(included.entries)
    return book.model_copy(update={"entries": entries})


def load_price_book(path: str | Path) -> PriceBook:
    """A price-book file (``llmcost price --price-book``), with the files it includes."""
    source = Path(path)
    book = load_model(source, PriceBook)
    if not book.include:
        return book
    return with_includes(book, source, source.read_text(encoding="utf-8"))
