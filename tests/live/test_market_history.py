"""`MarketHistory`: the bars and feature rows a paper or live run knows, on one clock.

What a restart and a retraining read back from it must be what went in: each symbol's
own bars (absent where it had no bar), its feature rows, the clock, the times in UTC,
through every growth of its arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.domain import OHLCV, Bars, Universe
from tradeloom.engine.features import SymbolFeatures
from tradeloom.live.tick.history import MarketHistory, history_sha256, warm_up_row

COLUMNS = ("ret_1", "rsi_14")
HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2024-03-01", tz="UTC")


def _ohlcv(rng: np.random.Generator, n: int) -> np.ndarray:
    close = 100.0 + rng.normal(size=n).cumsum()
    return np.column_stack([close - 0.5, close + 1.0, close - 1.0, close, rng.uniform(1, 9, n)])


def _frames(present: np.ndarray, seed: int = 0) -> tuple[pd.DatetimeIndex, list[pd.DataFrame]]:
    """The clock of ``len(present)`` hourly bars and each symbol's bars where present."""
    rng = np.random.default_rng(seed)
    # nanoseconds, as the data sources give them (`tradeloom.plugins.data.timestamps`)
    clock = pd.date_range(T0, periods=len(present), freq="h", name="timestamp").as_unit("ns")
    frames = []
    for s in range(present.shape[1]):
        index = clock[present[:, s]]
        frames.append(pd.DataFrame(_ohlcv(rng, len(index)), index=index, columns=list(OHLCV)))
    return clock, frames


def _universe(clock: pd.DatetimeIndex, frames: list[pd.DataFrame]) -> Universe:
    bars = tuple(Bars(f, f"S{s}/USDT", "1h", 3600) for s, f in enumerate(frames))
    return Universe(bars, clock)


def _features(clock: pd.DatetimeIndex, frames: list[pd.DataFrame]) -> SymbolFeatures:
    """Feature rows derived from each symbol's own bars (a return and a level)."""
    own = tuple(
        pd.DataFrame({"ret_1": f["close"].pct_change(), "rsi_14": f["close"] / 2.0}, index=f.index)
        for f in frames
    )
    return SymbolFeatures(own, tuple(f.reindex(clock) for f in own))


def _history(present: np.ndarray, seed: int = 0) -> tuple[MarketHistory, Universe]:
    clock, frames = _frames(present, seed)
    universe = _universe(clock, frames)
    return MarketHistory(universe, _features(clock, frames)), universe


# A symbol listed late (S1 from bar 2) and one halted for two bars (S0 at 4-5).
PRESENT = np.array(
    [[True, False], [True, False], [True, True], [True, True], [False, True], [False, True]]
    + [[True, True]] * 4
)


def test_a_history_holds_each_symbols_bars_on_the_clock() -> None:
    history, universe = _history(PRESENT)
    assert len(history) == 10
    assert history.symbols == ("S0/USDT", "S1/USDT") and history.symbol == "S0/USDT"
    assert (history.timeframe, history.timeframe_seconds) == ("1h", 3600)
    assert history.columns == COLUMNS
    assert history.last_time == T0 + 9 * HOUR
    assert history.time(3) == T0 + 3 * HOUR and history.time(3).tz is not None

    s1 = universe.bars[1].frame
    bar = history.bar(2, symbol=1)  # S1's first bar
    assert (bar.index, bar.timestamp, bar.symbol) == (2, T0 + 2 * HOUR, "S1/USDT")
    assert [bar.open, bar.high, bar.low, bar.close, bar.volume] == s1.iloc[0].tolist()
    assert np.isnan(history.bar(4, symbol=0).close)  # S0 halted: no bar, NaN prices
    assert np.isnan(history.bar(0, symbol=1).open)  # S1 not listed yet

    np.testing.assert_array_equal(history.present(), PRESENT)
    np.testing.assert_array_equal(history.present(3), PRESENT[:3])
    closes = history.closes()
    assert closes.shape == (10, 2)
    np.testing.assert_array_equal(closes[PRESENT[:, 1], 1], s1["close"].to_numpy())
    assert np.isnan(closes[~PRESENT]).all()
    np.testing.assert_array_equal(history.prices(7)[0], universe.bars[0].frame.iloc[5].to_numpy())
    np.testing.assert_array_equal(history.times_ns(3), [(T0 + k * HOUR).value for k in range(3)])


def test_feature_rows_are_the_symbols_rows_on_the_clock() -> None:
    history, universe = _history(PRESENT)
    row = history.feature_row(3)
    assert row.shape == (2, len(COLUMNS))
    close0 = universe.bars[0].frame["close"]
    assert row[0, 1] == close0.iloc[3] / 2.0
    assert row[0, 0] == pytest.approx(close0.iloc[3] / close0.iloc[2] - 1.0)
    assert np.isnan(history.feature_row(2)[1, 0])  # S1's first return: none before it
    assert np.isnan(history.feature_row(4)[0]).all()  # S0 halted
    assert history.rows().shape[1:] == (2, len(COLUMNS))
    assert np.isnan(history.rows()[len(history) :]).all()  # beyond the clock: nothing yet


