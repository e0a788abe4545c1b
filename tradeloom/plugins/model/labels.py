"""Training labels from OHLC bars: the direction of the forward return, a triple barrier,
the forward return itself (a regression target), or down/flat/up classes with a dead band.

Every label of row ``i`` is known at bar ``i + horizon`` at the latest and uses no bar after
it, so ``horizon`` is the distance walk-forward purging keeps (`plan_folds`). A row without
a label is NaN: its horizon runs past the data, a price it needs is not finite, or its
forward return falls inside the dead zone. Such rows are not trained on; they are still
predicted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BINARY_KINDS",
    "LabelKind",
    "class_labels",
    "direction_labels",
    "make_labels",
    "return_labels",
    "triple_barrier_labels",
]

LabelKind = Literal["direction", "triple_barrier", "return", "classes"]

BINARY_KINDS: tuple[str, ...] = ("direction", "triple_barrier")
"""The label kinds whose labels are 0 (down) and 1 (up)."""

DOWN, FLAT, UP = 0.0, 1.0, 2.0
"""The labels of `class_labels`."""


def direction_labels(
    close: npt.ArrayLike, horizon: int, dead_zone: float = 0.0
) -> npt.NDArray[np.float64]:
    """Return ``y_i = 1`` if ``close[i + horizon] > close[i]`` else ``0``, per row.

    Args:
        close: Close prices, one per bar.
        horizon: Bars ahead (>= 1).
        dead_zone: Rows whose forward log return ``log(close[i + horizon] / close[i])``
            is smaller than this in absolute value get no label (>= 0; 0 keeps all).

    Returns:
        One label per bar: 1.0, 0.0, or NaN where there is none.

    Raises:
        ValueError: ``horizon`` is below 1 or ``dead_zone`` below 0.
    """
    _check(horizon, dead_zone)
    prices = np.asarray(close, dtype=np.float64)
    labels = np.full(len(prices), np.nan)
    if len(prices) > horizon:
        now, later = prices[:-horizon], prices[horizon:]
        labels[:-horizon] = _by_sign(now, later, dead_zone)
    return labels


def return_labels(close: npt.ArrayLike, horizon: int) -> npt.NDArray[np.float64]:
    """Return the forward return ``y_i = close[i + horizon] / close[i] - 1``, per row.

    Args:
        close: Close prices, one per bar.
        horizon: Bars ahead (>= 1).

    Returns:
        One label per bar; NaN where ``i + horizon`` is past the data or a close is not
        finite.

    Raises:
        ValueError: ``horizon`` is below 1.
    """
    _check(horizon, 0.0)
    prices = np.asarray(close, dtype=np.float64)
    labels = np.full(len(prices), np.nan)
    if len(prices) > horizon:
        now, later = prices[:-horizon], prices[horizon:]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = later / now - 1.0
        labels[:-horizon] = np.where(np.isfinite(now) & np.isfinite(later), ratio, np.nan)
    return labels


def class_labels(close: npt.ArrayLike, horizon: int, dead_band: float) -> npt.NDArray[np.float64]:
    """Return down (0), flat (1) or up (2) per row, from the forward return of `return_labels`.

    Up where the return exceeds ``dead_band``, down where it is below ``-dead_band``,
    flat in between (both ends included).

    Args:
        close: Close prices, one per bar.
        horizon: Bars ahead (>= 1).
        dead_band: Half-width of the flat band, as a simple return (> 0).

    Returns:
        One label per bar: 0.0, 1.0, 2.0, or NaN where `return_labels` has none.

    Raises:
        ValueError: ``horizon`` is below 1 or ``dead_band`` is not above 0.
    """
    if not dead_band > 0:
        raise ValueError(f"dead_band must be > 0, was {dead_band}")
    forward = return_labels(close, horizon)
    labels = np.where(forward > dead_band, UP, np.where(forward < -dead_band, DOWN, FLAT))
    return np.where(np.isnan(forward), np.nan, labels)


def triple_barrier_labels(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    horizon: int,
    take_profit: float,
    stop_loss: float,
    dead_zone: float = 0.0,
) -> npt.NDArray[np.float64]:
    """Return the triple-barrier label of each row: which barrier the price touches first.

    Entering at ``close[i]``, the take-profit barrier is ``close[i] * (1 + take_profit)``
    and the stop-loss barrier ``close[i] * (1 - stop_loss)``. Bars ``i + 1 .. i + horizon``
    are scanned in order: the first whose ``high`` reaches the take-profit barrier gives 1,
    the first whose ``low`` reaches the stop-loss barrier gives 0. A bar that reaches both
    gives 0: within one bar the order of its high and low is unknown, so the stop is
    assumed to come first (the conservative reading). If neither is reached by bar
    ``i + horizon`` (the time limit), the label is the direction of the return at the limit,
    as in `direction_labels`, including its ``dead_zone``.

    Args:
        high: High prices, one per bar.
        low: Low prices, one per bar.
        close: Close prices, one per bar.
        horizon: The time limit in bars (>= 1).
        take_profit: Take-profit distance as a fraction of the entry (> 0).
        stop_loss: Stop-loss distance as a fraction of the entry (in (0, 1)).
        dead_zone: As in `direction_labels`, for rows that reach the time limit.

    Returns:
        One label per bar: 1.0, 0.0, or NaN where there is none (the time limit runs past
        the data, a price in ``i .. i + horizon`` is not finite, or the dead zone).

    Raises:
        ValueError: An argument is out of range, or the arrays differ in length.
    """
    _check(horizon, dead_zone)
    if not take_profit > 0:
        raise ValueError(f"take_profit must be > 0, was {take_profit}")
    if not 0 < stop_loss < 1:
        raise ValueError(f"stop_loss must be > 0 and < 1, was {stop_loss}")
    highs = np.asarray(high, dtype=np.float64)
    lows = np.asarray(low, dtype=np.float64)
    closes = np.asarray(close, dtype=np.float64)
    if not highs.shape == lows.shape == closes.shape:
        raise ValueError(
            f"high, low and close must have one shape, have {highs.shape}, {lows.shape}, "
            f"{closes.shape}"
        )
    n = len(closes)
    labels = np.full(n, np.nan)
    m = n - horizon  # rows whose time limit is inside the data
    if m <= 0:
        return labels
    entry = closes[:m]
    upper = entry * (1.0 + take_profit)
    lower = entry * (1.0 - stop_loss)
    known = np.isfinite(entry)
    label = np.full(m, np.nan)
    open_ = np.ones(m, dtype=bool)  # no barrier touched yet
    for k in range(1, horizon + 1):
        h, lo = highs[k : k + m], lows[k : k + m]
        known &= np.isfinite(h) & np.isfinite(lo)
        up, down = h >= upper, lo <= lower
        touched = open_ & (up | down)
        label[touched] = np.where(down[touched], 0.0, 1.0)  # both in one bar: the stop
        open_ &= ~touched
    at_limit = _by_sign(entry, closes[horizon:], dead_zone)
    label[open_] = at_limit[open_]
    labels[:m] = np.where(known, label, np.nan)
    return labels


def make_labels(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    *,
    kind: LabelKind,
    horizon: int,
    dead_zone: float = 0.0,
    take_profit: float | None = None,
    stop_loss: float | None = None,
    dead_band: float | None = None,
) -> npt.NDArray[np.float64]:
    """Return the labels of ``kind`` for OHLC bars (see the label functions).

    Args:
        high: High prices, one per bar.
        low: Low prices, one per bar.
        close: Close prices, one per bar.
        kind: ``direction``, ``triple_barrier``, ``return`` or ``classes``.
        horizon: Bars ahead; the time limit of a triple barrier.
        dead_zone: Smallest absolute forward log return that gets a label by direction.
        take_profit: Take-profit fraction (``triple_barrier`` only, required there).
        stop_loss: Stop-loss fraction (``triple_barrier`` only, required there).
        dead_band: Half-width of the flat class (``classes`` only, required there).

    Raises:
        ValueError: An unknown ``kind``, a missing barrier or band, or a value out of range.
    """
    if kind == "direction":
        return direction_labels(close, horizon, dead_zone)
    if kind == "triple_barrier":
        if take_profit is None or stop_loss is None:
            raise ValueError("triple_barrier labels need take_profit and stop_loss")
        return triple_barrier_labels(high, low, close, horizon, take_profit, stop_loss, dead_zone)
    if kind == "return":
        return return_labels(close, horizon)
    if kind == "classes":
        if dead_band is None:
            raise ValueError("classes labels need dead_band")
        return class_labels(close, horizon, dead_band)
    raise ValueError(
        f"kind must be 'direction', 'triple_barrier', 'return' or 'classes', was {kind!r}"
    )


def _check(horizon: int, dead_zone: float) -> None:
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, was {horizon}")
    if not dead_zone >= 0:
        raise ValueError(f"dead_zone must be >= 0, was {dead_zone}")


def _by_sign(
    now: npt.NDArray[np.float64], later: npt.NDArray[np.float64], dead_zone: float
) -> npt.NDArray[np.float64]:
    known = np.isfinite(now) & np.isfinite(later)
    labels = np.where(known, (later > now).astype(np.float64), np.nan)
    if dead_zone > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = np.abs(np.log(later / now)) < dead_zone
        labels[known & inside] = np.nan
    return labels
