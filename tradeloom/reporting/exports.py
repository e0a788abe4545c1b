"""Per-bar tables of a run: ``bars.parquet`` (the OHLCV bars traded on),
``features.parquet`` (what the model saw and what it said) and ``monitoring.parquet``
(each monitor's figures at each bar, for the report's charts).

``features.parquet`` carries, in its schema's metadata under ``tradeloom.plots``, where
the report draws each feature column (`PLOTS_KEY`): ``price`` (on the price panel) or
``panel:<feature path>`` (a lower panel per feature), as each feature's component
declares (`tradeloom.plugins.component.Component.plot`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

try:  # pyarrow's own writer and reader, which `pyarrow.parquet` wraps (see `_write`)
    from pyarrow._parquet import ParquetReader as _Reader
    from pyarrow._parquet import ParquetWriter as _Writer
except ImportError:  # pragma: no cover - (a pyarrow whose private module moved)
    _Reader = _Writer = None

from tradeloom.domain import Signal
from tradeloom.runtime.memory import release_arrow_pool
from tradeloom.tables.kept import column

__all__ = [
    "BARS_FILE",
    "FEATURES_FILE",
    "MONITORING_FILE",
    "PLOTS_KEY",
    "bars_frame",
    "clock_features_frame",
    "features_frame",
    "monitoring_frame",
    "parquet_bytes",
    "read_plots",
    "write_arrow",
    "write_parquet",
]

BARS_FILE = "bars.parquet"
FEATURES_FILE = "features.parquet"
MONITORING_FILE = "monitoring.parquet"
PLOTS_KEY = "tradeloom.plots"

_OHLCV = ("open", "high", "low", "close", "volume")


def bars_frame(frames: Sequence[pd.DataFrame], symbols: Sequence[str]) -> pd.DataFrame:
    """Return the OHLCV bars of each symbol, indexed by timestamp (``symbol`` first when
    there are several symbols)."""
    if len(symbols) == 1:  # the bars' own columns (pandas copies them only if written)
        return frames[0][list(_OHLCV)].rename_axis("timestamp")
    parts = []
    for frame, symbol in zip(frames, symbols, strict=True):
        part = frame[list(_OHLCV)].copy()
        part.insert(0, "symbol", symbol)
        parts.append(part)
    out = pd.concat(parts).sort_index(kind="stable")
    out.index.name = "timestamp"
    return out


def features_frame(
    features: pd.DataFrame, probability: pd.Series, signals: Sequence[Signal]
) -> pd.DataFrame:
    """Return every feature column, the probability traded on, and the signal, per bar.

    ``signal`` is the signal's direction (+1 long, -1 short, 0 flat) at the bars where the
    signal layer gave one and NaN elsewhere; ``signal_confidence`` likewise.
    """
    frame = features.rename_axis("timestamp")  # its columns (pandas copies them if written)
    frame["probability"] = probability.to_numpy(np.float64)
    direction = np.full(len(frame), np.nan)
    confidence = np.full(len(frame), np.nan)
    if len(signals):  # read by their columns (a backtest's: no object per signal)
        bars = column(signals, "bar").astype(np.int64)
        direction[bars] = column(signals, "direction").astype(np.float64)
        confidence[bars] = column(signals, "confidence").astype(np.float64)
    frame["signal"] = direction
    frame["signal_confidence"] = confidence
    return frame


def monitoring_frame(
    values: Mapping[str, Sequence[tuple[int, Mapping[str, float]]]], index: pd.DatetimeIndex
) -> pd.DataFrame:
    """Return one column per monitor and metric (``rolling_auc.auc``), one row per bar.

    A metric per feature column (``drift.psi.<column>``) is kept too: the report draws
    them as a heatmap of drift per feature over time. Bars a monitor did not see are NaN.
    """
    columns: dict[str, np.ndarray] = {}
    for monitor, rows in values.items():
        if not rows:
            continue
        bars = np.fromiter((bar for bar, _ in rows), np.int64, len(rows))
        # a monitor may name its per-column metrics only once its window is full
        names = dict.fromkeys([*rows[0][1], *rows[-1][1]])
        for name in names:
            column = np.full(len(index), np.nan)
            column[bars] = [float(v.get(name, np.nan)) for _, v in rows]
            columns[f"{monitor}.{name}"] = column
    frame = pd.DataFrame(columns, index=index)
    frame.index.name = "timestamp"
    return frame


def write_parquet(path: Path, frame: pd.DataFrame, plots: Mapping[str, str] | None = None) -> None:
    """Write a frame with its timestamp index as a column (as `_settings` says).

    Args:
        plots: Where the report draws each column (`PLOTS_KEY`), kept in the file's schema.
    """
    write_arrow(path, _table(frame, plots))


def write_arrow(path: Path, table: pa.Table, compression: str = "lz4") -> None:
    """Write an Arrow table as a run's Parquet table (`_settings`), ``compression`` its
    codec."""
    _write(table, path, _settings(table, compression))
    release_arrow_pool()  # the pages this thread's write freed in Arrow's pool


def parquet_bytes(frame: pd.DataFrame, plots: Mapping[str, str] | None = None) -> bytes:
    """Return the file `write_parquet` writes, as bytes (to be written atomically)."""
    table = _table(frame, plots)
    sink = pa.BufferOutputStream()
    _write(table, sink, _settings(table))
    return bytes(sink.getvalue())


def _write(table: pa.Table, where: Path | pa.NativeFile, settings: dict[str, Any]) -> None:
    """Write ``table`` as ``pyarrow.parquet.write_table(table, where, **settings)`` does,
    byte for byte, through the Parquet writer that function wraps: ``pyarrow.parquet``
    imports ``pyarrow.fs`` (with ``ssl``) to open a path, ~7 ms of a small run's start-up,
    where the writer opens a local path itself. The keywords ``write_table`` sets to other
    than the writer's defaults are given as it gives them; a failed write removes its
    file, as ``write_table`` does. The writer is pyarrow's private class: a pyarrow
    without it, or whose class no longer takes these keywords, writes through
    ``write_table`` itself (the same file, a few ms more of start-up)."""
    try:
        try:
            if _Writer is None:
                raise TypeError("pyarrow._parquet.ParquetWriter is not there")
            writer = _Writer(
                str(where) if isinstance(where, Path) else where,
                table.schema,
                version="2.6",
                data_page_version="1.0",
                writer_engine_version="V2",
                **settings,
            )
        except TypeError:  # its signature moved: the public function, which knows it
            from pyarrow import parquet

            parquet.write_table(table, where, **settings)
            return
        try:
            writer.write_table(table)
        finally:
            writer.close()
    except Exception:
        if isinstance(where, Path):
            where.unlink(missing_ok=True)
        raise


def _table(frame: pd.DataFrame, plots: Mapping[str, str] | None) -> pa.Table:
    """Return ``frame`` with its index as a column, as ``pa.Table.from_pandas`` makes it
    (its schema, its pandas metadata, a NaN a missing value), faster: a float column is
    looked for NaN by numpy (Arrow builds a mask of its missing values as it goes, ~4 ms
    a million rows where numpy's look takes 0.3 ms), and no thread pool is started
    (Arrow starts one per table of a million cells). A frame with a column of Python
    objects is left to Arrow, which reads such a column once (its schema would read it
    twice)."""
    flat = frame.reset_index()
    if any(isinstance(dtype, np.dtypes.ObjectDType) for dtype in flat.dtypes):
        table = pa.Table.from_pandas(flat, preserve_index=False, nthreads=1)
    else:
        schema = pa.Schema.from_pandas(flat, preserve_index=False)
        arrays = [_arrow_column(flat.iloc[:, k], f.type) for k, f in enumerate(schema)]
        table = pa.Table.from_arrays(arrays, schema=schema)
    if plots:
        metadata = dict(table.schema.metadata or {})
        metadata[PLOTS_KEY.encode()] = json.dumps(dict(plots)).encode()
        table = table.replace_schema_metadata(metadata)
    return table


def _arrow_column(values: pd.Series, kind: pa.DataType) -> pa.Array:
    """Return a column as ``from_pandas`` converts it: a float one without a NaN as it
    is (no mask), one with a NaN with its NaNs missing."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "f":
        array = values.to_numpy()
        return pa.array(array, type=kind, from_pandas=bool(np.isnan(array).any()))
    return pa.Array.from_pandas(values, type=kind)


def _settings(table: pa.Table, compression: str = "lz4") -> dict[str, Any]:
    """Return how a run's table is written: LZ4; times and integers (bar numbers) as
    deltas (a bar's time is its previous one's and a step); floats split by byte (their
    exponents compress), but a column that mostly repeats its previous value (a
    position, the cash, a signal: `_repeating`) as it is, its runs compressed whole;
    other columns (symbols) by dictionary; statistics (min and max) of the times and
    integers only, in pages of `_PAGE_ROWS` rows written `_BATCH_ROWS` at a time.

    A dictionary of a million distinct floats, times or bar numbers is built only to be
    dropped. A position split by byte took twice the time to compress, to four times
    the size (1M bars: 12 ms and 1.07 MB, as it is 6 ms and 0.26 MB). The statistics of
    a price or a symbol column skip nothing (a run's table is one row group, without a
    page index) and cost ~4 ms a million rows; Arrow's default batches (1,024 rows) and
    pages (20,000 rows) cost a column's every batch and page its levels, statistics and
    headers. Over 1M bars these write bars.parquet in ~50 ms of CPU (~70 ms with Arrow's
    defaults and every column's statistics), 31.6 MB; the values are the same.
    """
    encoding: dict[str, str] = {}
    dictionary = []
    statistics = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type) or pa.types.is_integer(f.type):
            encoding[f.name] = "DELTA_BINARY_PACKED"
            statistics.append(f.name)
        elif pa.types.is_float64(f.type) or pa.types.is_float32(f.type):
            repeating = _repeating(table.column(f.name))
            encoding[f.name] = "PLAIN" if repeating else "BYTE_STREAM_SPLIT"
        else:
            dictionary.append(f.name)
    settings = {
        "compression": compression,
        "use_dictionary": dictionary,
        "column_encoding": encoding,
        "write_statistics": statistics,
        "write_batch_size": _BATCH_ROWS,
        "data_page_size": _PAGE_BYTES,
    }
    if _ROWS_PER_PAGE_SET:
        settings["max_rows_per_page"] = _PAGE_ROWS
    return settings


