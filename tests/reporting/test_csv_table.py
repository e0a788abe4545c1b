"""A run's CSV tables written from arrays are pandas' ``to_csv`` text, byte for byte."""

from __future__ import annotations

import io
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting import csv_table
from tradeloom.reporting.csv_table import ISO_SECONDS, csv_chunks
from tradeloom.reporting.csv_table import csv_bytes as csv_array


def csv_bytes(frame: pd.DataFrame, date_format: str) -> bytes | None:
    text = csv_array(frame, date_format)
    return None if text is None else text.tobytes()


EDGE_FLOATS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e16, 9999999999999998.0, 1e-4, 9.999e-5]
EDGE_FLOATS += [1e15, 1.5e-5, 5e-324, 1.7976931348623157e308, 100.0, 0.1, -123.456e-7, 1e100]


T = TypeVar("T")

NS_PER_DAY = 86_400 * 1_000_000_000
SUBNORMAL = 2.2250738585072014e-308  # the least normal float

ANY_FLOAT = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([*EDGE_FLOATS, 5e-324, -5e-324, 30000.02952369511, 0.036752571942194945])
    | st.floats(-SUBNORMAL, SUBNORMAL)  # subnormals and zeros of either sign
)

# a series of times: from one of the ends of nanoseconds' years (1677-09-21, 2262), 1970
# or the second before it, by steps of a second, a minute, a day or less, backwards, none
TIME_STARTS = [pd.Timestamp.min.value, -1, 0, pd.Timestamp.max.value - 3 * NS_PER_DAY]
TIME_STEPS = [0, 1, 1_000_000_000, 60_000_000_000, NS_PER_DAY - 1, NS_PER_DAY, -NS_PER_DAY]


def runs(values: st.SearchStrategy[T]) -> st.SearchStrategy[list[T]]:
    """Lists of runs of one value, 1 to 6 long (a position between two fills)."""
    pairs = st.lists(st.tuples(values, st.integers(1, 6)), min_size=1, max_size=12)
    return pairs.map(lambda drawn: [value for value, length in drawn for _ in range(length)])


def times(data: st.DataObject, n: int) -> list[int | None]:
    """Draw ``n`` nanoseconds from one of `TIME_STARTS` by `TIME_STEPS` or any step up to
    40 days, kept within pandas' years (a tenth of them NaT: None)."""
    steps = st.sampled_from(TIME_STEPS) | st.integers(0, 40 * NS_PER_DAY)
    now = data.draw(st.sampled_from(TIME_STARTS))
    stamps: list[int | None] = []
    for step in data.draw(st.lists(steps, min_size=n, max_size=n)):
        now = min(max(now + step, pd.Timestamp.min.value), pd.Timestamp.max.value)
        stamps.append(None if data.draw(st.integers(0, 9)) == 0 else now)
    return stamps


