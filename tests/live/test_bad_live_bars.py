"""A live tick runs no bar that the data validation would not keep.

An exchange can publish a corrupt candle: a close of 0 (sizing divides by the price:
an infinite quantity), a NaN, a high below the low. The backtest's data validation
drops or refuses such a row; the live ticker drops it with a warning, as a bar the
exchange did not give, whether it came as arrays (one market's REST), as a frame
(a universe's REST) or from a stream. The next sound bar runs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.hunting import examples
from tradeloom.domain import OHLCV
from tradeloom.live.tick.ticker import BarTicker
from tradeloom.plugins.data.validation import (
    row_problems,
    sound_bars,
    sound_columns,
    unsound_bars,
    validate_bars,
)

HOUR_NS = 3_600_000_000_000
START = pd.Timestamp("2024-01-01", tz="UTC")
GOOD = [100.0, 101.0, 99.0, 100.5, 3.0]
BAD = {
    "zero close": [100.0, 101.0, 0.0, 0.0, 3.0],
    "NaN close": [100.0, 101.0, 99.0, np.nan, 3.0],
    "infinite high": [100.0, np.inf, 99.0, 100.0, 3.0],
    "negative open": [-1.0, 101.0, 99.0, 100.0, 3.0],
    "high below low": [100.0, 98.0, 99.0, 100.0, 3.0],
    "close above high": [100.0, 101.0, 99.0, 102.0, 3.0],
    "a price above the bound": [100.0, 2e12, 99.0, 100.0, 3.0],
    "zero volume": [100.0, 101.0, 99.0, 100.5, 0.0],
}


def _frame(rows: list[list[float]]) -> pd.DataFrame:
    index = pd.DatetimeIndex([START + pd.Timedelta(hours=i + 1) for i in range(len(rows))])
    index = index.as_unit("ns")
    return pd.DataFrame(rows, index=index, columns=list(OHLCV))


class _FrameFeed:
    """One market's feed that gives frames (`LiveFeed.closed_bars_of`)."""

    def __init__(self, rows: list[list[float]]) -> None:
        self.frame = _frame(rows)

    def load_universe(self) -> None:
        raise AssertionError("not asked")

    def closed_bars_of(
        self, symbol: str, last_seen: pd.Timestamp, now: pd.Timestamp
    ) -> pd.DataFrame:
        assert symbol == "BTC/USDT"
        return self.frame[self.frame.index > last_seen]

    def bar_stream_of(
        self, symbol: str, *, grace_seconds: float, clock: Callable[[], float]
    ) -> None:
        return None