def test_what_is_read_back_is_what_went_in() -> None:
    history, universe = _history(PRESENT)
    for s, bars in enumerate(universe.bars):
        own = history.own_bars(s)
        assert (own.symbol, own.timeframe, own.timeframe_seconds) == (bars.symbol, "1h", 3600)
        pd.testing.assert_frame_equal(own.frame, bars.frame, check_freq=False)
    pd.testing.assert_frame_equal(history.bars().frame, universe.bars[0].frame, check_freq=False)
    features = _features(universe.index, [b.frame for b in universe.bars])
    pd.testing.assert_frame_equal(history.own_features(1), features.own[1], check_freq=False)
    pd.testing.assert_frame_equal(history.features(), features.own[0], check_freq=False)
    # the first bars only: a retraining's window
    head = history.universe(5)
    assert len(head) == 5 and head.symbols == universe.symbols
    pd.testing.assert_index_equal(head.index, universe.index[:5], check_freq=False)
    pd.testing.assert_frame_equal(
        head.bars[1].frame, universe.bars[1].frame.iloc[:3], check_freq=False
    )
    assert history_sha256(history.own_bars(0)) == history_sha256(universe.bars[0])


def test_appended_ticks_grow_the_history_past_its_capacity() -> None:
    history, universe = _history(np.ones((3, 2), dtype=bool))
    capacity = len(history.rows())
    rng = np.random.default_rng(7)
    ticks = capacity + 5  # one growth at least
    prices = rng.uniform(50, 150, (ticks, 2, len(OHLCV)))
    prices[10, 1] = np.nan  # S1 has no bar at the 11th tick
    rows = rng.normal(size=(ticks, 2, len(COLUMNS)))
    # a tick's time in another zone is stored as its UTC instant
    times = [(T0 + (3 + k) * HOUR).tz_convert("America/New_York") for k in range(ticks)]
    assert history.last_time == T0 + 2 * HOUR
    for k in range(ticks):
        assert history.append(times[k], prices[k], rows[k]) == 3 + k
        assert history.last_time == times[k]  # asked again after each tick, not stale
    assert len(history) == 3 + ticks
    assert len(history.rows()) > capacity
    assert history.time(3).tz == history.last_time.tz  # UTC throughout
    assert history.time(3 + ticks - 1) == times[-1]
    np.testing.assert_array_equal(history.prices(3 + 10), prices[10])
    np.testing.assert_array_equal(history.feature_row(3 + ticks - 1), rows[-1])
    # the bars before the growth survive it
    pd.testing.assert_frame_equal(
        history.own_bars(0, 3).frame, universe.bars[0].frame, check_freq=False
    )
    s1 = history.own_bars(1)
    assert len(s1) == 3 + ticks - 1 and T0 + 13 * HOUR not in s1.frame.index
    pd.testing.assert_index_equal(
        history.index(),
        pd.date_range(T0, periods=3 + ticks, freq="h", name="timestamp"),
        exact=False,
        check_freq=False,
    )


@settings(max_examples=40, deadline=None)
@given(
    present=st.lists(
        st.lists(st.booleans(), min_size=3, max_size=3).filter(any), min_size=2, max_size=30
    ),
    split=st.integers(min_value=1, max_value=29),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_a_history_grown_tick_by_tick_is_the_history_started_whole(
    present: list[list[bool]], split: int, seed: int
) -> None:
    """Starting from the first bars and appending the rest gives the same universe,
    features and digests as starting from all of them (what a restart relies on)."""
    mask = np.array(present)
    split = min(split, len(mask) - 1)
    whole, universe = _history(mask, seed)
    grown = MarketHistory(
        Universe(
            tuple(
                Bars(b.frame.loc[b.frame.index < universe.index[split]], b.symbol, "1h", 3600)
                for b in universe.bars
            ),
            universe.index[:split],
        ),
        _features(
            universe.index[:split],
            [b.frame.loc[b.frame.index < universe.index[split]] for b in universe.bars],
        ),
    )
    for i in range(split, len(mask)):
        grown.append(whole.time(i), whole.prices(i), whole.feature_row(i))
    assert len(grown) == len(whole)
    np.testing.assert_array_equal(grown.present(), mask)
    for s, bars in enumerate(universe.bars):
        assert history_sha256(grown.own_bars(s)) == history_sha256(bars)
        pd.testing.assert_frame_equal(grown.own_bars(s).frame, bars.frame, check_freq=False)
        pd.testing.assert_frame_equal(grown.own_features(s), whole.own_features(s))


def test_the_digest_and_warm_up_row_pin_the_bars() -> None:
    _, universe = _history(np.ones((4, 1), dtype=bool))
    bars = universe.bars[0]
    digest = history_sha256(bars)
    assert len(digest) == 64 and digest == history_sha256(bars)
    changed = bars.frame.copy()
    changed.iloc[2, 3] += 1e-9
    assert history_sha256(Bars(changed, bars.symbol, "1h", 3600)) != digest
    shifted = bars.frame.copy()
    shifted.index = shifted.index + pd.Timedelta(minutes=1)
    assert history_sha256(Bars(shifted, bars.symbol, "1h", 3600)) != digest
    # the same instants at another resolution: the same bars
    coarse = bars.frame.copy()
    coarse.index = coarse.index.as_unit("s")
    assert history_sha256(Bars(coarse, bars.symbol, "1h", 3600)) == digest
    row = warm_up_row(bars)
    assert (row.symbol, row.bars, row.sha256) == ("S0/USDT", 4, digest)
    assert (row.first, row.last) == (T0, T0 + 3 * HOUR)
