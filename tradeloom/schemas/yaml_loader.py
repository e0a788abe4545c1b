"""Read a strategy file safely and load it as YAML, remembering where every value came from.

One reader serves ``validate``, ``run``, every ``--set`` value and hot reload:

- only a regular file is read: a FIFO, a device or a directory is refused at once;
- its size is checked before it is read: at most 256 KiB (`DEFAULT_MAX_FILE_BYTES`),
  or the number of bytes in the environment variable ``TRADELOOM_MAX_STRATEGY_BYTES``;
- it must be UTF-8, and a control character (NUL, BEL, ESC, DEL...) is refused at its
  line:col;
- only the standard tags of plain data are read (``!!str``, ``!!int``, ``!!float``,
  ``!!bool``, ``!!null``, ``!!seq``, ``!!map``, ``!!timestamp``): ``!!binary``,
  ``!!set``, ``!!python/...`` and local tags are refused at their value;
- nesting deeper than `MAX_DEPTH` levels, more than `MAX_VALUES` values once aliases and
  merge keys are expanded, a number written with more than `MAX_NUMBER_LENGTH`
  characters, a number that is not finite (``.inf``, ``.nan``, ``1e+999``) and an alias
  that refers to a value containing it are refused at file:line:col.

Loading has ``yaml.safe_load`` semantics otherwise (PyYAML's ``SafeLoader``: plain data,
no Python objects), but the document is composed into nodes first and constructed here,
so that every dotted key path (``features.3.window``) keeps the line and column of its
value and of its key. Stricter than ``safe_load`` on purpose: a key given twice in one
mapping is an error naming both lines, and the top level must be a mapping. A syntax
error that usually has one cause says what to do (a tab: indent with spaces).
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import BaseConstructor, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.files.reading import FileTooLarge, NotAFile, file_kind, read_bytes
from tradeloom.files.yaml_scanner import SafeLoader
from tradeloom.schemas.messages import join_path, show
from tradeloom.schemas.yaml_budget import (
    MAP_TAG,
    MERGE_TAG,
    SEQ_TAG,
    STR_TAG,
    VALUE_TAG,
    over_budget,
)

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES_ENV",
    "MAX_NUMBER_LENGTH",
    "MAX_VALUES",
    "OVERRIDE_LOCATION",
    "Position",
    "SourceMap",
    "YamlDocument",
    "control_character_problem",
    "decode_strategy_bytes",
    "load_yaml",
    "max_file_bytes",
    "parse_yaml",
    "parse_yaml_value",
    "read_strategy_text",
]

OVERRIDE_LOCATION = "--set"
"""The location of a value given on the command line instead of in the file."""

MAX_FILE_BYTES_ENV = "TRADELOOM_MAX_STRATEGY_BYTES"
"""Environment variable that sets the largest strategy file read, in bytes."""

DEFAULT_MAX_FILE_BYTES = 256 * 1024
"""The largest strategy file read by default: 256 KiB, some 80 times the largest shipped
(PyYAML's pure-Python parser takes about 2 s for the worst 256 KiB on one core)."""

MAX_DEPTH = 64
"""Deepest nesting of lists and mappings (a strategy file needs about 6 levels)."""

MAX_VALUES = 100_000
"""Most values in a document once aliases are expanded ("billion laughs" are refused)."""

MAX_NUMBER_LENGTH = 100
"""Longest number, in characters: YAML 1.1's base-60 integers (``1:2:3``) otherwise let a
short file ask for an integer of millions of digits."""

_TAG_PREFIX = "tag:yaml.org,2002:"
_NUMBER_TAGS = frozenset({_TAG_PREFIX + "int", _TAG_PREFIX + "float"})
_SCALAR_TAGS = frozenset(
    _TAG_PREFIX + name for name in ("str", "int", "float", "bool", "null", "timestamp")
)
_ALLOWED_TAGS = "!!str, !!int, !!float, !!bool, !!null, !!seq, !!map"

# What YAML 1.1 allows in a stream (PyYAML's Reader.NON_PRINTABLE, plus lone surrogates).
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_CONTROL_NAMES = {
    "\x00": "NUL",
    "\x07": "BEL",
    "\x08": "BS",
    "\x0b": "VT",
    "\x0c": "FF",
    "\x1b": "ESC",
    "\x7f": "DEL",
}
# A line break as PyYAML counts lines (a CR alone, CR LF, NEL, LS, PS, LF).
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _line_column(text: str, index: int) -> tuple[int, int]:
    head = text[:index]
    breaks = list(_LINE_BREAK.finditer(head))
    line_start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, index - line_start + 1


def _too_large(source: str, size: int, limit: int) -> str:
    return (
        f"{source}: {size:,} bytes is larger than the {limit:,}-byte limit for a strategy "
        f"file; give the right file, or raise {MAX_FILE_BYTES_ENV}"
    )


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
        elsewhere: Key paths whose value came from elsewhere than the file, and where (a
            restart's ``model`` section: the journal's row that kept the model in force);
            they and everything below them are located there.
    """

    source: str
    values: Mapping[str, Position]
    keys: Mapping[str, Position] = field(default_factory=dict)
    overridden: frozenset[str] = frozenset()
    elsewhere: Mapping[str, str] = field(default_factory=dict)

    def locate(self, path: str) -> str:
        """Return ``FILE:LINE:COL`` of the value at ``path``.

        A path with no position of its own (a missing key) falls back to its nearest
        ancestor that has one; an overridden path is located at ``--set``.
        """
        if self.is_overridden(path):
            return OVERRIDE_LOCATION
        for replaced, where in self.elsewhere.items():
            if path == replaced or path.startswith(replaced + "."):
                return where
        current = path
        while current not in self.values:
            if not current:
                return self.source
            current = current.rpartition(".")[0]
        return f"{self.source}:{self.values[current]}"

    def locate_key(self, path: str) -> str:
        """Return ``FILE:LINE:COL`` of the key of ``path``, or of its value if it has none."""
        if not self.is_overridden(path) and path in self.keys and path not in self.elsewhere:
            return f"{self.source}:{self.keys[path]}"
        return self.locate(path)

    def is_overridden(self, path: str) -> bool:
        """Return whether ``path`` or one of its ancestors was set by an override."""
        return any(path == done or path.startswith(done + ".") for done in self.overridden)

    def with_override(self, path: str) -> SourceMap:
        """Return a copy that locates ``path`` and everything below it at ``--set``."""
        return replace(self, overridden=self.overridden | {path})

    def from_elsewhere(self, path: str, where: str) -> SourceMap:
        """Return a copy that locates ``path`` and everything below it at ``where``."""
        return replace(self, elsewhere={**self.elsewhere, path: where})


@dataclass(frozen=True)
class YamlDocument:
    """A loaded strategy file.

    Attributes:
        data: The top-level mapping, as ``yaml.safe_load`` would return it.
        source_map: Where each of its key paths came from.
    """

    data: dict[Any, Any]
    source_map: SourceMap


def max_file_bytes() -> int:
    """Return the largest strategy file read, in bytes: `MAX_FILE_BYTES_ENV`, else 256 KiB.

    Raises:
        UserError: The variable is set to something other than a positive integer.
    """
    raw = os.environ.get(MAX_FILE_BYTES_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_FILE_BYTES
    if not re.fullmatch(r"[1-9][0-9]{0,15}", raw.strip()):
        raise UserError(
            f"{MAX_FILE_BYTES_ENV}: expected a positive number of bytes such as 262144, "
            f"was {show(raw)}"
        )
    return int(raw.strip())


def read_strategy_text(path: str | Path) -> str:
    """Return the text of the strategy file at ``path``, read safely.

    Only a regular file is read (a FIFO, a device or a directory is refused without
    waiting on it), its size is checked against `max_file_bytes` before any byte is
    read, and it must be UTF-8 (a byte-order mark is allowed) without control characters.

    Raises:
        UserError: The file cannot be read, is not a regular file, or is too large.
        ConfigError: It is not UTF-8, or holds a control character (at its line:col).
    """
    source = str(path)
    limit = max_file_bytes()
    try:
        data = read_bytes(Path(path), "a strategy file", limit=limit)
    except NotAFile as exc:  # the strategy file's own messages: it names what to give
        if exc.mode is None:
            raise UserError(f"{source}: no such file") from None
        if stat.S_ISDIR(exc.mode):
            raise UserError(f"{source}: is a directory, not a strategy file") from None
        raise UserError(
            f"{source}: is {file_kind(exc.mode)}, not a regular file; give a strategy file"
        ) from None
    except FileTooLarge as exc:
        raise UserError(_too_large(source, exc.size, limit)) from None
    return decode_strategy_bytes(data, source)


def decode_strategy_bytes(data: bytes, source: str) -> str:
    """Return ``data`` decoded as UTF-8 (a leading byte-order mark dropped).

    Raises:
        ConfigError: It is not UTF-8, or holds a control character; at its line:col.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        head = data[offset : exc.start].decode("utf-8", errors="replace")
        line, column = _line_column(head, len(head))
        raise ConfigError(
            [
                Problem(
                    f"{source}:{line}:{column}",
                    "",
                    f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded; "
                    "save the file as UTF-8",
                )
            ]
        ) from None
    problem = control_character_problem(text, source)
    if problem is not None:
        raise ConfigError([problem])
    return text


def control_character_problem(text: str, source: str) -> Problem | None:
    """Return a problem at the first character YAML does not allow, or None.

    YAML allows tab, line breaks and printable characters; anything else (NUL, BEL,
    ESC, DEL, C1 controls, lone surrogates) is refused at its line:col, with a count of
    the others.
    """
    found = _NON_PRINTABLE.search(text)
    if found is None:
        return None
    char = found.group()
    line, column = _line_column(text, found.start())
    more = len(_NON_PRINTABLE.findall(text, found.end()))
    others = f" (and {more} more)" if more else ""
    name = _CONTROL_NAMES.get(char)
    shown = f"U+{ord(char):04X}" + (f" ({name})" if name else "")
    where = f"{source}:{line}:{column}" if source != OVERRIDE_LOCATION else source
    return Problem(
        where,
        "",
        f"invalid YAML: control character {shown} is not allowed{others}; remove it",
    )


def load_yaml(path: str | Path) -> YamlDocument:
    """Read and parse the strategy file at ``path`` (`read_strategy_text`, `parse_yaml`).

    Args:
        path: The file; its name as given is used in every location.

    Returns:
        The document and its source map.

    Raises:
        UserError: The file does not exist, cannot be read, is not a regular file, or
            is larger than `max_file_bytes`.
        ConfigError: Not UTF-8, a control character, invalid YAML, a tag other than
            the standard ones, nesting deeper than `MAX_DEPTH`, more than `MAX_VALUES`
            values once aliases are expanded, duplicate keys, or a top level that is
            not a mapping.
    """
    return parse_yaml(read_strategy_text(path), str(path))


def parse_yaml(text: str, source: str) -> YamlDocument:
    """Parse ``text`` as a strategy document.

    Args:
        text: The YAML text.
        source: The name used as ``FILE`` in locations.

    Returns:
        The document and its source map.

    Raises:
        ConfigError: Invalid YAML (see `load_yaml`), or a top level that is not a mapping.
    """
    root, data, builder = _parse(text, source)
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


def parse_yaml_value(text: str, path: str) -> tuple[Any, list[Problem]]:
    """Parse the value of a ``--set`` override with the same limits as a file.

    Args:
        text: The text after ``=``.
        path: The dotted key path it is set at, for problems.

    Returns:
        The value (None when empty or invalid) and the problems found, each located at
        ``--set`` and ``path``.
    """
    problem = control_character_problem(text, OVERRIDE_LOCATION)
    if problem is not None:
        return None, [Problem(OVERRIDE_LOCATION, path, problem.message)]
    try:
        _, data, builder = _parse(text, OVERRIDE_LOCATION)
    except ConfigError as exc:
        builder_problems = exc.problems
    else:
        builder_problems = builder.problems
        if not builder_problems:
            return data, []
    return None, [
        Problem(
            OVERRIDE_LOCATION,
            path,
            f"invalid YAML value {show(text)}: {p.message.removeprefix('invalid YAML: ')}",
        )
        for p in builder_problems
    ]


def _parse(text: str, source: str) -> tuple[Node | None, Any, _Builder]:
    problem = control_character_problem(text, source)
    if problem is not None:
        raise ConfigError([problem])
    loader = _Loader(text)
    builder = _Builder(loader, source)
    root: Node | None = None
    data: Any = None
    try:
        try:
            root = loader.get_single_node()
            data = builder.build_document(root) if root is not None else None
        except _TooDeep as exc:
            raise ConfigError(
                [
                    Problem(
                        f"{source}:{exc.mark.line + 1}:{exc.mark.column + 1}",
                        "",
                        f"invalid YAML: nested more than {MAX_DEPTH} levels deep",
                    )
                ]
            ) from None
        except yaml.MarkedYAMLError as exc:
            raise ConfigError([_syntax_problem(exc, source)]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([Problem(source, "", f"invalid YAML: {exc}")]) from None
        except RecursionError:  # pragma: no cover - MAX_DEPTH is far below the limit
            raise ConfigError([Problem(source, "", "invalid YAML: nested too deeply")]) from None
    finally:
        loader.dispose()
    return root, data, builder


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class _Loader(SafeLoader):
    # PyYAML composes nodes recursively: cap the depth before Python's recursion limit
    # does, and cap how far merge keys ('<<: *a') may multiply a mapping's entries.

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            if self._nodes > MAX_VALUES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"more than {MAX_VALUES} values once aliases are expanded",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def flatten_mapping(self, node: MappingNode) -> None:
        # Written here, not inherited: PyYAML 6.0.4 began to drop a merged entry whose key
        # string is the same object as one merged before (``id(key)``), so the same file
        # built other mappings, and `over_budget` other counts, on 6.0.3 and 6.0.4. These
        # are PyYAML 6.0.3's rules, on every PyYAML: a merge key's mappings (flattened
        # first) come before the mapping's own entries, in the order they are listed, and
        # a '=' key is a plain string.
        merged: list[tuple[Node, Node]] = []
        index = 0
        while index < len(node.value):
            key_node, value_node = node.value[index]
            if key_node.tag == MERGE_TAG:
                del node.value[index]
                for source in self._merged_mappings(node, value_node):
                    self.flatten_mapping(source)
                    merged.extend(source.value)
            else:
                if key_node.tag == VALUE_TAG:
                    key_node.tag = STR_TAG
                index += 1
        if merged:
            node.value = merged + node.value
        if len(node.value) > MAX_VALUES:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"more than {MAX_VALUES} values once aliases are expanded",
                node.start_mark,
            )

    @staticmethod
    def _merged_mappings(node: MappingNode, value: Node) -> list[MappingNode]:
        if isinstance(value, MappingNode):
            return [value]
        if isinstance(value, SequenceNode):
            for item in value.value:
                if not isinstance(item, MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping for merging, but found {item.id}",
                        item.start_mark,
                    )
            return list(value.value)
        raise yaml.constructor.ConstructorError(
            "while constructing a mapping",
            node.start_mark,
            f"expected a mapping or list of mappings for merging, but found {value.id}",
            value.start_mark,
        )


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.values: dict[str, Position] = {}
        self.keys: dict[str, Position] = {}
        self.problems: list[Problem] = []
        self._budget = MAX_VALUES
        self._open: set[int] = set()

    def build_document(self, root: Node) -> Any:
        # A bomb is refused where building it would stop, without building 100,000 values.
        constructor = SafeConstructor()  # its own: a failed construction leaves state behind
        over = over_budget(
            root,
            MAX_VALUES,
            MAX_DEPTH,
            lambda key: _key_or_problem(constructor, key)[0],
            _INVALID,
        )
        if over is not None:
            raise self._too_many(*over)
        return self.build(root, "")

    def build(self, node: Node, path: str) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise self._too_many(node, path)
        self.values[path] = _position(node)
        if id(node) in self._open:
            self._problem(node, path, "invalid YAML: an alias refers to a value that contains it")
            return None
        if isinstance(node, MappingNode) and node.tag == MAP_TAG:
            self._open.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self._open.discard(id(node))
        if isinstance(node, SequenceNode) and node.tag == SEQ_TAG:
            self._open.add(id(node))
            try:
                return [self.build(item, join_path(path, i)) for i, item in enumerate(node.value)]
            finally:
                self._open.discard(id(node))
        if not self._plain(node, path):
            return None
        return self._construct(node, path)

    def _plain(self, node: Node, path: str) -> bool:
        message = _not_plain(node)
        if message is not None:
            self._problem(node, path, message)
        return message is None

    def _mapping(self, node: MappingNode, path: str) -> dict[Any, Any]:
        explicit = {id(key_node) for key_node, _ in node.value if key_node.tag != MERGE_TAG}
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
        key, message = _key_or_problem(self.loader, node)
        if message is not None:
            self._problem(node, path, message)
        return key

    def _construct(self, node: Node, path: str, failed: Any = None) -> Any:
        value, message = _constructed(self.loader, node, failed)
        if message is not None:
            self._problem(node, path, message)
        return value

    def _too_many(self, node: Node, path: str) -> ConfigError:
        return ConfigError(
            [
                Problem(
                    self._where(node),
                    path,
                    f"invalid YAML: more than {MAX_VALUES} values once aliases are expanded",
                )
            ]
        )

    def _problem(self, node: Node, path: str, message: str) -> None:
        self.problems.append(Problem(self._where(node), path, message))

    def _where(self, node: Node) -> str:
        return f"{self.source}:{_position(node)}"


_INVALID = object()


def _key_or_problem(constructor: BaseConstructor, node: Node) -> tuple[Any, str | None]:
    # A mapping key: its value, or _INVALID and why (its value is then never built).
    if not isinstance(node, ScalarNode):
        return _INVALID, "invalid YAML: a mapping key must be a plain value"
    message = _not_plain(node)
    if message is not None:
        return _INVALID, message
    return _constructed(constructor, node, failed=_INVALID)


def _constructed(constructor: BaseConstructor, node: Node, failed: Any) -> tuple[Any, str | None]:
    try:
        value = constructor.construct_object(node, deep=True)
        if isinstance(value, float) and not math.isfinite(value):
            written = node.value if isinstance(node, ScalarNode) else show(value)
            return failed, f"must be a finite number, was {written}"
        return value, None
    except yaml.MarkedYAMLError as exc:
        problem = (exc.problem or str(exc)).replace(_TAG_PREFIX, "!!")
        return failed, f"invalid YAML: {problem}"
    except Exception:  # a constructor given a value its tag cannot hold (!!timestamp 7)
        tag = node.tag.replace(_TAG_PREFIX, "!!")
        value = node.value if isinstance(node, ScalarNode) else node.id
        return failed, f"invalid YAML: cannot read {show(value)} as {tag}"


def _not_plain(node: Node) -> str | None:
    # Only plain data: a strategy file has no use for bytes, sets or Python objects.
    if not isinstance(node, ScalarNode) or node.tag not in _SCALAR_TAGS:
        tag = node.tag.replace(_TAG_PREFIX, "!!")
        return (
            f"invalid YAML: the tag {tag} is not allowed in a strategy file; "
            f"use plain values ({_ALLOWED_TAGS})"
        )
    if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_LENGTH:
        return (
            f"invalid YAML: a number of {len(node.value):,} characters; at most "
            f"{MAX_NUMBER_LENGTH} are read"
        )
    return None


def _position(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    problem = exc.problem or exc.context or "cannot parse"
    if exc.context and problem.startswith("but "):
        problem = f"{exc.context} {problem}"
    problem = _in_words(problem)
    for cause, hint in _HINTS:
        if cause in problem:
            problem = f"{problem}; {hint}"
            break
    return Problem(where, "", f"invalid YAML: {problem}")


_TOKENS = {
    "'<block mapping start>'": "a key",
    "'<block sequence start>'": "a list",
    "'<block end>'": "the end of a block",
    "'<scalar>'": "a value",
    "'-'": "a list item ('-')",
    "'?'": "a '?' (YAML's explicit key mark: a stray '?' or a key indented one space too "
    "far or too little)",
    "'<flow mapping start>'": "a '{'",
    "'<flow sequence start>'": "a '['",
    "'<stream end>'": "the end of the file",
    "'<document start>'": "a '---'",
}


def _in_words(problem: str) -> str:
    """Return PyYAML's parser message in words: its token names are its own jargon."""
    match = re.fullmatch(r"expected <block end>, but found (.+)", problem)
    if match is None:
        for token, words in _TOKENS.items():
            problem = problem.replace(token, words)
        return problem.replace("<block end>", "the end of a block")
    found = _TOKENS.get(match.group(1), match.group(1))
    return (
        f"this line is indented differently from the lines above it (found {found}); "
        "keys of one mapping, and items of one list, start in the same column"
    )


_HINTS = (
    (r"found character '\t'", "indent with spaces: YAML does not allow tabs there"),
    (
        "mapping values are not allowed here",
        "usually a missing space after a colon (write key: value) or an unquoted colon "
        "in a value (quote it: 'a: b')",
    ),
)
