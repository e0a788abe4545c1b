"""vwap and time_features read the calendar: sessions, closes and local time.

Each is recomputed here independently with pandas (a session key from local time, a
groupby), and the per-bar driver must give the batch driver's numbers bit for bit
under a calendar too (the generated parity test runs around the clock only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features.sessions import (
    TimeFeaturesParams,
    VwapParams,
    build_time_features,
    build_vwap,
    vwap,
)
from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext
from tradeloom.time.calendars import CRYPTO, FOREX, TradingCalendar, get_calendar

from tests.plugins.features.test_feature_parity import each_bar  # isort: skip

CTX = BuildContext("s", Path("."), seed=0)
LONDON = get_calendar(
    {
        "timezone": "Europe/London",
        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "open": "08:00",
        "close": "16:30",
    }
)


def _bars(start: str, n: int, freq: str, calendar: TradingCalendar, seed: int = 0) -> Bars:
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="timestamp")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": np.where(rng.random(n) < 0.1, 0.0, rng.lognormal(3, 1, n)),
        },
        index=index,
    )
    seconds = int(pd.Timedelta(freq).total_seconds())
    return Bars(frame, "T", freq, seconds, calendar=calendar)


def _pandas_vwap(bars: Bars, key: pd.Index) -> np.ndarray:
    f = bars.frame
    pv = ((f["high"] + f["low"] + f["close"]) / 3 * f["volume"]).groupby(key.to_numpy()).cumsum()
    v = f["volume"].groupby(key.to_numpy()).cumsum()
    return (pv / v.where(v > 0)).to_numpy()


def test_vwap_restarts_each_utc_day_around_the_clock() -> None:
    bars = _bars("2024-03-08 18:00", 60, "1h", CRYPTO)
    expected = _pandas_vwap(bars, bars.frame.index.normalize())
    np.testing.assert_allclose(vwap(bars), expected, rtol=1e-12)
    assert np.isnan(vwap(bars)).sum() == np.isnan(expected).sum()


def test_vwap_restarts_at_the_forex_session_open_in_new_york() -> None:
    bars = _bars("2024-03-06 12:00", 120, "1h", FOREX, seed=1)  # over the DST change
    local = bars.frame.index.tz_convert("America/New_York").tz_localize(None)
    key = (local + pd.Timedelta(hours=7)).normalize()  # a session opens at 17:00
    np.testing.assert_allclose(vwap(bars), _pandas_vwap(bars, key), rtol=1e-12)


def test_time_features_in_local_time_with_the_sessions_flags() -> None:
    bars = _bars("2024-03-29 06:00", 200, "30min", LONDON)  # BST starts 31 March
    feature = build_time_features(TimeFeaturesParams(), CTX)
    out = feature.compute(bars, pd.DataFrame(index=bars.frame.index))
    local = bars.frame.index.tz_convert("Europe/London")
    assert out["hour"].tolist() == list(local.hour)
    assert out["weekday"].tolist() == list(local.day_of_week)
    assert out["month"].tolist() == list(local.month)
    day = local.tz_localize(None).normalize()
    assert out["session_open"].tolist() == [1.0, *(day[1:] != day[:-1]).astype(float)]
    closing = (local.hour == 16) & (local.minute == 0)  # the bar 16:00-16:30 reaches 16:30
    assert out["session_close"].tolist() == closing.astype(float).tolist()


def test_an_exchanges_early_close_flags_its_own_last_bar() -> None:
    pytest.importorskip("exchange_calendars")
    xnys = get_calendar("XNYS")
    bars = _bars("2024-11-29 14:00", 8, "1h", xnys)  # the day after Thanksgiving: 13:00 ET
    feature = build_time_features(TimeFeaturesParams(fields=["session_close", "hour"]), CTX)
    out = feature.compute(bars, pd.DataFrame(index=bars.frame.index))
    # 17:00-18:00 UTC reaches the 18:00 UTC close; local hours are New York's
    assert out["session_close"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    assert out["hour"].tolist() == [9, 10, 11, 12, 13, 14, 15, 16]


def _sessions_as_daily_bars(name: str, start: str, end: str) -> Bars:
    """An exchange's sessions as daily bars, each labelled with its date at 00:00 UTC."""
    exchange_calendars = pytest.importorskip("exchange_calendars")
    days = exchange_calendars.get_calendar(name, start=start, end=end).sessions
    index = pd.DatetimeIndex(days).tz_localize("UTC").rename("timestamp")
    close = np.linspace(100.0, 120.0, len(index))
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    return Bars(frame, "T", "1d", 86_400, calendar=get_calendar(name))