def pandas_text(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, date_format=ISO_SECONDS)
    return buffer.getvalue().encode()


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=40),
    st.lists(st.integers(-(2**62), 2**62), min_size=40, max_size=40),
    st.lists(
        st.text(alphabet=st.sampled_from('ab,"\n x/é€'), max_size=5) | st.none(),
        min_size=40,
        max_size=40,
    ),
    st.lists(st.integers(-(10**9), 9_000_000_000) | st.none(), min_size=40, max_size=40),
)
def test_a_frame_is_written_as_pandas_writes_it(
    floats: list[float], ints: list[int], texts: list[str | None], seconds: list[int | None]
) -> None:
    n = len(floats)
    times = pd.to_datetime(
        [None if s is None else s * 1_000_000_000 + 987 for s in seconds[:n]], utc=True
    )
    frame = pd.DataFrame(
        {
            "timestamp": times,
            "x": floats,
            "close[BTC/USDT]": np.array(floats[::-1], dtype=np.float64),
            "held": [floats[i // 8] for i in range(n)],  # runs of one value
            "pairs": [floats[i // 2] for i in range(n)],  # runs of two: half the values
            "bar": ints[:n],
            "flag": [i % 3 == 0 for i in ints[:n]],
            "note": pd.Series(texts[:n], dtype=object),
            "symbol": pd.Series(texts[:n], dtype="str"),
            "venue": pd.Series(texts[:n], dtype=pd.StringDtype("python")),
            "reason": pd.Series([texts[i // 8] for i in range(n)], dtype=object),  # a few texts
            "market": pd.Categorical(texts[:n]),  # a categorical's text: its category's
        }
    )

    assert csv_bytes(frame, ISO_SECONDS) == pandas_text(frame)
    for rows in (1, 7):  # written a few lines at a time: the same text
        pieces = csv_chunks(frame, ISO_SECONDS, rows)
        assert pieces is not None
        assert b"".join(piece.tobytes() for piece in pieces) == pandas_text(frame)


def test_the_edges_of_float_text_are_pandas() -> None:
    frame = pd.DataFrame({"x": EDGE_FLOATS, "y": [-v for v in EDGE_FLOATS]})
    assert csv_bytes(frame, ISO_SECONDS) == pandas_text(frame)
    assert csv_bytes(frame.iloc[:0], ISO_SECONDS) == b"x,y\n"
    runs = pd.DataFrame({"x": np.repeat(EDGE_FLOATS, 9), "y": np.repeat(EDGE_FLOATS[::-1], 9)})
    assert csv_bytes(runs, ISO_SECONDS) == pandas_text(runs)
    pieces = csv_chunks(runs.iloc[:0], ISO_SECONDS, 4)
    assert pieces is not None and [p.tobytes() for p in pieces] == [b"x,y\n"]


def test_times_of_one_day_share_its_date_and_each_day_has_its_own() -> None:
    # a day's times copy the date text of the time before: across midnights (before and
    # after 1970, near the ends of nanoseconds' years), back to an earlier day, past a NaT
    day = 86_400 * 1_000_000_000
    starts = [-9_000_000_000, -86_400, 0, 951_782_400, 9_000_000_000]  # 1684, 1969...
    nanoseconds: list[int | None] = []
    for start in starts:
        first = start * 1_000_000_000
        nanoseconds += [first, first + 1, first + day - 1, first + day, first + day + 59]
        nanoseconds += [first + 3_600_999_999_999, None, first - 1, first + 2 * day - 1]
    nanoseconds += [nanoseconds[0], nanoseconds[11], None, nanoseconds[3]]
    times = pd.to_datetime(nanoseconds, utc=True)
    minutes = pd.date_range("1969-12-30T22:00Z", periods=4_000, freq="37s")
    for stamps in (times, minutes, minutes[::-1]):
        frame = pd.DataFrame({"timestamp": stamps, "x": np.arange(len(stamps), dtype=float)})
        assert csv_bytes(frame, ISO_SECONDS) == pandas_text(frame)


def test_what_pandas_alone_can_promise_is_left_to_pandas() -> None:
    one_column = pd.DataFrame({"x": [1.0, np.nan]})  # pandas quotes a lone empty cell
    objects = pd.DataFrame({"x": [1.0, 2.0], "pair": pd.Series([(1, 2), None], dtype=object)})
    nullable = pd.DataFrame({"x": [1.0, 2.0], "n": pd.array([1, None], dtype="Int64")})
    other_zone = pd.DataFrame(
        {"x": [1.0], "t": pd.to_datetime(["2024-01-01"]).tz_localize("Europe/Paris")}
    )
    carriage = pd.DataFrame({"x": [1.0], "note": ["a\rb"]})  # quoted by Python 3.12's csv
    # a few distinct values, one of them not text (1, True and 1.0 are one value to a hash)
    mixed = pd.DataFrame({"x": [1.0] * 12, "m": pd.Series(["a", 1, True, 1.0] * 3, dtype=object)})
    repeated_carriage = pd.DataFrame({"x": [1.0] * 6, "note": ["a\rb", "c"] * 3})
    numbered = pd.DataFrame({"x": [1.0, 2.0], "c": pd.Categorical([3, None])})
    cases = (one_column, objects, nullable, other_zone, carriage, mixed, repeated_carriage)
    cases += (numbered,)
    for frame in cases:
        assert csv_bytes(frame, ISO_SECONDS) is None
    assert csv_bytes(pd.DataFrame({"x": [1.0], "y": [2.0]}), "%Y-%m-%d") is None


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_columns_of_repeated_values_are_written_as_pandas_writes_them(data: st.DataObject) -> None:
    # a cell copied from the line above, or a date from the time above, is the text
    # pandas writes for it: across the pieces' edges too (a piece's first line formats)
    n = data.draw(st.integers(1, 40))

    def column(values: st.SearchStrategy[T]) -> list[T]:
        drawn = data.draw(runs(values))
        return [drawn[i % len(drawn)] for i in range(n)]

    integers = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), 0, 10**18])
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(times(data, n), utc=True),
            "close": column(ANY_FLOAT),
            "position": column(ANY_FLOAT),
            "bar": column(integers),
            "sequence": np.array(column(st.integers(0, 2**64 - 1)), dtype=np.uint64),
            "symbol": pd.Categorical(column(st.sampled_from(["BTC/USDT", "a,b", None]))),
            "flag": column(st.booleans()),
            "reason": pd.Series(
                column(st.sampled_from(["", "EXIT", 'say "x"', None])), dtype=object
            ),
        }
    )
    expected = pandas_text(frame)
    for rows in (1, 2, 3, n):
        pieces = csv_chunks(frame, ISO_SECONDS, rows)
        assert pieces is not None
        assert b"".join(piece.tobytes() for piece in pieces) == expected


def test_the_lines_are_written_with_the_gil_released() -> None:
    # the worker thread writes equity.csv while the run's thread draws the report
    frame = pd.DataFrame({"x": [1.5, 1.5], "y": [2, 3]})
    assert csv_bytes(frame, ISO_SECONDS) == b"x,y\n1.5,2\n1.5,3\n"
    assert cast(Any, csv_table._write_lines).targetoptions["nogil"] is True


@settings(max_examples=examples(100), deadline=None)
@given(st.data())
def test_the_python_form_writes_repeated_values_and_times_as_pandas_writes_them(
    data: st.DataObject,
) -> None:
    """A small run's tables (`_write_lines_as_python`): a value as the one above, a time
    of any day (NaT too), a text by its code, pandas' text, whatever the piece."""
    n = data.draw(st.integers(1, 40))

    def column(values: st.SearchStrategy[T]) -> list[T]:
        drawn = data.draw(runs(values))
        return [drawn[i % len(drawn)] for i in range(n)]

    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(times(data, n), utc=True),
            "cash": column(ANY_FLOAT),
            "bar": column(st.integers(-(2**63), 2**63 - 1)),
            "symbol": pd.Categorical(column(st.sampled_from(["BTC/USDT", "a,b", None]))),
            "position": column(ANY_FLOAT),
            "reason": pd.Series(column(st.sampled_from(["", 'say "x"', None])), dtype=object),
        }
    )
    pieces: list[tuple[Any, ...]] = []
    real = csv_table._write_lines

    def as_python(*args: Any) -> Any:
        pieces.append(args)
        return csv_table._write_lines_as_python(*args)

    for rows in (1, 3, n):
        pieces.clear()
        csv_table._write_lines = as_python  # type: ignore[assignment]
        try:
            chunks = csv_chunks(frame, ISO_SECONDS, rows)
            assert chunks is not None
            text = b"".join(piece.tobytes() for piece in chunks)
        finally:
            csv_table._write_lines = real
        assert pieces  # the Python form wrote them
        assert text == pandas_text(frame)


