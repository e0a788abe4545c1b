"""`Drawdown`: a stage's drawdown kept bar by bar, equal to the bit to marking the whole run
again (`universe_curve`) at every reading, fills late or not, symbols without bars."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core.curves import universe_curve
from tradeloom.live.lifecycle.stage_drawdown import Drawdown


def _whole(marks: np.ndarray, close: np.ndarray, cash: float, start: int) -> float:
    equity = universe_curve(marks, close, cash)[2][start:]  # what Watched.figures read
    peak = float(np.max(equity))
    return 0.0 if peak <= 0.0 else max(0.0, 1.0 - float(equity[-1]) / peak)


@settings(max_examples=examples(200), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    bars=st.integers(2, 60),
    symbols=st.integers(1, 3),
    fills=st.integers(0, 30),
    late=st.booleans(),
    gaps=st.sampled_from([0.0, 0.2]),
    data=st.data(),
)
def test_the_drawdown_read_bar_by_bar_is_the_whole_curve_s(
    seed: int,
    bars: int,
    symbols: int,
    fills: int,
    late: bool,
    gaps: float,
    data: st.DataObject,
) -> None:
    rng = np.random.default_rng(seed)
    close = 100 + rng.normal(0, 1, (bars, symbols)).round(1).cumsum(axis=0)
    close[rng.random(close.shape) < gaps] = np.nan
    fill_bars = np.sort(rng.integers(0, bars, fills))
    if late and fills > 1:  # a fill booked after a later bar's (a restart's, a late report)
        fill_bars[-1] = fill_bars[0]
    marks = np.column_stack(
        [
            fill_bars,
            rng.choice([0.0, 1.0, -2.0, 0.5], fills),
            1000 + rng.normal(0, 50, fills),
            rng.integers(0, symbols, fills),
        ]
    ).astype(np.float64)
    start = data.draw(st.integers(0, bars - 1))
    reads = sorted(set(data.draw(st.lists(st.integers(start + 1, bars), min_size=1))))
    book = Drawdown(start, 1000.0)
    for n in reads:
        booked = marks[fill_bars < n] if not late else marks[: int(np.sum(fill_bars < n))]
        got = book.read(booked, close[:n])
        want = _whole(booked, close[:n], 1000.0, start)
        assert (math.isnan(got) and math.isnan(want)) or got.hex() == want.hex()
