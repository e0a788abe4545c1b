"""validate_bars: every kind of problem, rejected with its exact message or repaired."""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.domain import OHLCV, DataIssue
from tradeloom.errors import DataError
from tradeloom.plugins.data.validation import (
    DataValidationError,
    validate_bars,
)
from tradeloom.time.timeframes import format_timestamp

SOURCE = "/abs/btc.csv"
HOUR = 3600


def raw(n: int = 10, start: str = "2024-03-01T00:00Z") -> pd.DataFrame:
    """Return n clean hourly bars in file order; open 100+i, close 100.5+i."""
    base = np.arange(n, dtype=float)
    index = pd.date_range(start, periods=n, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": 100.0 + base,
            "high": 101.0 + base,
            "low": 99.0 + base,
            "close": 100.5 + base,
            "volume": 10.0 + base,
        },
        index=index,
    )


def lines_of(frame: pd.DataFrame) -> np.ndarray:
    """Return CSV line numbers: header on line 1, rows from line 2."""
    return np.arange(2, len(frame) + 2)


def check(frame: pd.DataFrame, policy: str = "reject", **kwargs: object):
    return validate_bars(
        frame,
        source=SOURCE,
        symbol="BTC/USDT",
        timeframe="1h",
        timeframe_seconds=HOUR,
        policy=policy,  # type: ignore[arg-type]
        row_numbers=lines_of(frame),
        row_label="line",
        **kwargs,  # type: ignore[arg-type]
    )


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = expected.set_axis(expected.index.as_unit("ns"))
    pd.testing.assert_frame_equal(actual, expected, check_freq=False, check_exact=True)


def reorder(frame: pd.DataFrame, positions: list[int]) -> pd.DataFrame:
    return frame.iloc[positions]


def test_clean_bars_pass_unchanged() -> None:
    frame = raw()
    frame["probability"] = np.linspace(0.0, 1.0, len(frame))
    bars = check(frame)
    assert_same(bars.frame, frame)
    assert bars.frame.index.name == "timestamp"
    assert str(bars.frame.index.dtype) == "datetime64[ns, UTC]"
    assert all(bars.frame[c].dtype == np.float64 for c in OHLCV)
    assert (bars.symbol, bars.timeframe, bars.timeframe_seconds) == ("BTC/USDT", "1h", HOUR)
    assert bars.repaired == () and bars.gaps == ()


def _set(frame: pd.DataFrame, row: int, **values: float) -> None:
    for column, value in values.items():
        frame.iloc[row, frame.columns.get_loc(column)] = value


# Each case: how to break rows (positions 2, 5, 7 unless said), the exact reject line.
CASES = {
    "missing_values": (
        lambda f: [_set(f, r, close=np.nan) for r in (2, 5, 7)],
        "data: /abs/btc.csv: 3 rows have missing or infinite values in close "
        "(first at 2024-03-01T02:00Z, lines 4, 7, 9); drop them or set data.validation: repair",
    ),
    "non_positive_price": (
        lambda f: [_set(f, r, low=0.0) for r in (2, 5, 7)],
        "data: /abs/btc.csv: 3 rows have a price <= 0 "
        "(first at 2024-03-01T02:00Z, lines 4, 7, 9); drop them or set data.validation: repair",
    ),
    "high_below_low": (
        lambda f: [_set(f, r, high=50.0, low=60.0, open=55.0, close=55.0) for r in (2, 5, 7)],
        "data: /abs/btc.csv: 3 rows have high < low "
        "(first at 2024-03-01T02:00Z, lines 4, 7, 9); drop them or set data.validation: repair",
    ),
    "open_close_outside_range": (
        lambda f: [_set(f, r, close=1000.0) for r in (2, 5, 7)],
        "data: /abs/btc.csv: 3 rows have open or close outside [low, high] "
        "(first at 2024-03-01T02:00Z, lines 4, 7, 9); drop them or set data.validation: repair",
    ),
    "non_positive_volume": (
        lambda f: [_set(f, r, volume=v) for r, v in ((2, 0.0), (5, -1.0), (7, 0.0))],
        "data: /abs/btc.csv: 3 rows have volume <= 0 "
        "(first at 2024-03-01T02:00Z, lines 4, 7, 9); drop them or set data.validation: repair",
    ),
}


@pytest.mark.parametrize("code", list(CASES))
def test_bad_values_are_rejected_with_exact_message(code: str) -> None:
    frame = raw()
    CASES[code][0](frame)
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [CASES[code][1]]
    assert str(info.value) == CASES[code][1]
    assert isinstance(info.value, DataError)
    assert info.value.issues == (DataIssue(code, 3, "2024-03-01T02:00Z", (4, 7, 9)),)


