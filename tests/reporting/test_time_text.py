"""Times written a whole array at once are numpy's ``datetime_as_string``, digit for digit
(and pandas' ``strftime``)."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.time_text import Unit, json_times, second_texts, time_texts

YEAR_1000, YEAR_10000 = -30_610_224_000, 253_402_300_800  # seconds since 1970
EDGES = [YEAR_1000, YEAR_10000 - 1, -1, 0, 1, 951_782_400, 4_107_542_400]  # leap days

# whole seconds or minutes around the edges of years 1000-9999, 1970 and leap days
SECONDS = st.integers(YEAR_1000, YEAR_10000 - 1) | st.sampled_from(EDGES).flatmap(
    lambda edge: st.integers(max(YEAR_1000, edge - 200_000), min(YEAR_10000 - 1, edge + 200_000))
)
NS_SECONDS = st.integers(-9_223_372_035, 9_223_372_035)  # nanoseconds' years, 1677-2262

# any nanosecond time but NaT, and those within seconds of its ends (pandas' Timestamp.min
# is a fraction of a second after int64's least) and of 1970
NS_LEAST, NS_MOST = -(2**63) + 1, 2**63 - 1
NANOSECONDS = st.integers(NS_LEAST, NS_MOST) | st.sampled_from([NS_LEAST, -1, NS_MOST]).flatmap(
    lambda edge: st.integers(max(NS_LEAST, edge - 3 * 10**9), min(NS_MOST, edge + 3 * 10**9))
)


def times(seconds: list[int], unit: str, stored: str) -> np.ndarray:
    return np.array(seconds, "datetime64[s]").astype(f"datetime64[{unit}]").astype(stored)


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(SECONDS, max_size=40), st.sampled_from(["m", "s"]), st.sampled_from(["s", "m"]))
def test_the_json_of_times_is_numpys_text(seconds: list[int], unit: Unit, stored: str) -> None:
    values = times(seconds, unit, f"datetime64[{stored}]")
    fragment = json_times(values, unit)
    assert fragment is not None
    expected = orjson.dumps(np.datetime_as_string(values, unit=unit).tolist())
    assert orjson.dumps({"x": fragment}) == b'{"x":' + expected + b"}"


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(NS_SECONDS | st.none(), max_size=40), st.sampled_from(["m", "s"]))
def test_table_cells_of_nanosecond_times_are_numpys_text(
    seconds: list[int | None], unit: Unit
) -> None:
    values = np.array(
        [np.datetime64("NaT") if s is None else np.datetime64(s, "s") for s in seconds],
        "datetime64[s]",
    ).astype("datetime64[ns]")
    values[1::3] += np.timedelta64(999_999_999, "ns")  # a fraction of a second: floored
    texts = time_texts(values, unit, sep=" ", missing="-")
    expected = [
        "-" if np.isnat(v) else str(np.datetime_as_string(v, unit=unit)).replace("T", " ")
        for v in values
    ]
    assert texts == expected


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(NANOSECONDS | st.none(), max_size=40), st.sampled_from(["m", "s"]))
def test_every_nanosecond_time_is_pandas_text(nanoseconds: list[int | None], unit: Unit) -> None:
    # a time before 1970 with a fraction of a second is in the second before it: numpy's
    # own cast to seconds wraps around in the second after int64's least
    values = np.array([np.iinfo(np.int64).min if n is None else n for n in nanoseconds], np.int64)
    times = values.view("datetime64[ns]")
    written = pd.DatetimeIndex(times).strftime("%Y-%m-%d %H:%M" + (":%S" if unit == "s" else ""))
    expected = ["-" if pd.isna(text) else text for text in written]
    assert time_texts(times, unit, sep=" ", missing="-") == expected
    known = ~np.isnat(times)
    seconds = values // 1_000_000_000
    assert second_texts(seconds, unit, known, sep=" ", after="Z", missing="-") == [
        text if text == "-" else text + "Z" for text in expected
    ]
    if known.all():
        fragment = json_times(times, unit)
        assert fragment is not None
        expected_json = orjson.dumps([text.replace(" ", "T") for text in expected])
        assert orjson.dumps({"x": fragment}) == b'{"x":' + expected_json + b"}"


def test_a_time_outside_years_1000_to_9999_is_left_to_numpy() -> None:
    for seconds in (YEAR_1000 - 1, YEAR_10000):
        values = np.array([0, seconds], "datetime64[s]")
        assert json_times(values, "s") is None
        assert time_texts(values, "m") is None
    assert orjson.dumps(json_times(np.array([], "datetime64[s]"), "m")) == b"[]"
    assert time_texts(np.array(["NaT"], "datetime64[ns]"), "m", missing="") == [""]
