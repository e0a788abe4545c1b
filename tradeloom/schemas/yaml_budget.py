"""Find where a composed YAML document passes its value budget, without building it.

The YAML loader (`tradeloom.schemas.yaml_loader`) builds a document value by value and
refuses it at the value that passes `MAX_VALUES` once aliases and merge keys are
expanded. An alias bomb is a small node graph that expands to billions of values, so
building up to the refusal cost a second of CPU for every bomb (100,000 values, each
located and constructed) before the one-line answer. `over_budget` counts the expansion
on the graph instead (each node once) and names the node and key path the builder would
have refused at, so the loader refuses at once with the same message and location.

It answers only where that is certain: the count follows the builder exactly on graphs
without cycles whose merge keys all merge mappings, and gives up (None: build and let the
builder count) on anything else: a cycle, a merge the loader refuses, a ``=`` key, a
merged mapping longer than the budget reached before the refusal, or a graph deeper than
`MAX_DEPTH` once expanded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from tradeloom.schemas.messages import join_path

__all__ = ["MAP_TAG", "MERGE_TAG", "SEQ_TAG", "STR_TAG", "VALUE_TAG", "over_budget"]

MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"
VALUE_TAG = "tag:yaml.org,2002:value"  # a '=' key; flatten_mapping retags it a string


class _Unsure(Exception):
    """The graph is one the count does not follow exactly: the builder decides."""


@dataclass(frozen=True)
class _Counts:
    size: int  # build calls for the node and everything below it
    height: int  # levels of build calls below it
    tainted: bool  # building it flattens a mapping the loader refuses


@dataclass(frozen=True)
class _Entries:
    size: int  # build calls for the values of its entries, merged ones included
    length: int  # its entries once its merge keys are flattened
    height: int
    refused: bool  # flatten_mapping refuses it: a merged mapping is longer than the budget
    tainted: bool  # building one of its values flattens a refused mapping


def over_budget(
    root: Node, budget: int, max_depth: int, key_of: Callable[[Node], Any], invalid: object
) -> tuple[Node, str] | None:
    """Return the node, and its key path, that building ``root`` would count past ``budget``.

    Args:
        root: The composed document.
        budget: Most values the builder counts before it refuses the document.
        max_depth: Deepest expansion followed; a deeper one is left to the builder.
        key_of: The builder's constructed key of a key node, ``invalid`` if it skips it.
        invalid: What ``key_of`` returns for a key whose value the builder never builds.

    Returns:
        None when the document expands to at most ``budget`` values, or when the graph
        is one whose count only building it can tell (see the module's docstring).
    """
    counter = _Counter(budget, key_of, invalid)
    try:
        counts = counter.node(root)
        if counts.height > max_depth or counts.size <= budget:
            return None
        return counter.find(root, "", budget + 1)
    except (_Unsure, RecursionError):
        return None


class _Counter:
    def __init__(self, budget: int, key_of: Callable[[Node], Any], invalid: object) -> None:
        self.budget = budget
        self.key_of = key_of
        self.invalid = invalid
        self.nodes: dict[int, _Counts] = {}
        self.entries: dict[int, _Entries] = {}
        self.keys: dict[int, Any] = {}
        self.open: set[int] = set()

    def key(self, node: Node) -> Any:
        if id(node) not in self.keys:
            self.keys[id(node)] = self.key_of(node)
        return self.keys[id(node)]

    def node(self, node: Node) -> _Counts:
        known = self.nodes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, MappingNode) and node.tag == MAP_TAG:
            entries = self.mapping(node)
            counts = _Counts(
                1 + entries.size, 1 + entries.height, entries.refused or entries.tainted
            )
        elif isinstance(node, SequenceNode) and node.tag == SEQ_TAG:
            self.enter(node)
            items = [self.node(item) for item in node.value]
            self.open.discard(id(node))
            counts = _Counts(
                1 + sum(c.size for c in items),
                1 + max((c.height for c in items), default=0),
                any(c.tainted for c in items),
            )
        else:
            counts = _Counts(1, 0, False)
        self.nodes[id(node)] = counts
        return counts

    def enter(self, node: Node) -> None:
        if id(node) in self.open:
            raise _Unsure  # a cycle: the builder refuses it where it meets it
        self.open.add(id(node))

    def mapping(self, node: MappingNode) -> _Entries:
        # What flatten_mapping makes of the node's entries, counted without flattening.
        known = self.entries.get(id(node))
        if known is not None:
            return known
        self.enter(node)
        size = length = height = 0
        refused = tainted = False
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for source in _merged(value_node):
                    merged = self.mapping(source)
                    size += merged.size
                    length += merged.length
                    height = max(height, 1 + merged.height)  # flatten_mapping recurses
                    refused = refused or merged.refused
                    tainted = tainted or merged.tainted
            elif key_node.tag == VALUE_TAG:
                raise _Unsure
            else:
                length += 1
                if self.key(key_node) is not self.invalid:
                    counts = self.node(value_node)
                    size += counts.size
                    height = max(height, counts.height)
                    tainted = tainted or counts.tainted
        self.open.discard(id(node))
        entries = _Entries(size, length, height, refused or length > self.budget, tainted)
        self.entries[id(node)] = entries
        return entries

    def find(self, node: Node, path: str, count: int) -> tuple[Node, str]:
        # The node built as the count-th value from node's own (which is the first).
        if count == 1:
            return node, path
        count -= 1
        if isinstance(node, MappingNode):
            if self.mapping(node).refused:
                raise _Unsure  # the builder flattens it before it builds its values
            return self.find_entry(node, path, count)
        for i, item in enumerate(node.value):
            counts = self.node(item)
            if count <= counts.size:
                return self.find(item, join_path(path, i), count)
            count = self.skip(counts.size, counts.tainted, count)
        raise _Unsure  # pragma: no cover - the items add up to count or more

    def find_entry(self, node: MappingNode, path: str, count: int) -> tuple[Node, str]:
        # The same among a mapping's values in flatten_mapping's order: merged ones first.
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for source in _merged(value_node):
                    merged = self.mapping(source)
                    if count <= merged.size:
                        return self.find_entry(source, path, count)
                    count = self.skip(merged.size, merged.tainted, count)
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.key(key_node)
            if key is self.invalid:
                continue
            counts = self.node(value_node)
            if count <= counts.size:
                return self.find(value_node, join_path(path, key), count)
            count = self.skip(counts.size, counts.tainted, count)
        raise _Unsure  # pragma: no cover - the entries add up to count or more

    @staticmethod
    def skip(size: int, tainted: bool, count: int) -> int:
        if tainted:
            raise _Unsure  # building what is skipped would meet a refused mapping first
        return count - size


def _merged(value: Node) -> list[MappingNode]:
    # The mappings a merge key merges, in flatten_mapping's order; others it refuses.
    if isinstance(value, MappingNode):
        return [value]
    if isinstance(value, SequenceNode) and all(isinstance(s, MappingNode) for s in value.value):
        return list(reversed(value.value))
    raise _Unsure
