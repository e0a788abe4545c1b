"""The allocation layer's decisions.

One frozen dataclass per kind (`tradeloom.journal.events`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tradeloom.journal.events.base import Event, kind

_NAN = math.nan

__all__ = [
    "AllocationDecided",
]


@kind("allocation_decided", read_by=("restart", "replayed", "status"))
@dataclass(frozen=True, kw_only=True)
class AllocationDecided(Event):
    """The allocation layer's answer at a rebalance, journaled before its orders; or a
    portfolio file's weights between its strategies recomputed at a bar's close
    (``symbols`` its strategies' names; journaled before a sizing reads them).

    Attributes:
        allocator: The allocator's kind (``allocation.kind``).
        status: ``ok``; ``infeasible`` or ``failed`` (the allocator's); ``too_few_bars``
            (a symbol without a bar in the window); ``error`` (the allocator raised, or
            answered weights that are not finite or break a constraint); ``late`` (paper
            and live: the solve passed ``live.allocation_deadline_seconds``, or the
            last one still runs).
        message: Why it is not ``ok``, in one line; empty when ok.
        weights: The target weights in force after the decision, one per symbol of
            ``symbols``: the allocator's when ok, else the last feasible ones, which
            hold (empty: none yet, and nothing is traded).
        held: The weights held at the decision bar's close (signed, of the equity).
        symbols: The universe's symbols (a portfolio file's: its strategies), in the
            weights' order.
        inputs_hash: SHA-256 (hex, 16 characters) of the trailing returns, the
            probabilities and the held weights the allocator was given.
        window: The returns the allocator was given (bars).
    """

    allocator: str
    status: str
    message: str
    weights: list[float]
    held: list[float]
    symbols: list[str]
    inputs_hash: str
    window: int
