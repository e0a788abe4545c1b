"""A run's Parquet tables: how each column is written changes bytes, never a value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.exports import (
    PLOTS_KEY,
    _settings,
    _table,
    _write,
    parquet_bytes,
    read_plots,
    write_arrow,
    write_parquet,
)


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
    twin = path.with_name("twin.parquet")  # pyarrow.parquet's own function: the same bytes
    pq.write_table(table, twin, **_settings(table))
    assert path.read_bytes() == twin.read_bytes()
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


@settings(max_examples=examples(100), deadline=None)
@given(st.data())
def test_a_frame_becomes_the_table_arrow_makes_of_it(data: st.DataObject) -> None:
    # write_parquet's table is from_pandas's, made faster: the same schema and
    # pandas metadata, the same values, a NaN a missing value (so the same file)
    n = data.draw(st.integers(0, 60))
    floats = st.lists(FLOATS, min_size=n, max_size=n)
    columns: dict[object, object] = {
        "x": np.array(data.draw(floats), np.float64),
        "z": np.array(data.draw(st.lists(st.floats(width=32), min_size=n, max_size=n)), np.float32),
        "i": np.array(
            data.draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
        ),
        7: np.array(data.draw(floats), np.float64),  # a name that is not text
    }
    if data.draw(st.booleans()):
        names = st.lists(st.sampled_from(["BTC", "ETH", None]), min_size=n, max_size=n)
        drawn = data.draw(names)
        kind = data.draw(st.sampled_from(["category", "text", "object"]))
        columns["symbol"] = {  # (pandas' own text type, or Python objects)
            "category": pd.Categorical(drawn),
            "text": pd.array(drawn),
            "object": pd.Series(drawn, dtype=object).to_numpy(),  # (set as such below)
        }[kind]
    frame = pd.DataFrame(
        columns,
        index=pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC", name="timestamp"),
    )
    if "symbol" in frame and kind == "object":
        frame["symbol"] = pd.Series(drawn, index=frame.index, dtype=object)
        assert frame["symbol"].dtype == object
    if data.draw(st.booleans()):
        frame = frame.iloc[::2]  # columns that are views with a step
    plots = data.draw(st.none() | st.just({"x": "price"}))
    table = _table(frame, plots)
    expected = pa.Table.from_pandas(frame.reset_index(), preserve_index=False)
    assert table.schema.metadata[b"pandas"] == expected.schema.metadata[b"pandas"]
    assert table.schema.remove_metadata() == expected.schema.remove_metadata()
    assert table.equals(expected)  # nulls where Arrow put them; NaN where it kept one
    if plots:
        assert json.loads(table.schema.metadata[PLOTS_KEY.encode()]) == plots


def test_a_frame_is_written_as_pyarrow_parquet_writes_it_and_its_plots_read_back(
    tmp_path: Path,
) -> None:
    # the tables are written by pyarrow's Parquet writer itself (pyarrow.parquet, with the
    # filesystems it imports, is not imported by a run): the file write_table writes
    n = 5_000
    frame = pd.DataFrame(
        {"close": 100 + np.cumsum(np.random.default_rng(2).normal(size=n)), "bar": np.arange(n)},
        index=pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC", name="timestamp"),
    )
    plots = {"close": "price"}
    path = tmp_path / "features.parquet"
    write_parquet(path, frame, plots)
    table = _table(frame, plots)
    pq.write_table(table, tmp_path / "twin.parquet", **_settings(table))
    assert path.read_bytes() == (tmp_path / "twin.parquet").read_bytes()
    assert parquet_bytes(frame, plots) == path.read_bytes()
    assert (
        read_plots(path) == plots == json.loads(pq.read_schema(path).metadata[PLOTS_KEY.encode()])
    )


def test_a_write_that_fails_leaves_no_file(tmp_path: Path) -> None:
    # as pyarrow.parquet.write_table: the file opened, then settings the writer refuses
    table = pa.table({"when": pa.array([1, 2], pa.int64())})
    path = tmp_path / "t.parquet"
    with pytest.raises(ValueError, match=r"^'RLE_DICTIONARY' is already used by default\.$"):
        _write(table, path, {"column_encoding": {"when": "RLE_DICTIONARY"}})
    assert not path.exists()


@pytest.mark.parametrize("missing", ["no class", "another signature"])
def test_a_pyarrow_whose_private_writer_moved_writes_the_same_file_through_write_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    # the private writer is pyarrow's, not a promise: a release that moves or reshapes it
    # must not stop a run from writing its tables (`pyarrow>=15`, no ceiling)
    from tradeloom.reporting import exports

    def reshaped(*args: object, **kwargs: object) -> None:
        raise TypeError("__init__() got an unexpected keyword argument 'version'")

    frame = pd.DataFrame(
        {"close": [1.0, 2.0, np.nan], "bar": [0, 1, 2]},
        index=pd.date_range("2024-01-01", periods=3, freq="min", tz="UTC", name="timestamp"),
    )
    expected = tmp_path / "before.parquet"
    write_parquet(expected, frame, {"close": "price"})
    monkeypatch.setattr(exports, "_Writer", None if missing == "no class" else reshaped)
    if missing == "no class":
        monkeypatch.setattr(exports, "_Reader", None)
    path = tmp_path / "after.parquet"
    write_parquet(path, frame, {"close": "price"})
    assert path.read_bytes() == expected.read_bytes()
    assert read_plots(path) == {"close": "price"}
    assert parquet_bytes(frame, {"close": "price"}) == expected.read_bytes()
