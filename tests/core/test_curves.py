"""The equity curve spread from the fills' marks in one compiled pass is the numpy one it
replaced, bit for bit: every bar's positions, cash and equity, over any symbols.

The reference below is the replaced code, kept here verbatim as the definition.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core.curves import universe_curve


def _reference_curve(
    marks: np.ndarray, close: np.ndarray, initial_cash: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, m = close.shape
    bars = np.arange(n)
    done = np.concatenate([[[-1.0, 0.0, initial_cash, 0.0]], marks.reshape(-1, 4)])
    cash = done[np.searchsorted(done[:, 0], bars, side="right") - 1, 2]
    positions = np.zeros((n, m))
    equity = cash.copy()
    for s in range(m):
        own = np.concatenate([[[-1.0, 0.0]], done[1:][done[1:, 3] == s][:, :2]])
        positions[:, s] = own[np.searchsorted(own[:, 0], bars, side="right") - 1, 1]
        seen = np.where(np.isnan(close[:, s]), 0, np.arange(n))
        mark = close[:, s][np.maximum.accumulate(seen)]
        held = positions[:, s] != 0.0
        equity[held] = equity[held] + positions[held, s] * mark[held]
    return positions, cash, equity


@st.composite
def books(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Closes of 1 to 4 symbols (NaN: no bar, leading ones included) and the marks of
    fills at bars in order, several at a bar, positions flat and signed."""
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 4))
    prices = st.one_of(st.just(np.nan), st.floats(0.5, 2e4, allow_nan=False))
    close = np.array(draw(st.lists(prices, min_size=n * m, max_size=n * m))).reshape(n, m)
    count = draw(st.integers(0, 30))
    bars = sorted(draw(st.lists(st.integers(0, n - 1), min_size=count, max_size=count)))
    rows = [
        [
            float(bar),
            draw(st.sampled_from([0.0, 0.0, 1.5, -2.25, 1e-9, 3.0])),
            draw(st.floats(-1e4, 1e5, allow_nan=False)),
            float(draw(st.integers(0, m - 1))),
        ]
        for bar in bars
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 4), close


@settings(max_examples=examples(300), deadline=None)
@given(books(), st.floats(1.0, 1e6))
def test_the_curve_is_the_numpy_spread_bit_for_bit(
    book: tuple[np.ndarray, np.ndarray], initial_cash: float
) -> None:
    marks, close = book
    found = universe_curve(marks, close, initial_cash)
    for got, want in zip(found, _reference_curve(marks, close, initial_cash), strict=True):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))  # NaN, -0.0
