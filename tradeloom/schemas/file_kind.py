"""Tell a portfolio file from a strategy file by its parsed YAML, without either's models.

``tradeloom run`` and ``validate`` ask this of every file they are given before they
validate it; answering from `tradeloom.schemas.portfolio_file` made every strategy
file's command build the portfolio file's models too (about 10 ms of CPU, 2026-11-26).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["is_portfolio_document"]


def is_portfolio_document(data: Any) -> bool:
    """Return whether a loaded YAML document is a portfolio file (it lists strategies)."""
    return isinstance(data, Mapping) and "strategies" in data
