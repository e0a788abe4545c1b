"""What differs between runs' settings: their resolved strategy files, key by key.

Each run directory holds the strategy file it ran (``strategy.yaml``: overrides applied,
defaults as written). The files are flattened to dotted keys (``model.params.max_depth``,
``features.2.window``) and the keys whose values are not the same in every run are
listed, in the order of the first file that has them; a key a run lacks reads ``-``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MISSING", "differing_settings", "flatten"]

MISSING = "-"
_IGNORED = ("description",)
"""Keys whose difference says nothing about what was run."""


def flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    """Return a nested mapping of settings as ``{dotted.key: value}`` (lists by position;
    an empty mapping or list is a value of its own)."""
    if isinstance(document, Mapping) and document:
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in document.items()]
    elif isinstance(document, list) and document:
        items = [(str(i), v) for i, v in enumerate(document)]
    else:
        return {prefix: document} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def differing_settings(documents: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """Return each key whose value differs between the documents, with each one's value.

    Args:
        documents: The runs' strategy files as read (one per run, in order).

    Returns:
        ``(key, [value as text per run])``, in the order the keys first appear.
    """
    flats = [flatten(d) for d in documents]
    keys: dict[str, None] = {}
    for flat in flats:
        keys.update(dict.fromkeys(flat))
    rows = []
    for key in keys:
        if key.split(".", 1)[0] in _IGNORED:
            continue
        values = [_text(flat[key]) if key in flat else MISSING for flat in flats]
        if len(set(values)) > 1:
            rows.append((key, values))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | Mapping):
        return "[]" if isinstance(value, list) else "{}"
    return str(value)
