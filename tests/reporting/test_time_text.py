"""Times written a whole array at once are numpy's ``datetime_as_string``, digit for digit."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.time_text import Unit, json_times, time_texts

YEAR_1000, YEAR_10000 = -30_610_224_000, 253_402_300_800  # seconds since 1970
EDGES = [YEAR_1000, YEAR_10000 - 1, -1, 0, 1, 951_782_400, 4_107_542_400]  # leap days

# whole seconds or minutes around the edges of years 1000-9999, 1970 and leap days
SECONDS = st.integers(YEAR_1000, YEAR_10000 - 1) | st.sampled_from(EDGES).flatmap(
    lambda edge: st.integers(max(YEAR_1000, edge - 200_000), min(YEAR_10000 - 1, edge + 200_000))
)
NS_SECONDS = st.integers(-9_223_372_035, 9_223_372_035)  # nanoseconds' years, 1677-2262


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


def test_a_time_outside_years_1000_to_9999_is_left_to_numpy() -> None:
    for seconds in (YEAR_1000 - 1, YEAR_10000):
        values = np.array([0, seconds], "datetime64[s]")
        assert json_times(values, "s") is None
        assert time_texts(values, "m") is None
    assert orjson.dumps(json_times(np.array([], "datetime64[s]"), "m")) == b"[]"
    assert time_texts(np.array(["NaT"], "datetime64[ns]"), "m", missing="") == [""]
