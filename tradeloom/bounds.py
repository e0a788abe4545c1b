"""The documented bounds of a strategy file's numbers, in one place.

Every count, window, period, seed and horizon a strategy file gives has a range, so
that a typo (``window: 1400000000``) or a hostile file is refused at validation with
the bound it broke, instead of running for hours or overflowing later. The params
models use these in their ``Field`` bounds, and their descriptions (which feed
``tradeloom schema`` and the README's tables) state them.
"""

from __future__ import annotations

__all__ = [
    "MAX_BARS",
    "MAX_CASH",
    "MAX_NAME_LENGTH",
    "MAX_PRICE",
    "MAX_SEED",
    "MAX_TIMEFRAME_SECONDS",
    "MAX_VOLUME",
    "MAX_WINDOW",
]

MAX_WINDOW = 1_000_000
"""Longest window, period, lag, horizon, interval or count of bars a component takes."""

MAX_BARS = 10_000_000
"""Most bars a synthetic market generates."""

MAX_SEED = 2**32 - 1
"""Largest seed: numpy's and scikit-learn's ``random_state`` take 0 .. 2**32 - 1."""

MAX_TIMEFRAME_SECONDS = 366 * 86_400
"""Longest timeframe (``52w`` or ``366d``): no exchange serves longer bars."""

MAX_NAME_LENGTH = 64
"""Longest strategy name: it names run directories and fits in 36-character client
order ids with the run key and sequence number."""

MAX_CASH = 1e15
"""Most starting cash or capital, in the quote currency."""

MAX_PRICE = 1e12
"""Largest price a bar may have (bitcoin in Vietnamese dong is about 2.5e9): a larger one
is a corrupt row, and would lose the precision of every price computed from it."""

MAX_VOLUME = 1e18
"""Largest volume a bar may have (a meme coin's daily volume is about 1e14 tokens)."""
