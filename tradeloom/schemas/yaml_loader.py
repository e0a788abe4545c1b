"""Load a strategy file as YAML, remembering where every key and value came from.

Loading has ``yaml.safe_load`` semantics (PyYAML's ``SafeLoader``: plain data, no Python
objects), but the document is composed into nodes first and constructed here, so that
every dotted key path (``features.3.window``) keeps the line and column of its value and
of its key. Stricter than ``safe_load`` on purpose: a key given twice in one mapping is an
error naming both lines, and the top level must be a mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.schemas.messages import join_path, show

__all__ = ["OVERRIDE_LOCATION", "Position", "SourceMap", "YamlDocument", "load_yaml", "parse_yaml"]

OVERRIDE_LOCATION = "--set"
"""The location of a value given on the command line instead of in the file."""

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TAG_PREFIX = "tag:yaml.org,2002:"

# Aliases can make a small file expand enormously ("billion laughs"); no strategy file
# comes near this many values.
_MAX_NODES = 100_000


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the strategy file."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


@dataclass(frozen=True)
class SourceMap:
    """Where each key path of a document came from.

    Attributes:
        source: The file's name as the user gave it; the ``FILE`` of ``FILE:LINE:COL``.
        values: Position of the value of each dotted key path (``""`` is the whole document).
        keys: Position of the key of each dotted key path (mapping entries only).
        overridden: Key paths replaced by a ``--set`` override; they and everything below
            them are located at ``--set``.
    """

    source: str
    values: Mapping[str, Position]
    keys: Mapping[str, Position] = field(default_factory=dict)
    overridden: frozenset[str] = frozenset()

    def locate(self, path: str) -> str:
        """Return ``FILE:LINE:COL`` of the value at ``path``.

        A path with no position of its own (a missing key) falls back to its nearest
        ancestor that has one; an overridden path is located at ``--set``.
        """
        if self.is_overridden(path):
            return OVERRIDE_LOCATION
        current = path
        while current not in self.values:
            if not current:
                return self.source
            current = current.rpartition(".")[0]
        return f"{self.source}:{self.values[current]}"

    def locate_key(self, path: str) -> str:
        """Return ``FILE:LINE:COL`` of the key of ``path``, or of its value if it has none."""
        if not self.is_overridden(path) and path in self.keys:
            return f"{self.source}:{self.keys[path]}"
        return self.locate(path)

    def is_overridden(self, path: str) -> bool:
        """Return whether ``path`` or one of its ancestors was set by an override."""
        return any(path == done or path.startswith(done + ".") for done in self.overridden)

    def with_override(self, path: str) -> SourceMap:
        """Return a copy that locates ``path`` and everything below it at ``--set``."""
        return replace(self, overridden=self.overridden | {path})


@dataclass(frozen=True)
class YamlDocument:
    """A loaded strategy file.

    Attributes:
        data: The top-level mapping, as ``yaml.safe_load`` would return it.
        source_map: Where each of its key paths came from.
    """

    data: dict[Any, Any]
    source_map: SourceMap


def load_yaml(path: str | Path) -> YamlDocument:
    """Read and parse the strategy file at ``path``.

    Args:
        path: The file; its name as given is used in every location.

    Returns:
        The document and its source map.

    Raises:
        UserError: The file does not exist or cannot be read.
        ConfigError: Invalid YAML, duplicate keys, or a top level that is not a mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a strategy file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> YamlDocument:
    """Parse ``text`` as a strategy document.

    Args:
        text: The YAML text.
        source: The name used as ``FILE`` in locations.

    Returns:
        The document and its source map.

    Raises:
        ConfigError: Invalid YAML, duplicate keys, or a top level that is not a mapping.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
            builder = _Builder(loader, source)
            data = builder.build(root, "") if root is not None else None
        except yaml.MarkedYAMLError as exc:
            raise ConfigError([_syntax_problem(exc, source)]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([Problem(source, "", f"invalid YAML: {exc}")]) from None
        except RecursionError:
            raise ConfigError([Problem(source, "", "invalid YAML: nested too deeply")]) from None
    finally:
        loader.dispose()
    problems = builder.problems
    if not isinstance(data, dict) and not problems:
        where = f"{source}:{builder.values['']}" if "" in builder.values else f"{source}:1:1"
        was = "empty" if root is None else show(data)
        problems.append(
            Problem(where, "", f"the top level must be a mapping of keys to values, was {was}")
        )
    if problems:
        raise ConfigError(problems)
    assert isinstance(data, dict)
    return YamlDocument(data, SourceMap(source, builder.values, builder.keys))


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.values: dict[str, Position] = {}
        self.keys: dict[str, Position] = {}
        self.problems: list[Problem] = []
        self._budget = _MAX_NODES
        self._open: set[int] = set()

    def build(self, node: Node, path: str) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise ConfigError(
                [
                    Problem(
                        self._where(node),
                        path,
                        f"invalid YAML: more than {_MAX_NODES} values once aliases are expanded",
                    )
                ]
            )
        self.values[path] = _position(node)
        if id(node) in self._open:
            self._problem(node, path, "invalid YAML: an alias refers to a value that contains it")
            return None
        if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
            self._open.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self._open.discard(id(node))
        if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
            self._open.add(id(node))
            try:
                return [self.build(item, join_path(path, i)) for i, item in enumerate(node.value)]
            finally:
                self._open.discard(id(node))
        return self._construct(node, path)

    def _mapping(self, node: MappingNode, path: str) -> dict[Any, Any]:
        explicit = {id(key_node) for key_node, _ in node.value if key_node.tag != _MERGE_TAG}
        try:
            self.loader.flatten_mapping(node)  # resolves merge keys ('<<: *defaults')
        except yaml.MarkedYAMLError as exc:
            self.problems.append(_syntax_problem(exc, self.source))
            return {}
        first_seen: dict[Any, Node] = {}
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is _INVALID:
                continue
            child = join_path(path, key)
            if id(key_node) in explicit:
                if key in first_seen:
                    first = first_seen[key].start_mark.line + 1
                    again = key_node.start_mark.line + 1
                    self._problem(
                        key_node, child, f"duplicate key: defined at lines {first} and {again}"
                    )
                first_seen.setdefault(key, key_node)
            self.keys[child] = _position(key_node)
            result[key] = self.build(value_node, child)
        return result

    def _key(self, node: Node, path: str) -> Any:
        if not isinstance(node, ScalarNode):
            self._problem(node, path, "invalid YAML: a mapping key must be a plain value")
            return _INVALID
        return self._construct(node, path, failed=_INVALID)

    def _construct(self, node: Node, path: str, failed: Any = None) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            problem = (exc.problem or str(exc)).replace(_TAG_PREFIX, "!!")
            self._problem(node, path, f"invalid YAML: {problem}")
        except (ValueError, TypeError, OverflowError):
            tag = node.tag.replace(_TAG_PREFIX, "!!")
            value = node.value if isinstance(node, ScalarNode) else node.id
            self._problem(node, path, f"invalid YAML: cannot read {show(value)} as {tag}")
        return failed

    def _problem(self, node: Node, path: str, message: str) -> None:
        self.problems.append(Problem(self._where(node), path, message))

    def _where(self, node: Node) -> str:
        return f"{self.source}:{_position(node)}"


_INVALID = object()


def _position(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    problem = exc.problem or exc.context or "cannot parse"
    if exc.context and problem.startswith("but "):
        problem = f"{exc.context} {problem}"
    return Problem(where, "", f"invalid YAML: {problem}")
