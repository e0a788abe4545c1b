"""A stage's drawdown rule, read at every bar's close without marking the whole run again.

A canary's and a watch's ``max_drawdown`` read the run's equity at each close since the
stage's start bar (`tradeloom.core.curves.universe_curve`'s rows: the cash plus each
held symbol's position times its last close, added in symbol order) and its highest.
`Drawdown` marks only the bars closed since its last reading, from the positions, the
cash and the last closes it carried over: the same additions in the same order, so the
same equity to the bit; the highest is kept as numpy's ``max`` keeps it (a NaN equity
stays NaN).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tradeloom.core.curves import universe_curve

__all__ = ["Drawdown"]


class Drawdown:
    """The run's drawdown since bar ``start`` from its highest close, kept bar by bar.

    Args:
        start: The stage's start bar (its equity there counts toward the highest).
        initial_cash: The run's cash before its first fill.
    """

    def __init__(self, start: int, initial_cash: float) -> None:
        self.start = start
        self.initial_cash = initial_cash
        self._next = 0  # the next bar to mark
        self._k = 0  # marks consumed
        self._held: list[float] = []
        self._last: list[float] = []
        self._cash = initial_cash
        self._peak = -math.inf
        self._equity = math.nan

    def read(self, marks: npt.NDArray[np.float64], close: npt.NDArray[np.float64]) -> float:
        """Return the drawdown at the last of ``close``'s bars (``[bars, symbols]``, NaN:
        no bar) with the run's fill ``marks`` (`tradeloom.engine.driver.Engine.fill_marks`):
        ``1 - equity / highest`` since the start bar, 0 at a high or with no positive high."""
        late = self._k < len(marks) and float(np.min(marks[self._k :, 0])) < self._next
        if self._next == 0 or late or close.shape[1] != len(self._held):
            self._whole(marks, close)  # the first reading, or a fill of a bar already marked
        else:
            self._mark(marks, close)
        peak = self._peak
        return 0.0 if peak <= 0.0 else max(0.0, 1.0 - self._equity / peak)

    def _whole(self, marks: npt.NDArray[np.float64], close: npt.NDArray[np.float64]) -> None:
        n, m = close.shape
        positions, cash, equity = universe_curve(marks, close, self.initial_cash)
        self._peak = float(np.max(equity[self.start :])) if n > self.start else -math.inf
        self._equity = float(equity[-1]) if n else math.nan
        self._held = positions[-1].tolist() if n else [0.0] * m
        self._cash = float(cash[-1]) if n else self.initial_cash
        self._last = [math.nan] * m
        for s in range(m):  # each symbol's last close, as the kernel carries it
            known = np.flatnonzero(~np.isnan(close[:, s]))
            if len(known):
                self._last[s] = float(close[known[-1], s])
        k = 0  # the kernel's: the longest run of marks from the first at bars it marked
        while k < len(marks) and marks[k, 0] <= n - 1:
            k += 1
        self._k, self._next = k, n

    def _mark(self, marks: npt.NDArray[np.float64], close: npt.NDArray[np.float64]) -> None:
        held, last = self._held, self._last
        cash, peak, value = self._cash, self._peak, self._equity
        rows = marks[self._k :].tolist()  # the marks not consumed yet
        k = 0
        for t in range(self._next, len(close)):
            while k < len(rows) and rows[k][0] <= t:
                s = int(rows[k][3])
                if 0 <= s < len(held):
                    held[s] = rows[k][1]
                cash = rows[k][2]
                k += 1
            value = cash
            for s, price in enumerate(close[t].tolist()):
                if price == price:
                    last[s] = price
                if held[s] != 0.0:
                    value = value + held[s] * last[s]
            if t >= self.start and peak == peak:  # numpy's max: a NaN, once met, wins
                peak = value if value != value or value > peak else peak
        self._k += k
        self._cash, self._peak, self._equity = cash, peak, value
        self._next = len(close)
