"""Tell a portfolio file and a sweep file from a strategy file by its parsed YAML, without
their models.

``tradeloom run`` and ``validate`` ask this of every file they are given before they
validate it; answering from `tradeloom.schemas.portfolio_file` made every strategy
file's command build the portfolio file's models too (about 10 ms of CPU, 2026-11-26).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeloom.suggestions import closest

__all__ = ["SWEEP_ONLY_KEYS", "is_portfolio_document", "is_sweep_document"]


def is_portfolio_document(data: Any) -> bool:
    """Return whether a loaded YAML document is a portfolio file: it lists ``strategies``,
    or lists them under a key that misspells it (which its validation then names, instead
    of every strategy key the file lacks). ``regime`` is as near ``strategies`` by the one
    rule, so only a key holding a list counts."""
    if not isinstance(data, Mapping):
        return False
    if "strategies" in data:
        return True
    return any(
        isinstance(value, list) and key != "strategy" and closest(key, ["strategies"])
        for key, value in data.items()
    )


SWEEP_ONLY_KEYS = frozenset(
    {
        *("grid", "random", "search", "trials", "objective", "objectives", "constraints"),
        *("direction", "max_variants", "keep_top"),
    }
)
"""Top-level keys only a sweep file has: a file with one is a sweep file even when its
``strategy:`` is misspelt (and is then told so, not that it lacks a strategy's keys)."""


def is_sweep_document(data: Any) -> bool:
    """Return whether a loaded YAML document is a sweep file: it names a ``strategy``, or
    has a key only a sweep file has."""
    return isinstance(data, Mapping) and (
        "strategy" in data or any(k in data for k in SWEEP_ONLY_KEYS)
    )
