"""Load YAML (or JSON) into a pydantic model with errors that point at a line and column.

PyYAML's composer keeps every node's position; we build plain Python values from the nodes
ourselves so that (1) duplicate keys are an error instead of silently keeping the last one,
(2) YAML floats become ``Decimal`` from their source text (0.1 stays exactly 0.1: money must not
round-trip through binary floats), and (3) each pydantic error ``loc`` maps back to the node
that caused it (or its nearest parent). Merge keys (``<<: *defaults``) work as in YAML 1.1.

Cross-field checks that know exactly which value is wrong raise ``ModelProblems`` from the
top-level model's after-validator, with absolute locations, so they are line-precise too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)
Loc = tuple[str | int, ...]

MAX_NODES = 200_000  # alias expansion guard ("billion laughs"): real config files are far smaller
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"


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
        self.errors = sorted(issues, key=lambda issue: (issue.line, issue.column))
        super().__init__("\n".join(self.format(issue) for issue in self.errors))

    def format(self, issue: ConfigIssue) -> str:
        where = f"{issue.path}: " if issue.path else ""
        return f"{self.source}:{issue.line}:{issue.column}: {where}{issue.message}"


@dataclass(frozen=True)
class Problem:
    """One cross-field problem: the value (or, with ``at_key``, the mapping key) at ``loc``."""

    loc: Loc
    message: str
    at_key: bool = False


class ModelProblems(Exception):
    """Cross-field problems at absolute locations, raised by a top-level model's after-validator.

    Deliberately not a ``ValueError``: pydantic passes other exceptions through unchanged, so the
    locations survive (a ``ValueError`` would be folded into one error at the model's root).
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{dotted(p.loc)}: {p.message}" for p in self.problems))


def dotted(path: Sequence[Any]) -> str:
    """``('teams', 1, 'budgets')`` -> ``teams[1].budgets``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


class _Builder:
    """Builds plain values from composed nodes, remembering where each value and key came from."""

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.marks: dict[Loc, tuple[int, int]] = {}
        self.key_marks: dict[Loc, tuple[int, int]] = {}  # where each mapping key itself is
        self._active: set[int] = set()  # nodes being built: a recursive alias is an error
        self._count = 0

    def fail(self, node: yaml.Node, path: Loc, message: str) -> ConfigError:
        mark = node.start_mark
        return ConfigError(self.source, [ConfigIssue(mark.line + 1, mark.column + 1, dotted(path), message)])

    def build(self, node: yaml.Node, path: Loc) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            raise self.fail(node, path, f"document too large (more than {MAX_NODES} values after aliases)")
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._active:
            raise self.fail(node, path, "recursive alias")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            raise self.fail(node, path, f"unsupported YAML node {node.tag}")
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Loc, taken: frozenset[Any] = frozenset()) -> dict:
        """Explicit keys first, then ``<<`` merges (earlier sources win); ``taken`` keys are skipped."""
        out: dict[Any, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                is_list = isinstance(value_node, yaml.SequenceNode)
                merges.extend(value_node.value if is_list else [value_node])
                continue
            key = self.build(key_node, (*path, "<key>"))
            if isinstance(key, (list, dict)):
                raise self.fail(key_node, path, "a mapping key must be a scalar")
            if isinstance(key, Decimal):
                key = key_node.value
            if key in out:
                raise self.fail(key_node, (*path, key), f"duplicate key {key!r}")
            if key in taken:
                continue
            self.key_marks.setdefault(
                (*path, key), (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            )
            out[key] = self.build(value_node, (*path, key))
        for source in merges:
            if not isinstance(source, yaml.MappingNode):
                raise self.fail(source, path, "'<<' merges mappings only")
            out.update(self._mapping(source, path, taken | frozenset(out)))
        return out

    def _scalar(self, node: yaml.ScalarNode, path: Loc) -> Any:
        if node.tag == _FLOAT_TAG:
            try:
                return Decimal(node.value.replace("_", ""))
            except InvalidOperation:
                pass  # .inf, .nan, 1:30.5: the standard constructor; Decimal fields reject non-finite
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:  # a tag the safe loader does not know
            raise self.fail(node, path, exc.problem or str(exc)) from None
        except (ValueError, OverflowError) as exc:  # 2025-13-45 looks like a date and is not one
            raise self.fail(
                node, path, f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}: {exc}"
            ) from None


@dataclass
class Parsed:
    data: Any
    marks: dict[Loc, tuple[int, int]]
    key_marks: dict[Loc, tuple[int, int]]

    def position(self, loc: Loc) -> tuple[int, int]:
        """Where the value at ``loc`` is written, or its nearest written parent."""
        path = tuple(loc)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))

    def data_path(self, loc: Loc, keep_last: bool) -> Loc:
        """``loc`` without pydantic's own steps (union member names such as ``'list[str]'``)."""
        out: list[str | int] = []
        value = self.data
        for index, part in enumerate(loc):
            found, child = _child(value, part)
            if found:
                value = child
            elif not (keep_last and index == len(loc) - 1):
                continue
            out.append(part)
        return tuple(out)


def _child(value: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(value, dict) and part in value:
        return True, value[part]
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return True, value[part]
    return False, None


def parse_yaml(text: str, source: str = "<config>") -> Parsed:
    """Compose and build ``text``; raises ``ConfigError`` for syntax errors and duplicate keys."""
    try:
        loader = yaml.SafeLoader(text)  # checks every character is printable first
    except yaml.reader.ReaderError as exc:  # positioned by an index, not a mark
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        problem = f"unacceptable character #x{exc.character:04x}: special characters are not allowed"
        raise ConfigError(source, [ConfigIssue(line, column, "", f"YAML syntax error: {problem}")]) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or exc.context or str(exc)
            if exc.problem and exc.context:
                at = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
                problem = f"{exc.problem} ({exc.context}{at})"
            raise ConfigError(
                source, [ConfigIssue(line, column, "", f"YAML syntax error: {problem}")]
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(source, [ConfigIssue(1, 1, "", f"YAML error: {exc}")]) from None
        builder = _Builder(loader, source)
        data = {} if node is None else builder.build(node, ())
        return Parsed(data, builder.marks, builder.key_marks)
    finally:
        loader.dispose()


def _issues(parsed: Parsed, errors: Iterable[tuple[Loc, str, str]]) -> list[ConfigIssue]:
    issues = []
    for raw_loc, kind, message in errors:
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        loc = parsed.data_path(raw_loc, keep_last=kind in ("missing", "extra_forbidden"))
        line, column = parsed.position(loc)
        if kind == "extra_forbidden":  # an unknown key is reported at the key, not at its value
            message = f"unknown key {loc[-1]!r}" if loc else message
            line, column = parsed.key_marks.get(loc, (line, column))
        elif kind == "key":
            line, column = parsed.key_marks.get(loc, (line, column))
        issues.append(ConfigIssue(line, column, dotted(loc), message))
    return issues


def load_model(source: str | Path, model: type[T], *, text: str | None = None) -> T:
    """Parse and validate ``source`` (a path; ``text`` overrides reading it) into ``model``.

    Raises ``ConfigError`` listing every problem as ``file:line:col: path: message``.
    """
    name = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                name, [ConfigIssue(1, 1, "", f"cannot read file: {exc.strerror or exc}")]
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(name, [ConfigIssue(1, 1, "", f"not UTF-8 text: {exc.reason}")]) from None
    parsed = parse_yaml(text, name)
    data = {} if parsed.data is None else parsed.data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [(tuple(e["loc"]), e["type"], e["msg"]) for e in exc.errors()]
        raise ConfigError(name, _issues(parsed, errors)) from None
    except ModelProblems as exc:
        problems = [(p.loc, "key" if p.at_key else "value", p.message) for p in exc.problems]
        raise ConfigError(name, _issues(parsed, problems)) from None
