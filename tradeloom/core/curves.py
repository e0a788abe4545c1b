"""Each bar's position, cash and equity, from the fills the core booked.

The compiled step writes no row per bar: cash and positions change only at fills,
and each fill's row carries them after the fill. `equity_curve` spreads them over
the bars and marks the equity as the core marks it, ``cash + position x close``,
so the curve is the one the step's decisions saw, bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloom.core import layout as L
from tradeloom.core.records import FILL_CASH, FILL_POSITION
from tradeloom.kernels.jit import kernel, python_form
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["equity_curve", "fill_marks", "universe_curve"]


def fill_marks(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return ``(bar, position, cash, symbol)`` after each fill among ``rows``, in order.

    ``position`` is the filled symbol's position after the fill. A perpetual's funding
    rows (`tradeloom.core.funding`) move the cash too: they count as fills here.
    """
    kinds = rows[:, L.E_KIND]
    fills = rows[(kinds == L.EV_FILL) | (kinds == L.EV_FUNDING)]
    return np.asarray(fills[:, [L.E_BAR, FILL_POSITION, FILL_CASH, L.E_SYM]])


def equity_curve(
    marks: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    initial_cash: float,
    start: int = 0,
) -> npt.NDArray[np.float64]:
    """Return each bar's position, cash and equity (bars x 3).

    Args:
        marks: `fill_marks` of the run, in order (the last fill of a bar holds the bar's
            end).
        close: Each bar's close, from bar ``start`` on.
        initial_cash: The cash before the first fill.
        start: The bar of ``close[0]``: the rows of bars ``start ..`` only, each the
            whole curve's row bit for bit (a live run's files extend theirs bar by bar).
    """
    n = len(close)
    if n == 1:  # a live run's new bar: the same arithmetic on the last mark, no arrays
        k = len(marks) - 1
        while k >= 0 and marks[k, 0] > start:
            k -= 1
        position, cash = (float(marks[k, 1]), float(marks[k, 2])) if k >= 0 else (0.0, initial_cash)
        return np.array([[position, cash, cash + position * float(close[0])]])
    before = np.array([[-1.0, 0.0, initial_cash]])  # before the first fill
    done = np.concatenate([before, marks[:, :3]])
    last = np.searchsorted(done[:, 0], np.arange(start, start + n), side="right") - 1
    out = np.empty((n, 3))
    out[:, 0] = done[last, 1]
    out[:, 1] = done[last, 2]
    out[:, 2] = out[:, 1] + out[:, 0] * close
    return out


def universe_curve(
    marks: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    initial_cash: float,
    out: tuple[npt.NDArray[np.float64] | None, npt.NDArray[np.float64], npt.NDArray[np.float64]]
    | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return each bar's positions (bars x symbols), cash and equity over several symbols.

    The equity is marked as the core marks it: the cash, plus each symbol's non-zero
    position times its last close (a symbol without a bar keeps its last mark), added
    in symbol order. With one symbol, the numbers are `equity_curve`'s, bit for bit.

    Args:
        marks: `fill_marks` of the run, in order.
        close: ``[bars, symbols]``: each bar's close (NaN: the symbol has no bar).
        initial_cash: The cash before the first fill.
        out: Where to write the positions (None: a new array), the cash and the equity
            (C-contiguous float64, of the shapes returned): the columns of the frame
            that holds them (`tradeloom.engine.frames.curve_out`), not copied into it.
    """
    n, m = close.shape
    given, cash, equity = out if out is not None else (None, np.empty(n), np.empty(n))
    positions = np.empty((n, m)) if given is None else given
    _spread_marks(
        np.ascontiguousarray(marks.reshape(-1, 4), np.float64),
        np.ascontiguousarray(close, np.float64),
        float(initial_cash),
        positions,
        cash,
        equity,
    )
    return positions, cash, equity


@kernel
def _spread_marks(
    marks: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    initial_cash: float,
    positions: npt.NDArray[np.float64],
    cash: npt.NDArray[np.float64],
    equity: npt.NDArray[np.float64],
) -> None:
    """Write `universe_curve`'s rows in one pass over the bars: each bar takes the marks
    of its fills (the last one's cash, each symbol's last position) and marks the
    positions held at each symbol's last close."""
    n, m = close.shape
    held = np.zeros(m)
    last = np.full(m, np.nan)  # no close yet: a position held then is marked NaN
    cash_now = initial_cash
    k = 0
    for t in range(n):
        while k < len(marks) and marks[k, 0] <= t:
            s = int(marks[k, 3])
            if 0 <= s < m:
                held[s] = marks[k, 1]
            cash_now = marks[k, 2]
            k += 1
        value = cash_now
        for s in range(m):
            price = close[t, s]
            if not np.isnan(price):
                last[s] = price
            positions[t, s] = held[s]
            if held[s] != 0.0:
                value = value + held[s] * last[s]
        cash[t] = cash_now
        equity[t] = value


@python_form(_spread_marks)
def _spread_marks_as_python(
    marks: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    initial_cash: float,
    positions: npt.NDArray[np.float64],
    cash: npt.NDArray[np.float64],
    equity: npt.NDArray[np.float64],
) -> None:
    """`_spread_marks` as Python (`tradeloom.kernels.jit.python_form`), by whole arrays:
    the fills each bar has taken found by a search of their bars (a running maximum: the
    kernel takes them in order), each symbol's position the last of its fills taken,
    each symbol's last close by a running maximum of the bars that have one, and the
    equity added up symbol by symbol in the kernel's order."""
    n, m = close.shape
    bars = np.maximum.accumulate(marks[:, 0]) if len(marks) else marks[:, 0]
    times = np.arange(n)
    taken = np.searchsorted(bars, times, side="right")  # how many fills each bar took
    cash[:] = initial_cash
    hit = taken > 0
    cash[hit] = marks[taken[hit] - 1, 2]
    symbols = marks[:, 3].astype(np.int64)  # int(): toward zero
    known = np.where(np.isnan(close), -1, times[:, None])
    seen = np.maximum.accumulate(known, axis=0)
    value = cash.copy()
    for s in range(m):
        own = np.flatnonzero(symbols == s)
        before = np.searchsorted(own, taken, side="left")  # its fills among those taken
        if len(own):
            last_fill = own[np.maximum(before - 1, 0)]
            positions[:, s] = np.where(before > 0, marks[last_fill, 1], 0.0)
        else:
            positions[:, s] = 0.0
        held = positions[:, s]
        last = np.where(seen[:, s] >= 0, close[np.maximum(seen[:, s], 0), s], np.nan)
        value = np.where(held != 0.0, value + held * last, value)
    equity[:] = value
