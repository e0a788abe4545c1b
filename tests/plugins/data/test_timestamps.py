"""`utc_nanoseconds` reads a strategy file's timestamps without pandas, as pandas does;
`parse_timestamps` reads a column in one fixed-width form at once, as it reads each cell."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.plugins.data import timestamps
from tradeloom.plugins.data.timestamps import parse_timestamps, parse_utc_timestamp, utc_nanoseconds

_LOW = datetime.datetime(1677, 9, 22)
_HIGH = datetime.datetime(2262, 4, 10)


@given(
    when=st.datetimes(min_value=_LOW, max_value=_HIGH),
    nanos=st.integers(0, 999),
    shape=st.sampled_from(["date", "minute", "second", "micro", "nano"]),
    sep=st.sampled_from(["T", " "]),
    zone=st.sampled_from(["", "Z", "+00:00", "+05:30", "-08:00", "+14:00"]),
)
def test_a_plain_iso_timestamp_is_what_pandas_reads(
    when: datetime.datetime, nanos: int, shape: str, sep: str, zone: str
) -> None:
    text = {
        "date": f"{when:%Y-%m-%d}",
        "minute": f"{when:%Y-%m-%d}{sep}{when:%H:%M}{zone}",
        "second": f"{when:%Y-%m-%d}{sep}{when:%H:%M:%S}{zone}",
        "micro": f"{when:%Y-%m-%d}{sep}{when:%H:%M:%S.%f}{zone}",
        "nano": f"{when:%Y-%m-%d}{sep}{when:%H:%M:%S.%f}{nanos:03d}{zone}",
    }[shape]
    assert utc_nanoseconds(text) == parse_utc_timestamp(text).value


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30",  # no such day
        "2024-13-01",
        "2024-03-01T25:00",
        "2262-04-12",  # past the last nanosecond timestamp
        "1677-09-21T00:12:43.145224192",  # before the first
        "2024-03-01T04:00+24:00",
        "",
    ],
)
def test_what_is_not_a_timestamp_gets_the_same_message(text: str) -> None:
    with pytest.raises(ValueError) as expected:
        parse_utc_timestamp(text)
    with pytest.raises(ValueError, match=r"^must be a UTC timestamp ") as got:
        utc_nanoseconds(text)
    assert str(got.value) == str(expected.value)


def test_other_forms_pandas_reads_still_read() -> None:
    """Forms outside the plain ISO pattern go to pandas (here: a basic-format date)."""
    assert utc_nanoseconds("20240301") == parse_utc_timestamp("20240301").value


def _cell_by_cell(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """`parse_timestamps` as it reads a column in no fixed-width form."""
    original = timestamps._fixed_width_iso
    try:
        timestamps._fixed_width_iso = lambda _: None  # type: ignore[assignment]
        return parse_timestamps(values)
    finally:
        timestamps._fixed_width_iso = original  # type: ignore[assignment]


@given(
    when=st.lists(st.datetimes(min_value=_LOW, max_value=_HIGH), min_size=1, max_size=4),
    sep=st.sampled_from(["T", " "]),
    zone=st.sampled_from(["", "Z", "+00:00", "+05:30", "-08:00"]),
)
def test_a_column_in_one_fixed_width_form_is_read_at_once_as_cell_by_cell(
    when: list[datetime.datetime], sep: str, zone: str
) -> None:
    column = pd.Series([f"{w:%Y-%m-%d}{sep}{w:%H:%M:%S}{zone}" for w in when], dtype="str")

    fixed = timestamps._fixed_width_iso(column)

    stamps, bad = _cell_by_cell(column)
    assert fixed is not None and not bad.any()
    assert fixed.tolist() == stamps.tolist()


@pytest.mark.parametrize(
    "cell",
    [
        "2024-02-30T00:00:00Z",  # no such day
        "2024-01-01T24:00:00Z",  # no such hour
        "2262-04-11T23:47:17Z",  # after what nanoseconds hold
        "1677-09-21T00:12:43Z",  # before it
        "+024-01-01T00:00:00Z",  # a sign where a digit goes
        "2024-01-01x00:00:00Z",
        "2024-01-01T00:00:00z",
        "2024-01-01T00:00:00*05:30",
        " 2024-01-01T00:00:0Z",  # a space around the time
        "2024-01-01T00:00:00.5Z",  # a fraction: a width of its own
    ],
)
def test_a_column_with_any_other_cell_is_read_cell_by_cell(cell: str) -> None:
    column = pd.Series(["2024-01-01T00:00:00Z" if len(cell) == 20 else cell, cell], dtype="str")

    assert timestamps._fixed_width_iso(column) is None
    assert parse_timestamps(column)[1].tolist() == _cell_by_cell(column)[1].tolist()


def test_a_missing_cell_is_read_cell_by_cell() -> None:
    column = pd.Series(["2024-01-01T00:00:00Z", None], dtype="str")

    assert timestamps._fixed_width_iso(column) is None
    assert parse_timestamps(column)[1].tolist() == [False, True]


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_datetimes_of_any_unit_outside_what_nanoseconds_hold_are_bad(unit: str) -> None:
    times = ["1677-09-21T00:12:43", "1677-09-21T00:12:44", "2262-04-11T23:47:16"]
    times += ["2262-04-11T23:47:17", "NaT", "2024-03-01T04:00:00"]
    column = pd.Series(np.array(times, dtype=f"datetime64[{unit}]"))

    stamps, bad = parse_timestamps(column)

    assert bad.tolist() == [True, False, False, True, True, False]
    assert stamps[[1, 2, 5]].tolist() == [
        -9_223_372_036_000_000_000,
        9_223_372_036_000_000_000,
        1_709_265_600_000_000_000,
    ]
