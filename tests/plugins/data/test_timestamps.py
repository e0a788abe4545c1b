"""`utc_nanoseconds` reads a strategy file's timestamps without pandas, as pandas does."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.plugins.data.timestamps import parse_utc_timestamp, utc_nanoseconds

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