@pytest.mark.parametrize("code", list(CASES))
def test_bad_values_are_dropped_and_reported_under_repair(code: str) -> None:
    frame = raw()
    CASES[code][0](frame)
    bars = check(frame, "repair")
    expected = raw().drop(raw().index[[2, 5, 7]])
    assert_same(bars.frame, expected)
    assert bars.repaired == (DataIssue(code, 3, "2024-03-01T02:00Z", (4, 7, 9)),)
    # The dropped rows leave holes in the hourly grid: kept and reported as gaps.
    assert bars.gaps == (DataIssue("gap", 3, "2024-03-01T02:00Z", (5, 8, 10)),)


def test_one_row_reads_in_the_singular() -> None:
    frame = raw()
    _set(frame, 4, high=50.0, low=60.0)
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 1 row has high < low (at 2024-03-01T04:00Z, line 6); "
        "drop it or set data.validation: repair"
    ]


def test_more_than_three_rows_are_elided() -> None:
    frame = raw()
    for r in (1, 3, 5, 8):
        _set(frame, r, volume=0.0)
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 4 rows have volume <= 0 (first at 2024-03-01T01:00Z, "
        "lines 3, 5, 7, ...); drop them or set data.validation: repair"
    ]
    assert info.value.issues[0].rows == (3, 5, 7, 10)


def test_missing_values_name_every_column_with_one() -> None:
    frame = raw()
    _set(frame, 1, open=np.nan)
    _set(frame, 6, volume=np.inf)
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 2 rows have missing or infinite values in open, volume "
        "(first at 2024-03-01T01:00Z, lines 3, 8); drop them or set data.validation: repair"
    ]


def test_each_kind_gets_its_own_line_and_a_row_is_blamed_once() -> None:
    frame = raw()
    _set(frame, 1, close=np.nan, high=10.0)  # missing value and high < low: blamed once
    _set(frame, 3, high=50.0, low=60.0)
    frame = reorder(frame, [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9])  # line 8 repeats line 7
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 1 row has missing or infinite values in close "
        "(at 2024-03-01T01:00Z, line 3); drop it or set data.validation: repair",
        "data: /abs/btc.csv: 1 row has high < low "
        "(at 2024-03-01T03:00Z, line 5); drop it or set data.validation: repair",
        "data: /abs/btc.csv: 1 row has the timestamp of an earlier row "
        "(at 2024-03-01T05:00Z, line 8); drop it or set data.validation: repair "
        "(keeps the first)",
    ]
    repaired = check(frame, "repair")
    assert [i.code for i in repaired.repaired] == [
        "missing_values",
        "high_below_low",
        "duplicate_timestamp",
    ]
    assert sum(i.count for i in repaired.repaired) == len(frame) - len(repaired)


def test_duplicates_keep_the_first_row() -> None:
    frame = raw(5)
    duplicate = frame.iloc[[2]].copy()
    duplicate["close"] = 102.0  # different values, same timestamp
    frame = pd.concat([frame, duplicate, duplicate])
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 2 rows have the timestamp of an earlier row "
        "(first at 2024-03-01T02:00Z, lines 7, 8); drop them or set data.validation: repair "
        "(keeps the first)"
    ]
    bars = check(frame, "repair")
    assert len(bars) == 5
    assert bars.frame["close"].iloc[2] == 102.5
    assert bars.repaired == (DataIssue("duplicate_timestamp", 2, "2024-03-01T02:00Z", (7, 8)),)


def test_unsorted_rows_are_rejected_or_sorted() -> None:
    frame = reorder(raw(), [0, 1, 3, 2, 4, 5, 9, 6, 7, 8])
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 2 rows have a timestamp earlier than the row before them "
        "(first at 2024-03-01T02:00Z, lines 5, 9); sort the rows by timestamp or set "
        "data.validation: repair"
    ]
    bars = check(frame, "repair")
    expected = raw()
    assert_same(bars.frame, expected)
    assert bars.repaired == (DataIssue("unsorted", 2, "2024-03-01T02:00Z", (5, 9)),)
    assert bars.gaps == ()


def test_one_unsorted_row_reads_in_the_singular() -> None:
    frame = reorder(raw(4), [0, 2, 1, 3])
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 1 row has a timestamp earlier than the row before it "
        "(at 2024-03-01T01:00Z, line 4); sort the rows by timestamp or set "
        "data.validation: repair"
    ]