def test_time_features_of_xnys_daily_bars_are_of_each_sessions_date() -> None:
    """A daily bar is its session: Monday's weekday is 0 and a month's first session is
    in its month, where the bar's open in New York (the evening before) gave 6 and the
    month before (80 first sessions of the 120 months from 2015 to 2024)."""
    bars = _sessions_as_daily_bars("XNYS", "2015-01-01", "2024-12-31")
    out = build_time_features(TimeFeaturesParams(), CTX).compute(
        bars, pd.DataFrame(index=bars.frame.index)
    )
    dates = bars.frame.index
    mondays = dates.day_of_week == 0
    assert mondays.sum() == 469 and set(out["weekday"][mondays]) == {0.0}
    assert out["weekday"].tolist() == list(dates.day_of_week.astype(float))
    firsts = ~dates.to_period("M").duplicated()
    assert firsts.sum() == 120
    assert out["month"][firsts].tolist() == list(dates[firsts].month.astype(float))
    assert out["month"].tolist() == list(dates.month.astype(float))
    evening_before = dates.tz_convert("America/New_York")
    assert (evening_before.month[firsts] != dates.month[firsts]).sum() == 80  # what was read
    assert set(out["hour"]) == {0.0}
    # every daily bar is a session of its own, opening and closing it
    assert set(out["session_open"]) == {1.0} and set(out["session_close"]) == {1.0}


def test_the_per_bar_driver_reads_daily_bars_by_their_session_as_the_batch_does() -> None:
    bars = _sessions_as_daily_bars("XNYS", "2024-01-01", "2024-03-31")
    features = [
        build_vwap(VwapParams(), CTX),
        build_time_features(TimeFeaturesParams(), BuildContext("s", Path("."), 0, ("vwap",))),
    ]
    batch = pd.concat(
        [f.compute(bars, pd.DataFrame(index=bars.frame.index)) for f in features], axis=1
    ).to_numpy()
    stepper = FeatureStepper(features, StepContext.of(bars))
    stepped = np.vstack([stepper.step(bar) for bar in each_bar(bars)])
    assert batch.tobytes() == stepped.tobytes()
    assert stepped[:, 2].tolist() == list(bars.frame.index.day_of_week.astype(float))


def test_forex_daily_bars_are_their_trading_day_too() -> None:
    """forex's session opens at 17:00 New York the evening before: the bar of Monday 4
    March 2024 (00:00 UTC, Sunday 19:00 in New York) is Monday's."""
    bars = _bars("2024-03-04", 5, "1D", FOREX)
    out = build_time_features(TimeFeaturesParams(fields=["weekday", "month", "hour"]), CTX)
    values = out.compute(bars, pd.DataFrame(index=bars.frame.index))
    assert values["weekday"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert set(values["month"]) == {3.0} and set(values["hour"]) == {0.0}


@pytest.mark.parametrize("calendar", [FOREX, LONDON], ids=["forex", "london"])
def test_the_per_bar_driver_reads_the_calendar_as_the_batch_does(calendar) -> None:
    bars = _bars("2024-03-29 06:00", 150, "30min", calendar, seed=2)
    features = [
        build_vwap(VwapParams(), CTX),
        build_time_features(TimeFeaturesParams(), BuildContext("s", Path("."), 0, ("vwap",))),
    ]
    batch = pd.concat(
        [f.compute(bars, pd.DataFrame(index=bars.frame.index)) for f in features], axis=1
    ).to_numpy()
    stepper = FeatureStepper(features, StepContext.of(bars))
    stepped = np.vstack([stepper.step(bar) for bar in each_bar(bars)])
    assert batch.tobytes() == stepped.tobytes()
