"""``positions.csv``'s rows from the arrays: the compiled pass is the pandas reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.hunting import examples
from tradeloom.engine.frames import equal_weight, equity_frame, position_rows

CLOSES = st.floats(-1e12, 1e12) | st.just(np.nan)  # NaN: the symbol has no bar
POSITIONS = st.sampled_from([0.0, -0.0, 1.5, -2.0, np.nan, 1e-300]) | st.floats(-1e12, 1e12)


def reference(
    index: pd.DatetimeIndex, closes: np.ndarray, positions: np.ndarray, symbols: list[str]
) -> pd.DataFrame:
    """The rows as pandas made them: each column's closes carried forward, the non-zero
    positions (a NaN is one) in ``np.nonzero``'s order."""
    marks = pd.DataFrame(closes).ffill().to_numpy(np.float64)
    at, which = np.nonzero(positions)
    held = positions[at, which]
    return pd.DataFrame(
        {
            "timestamp": index[at],
            "bar": at,
            "strategy": pd.Categorical(np.asarray([f"s{k}" for k in range(len(symbols))])[which]),
            "symbol": pd.Categorical(np.asarray(symbols, dtype=object)[which]),
            "position": held,
            "close": marks[at, which],
            "value": held * marks[at, which],
        }
    )


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_position_rows_are_the_pandas_reference_bit_for_bit(data: st.DataObject) -> None:
    bars = data.draw(st.integers(0, 30))
    columns = data.draw(st.integers(1, 4))
    closes = data.draw(hnp.arrays(np.float64, (bars, columns), elements=CLOSES))
    positions = data.draw(hnp.arrays(np.float64, (bars, columns), elements=POSITIONS))
    symbols = data.draw(
        st.lists(
            st.sampled_from(["BTC/USDT", "ETH/USDT", "a,b"]), min_size=columns, max_size=columns
        )
    )
    index = pd.date_range("2024-01-01", periods=bars, freq="min", tz="UTC")
    labels = {"strategy": [f"s{k}" for k in range(columns)]}

    rows = position_rows(index, closes, positions, symbols, labels)
    expected = reference(index, closes, positions, symbols)

    assert list(rows.columns) == list(expected.columns)
    assert rows["timestamp"].equals(expected["timestamp"])
    assert rows["bar"].to_numpy().tolist() == expected["bar"].to_numpy().tolist()
    for name in ("strategy", "symbol"):
        assert rows[name].astype(object).tolist() == expected[name].astype(object).tolist()
    for name in ("position", "close", "value"):  # the same bits: NaN, -0.0 and all
        got, want = rows[name].to_numpy(np.float64), expected[name].to_numpy(np.float64)
        assert got.view(np.uint64).tolist() == want.view(np.uint64).tolist()


def test_a_transposed_array_is_read_by_its_values() -> None:
    # a [bars, columns] view of another layout (Fortran order) gives the same rows
    closes = np.asfortranarray([[1.0, np.nan], [np.nan, 3.0], [2.0, np.nan]])
    positions = np.asfortranarray([[0.0, 1.0], [2.0, 0.0], [0.0, -1.0]])
    index = pd.date_range("2024-01-01", periods=3, freq="min", tz="UTC")
    rows = position_rows(index, closes, positions, ["A", "B"])
    assert rows["bar"].tolist() == [0, 1, 2]
    assert rows["symbol"].astype(object).tolist() == ["B", "A", "B"]
    assert np.array_equal(rows["close"].to_numpy(), [np.nan, 1.0, 3.0], equal_nan=True)
    assert np.array_equal(rows["value"].to_numpy(), [np.nan, 2.0, -3.0], equal_nan=True)


def reference_account(closes: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A universe's ``gross`` and ``equal_weight`` as pandas made them over the whole
    ``[bars, symbols]``: the benchmark's definition, and the report's sum of the
    ``value[S]`` columns it read from equity.csv when the table had them."""
    marks = pd.DataFrame(closes).ffill()
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf
        index = (marks / marks.bfill().iloc[0]).fillna(1.0).mean(axis=1).to_numpy()
        held = marks.to_numpy(np.float64)
        values = np.where(positions != 0.0, positions * held, 0.0)
        columns = pd.DataFrame({f"value[{c}]": values[:, c] for c in range(values.shape[1])})
        return np.abs(columns.to_numpy(np.float64)).sum(axis=1), index


@settings(max_examples=examples(200), deadline=None)
@given(st.data())
def test_the_account_columns_are_the_pandas_definitions_bit_for_bit(data: st.DataObject) -> None:
    bars = data.draw(st.integers(1, 1200))  # past the rows worked on at a time (512)
    symbols = data.draw(st.integers(2, 40))
    shape = (bars, symbols)
    closes = data.draw(hnp.arrays(np.float64, shape, elements=CLOSES))
    positions = data.draw(hnp.arrays(np.float64, shape, elements=POSITIONS))
    index = pd.date_range("2024-01-01", periods=bars, freq="1min", tz="UTC")
    names = tuple(f"S{k}" for k in range(symbols))
    frame = equity_frame(index, names, closes, positions, np.zeros(bars), np.ones(bars), 1.0)
    gross, weight = reference_account(closes, positions)
    np.testing.assert_array_equal(frame["gross"].to_numpy(), gross)
    np.testing.assert_array_equal(frame["equal_weight"].to_numpy(), weight)
    np.testing.assert_array_equal(equal_weight(closes, index).to_numpy(), weight)
