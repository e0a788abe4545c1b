"""Each symbol's last feature rows, as a paper run keeps them for a windowed model: its own
bars' rows, in order, the history's and every tick's, a bar it missed adding none."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.domain import Bars, Universe
from tradeloom.engine.features import SymbolFeatures
from tradeloom.live.tick.history import MarketHistory
from tradeloom.live.tick.row_windows import RowWindows

COLUMNS = ("a", "b")


def _history(present: np.ndarray) -> MarketHistory:
    """A history of ``present.shape`` bars and symbols; symbol s's row at bar t is
    ``(t, s)`` where it has a bar."""
    n, m = present.shape
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    bars, frames = [], []
    for s in range(m):
        own = index[present[:, s]]
        price = np.arange(len(own), dtype=float) + 1.0
        frame = pd.DataFrame(
            {"open": price, "high": price, "low": price, "close": price, "volume": 1.0},
            index=own,
        )
        bars.append(Bars(frame, f"S{s}/USDT", "1h", 3600))
        rows = np.column_stack([np.flatnonzero(present[:, s]), np.full(len(own), s)])
        frames.append(pd.DataFrame(rows.astype(float), index=own, columns=list(COLUMNS)))
    universe = Universe(tuple(bars), index)
    clock = tuple(f.reindex(index) for f in frames)
    return MarketHistory(universe, SymbolFeatures(tuple(frames), clock))


@settings(max_examples=examples(60), deadline=None)
@given(
    present=st.integers(2, 3).flatmap(
        lambda m: st.lists(st.lists(st.booleans(), min_size=m, max_size=m), min_size=1, max_size=40)
    ),
    size=st.integers(1, 6),
    split=st.floats(0.0, 1.0),
)
def test_a_symbols_window_is_its_own_last_rows_in_order(
    present: list[list[bool]], size: int, split: float
) -> None:
    mask = np.array(present, dtype=bool)
    head = max(1, int(len(mask) * split))
    history = _history(mask[:head])
    windows = RowWindows(history, size)
    for t in range(head, len(mask)):  # the ticks after the history, pushed as a run does
        rows = np.full((mask.shape[1], len(COLUMNS)), np.nan)
        rows[mask[t]] = np.column_stack([np.full(mask[t].sum(), t), np.flatnonzero(mask[t])])
        windows.push(rows, mask[t])

    for s in range(mask.shape[1]):
        own = np.flatnonzero(mask[:, s])[-size:]
        expected = np.column_stack([own, np.full(len(own), s)]).astype(float)
        assert np.array_equal(windows.of(s), expected.reshape(-1, len(COLUMNS)))
        fewer = min(2, size)
        assert np.array_equal(windows.of(s, fewer), expected[-fewer:].reshape(-1, 2))
