"""Orders the venue filled short of their quantity and stopped working: counted by code.

A spot purchase the cash cannot cover fills what the cash affords and the rest is
cancelled (``INSUFFICIENT_CASH``); one whose affordable part is below the venue's
minimum fills nothing (``BELOW_MINIMUM``). Each is journaled as the order's
cancellation; ``metrics.json`` counts them as ``cut_orders``, the summary prints the
count, and the report draws it beside the rejections. (An order that
``max_volume_fraction`` slices fills on at the next bars: it is not cut.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tradeloom.kept import column

__all__ = ["CUT_REASONS", "cut_orders"]

CUT_REASONS = ("INSUFFICIENT_CASH", "BELOW_MINIMUM")
"""The cancellation reasons of an order the venue cut."""


def cut_orders(cancellations: Sequence[Any]) -> dict[str, int]:
    """Return how many orders were cut, by code (only the codes that occurred)."""
    counts: dict[str, int] = {}
    for reason in column(cancellations, "reason").tolist():
        if reason in CUT_REASONS:
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items()))
