"""Features on a higher timeframe (``timeframe: 4h``): resampled from the base bars,
joined as of the higher bar's close, the same in the batch and per-bar drivers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeloom.plugins.features as features_plugin
from tradeloom.domain import Bars
from tradeloom.engine.timeframe import CalendarBuckets, HigherTimeframe, resample
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError, DataError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols import Feature
from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext
from tradeloom.schemas import load_strategy
from tradeloom.time.calendars import get_calendar

from tests.plugins.features.test_feature_parity import batch, each_bar  # isort: skip

COMPONENTS = {c.kind: c for c in features_plugin.tradeloom_components()}
QUARTER = 900
START = pd.Timestamp("2024-01-01T00:00Z")


def build(kind: str, timeframe: str, **keys: Any) -> HigherTimeframe:
    component = COMPONENTS[kind]
    ctx = BuildContext("s", Path("."), seed=0)
    inner = component.factory(component.params.model_validate(keys), ctx)
    return HigherTimeframe(inner, timeframe)


def quarter_bars(
    close: np.ndarray, *, start: pd.Timestamp = START, drop: tuple[int, ...] = ()
) -> Bars:
    """15m bars of ``close`` from ``start`` (open = previous close), rows ``drop`` left out."""
    n = len(close)
    opens = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) + 0.25,
            "low": np.minimum(opens, close) - 0.25,
            "close": close,
            "volume": 1.0 + np.arange(n) % 5,
        },
        index=pd.DatetimeIndex(
            start + pd.to_timedelta(np.arange(n) * QUARTER, "s"), name="timestamp"
        ),
    )
    frame = frame.drop(frame.index[list(drop)])
    return Bars(frame, "BTC/USDT", "15m", QUARTER)


def walk(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))


def stepped(features: list[Feature], bars: Bars) -> np.ndarray:
    stepper = FeatureStepper(features, StepContext.of(bars))
    return np.vstack([stepper.step(bar) for bar in each_bar(bars)])


# --- resampling, by hand ------------------------------------------------------------------


def test_resampled_bars_and_the_rows_that_close_them_by_hand() -> None:
    # 15m bars from 00:30 (the 00:00 hour is partial: left out), the 02:15 bar missing
    close = np.array([10.0, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
    bars = quarter_bars(close, start=START + pd.Timedelta("30min"), drop=(7,))
    higher, rows = build("returns", "1h", period=1).resampled(bars)
    frame = higher.frame
    # hour 01:00: bars 2..5 (closes 12..15); hour 02:00: bars 6, 8, 9 (the gap at 02:15)
    assert list(frame.index) == [START + pd.Timedelta("1h"), START + pd.Timedelta("2h")]
    assert frame["open"].tolist() == [11.0, 15.0]  # open = the first bar's (previous close)
    assert frame["high"].tolist() == [15.25, 19.25]
    assert frame["low"].tolist() == [10.75, 14.75]
    assert frame["close"].tolist() == [15.0, 19.0]
    # volumes 1 + i % 5 of rows 2..5 and 6, 8, 9
    assert frame["volume"].tolist() == [3 + 4 + 5 + 1, 2 + 4 + 5]
    # the 01:00 hour closes at its 01:45 bar (row 5); 02:00 at its 02:45 bar (row 8 once
    # row 7 is dropped); the 03:00 hour (row 9, 03:00) is still open
    assert rows.tolist() == [5, 8]
    assert (higher.timeframe, higher.timeframe_seconds) == ("1h", 3600)


def test_a_gap_over_the_last_bar_of_a_bucket_closes_it_at_the_next_bar() -> None:
    close = np.arange(1.0, 13.0)  # 00:00 .. 02:45; 01:45 (row 7) missing
    bars = quarter_bars(close, drop=(7,))
    time = bars.frame.index.as_unit("s").asi8
    cols = [
        np.ascontiguousarray(bars.frame[c].to_numpy())
        for c in ("open", "high", "low", "close", "volume")
    ]
    values, rows = resample(time, *cols, 3600, QUARTER)
    # hour 0 closed by row 3 (00:45); hour 1 (rows 4..6) closed by row 7 (02:00, in hour 2):
    # a base bar of a later bucket says the earlier one is over; hour 2 at 02:45 (row 10)
    assert rows.tolist() == [3, 7, 10]
    assert values[:, 4].tolist() == [4.0, 7.0, 12.0]


def test_values_are_joined_as_of_the_close_of_their_higher_bar() -> None:
    close = np.arange(100.0, 112.0)  # three whole hours of 15m bars
    bars = quarter_bars(close)
    out = build("returns", "1h", period=1).compute(bars, pd.DataFrame(index=bars.frame.index))
    assert list(out.columns) == ["returns_1@1h"]
    got = out["returns_1@1h"].to_numpy()
    # hour closes 103, 107, 111: the first return is known at row 7 (the 01:45 bar's close)
    expected = np.full(12, np.nan)
    expected[7:11] = 107.0 / 103.0 - 1.0
    expected[11] = 111.0 / 107.0 - 1.0
    np.testing.assert_array_equal(got, expected)


# --- no look-ahead; one kernel, two drivers -----------------------------------------------


def test_a_4h_feature_on_15m_bars_never_moves_when_the_bars_after_t_change() -> None:
    close = walk(16 * 30)
    bars = quarter_bars(close)
    features: list[Feature] = [
        build("rsi", "4h", window=5),
        build("macd", "4h", fast=2, slow=4, signal=2),
    ]
    full = batch(features, bars).to_numpy()
    assert np.isfinite(full[-1]).all()
    # every row of one 4h bucket (the row that closes it included), and others
    for t in [*range(16 * 20 - 1, 16 * 21 + 1), 100, 400]:
        cut = Bars(bars.frame.iloc[: t + 1], bars.symbol, bars.timeframe, QUARTER)
        early = batch(features, cut).to_numpy()
        np.testing.assert_array_equal(early, full[: t + 1], err_msg=f"cut at {t}")
        changed = bars.frame.copy()
        changed.iloc[t + 1 :, :4] *= 1.5
        other = Bars(changed, bars.symbol, bars.timeframe, QUARTER)
        np.testing.assert_array_equal(batch(features, other).to_numpy()[: t + 1], full[: t + 1])


def test_batch_and_per_bar_agree_bit_for_bit_over_gaps_and_a_partial_first_bucket() -> None:
    close = walk(16 * 24 + 5)
    drop = (40, 41, 95, 111, 112, 113, 200, 255)  # 111..113: the last bars of a 4h bucket
    bars = quarter_bars(close, start=START + pd.Timedelta("45min"), drop=drop)
    features: list[Feature] = [
        build("rsi", "4h", window=3),
        build("volatility", "1h", window=4),
        build("volume_zscore", "2h", window=3),
        build("atr", "4h", window=2),
        build("bollinger", "1h", window=3),
    ]
    expected = batch(features, bars).to_numpy(np.float64)
    got = stepped(features, bars)
    assert np.isfinite(expected[-1]).all()
    assert expected.tobytes() == np.ascontiguousarray(got).tobytes()


# --- the strategy file --------------------------------------------------------------------

DOC: dict[str, Any] = {
    "name": "mtf",
    "data": {"kind": "synthetic", "symbol": "BTC/USDT", "timeframe": "15m", "bars": 400},
    "features": [
        {"kind": "rsi", "window": 14},
        {"kind": "rsi", "window": 14, "timeframe": "4h"},
    ],
    "model": {"kind": "precomputed", "column": "close"},
    "signal": {"kind": "threshold", "threshold": 0.3},
    "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.1}},
    "execution": {"kind": "simulated"},
}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def with_feature(**entry: Any) -> dict[str, Any]:
    return {**DOC, "features": [{"kind": "rsi", "window": 14}, entry]}


def problems(tmp_path: Path, doc: dict[str, Any]) -> list[str]:
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as caught:
        config, _ = load_strategy(path)
        build_pipeline(config)
    return [str(p) for p in caught.value.problems]


def test_columns_name_the_timeframe_and_the_spec_records_it(tmp_path: Path) -> None:
    config, _ = load_strategy(write(tmp_path, DOC))
    assert build_pipeline(config).feature_columns == ("rsi_14", "rsi_14@4h")
    spec = config.feature_spec()
    assert spec[0] == {"kind": "rsi", "name": None, "window": 14}  # as before: no key
    assert spec[1] == {"kind": "rsi", "name": None, "window": 14, "timeframe": "4h"}


@pytest.mark.parametrize(
    ("timeframe", "line", "message"),
    [
        (
            "15m",
            12,
            "must be a higher timeframe than the bars' 15m, was 15m; remove timeframe: to "
            "compute the feature on the bars themselves",
        ),
        (
            "50m",
            12,
            "must be a whole multiple of the bars' 15m (each of its bars is made of whole "
            "15m bars), was 50m",
        ),
        (
            "5h",
            12,
            "must divide one day (such as 1h, 4h, 12h, 1d), or be 1w or 1M (calendar weeks "
            "and months), was 5h",
        ),
        (
            "4 hours",
            12,
            "timeframe must be a number and a unit (s, m, h, d, w) such as 1m, 4h, 1d; was "
            "'4 hours'",
        ),
    ],
)
def test_a_timeframe_the_bars_cannot_make_is_refused_in_one_line(
    tmp_path: Path, timeframe: str, line: int, message: str
) -> None:
    found = problems(tmp_path, with_feature(kind="ema", period=5, timeframe=timeframe))
    assert found == [f"{tmp_path / 's.yaml'}:{line}:14 features.1.timeframe: {message}"]


def test_a_feature_of_other_columns_is_told_it_sees_the_resampled_bars_only(
    tmp_path: Path,
) -> None:
    found = problems(tmp_path, with_feature(kind="zscore", of="rsi_14", window=5, timeframe="1h"))
    assert found == [
        f"{tmp_path / 's.yaml'}:11:7 features.1.of: unknown feature 'rsi_14'; no feature is "
        "defined before it (a feature with timeframe: sees the bars resampled to it, not the "
        "columns of other features)"
    ]


def test_a_feature_reading_columns_beside_ohlcv_takes_no_timeframe(tmp_path: Path) -> None:
    found = problems(tmp_path, with_feature(kind="spread_bps", timeframe="1h"))
    assert found == [
        f"{tmp_path / 's.yaml'}:11:14 features.1.timeframe: this feature reads columns beside "
        "OHLCV, which are not resampled; remove timeframe:"
    ]


def test_bars_of_another_timeframe_are_refused_when_the_feature_runs() -> None:
    bars = quarter_bars(walk(40))
    feature = build("rsi", "10m", window=3)
    with pytest.raises(DataError, match=r"^feature timeframe: must be a higher timeframe"):
        feature.compute(bars, pd.DataFrame(index=bars.frame.index))


# --- property: any bars, any higher timeframe -------------------------------------------


@st.composite
def quarter_market(draw: st.DrawFn) -> Bars:
    """15m bars starting at any quarter of a day, with gaps of up to a few hours."""
    n = draw(st.integers(1, 120))
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 1, 2, 3, 9, 17]), min_size=n, max_size=n))
    offset = draw(st.integers(0, 95))
    close = np.array(draw(st.lists(st.floats(1.0, 1e4), min_size=n, max_size=n)))
    bars = quarter_bars(close, start=START + pd.Timedelta(minutes=15 * offset))
    index = pd.DatetimeIndex(
        START + pd.to_timedelta((offset + np.cumsum(steps) - steps[0]) * QUARTER, "s"),
        name="timestamp",
    )
    frame = bars.frame.set_axis(index)
    return Bars(frame, "BTC/USDT", "15m", QUARTER)


@settings(max_examples=40, deadline=None)
@given(bars=quarter_market(), timeframe=st.sampled_from(["30m", "1h", "2h", "4h", "1d"]))
def test_any_bars_resample_alike_in_both_drivers_and_only_from_closed_buckets(
    bars: Bars, timeframe: str
) -> None:
    features: list[Feature] = [
        build("ema", timeframe, period=2),
        build("returns", timeframe, period=1),
    ]
    expected = batch(features, bars).to_numpy(np.float64)
    assert expected.tobytes() == np.ascontiguousarray(stepped(features, bars)).tobytes()
    higher, rows = features[0].resampled(bars)  # type: ignore[attr-defined]
    seconds = higher.timeframe_seconds
    times = bars.frame.index.as_unit("s").asi8
    starts = higher.frame.index.as_unit("s").asi8
    first = times[0] - times[0] % seconds  # the bucket the data start in: kept if whole
    assert (first in starts) == (times[0] == first and len(starts) > 0)
    for start, row in zip(higher.frame.index.as_unit("s").asi8, rows, strict=True):
        bucket = (times >= start) & (times < start + seconds)
        # the bar is made of its bucket's base bars, and joined only once they are all in:
        # at the bucket's last bar when it ends the bucket, else at the first bar after it
        assert bucket.any() and row >= np.flatnonzero(bucket)[-1]
        assert row == np.flatnonzero(bucket)[-1] or times[row] >= start + seconds
        members = bars.frame[bucket]
        assert (
            higher.frame.loc[pd.Timestamp(start, unit="s", tz="UTC"), "close"]
            == (members["close"].iloc[-1])
        )


def _daily(start: str, n: int, calendar_name: str | None) -> Bars:
    calendar = get_calendar(calendar_name)
    days = pd.date_range(start, periods=n, freq="D", tz="UTC", name="timestamp")
    days = days[calendar.expected(days.as_unit("ns").asi8, 86_400 * 10**9)]
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    opens = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) * 1.01,
            "low": np.minimum(opens, close) * 0.99,
            "close": close,
            "volume": rng.uniform(1, 5, len(days)),
        },
        index=days,
    )
    return Bars(frame, "SPY", "1d", 86_400, calendar=calendar)


def test_weeks_of_trading_days_close_on_their_last_trading_day() -> None:
    pytest.importorskip("exchange_calendars")
    # XNYS, November 2024: Thanksgiving (Thu 28th) closed; the week of the 25th ends Fri 29th
    bars = _daily("2024-11-01", 40, "XNYS")
    higher, rows = build("sma", "1w", window=1).resampled(bars)
    index = bars.frame.index
    closing = [index[r].strftime("%a %d %b") for r in rows]
    # the partial first week is left out: the data start on Friday the 1st, and the
    # calendar expected days before it in that week (Monday 28 October)
    assert closing[:4] == ["Fri 08 Nov", "Fri 15 Nov", "Fri 22 Nov", "Fri 29 Nov"]
    assert higher.frame.index[0] == pd.Timestamp("2024-11-04", tz="UTC")
    # Good Friday 2024 (29 March) was a holiday: that week closes on the Thursday's bar
    easter = _daily("2024-03-04", 35, "XNYS")
    _, rows = build("sma", "1w", window=1).resampled(easter)
    assert "Thu 28 Mar" in [easter.frame.index[r].strftime("%a %d %b") for r in rows]
    week = bars.frame.loc["2024-11-04":"2024-11-08"]
    first = higher.frame.iloc[0]
    assert first["open"] == week["open"].iloc[0] and first["close"] == week["close"].iloc[-1]
    assert first["high"] == week["high"].max() and first["low"] == week["low"].min()


def test_months_close_on_their_last_expected_day_around_the_clock() -> None:
    bars = _daily("2024-01-01", 100, None)
    higher, rows = build("sma", "1M", window=1).resampled(bars)
    assert [bars.frame.index[r].strftime("%d %b") for r in rows] == ["31 Jan", "29 Feb", "31 Mar"]
    assert list(higher.frame.index.strftime("%d %b")) == ["01 Jan", "01 Feb", "01 Mar"]


@pytest.mark.slow
@pytest.mark.parametrize(("timeframe", "calendar"), [("1w", "XNYS"), ("1M", None), ("1w", None)])
def test_calendar_buckets_agree_in_both_drivers(timeframe: str, calendar: str | None) -> None:
    if calendar:
        pytest.importorskip("exchange_calendars")
    bars = _daily("2023-12-20", 120, calendar)
    features: list[Feature] = [build("rsi", timeframe, window=3), build("sma", timeframe, window=2)]
    expected = batch(features, bars).to_numpy(np.float64)
    stepper = FeatureStepper(features, StepContext.of(bars))
    stepped = np.vstack([stepper.step(bar) for bar in each_bar(bars)])
    assert (~np.isnan(expected)).sum() > 10
    assert expected.tobytes() == stepped.tobytes()


def test_calendar_buckets_need_bars_that_divide_a_day() -> None:
    assert CalendarBuckets("1w", 3600, get_calendar(None)).month is False
    bars = _daily("2024-01-01", 30, None)
    weekly = Bars(bars.frame, "SPY", "2d", 2 * 86_400)
    with pytest.raises(DataError, match=r"^feature timeframe: 1M is built from bars that"):
        build("sma", "1M", window=2).resampled(weekly)
