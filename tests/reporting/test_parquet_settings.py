"""A run's Parquet tables: how each column is written changes bytes, never a value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.exports import write_arrow, write_parquet


def encodings(path: Path) -> dict[str, tuple[str, ...]]:
    group = pq.ParquetFile(path).metadata.row_group(0)
    return {
        group.column(k).path_in_schema: group.column(k).encodings for k in range(group.num_columns)
    }


def test_a_repeating_column_is_written_as_it_is_and_a_price_split_by_byte(
    tmp_path: Path,
) -> None:
    n = 20_000
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "close": 100 + np.cumsum(rng.normal(size=n)),
            "position": np.repeat(rng.normal(size=n // 100), 100),  # held between fills
            "signal": np.where(np.arange(n) % 50 == 0, 1.0, np.nan),  # mostly missing
            "bar": np.arange(n),
            "symbol": "BTC/USDT",
        },
        index=pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC", name="timestamp"),
    )
    path = tmp_path / "t.parquet"
    write_parquet(path, frame)
    written = encodings(path)
    assert "BYTE_STREAM_SPLIT" in written["close"]
    assert "PLAIN" in written["position"] and "BYTE_STREAM_SPLIT" not in written["position"]
    assert "PLAIN" in written["signal"] and "BYTE_STREAM_SPLIT" not in written["signal"]
    assert "DELTA_BINARY_PACKED" in written["bar"]
    assert "DELTA_BINARY_PACKED" in written["timestamp"]
    group = pq.ParquetFile(path).metadata.row_group(0)
    with_statistics = {
        group.column(k).path_in_schema
        for k in range(group.num_columns)
        if group.column(k).is_stats_set
    }
    assert with_statistics == {"timestamp", "bar"}  # what a reader filters a run by
    back = pq.read_table(path).to_pandas().set_index("timestamp")
    pd.testing.assert_frame_equal(back, frame, check_freq=False)


FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.5])


@settings(max_examples=examples(200), deadline=None)
@given(st.data())
def test_any_column_reads_back_as_it_was_written(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    n = data.draw(st.integers(0, 300))
    runs = data.draw(st.integers(1, 40))  # a run per value: repeating, or not at all

    def column(values: st.SearchStrategy[object]) -> list[object]:
        drawn = data.draw(st.lists(values, min_size=1, max_size=max(1, n // runs + 1)))
        return [drawn[(i // runs) % len(drawn)] for i in range(n)]

    table = pa.table(
        {
            "timestamp": pa.array(
                np.arange(n, dtype=np.int64) * 60_000_000_000, pa.timestamp("ns", tz="UTC")
            ),
            "x": pa.array(column(FLOATS), pa.float64()),
            "y": pa.array(column(FLOATS | st.none()), pa.float64()),
            "z": pa.array(column(FLOATS), pa.float32()),
            "i": pa.array(column(st.integers(-(2**63), 2**63 - 1)), pa.int64()),
            "s": pa.array(column(st.sampled_from(["a", "b,c", None])), pa.large_string()),
        }
    )
    path = tmp_path_factory.mktemp("t") / "t.parquet"
    write_arrow(path, table)
    back = pq.read_table(path)
    assert back.schema == table.schema
    for name in table.column_names:  # NaN by its bits: a NaN is the NaN written
        a, b = table.column(name), back.column(name)
        assert a.is_null().to_pylist() == b.is_null().to_pylist()
        if pa.types.is_floating(a.type):
            bits = f"u{a.type.bit_width // 8}"
            x = a.to_numpy(zero_copy_only=False)
            y = b.to_numpy(zero_copy_only=False)
            assert x.view(bits).tolist() == y.view(bits).tolist()
        else:
            assert a.to_pylist() == b.to_pylist()