def test_gaps_are_rejected_or_kept_and_reported() -> None:
    frame = raw(12).drop(raw(12).index[[3, 4, 8]])
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 2 gaps in the 1h bars, 3 bars missing (first at "
        "2024-03-01T03:00Z, before lines 5, 8); fill them or set data.validation: repair "
        "to keep them"
    ]
    bars = check(frame, "repair")
    assert_same(bars.frame, frame)
    assert bars.repaired == ()
    assert bars.gaps == (DataIssue("gap", 2, "2024-03-01T03:00Z", (5, 8)),)


def test_one_gap_reads_in_the_singular() -> None:
    frame = raw(6).drop(raw(6).index[[2]])
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert info.value.lines() == [
        "data: /abs/btc.csv: 1 gap in the 1h bars, 1 bar missing (first at "
        "2024-03-01T02:00Z, before line 4); fill it or set data.validation: repair to keep it"
    ]


def test_bad_values_do_not_count_as_gaps_under_reject() -> None:
    frame = raw()
    _set(frame, 4, volume=0.0)
    with pytest.raises(DataValidationError) as info:
        check(frame)
    assert len(info.value.lines()) == 1


def test_repairing_away_every_row_is_an_error() -> None:
    frame = raw(3)
    frame["volume"] = 0.0
    with pytest.raises(
        DataValidationError,
        match=r"^data: /abs/btc.csv: no rows left after dropping 3 bad rows under "
        r"data.validation: repair$",
    ):
        check(frame, "repair")


def test_empty_frame_is_an_error() -> None:
    with pytest.raises(DataValidationError, match=r"^data: /abs/btc.csv: no rows$"):
        check(raw().iloc[:0])


def test_rows_are_numbered_from_one_by_default() -> None:
    frame = raw()
    _set(frame, 0, high=1.0, low=2.0)
    with pytest.raises(DataValidationError, match=r"\(at 2024-03-01T00:00Z, row 1\)"):
        validate_bars(
            frame,
            source="x.parquet",
            symbol="X",
            timeframe="1h",
            timeframe_seconds=HOUR,
            policy="reject",
        )


def test_format_timestamp_shows_seconds_only_when_set() -> None:
    assert format_timestamp(pd.Timestamp("2024-03-01T04:00:00Z")) == "2024-03-01T04:00Z"
    assert format_timestamp(pd.Timestamp("2024-03-01T04:00:30Z")) == "2024-03-01T04:00:30Z"
    assert format_timestamp(pd.Timestamp("2024-03-01 05:00+01:00")) == "2024-03-01T04:00Z"
    assert format_timestamp(pd.Timestamp("2024-03-01T04:00:00").value) == "2024-03-01T04:00Z"


_corruptions = st.lists(
    st.tuples(
        st.integers(0, 29),
        st.sampled_from(["nan", "zero_price", "swap", "outside", "zero_volume", "dup", "move"]),
    ),
    max_size=12,
)


@settings(max_examples=examples(80), deadline=None)
@given(corruptions=_corruptions)
def test_repair_always_yields_clean_bars_and_accounts_for_every_row(corruptions) -> None:
    frame = raw(30)
    order = list(range(30))
    for row, kind in corruptions:
        if kind == "nan":
            _set(frame, row, open=np.nan)
        elif kind == "zero_price":
            _set(frame, row, low=0.0)
        elif kind == "swap":
            _set(frame, row, high=frame.iloc[row]["low"] - 1, low=frame.iloc[row]["high"])
        elif kind == "outside":
            _set(frame, row, open=frame.iloc[row]["high"] * 2)
        elif kind == "zero_volume":
            _set(frame, row, volume=0.0)
        elif kind == "dup":
            order.append(row)
        else:
            order.insert(0, order.pop(order.index(row)))
    frame = frame.iloc[order]
    try:
        bars = check(frame, "repair")
    except DataValidationError as exc:
        assert re.match(r"^data: /abs/btc.csv: no rows left after dropping \d+ bad rows", str(exc))
        return
    out = bars.frame
    assert out.index.is_monotonic_increasing and out.index.is_unique
    assert np.isfinite(out[list(OHLCV)].to_numpy()).all()
    assert (out[["open", "high", "low", "close", "volume"]] > 0).all().all()
    assert (out["high"] >= out[["open", "close"]].max(axis=1)).all()
    assert (out["low"] <= out[["open", "close"]].min(axis=1)).all()
    dropped = sum(i.count for i in bars.repaired if i.code != "unsorted")
    assert dropped == len(frame) - len(out)
    for issue in bars.repaired:
        assert issue.count == len(issue.rows) > 0
    expect_error = bars.repaired or bars.gaps
    with pytest.raises(DataValidationError) if expect_error else contextlib.nullcontext():
        check(frame, "reject")
