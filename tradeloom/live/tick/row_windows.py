"""Each symbol's last feature rows, for a model that reads a window of them (`WindowedModel`).

A paper or live run keeps, per symbol, the last ``size`` feature rows of its own bars
(a bar it missed adds none, as its own bars in a backtest have none), filled from the
history the run starts from and pushed at every tick, a restart's replayed ticks
included: the window a model is given at a bar is the one the backtest's batch builds
for it. Each ring is written twice (slot ``i`` and ``i + size``), so the window in
chronological order is one contiguous slice: a bar's window costs no copy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tradeloom.live.tick.history import MarketHistory

__all__ = ["RowWindows"]


class RowWindows:
    """The last ``size`` own feature rows of every symbol of ``history``, oldest first.

    Args:
        history: The bars and feature rows known now; its last ``size`` rows of each
            symbol (its own bars) fill the rings.
        size: Rows kept per symbol.
    """

    def __init__(self, history: MarketHistory, size: int) -> None:
        n, m, width = len(history), len(history.symbols), len(history.columns)
        self.size = size
        self._rows = np.full((m, 2 * size, width), np.nan)
        self._next = np.zeros(m, np.int64)
        self._count = np.zeros(m, np.int64)
        present = history.present(n)
        rows = history.rows()
        for s in range(m):
            own = rows[:n, s][present[:, s]][-size:]
            k = len(own)
            self._rows[s, :k] = own
            self._rows[s, size : size + k] = own
            self._next[s] = k % size
            self._count[s] = k

    def push(self, rows: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]) -> None:
        """Add a tick's ``[symbols, columns]`` feature rows, each present symbol's its own."""
        size = self.size
        for s in np.flatnonzero(present).tolist():
            i = int(self._next[s])
            self._rows[s, i] = rows[s]
            self._rows[s, i + size] = rows[s]
            self._next[s] = (i + 1) % size
            self._count[s] = min(int(self._count[s]) + 1, size)

    def of(self, symbol: int, rows: int | None = None) -> npt.NDArray[np.float64]:
        """Return ``symbol``'s last ``rows`` rows (default: ``size``; fewer while it has had
        fewer bars), oldest first (a view)."""
        wanted = self.size if rows is None else min(rows, self.size)
        k = min(wanted, int(self._count[symbol]))
        end = int(self._next[symbol]) + self.size
        return self._rows[symbol, end - k : end]
