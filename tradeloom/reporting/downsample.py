"""Thin a long series for display without changing its shape: min and max per bucket.

A chart of a million bars is drawn from a few thousand points: the series is cut into
equal buckets of consecutive bars, and each bucket keeps the bars of its lowest and
highest value (and the series keeps its first and last bar). Every peak, trough and
drawdown of the full series is therefore on the drawn line, at its own time and value;
only the bars between them are left out. Nothing is averaged, so every value drawn is
a value of the run. Trade markers are never thinned.

Candles are grouped instead (`candle_buckets`): beyond `MAX_CANDLES` bars, each candle
drawn holds k bars (open of the first, highest high, lowest low, close of the last,
the volume summed), and the chart says so.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DISPLAY_POINTS", "MAX_CANDLES", "candle_buckets", "minmax_indices"]

DISPLAY_POINTS = 1600
"""Points drawn per series at most (two per bucket): 800 buckets across the page's
~1,150 px of plot. 4,000 made strategies/btc_rf.yaml's report 2.1 MB of numbers,
which are written in full (never rounded)."""

MAX_CANDLES = 1000
"""Candles drawn per symbol at most: beyond, each candle holds several bars (a candle
under 1.2 px wide already)."""


def minmax_indices(values: np.ndarray, points: int = DISPLAY_POINTS) -> np.ndarray:
    """Return the sorted positions to draw: the lowest and highest of each bucket.

    Args:
        values: The series (NaN: no value; a bucket of NaN only keeps one NaN, so a line
            drawn from the result still breaks there).
        points: The most positions returned (plus the first and the last).

    Returns:
        Every position when the series has at most ``points`` values.
    """
    n = len(values)
    if n <= points:
        return np.arange(n)
    buckets = max(1, points // 2)
    size = -(-n // buckets)
    # the whole buckets as rows of the series (no copy), the last one apart
    full = n // size
    rows = values[: full * size].reshape(full, size)
    low, high = rows.argmin(axis=1), rows.argmax(axis=1)
    # numpy picks a bucket's first NaN: a bucket holding one is picked again, its NaN
    # counted neither lowest nor highest unless it holds no number (a rolling figure's
    # first window: only its buckets, not the whole series, are copied)
    holed = np.flatnonzero(np.isnan(rows[np.arange(full), low]))
    if len(holed):
        low[holed], high[holed] = _ends(rows[holed])
    base = np.arange(full) * size
    picked = [[0, n - 1], base + low, base + high]
    start = full * size
    if start < n:
        (last_low,), (last_high,) = _ends(values[None, start:])
        picked.append([start + int(last_low), start + int(last_high)])
    return np.unique(np.concatenate(picked))


def _ends(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's lowest and highest position, a NaN the lowest or highest only
    in a row with no other value."""
    missing = np.isnan(rows)
    return (
        np.where(missing, np.inf, rows).argmin(axis=1),
        np.where(missing, -np.inf, rows).argmax(axis=1),
    )


def candle_buckets(
    times: np.ndarray,
    ohlcv: np.ndarray,
    most: int = MAX_CANDLES,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return candles of several bars each when there are more than ``most`` bars.

    Each bucket of ``k`` consecutive bars becomes one candle: the first bar's open and
    time, the highest high, the lowest low, the last close, and the summed volume; a
    candle of ``k`` bars, as a chart of a longer timeframe draws it. NaN rows (a bar a
    symbol does not have) are left out of their bucket.

    Args:
        times: The bars' times.
        ohlcv: ``[bars, 5]``: open, high, low, close, volume.
        most: The most candles returned.

    Returns:
        The candles' times, their ``[candles, 5]`` values, and ``k`` (1: the bars as they are).
    """
    n = len(times)
    if n <= most:
        return times, ohlcv, 1
    k = -(-n // most)
    starts = np.arange(0, n, k)
    present = ~np.isnan(ohlcv[:, 3])
    # fmax and fmin skip NaN: a bucket of NaN only stays NaN
    high = np.fmax.reduceat(ohlcv[:, 1], starts)
    low = np.fmin.reduceat(ohlcv[:, 2], starts)
    if present.all():  # every bar there: each bucket's first and last bar are its ends
        volume = ohlcv[:, 4]
        # (a volume of numbers only is summed as it is: no copy made without its NaNs)
        volume = np.add.reduceat(
            volume if np.isfinite(volume).all() else np.nan_to_num(volume), starts
        )
        first, last = starts, np.append(starts[1:] - 1, n - 1)
        empty = np.zeros(len(starts), dtype=bool)
    else:
        volume = np.add.reduceat(np.where(present, np.nan_to_num(ohlcv[:, 4]), 0.0), starts)
        first, last, empty = _present_ends(present, starts)
    out = np.column_stack((ohlcv[first, 0], high, low, ohlcv[last, 3], volume))
    out[empty] = np.nan
    return times[::k], out, k


def _present_ends(
    present: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return each bucket's first and last bar present, and whether it has none (then
    its first bar, twice)."""
    n = len(present)
    position = np.arange(n)
    first = np.minimum.reduceat(np.where(present, position, n), starts)
    last = np.maximum.reduceat(np.where(present, position, -1), starts)
    empty = first == n
    return np.where(empty, starts, first), np.where(empty, starts, last), empty
