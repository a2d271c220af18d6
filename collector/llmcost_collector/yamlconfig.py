"""Load YAML (or JSON) into a pydantic model with errors that point at a line and column.

PyYAML's composer keeps every node's position; we build plain Python values from the nodes
ourselves so that (1) duplicate keys are an error instead of silently keeping the last one,
(2) YAML floats become ``Decimal`` from their source text (0.1 stays exactly 0.1: money must not
round-trip through binary floats), and (3) each pydantic error ``loc`` maps back to the node
that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class ConfigIssue:
    line: int  # 1-based
    column: int  # 1-based
    path: str  # e.g. teams[1].budgets.monthly
    message: str


class ConfigError(ValueError):
    """A config file that cannot be used, with every problem found and where it is."""

    def __init__(self, source: str, issues: Sequence[ConfigIssue]) -> None:
        self.source = source
        self.errors = list(issues)
        super().__init__("\n".join(self.format(issue) for issue in self.errors))

    def format(self, issue: ConfigIssue) -> str:
        where = f"{issue.path}: " if issue.path else ""
        return f"{self.source}:{issue.line}:{issue.column}: {where}{issue.message}"


class _Located:
    """Node positions by value path, filled while constructing."""

    def __init__(self) -> None:
        self.marks: dict[tuple, tuple[int, int]] = {}
        self.key_marks: dict[tuple, tuple[int, int]] = {}  # where each mapping key itself is


def _construct(node: yaml.Node, path: tuple, located: _Located, source: str) -> Any:
    located.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, (*path, "<key>"), located, source)
            if isinstance(key, Decimal):
                key = str(key)
            if key in out:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                raise ConfigError(
                    source, [ConfigIssue(line, column, _dotted((*path, key)), f"duplicate key {key!r}")]
                )
            located.key_marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _construct(value_node, (*path, key), located, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, index), located, source) for index, item in enumerate(node.value)]
    tag = node.tag
    if tag == "tag:yaml.org,2002:float":
        try:
            return Decimal(node.value.replace("_", ""))
        except InvalidOperation:
            pass  # .inf / .nan: let the standard constructor produce them, validation rejects them
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def parse_yaml(text: str, source: str = "<config>") -> tuple[Any, _Located]:
    located = _Located()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError(
            source, [ConfigIssue(line, column, "", f"YAML syntax error: {exc.problem or exc}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigIssue(1, 1, "", f"YAML error: {exc}")]) from None
    if node is None:
        return {}, located
    return _construct(node, (), located, source), located


def _position(located: _Located, loc: tuple) -> tuple[int, int]:
    path = tuple(loc)
    while path:
        if path in located.marks:
            return located.marks[path]
        path = path[:-1]
    return located.marks.get((), (1, 1))


def load_model(source: str | Path, model: type[T], *, text: str | None = None) -> T:
    """Parse and validate ``source`` (a path; ``text`` overrides reading it) into ``model``."""
    name = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                name, [ConfigIssue(1, 1, "", f"cannot read file: {exc.strerror or exc}")]
            ) from None
    data, located = parse_yaml(text, name)
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            # An unknown key is reported at the key itself, not at its parent mapping.
            line, column = _position(located, loc)
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}"
                line, column = located.key_marks.get(loc, (line, column))
            issues.append(ConfigIssue(line, column, _dotted(loc), message))
        raise ConfigError(name, issues) from None