class _RowFeed(_FrameFeed):
    """One market's feed that gives arrays (`ClosedRows`), as the ccxt source does."""

    def closed_rows(
        self, last_seen_ns: int, now_ns: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        frame = self.frame[self.frame.index.asi8 > last_seen_ns]  # ns: `_frame`
        return frame.index.asi8.copy(), frame.to_numpy(np.float64)


def _run_bars(feed: _FrameFeed) -> list[tuple[pd.Timestamp, list[float]]]:
    """Poll once, then take every bar the ticker runs."""
    ticker = BarTicker(feed, ("BTC/USDT",), 3600, 0.0)  # type: ignore[arg-type]
    now = START + pd.Timedelta(days=1)
    ticker.poll(START, now)
    ran = []
    last = START
    while (due := ticker.due(last, lambda: now)) is not None:
        last, prices = due
        ran.append((last, prices[0].tolist()))
    return ran


@pytest.mark.parametrize("feed_kind", [_FrameFeed, _RowFeed])
@pytest.mark.parametrize("problem", sorted(BAD))
def test_a_corrupt_candle_is_dropped_with_a_warning_and_the_next_bar_runs(
    feed_kind: type[_FrameFeed], problem: str
) -> None:
    with capture_logs() as logs:
        ran = _run_bars(feed_kind([GOOD, BAD[problem], GOOD]))
    assert [t for t, _ in ran] == [START + pd.Timedelta(hours=1), START + pd.Timedelta(hours=3)]
    assert all(row == GOOD for _, row in ran)
    dropped = [e for e in logs if e["event"] == "bad_bar_dropped"]
    assert len(dropped) == 1
    assert dropped[0]["bar"] == (START + pd.Timedelta(hours=2)).isoformat()
    assert dropped[0]["symbol"] == "BTC/USDT"


class _UniverseFeed:
    """A universe's feed: each symbol's frames (`LiveFeed.closed_bars_of`)."""

    def __init__(self, rows: dict[str, list[list[float]]]) -> None:
        self.frames = {symbol: _frame(r) for symbol, r in rows.items()}

    def load_universe(self) -> None:
        raise AssertionError("not asked")

    def closed_bars_of(
        self, symbol: str, last_seen: pd.Timestamp, now: pd.Timestamp
    ) -> pd.DataFrame:
        frame = self.frames[symbol]
        return frame[frame.index > last_seen]


def test_a_universe_runs_the_bar_without_the_symbol_whose_candle_is_corrupt() -> None:
    """The bad symbol has no bar at that clock bar (NaN prices: no signal, no fill), the
    others run it; the next bar has every symbol again."""
    feed = _UniverseFeed({"BTC/USDT": [GOOD, BAD["zero close"], GOOD], "ETH/USDT": [GOOD] * 3})
    ticker = BarTicker(feed, ("BTC/USDT", "ETH/USDT"), 3600, 0.0)  # type: ignore[arg-type]
    now = START + pd.Timedelta(days=1)
    with capture_logs() as logs:
        ticker.poll(START, now)
    ran, last = [], START
    while (due := ticker.due(last, lambda: now)) is not None:
        last, prices = due
        ran.append(prices)
    assert len(ran) == 3
    assert np.isnan(ran[1][0]).all() and ran[1][1].tolist() == GOOD
    assert all(p.tolist() == [GOOD, GOOD] for p in (ran[0], ran[2]))
    assert [e["symbol"] for e in logs if e["event"] == "bad_bar_dropped"] == ["BTC/USDT"]


def test_a_feed_without_volume_is_not_a_missing_value() -> None:
    rows = [[*GOOD[:4], np.nan], [*GOOD[:4], np.nan]]
    assert unsound_bars(np.array(rows)) == [None, None]
    assert sound_bars(np.array(rows))  # the quick verdict says so too (no row's checks)
    assert not sound_bars(np.array([rows[0], GOOD]))  # one measured: each must be
    assert len(_run_bars(_RowFeed(rows))) == 2


_PRICE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e12, 1e12 + 1, 100.0, 99.0, 101.0]),
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.lists(_PRICE, min_size=5, max_size=5), min_size=1, max_size=6))
def test_a_live_bar_is_dropped_exactly_when_validation_repair_would_drop_it(
    rows: list[list[float]],
) -> None:
    """The live rule is the backtest's rule: the rows ``repair`` keeps are the sound ones
    (times unique and in order here, so only checks 1-6 can drop a row)."""
    values = np.array(rows, dtype=np.float64)
    sound = [problem is None for problem in unsound_bars(values)]
    frame = _frame(rows)
    if not any(sound):
        return  # repair refuses a source with no row left; nothing to compare
    kept = validate_bars(
        frame,
        source="t",
        symbol="BTC/USDT",
        timeframe="1h",
        timeframe_seconds=3600,
        policy="repair",
    )
    assert kept.frame.index.tolist() == frame.index[sound].tolist()


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.lists(_PRICE, min_size=5, max_size=5), min_size=1, max_size=6))
def test_the_quick_verdict_is_the_checks_verdict(rows: list[list[float]]) -> None:
    """`sound_bars` (a tick's every bar) and `sound_columns` (a backtest's bars, which
    validation checks no further when they are sound) say a batch is sound exactly when
    none of `row_problems`' checks finds a row, and `unsound_bars` then blames none."""
    values = np.array(rows, dtype=np.float64)
    columns = dict(zip(OHLCV, values.T, strict=True))
    found = any(bad.any() for _, bad, _ in row_problems(columns))
    assert sound_bars(values) is not found
    assert sound_columns(columns) is not found
    assert any(problem is not None for problem in unsound_bars(values)) is found
