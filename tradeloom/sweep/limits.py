"""The sweep's limits that the command line names before anything heavy is imported."""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_VARIANTS"]

DEFAULT_MAX_VARIANTS = 100_000
"""A sweep of more variants is refused before anything runs (``--max-variants``)."""
