"""What differs between runs' settings: their resolved strategy files, key by key.

Each run directory holds the strategy file it ran (``strategy.yaml``: overrides applied,
defaults as written). The files are flattened to dotted keys (``model.params.max_depth``,
``features.2.window``) and the keys whose values are not the same in every run are
listed, in the order of the first file that has them; a key a run lacks reads ``-``.

A key one file leaves to its default and another writes out with the same value is not a
difference: `with_defaults` fills every default a file leaves out (its sections' and its
components' params, validated as ``tradeloom validate`` does) before they are compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MISSING", "differing_settings", "flatten", "with_defaults"]

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


def differing_settings(
    documents: Sequence[Mapping[str, Any]], flats: Sequence[Mapping[str, Any]] | None = None
) -> list[tuple[str, list[str]]]:
    """Return each key whose value differs between the documents, with each one's value.

    Args:
        documents: The runs' strategy files as read (one per run, in order).
        flats: The same files flattened with their defaults (`with_defaults`); None
            compares the files as written.

    Returns:
        ``(key, [value as text per run])``, in the order the keys first appear.
    """
    if flats is None:
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


def with_defaults(path: Path, document: Mapping[str, Any]) -> dict[str, Any]:
    """Return a run's strategy file with every default it leaves out filled in, flattened
    (`flatten`); the file as written when it no longer validates (a plugin since
    uninstalled, a ``${SECRET}`` not set here): then a default is not known.

    Args:
        path: The run's ``strategy.yaml``.
        document: That file as read.
    """
    written = flatten(document)
    from tradeloom.errors import UserError  # validation: only when runs are compared
    from tradeloom.schemas.config import _dump
    from tradeloom.schemas.loader import load_strategy
    from tradeloom.schemas.strategy import StrategyFile

    try:
        config, _ = load_strategy(path)
        top = StrategyFile.model_validate(config.document).model_dump(mode="json")
    except (UserError, ValueError, OSError):
        return written
    full = flatten(top)
    components = [
        config.data,
        *config.features,
        config.model,
        config.signal,
        config.sizing,
        *config.risk_rules,
        config.execution,
        *config.monitoring,
    ]
    for component in components:
        full.update(flatten(_dump(component.params), component.path))
    # what the file wrote wins (its spelling: a kind as written, a list as a list)
    return {**full, **written}


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | Mapping):
        return "[]" if isinstance(value, list) else "{}"
    return str(value)
