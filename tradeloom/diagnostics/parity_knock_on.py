"""Whether a difference follows an explained one before it (parity's ``knock_on`` rule).

A difference no journaled event explains is a knock-on when an explained difference
came before it: at an earlier bar (in any symbol: they share the equity), or, for a
decision (made at its bar's close), a fill's at its own bar (its open). Kept as a
running state that each difference found updates, so that asking costs the same
however many differences came before (parity asks once per difference: scanning them
all each time made a run with many differences quadratic).
"""

from __future__ import annotations

import math

__all__ = ["ExplainedSoFar"]


class ExplainedSoFar:
    """The explained differences found so far, as much of them as the rule reads: the
    earliest bar of any, and the bars of those in a fill."""

    def __init__(self) -> None:
        self.first_bar = math.inf
        self.fill_bars: set[int] = set()

    def add(self, bar: int, field: str, cause: str) -> None:
        """Count a difference at ``bar`` in ``field`` attributed to ``cause``."""
        if cause == "unexplained":
            return
        self.first_bar = min(self.first_bar, bar)
        if field.startswith("fill"):
            self.fill_bars.add(bar)

    def before(self, bar: int, *, decided: bool = False) -> bool:
        """Return whether an explained difference came before one at ``bar`` (a
        decision's, with ``decided``: a fill's at ``bar`` comes before it too)."""
        return self.first_bar < bar or (decided and bar in self.fill_bars)