@given(st.lists(ANY_FLOAT, max_size=60), st.booleans())
def test_the_python_form_writes_each_float_as_repr_by_orjson_or_by_repr(
    values: list[float], orjson_writes_repr: bool
) -> None:
    """A float cell of the Python form is ``repr`` (empty for NaN) whether orjson wrote it
    (the floats it writes as ``repr``) or ``repr`` did (an orjson that writes otherwise)."""
    want = [b"" if value != value else repr(value).encode() for value in values]
    checked = csv_table._orjson_writes_repr
    csv_table._orjson_writes_repr = lambda: orjson_writes_repr  # type: ignore[assignment]
    try:
        assert csv_table._float_cells(np.array(values, np.float64)) == want
    finally:
        csv_table._orjson_writes_repr = checked


def test_orjson_writes_floats_as_repr_here_over_random_bits() -> None:
    """The orjson installed writes 200,000 random floats of every magnitude as ``repr``
    (the check `_orjson_writes_repr` makes on a few), so the Python form writes them."""
    assert csv_table._orjson_writes_repr()
    bits = np.random.default_rng(7).integers(0, 2**63, 100_000, dtype=np.int64)
    values = np.concatenate([bits.view(np.float64), -bits.view(np.float64)])
    want = [b"" if value != value else repr(value).encode() for value in values.tolist()]
    assert csv_table._float_cells(values) == want
