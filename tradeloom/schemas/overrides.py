"""``--set key.path=value`` overrides, applied to the document before it is validated.

The key path is dotted, list items by index (``features.0.window=10``; an index is
written as digits without leading zeros); the value is parsed as YAML by the same reader
and with the same limits as a strategy file (`parse_yaml_value`), so ``0.5`` is a number,
``[a, b]`` a list and ``"10"`` a string. A key that does not exist yet in a mapping is
added (validation then refuses it if the component does not know it); a list index must
exist. ``KEY.PATH+=VALUE`` appends VALUE to the list at KEY.PATH
(``features+={kind: sma, window: 50}``); the new item is ``KEY.PATH.N``. Problems in an
overridden value are located at ``--set`` instead of ``FILE:LINE:COL``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tradeloom.errors import Problem
from tradeloom.schemas.messages import join_path, show
from tradeloom.schemas.yaml_loader import OVERRIDE_LOCATION, SourceMap, parse_yaml_value

__all__ = ["apply_overrides"]

_FORMAT = "expected KEY.PATH=VALUE, e.g. risk.sizing.fraction=0.5"
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}", re.ASCII)


def apply_overrides(
    data: Mapping[Any, Any], overrides: Sequence[str], source_map: SourceMap
) -> tuple[dict[Any, Any], SourceMap, list[Problem]]:
    """Apply ``overrides`` in order (a later one wins) to a copy of ``data``.

    Args:
        data: The document as loaded; not modified.
        overrides: ``KEY.PATH=VALUE`` strings, as given to ``--set``.
        source_map: Where the document's values came from.

    Returns:
        The new document, the source map marking the overridden paths, and a problem
        for each override that cannot be applied (the others still are).
    """
    result = copy.deepcopy(dict(data))
    problems: list[Problem] = []
    for text in overrides:
        parsed = _parse(text)
        if isinstance(parsed, Problem):
            problems.append(parsed)
            continue
        parts, value, append = parsed
        if append:
            appended = _append(result, parts, value)
            if isinstance(appended, Problem):
                problems.append(appended)
            else:
                source_map = source_map.with_override(join_path("", *parts, str(appended)))
            continue
        problem = _assign(result, parts, value)
        if problem is not None:
            problems.append(problem)
        else:
            source_map = source_map.with_override(join_path("", *parts))
    return result, source_map, problems


def _parse(text: str) -> tuple[list[str], Any, bool] | Problem:
    path, sep, raw = text.partition("=")
    path = path.strip()
    append = path.endswith("+")
    if append:
        path = path[:-1].rstrip()
    if not sep:
        return Problem(OVERRIDE_LOCATION, "", f"invalid override {text!r}: {_FORMAT}")
    if not path:
        return Problem(OVERRIDE_LOCATION, "", f"invalid override {text!r}: the key path is empty")
    parts = path.split(".")
    if not all(parts):
        return Problem(
            OVERRIDE_LOCATION, "", f"invalid override {text!r}: the key path has an empty part"
        )
    value, problems = parse_yaml_value(raw, path)
    if problems:
        return problems[0]
    return parts, value, append


def _append(document: dict[Any, Any], parts: list[str], value: Any) -> int | Problem:
    """Append ``value`` to the list at ``parts``; return its index."""
    container: Any = document
    for depth, part in enumerate(parts):
        if isinstance(container, dict):
            container = container.get(_existing_key(container, part))
        elif isinstance(container, list) and _INDEX.fullmatch(part) and int(part) < len(container):
            container = container[int(part)]
        else:
            container = None
        if container is None:
            where = join_path("", *parts[: depth + 1])
            return Problem(OVERRIDE_LOCATION, where, "cannot append: there is no such key")
    if not isinstance(container, list):
        where = join_path("", *parts)
        return Problem(
            OVERRIDE_LOCATION, where, f"cannot append: {where} is {show(container)}, not a list"
        )
    container.append(value)
    return len(container) - 1


def _assign(document: dict[Any, Any], parts: list[str], value: Any) -> Problem | None:
    container: Any = document
    for depth, part in enumerate(parts):
        here = join_path("", *parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(container, dict):
            key = _existing_key(container, part)
            if last:
                container[key] = value
                return None
            if container.get(key) is None:
                container[key] = {}
            container = container[key]
        elif isinstance(container, list):
            if not _INDEX.fullmatch(part):
                return Problem(
                    OVERRIDE_LOCATION,
                    here,
                    f"expected a list index (digits without leading zeros), was {show(part)}",
                )
            index = int(part)
            if index >= len(container):
                parent = join_path("", *parts[:depth])
                return Problem(
                    OVERRIDE_LOCATION,
                    here,
                    f"index {index} is out of range: {parent} has {_items(len(container))} "
                    f"(append with {parent}+=VALUE)",
                )
            if last:
                container[index] = value
                return None
            container = container[index]
        else:
            parent = join_path("", *parts[:depth])
            return Problem(
                OVERRIDE_LOCATION,
                join_path("", *parts),
                f"cannot set a key inside {parent}, which is {show(container)}",
            )
    return None  # pragma: no cover - parts is never empty


def _existing_key(mapping: dict[Any, Any], part: str) -> Any:
    # YAML keys need not be strings (``1: x``); match them by how they are written.
    if part in mapping:
        return part
    return next((key for key in mapping if str(key) == part), part)


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"