def _repeating(column: pa.ChunkedArray, samples: int = 4_096) -> bool:
    """Return whether most of a float column's values are the one before them (a
    missing one too), from ``samples`` pairs of neighbours spread over the column."""
    n = len(column)
    if n < 2:
        return False
    first = np.arange(0, n - 1, max(1, (n - 1) // samples))
    before = column.take(first).to_numpy(zero_copy_only=False)
    after = column.take(first + 1).to_numpy(zero_copy_only=False)
    bits = f"u{before.itemsize}"  # by their bits: a NaN is the NaN before it
    return bool(3 * np.count_nonzero(before.view(bits) == after.view(bits)) > 2 * len(first))


_BATCH_ROWS = 65_536
_PAGE_ROWS = 131_072
_PAGE_BYTES = 1 << 20  # Arrow's default: a page of eight-byte values holds 131,072 rows
_ROWS_PER_PAGE_SET = int(pa.__version__.split(".")[0]) >= 23
"""Whether this pyarrow takes ``max_rows_per_page`` (23 and later); an earlier one writes
pages of its default 20,000 rows (the same values, in more pages)."""


def clock_features_frame(
    index: pd.DatetimeIndex,
    rows: npt.NDArray[np.float64],
    columns: Sequence[str],
    symbols: Sequence[str],
    present: npt.NDArray[np.bool_] | None = None,
) -> pd.DataFrame:
    """Return feature rows on a clock as ``features.parquet`` holds them: per bar, or per
    bar and symbol (``symbol`` first, only the bars a symbol has).

    Args:
        index: The clock's times.
        rows: ``[bars, symbols, columns]`` feature rows.
        present: ``[bars, symbols]``: True where the symbol has a bar (None: every bar).
    """
    if len(symbols) == 1:
        frame = pd.DataFrame(rows[:, 0, :], index=index, columns=list(columns))
        frame.index.name = "timestamp"
        return frame
    parts = []
    for s, symbol in enumerate(symbols):
        here = slice(None) if present is None else present[:, s]
        part = pd.DataFrame(rows[here, s, :], index=index[here], columns=list(columns))
        part.insert(0, "symbol", symbol)
        parts.append(part)
    out = pd.concat(parts).sort_index(kind="stable")
    out.index.name = "timestamp"
    return out


def read_plots(path: Path) -> dict[str, str]:
    """Return where the report draws each feature column of a parquet file ({} if unsaid)."""
    if _Reader is None:  # (see `_write`)
        from pyarrow import parquet

        metadata = parquet.read_schema(path).metadata or {}
    else:  # as pyarrow.parquet.read_schema reads, without pyarrow.fs
        reader = _Reader()
        reader.open(str(path))
        metadata = reader.schema_arrow.metadata or {}
    raw = metadata.get(PLOTS_KEY.encode())
    if raw is None:
        return {}
    plots = json.loads(raw)
    return {str(k): str(v) for k, v in plots.items()} if isinstance(plots, dict) else {}
