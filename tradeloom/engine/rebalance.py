"""When an allocation rebalances, and what a rebalance trades: pure functions of the
schedule (``allocation.rebalance``) and the weights, the same in every mode.

Times are a bar's open time in UTC nanoseconds since the epoch, as the engine keeps them.
The calendar is the data's: a weekly rebalance falls on the first bar whose UTC week
(from Monday) differs from the last rebalance's, a monthly one on the first bar of a new
UTC month, whatever bars the data's calendar skips (a weekend, a holiday).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloom.runtime.lazy import numpy as np
from tradeloom.schemas.allocation import Rebalance

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ZERO_WEIGHT",
    "drift",
    "month_index",
    "rebalance_due",
    "tradable",
    "trades_after_min",
    "week_index",
]

ZERO_WEIGHT = 1e-6
"""A target weight smaller than this (in ``|weight|``) is a weight of zero (`tradable`)."""

_DAY_NS = 86_400 * 1_000_000_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday: Monday 0 ... Thursday 3


def week_index(time_ns: int) -> int:
    """Return the number of the UTC week (weeks start on Monday) holding ``time_ns``."""
    return (time_ns // _DAY_NS + _EPOCH_WEEKDAY) // 7


def month_index(time_ns: int) -> int:
    """Return ``12 * year + month - 1`` of the UTC date of ``time_ns``."""
    month = np.datetime64(time_ns, "ns").astype("datetime64[M]").astype(np.int64)
    return int(month) + 1970 * 12


def drift(target: npt.NDArray[np.float64], held: npt.NDArray[np.float64]) -> float:
    """Return the largest ``|held - target|`` over the symbols: how far the book has
    drifted from the last targets."""
    return float(np.max(np.abs(np.asarray(held) - np.asarray(target)), initial=0.0))


def rebalance_due(
    rule: Rebalance,
    *,
    bar: int,
    time_ns: int,
    last_bar: int | None,
    last_time_ns: int | None,
    target: npt.NDArray[np.float64] | None = None,
    held: npt.NDArray[np.float64] | None = None,
) -> bool:
    """Return whether the allocation rebalances at ``bar``.

    The first chance (no rebalance yet: ``last_bar`` None) always is one. After it:
    ``every: N`` when ``N`` bars have passed since the last; ``calendar`` at the first bar
    of a new week or month (`week_index`, `month_index`); ``drift: D`` when a held weight
    is more than ``D`` from its last target (`drift`).

    Args:
        rule: The schedule.
        bar: The decision bar's index.
        time_ns: Its open time, UTC nanoseconds.
        last_bar: The index of the last rebalance's bar, or None.
        last_time_ns: Its open time, or None.
        target: The last rebalance's target weights (``drift`` only).
        held: The weights held at this bar's close (``drift`` only).
    """
    if last_bar is None or last_time_ns is None:
        return True
    if rule.every is not None:
        return bar - last_bar >= rule.every
    if rule.calendar == "weekly":
        return week_index(time_ns) != week_index(last_time_ns)
    if rule.calendar == "monthly":
        return month_index(time_ns) != month_index(last_time_ns)
    assert rule.drift is not None
    if target is None or held is None:
        raise ValueError("a drift schedule needs the last target and the held weights")
    return drift(target, held) > rule.drift


def tradable(target: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the weights a rebalance's orders aim at: ``target``, with every weight within
    `ZERO_WEIGHT` of zero made 0.

    A solver answers a weight at its bound of 0 as ~1e-12 (or a few 1e-9, or -1e-12 for a
    long-only weight); the answer is checked to `ZERO_WEIGHT` only
    (`tradeloom.engine.allocating.TOLERANCE`), so a smaller weight is a weight of zero:
    the position is closed, never held at a millionth of the equity. (The core then
    closes a target whose position is below the venue's minimum too,
    `tradeloom.core.dust`.)
    """
    weights = np.array(target, dtype=np.float64)
    weights[np.abs(weights) < ZERO_WEIGHT] = 0.0
    return weights


def trades_after_min(
    target: npt.NDArray[np.float64],
    held: npt.NDArray[np.float64],
    min_trade: float | None,
) -> npt.NDArray[np.float64]:
    """Return the weight changes a rebalance trades: ``target - held``, with every change
    smaller than ``min_trade`` (in ``|weight|``) left at 0 (None: every change), unless
    its target is zero: a position the allocation weighs at zero is always closed."""
    wanted = np.asarray(target, dtype=np.float64)
    change = wanted - np.asarray(held, dtype=np.float64)
    if min_trade is not None:
        change[(np.abs(change) < min_trade) & (wanted != 0.0)] = 0.0
    return change
