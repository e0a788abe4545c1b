"""A backtest's per-bar tables, ``equity`` and ``positions``: CSV or Parquet, by one rule.

Over a long run these two are most of the folder and most of its writing: a million
one-minute bars make ~100 MB of CSV text, much of it a copy of ``bars.parquet``'s closes.
``outputs.tables`` chooses their format (`table_format`): ``csv``, ``parquet``, or
``auto``, CSV up to `AUTO_PARQUET_BARS` bars and Parquet above. A folder holds one file of
each table, never both; `table_file` finds it, and `tradeloom.reporting.run_data.read_table`
reads either.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from tradeloom.reporting import exports, outputs

__all__ = [
    "AUTO_PARQUET_BARS",
    "EQUITY",
    "FILLS",
    "ORDERS",
    "POSITIONS",
    "RECOMPUTED",
    "TRADES",
    "TableFormat",
    "table_file",
    "table_format",
    "table_name",
    "write_table",
]

EQUITY = "equity"
POSITIONS = "positions"
ORDERS = "orders"
FILLS = "fills"
TRADES = "trades"
"""The tables of events (``orders``, ``fills``, ``trades``): written in the per-bar
tables' format too (`table_format`), where Parquet holds them in a fifth of the text
(500 symbols x 10,000 bars: 25.2 MB of CSV, ~6 MB of Parquet)."""

TableFormat = Literal["csv", "parquet"]

AUTO_PARQUET_BARS = 250_000
"""The most bars (a universe's: bars x symbols) whose tables ``auto`` writes as CSV. Up to
it a folder's tables stay text a spreadsheet opens (250k bars: ~25 MB of equity.csv,
~0.1 s to write, and Excel's 1,048,576-row limit is far); above it they cost more to
write than the run costs to compute (1M bars: ~590 ms of CPU and ~100 MB), and Parquet
writes them in a fraction of that. Every strategy and example of the repository stays
far below it."""

_FORMATS: tuple[TableFormat, ...] = ("parquet", "csv")

RECOMPUTED = "value"
"""The positions table's column a Parquet file leaves out: ``position * close``, which
its readers compute again (500 symbols x 10,000 bars: 7.1 MB of 17.2; random floats
hardly compress)."""


def table_format(setting: str, bars: int, symbols: int = 1) -> TableFormat:
    """Return the format of a run's per-bar tables for ``outputs.tables`` (``auto``,
    ``csv``, ``parquet``), the run's number of bars and of symbols.

    ``auto`` counts a universe's bars once per symbol: its positions table holds a row
    per bar and symbol held (500 symbols x 10,000 bars: ~105 MB of CSV, ~20 MB of
    Parquet)."""
    if setting == "auto":
        return "parquet" if bars * max(symbols, 1) > AUTO_PARQUET_BARS else "csv"
    return "parquet" if setting == "parquet" else "csv"


def table_name(table: str, form: TableFormat) -> str:
    """Return the file name of ``table`` (`EQUITY`, `POSITIONS`) written as ``form``."""
    return f"{table}.{form}"


def table_file(run_dir: Path, table: str, written: Collection[str] = ()) -> str | None:
    """Return the file name that holds ``table`` in ``run_dir``: one of ``written`` (names
    of files this process is writing there), else the file there (None: neither)."""
    names = [table_name(table, form) for form in _FORMATS]
    for name in names:
        if name in written:
            return name
    for name in names:
        if (run_dir / name).is_file():
            return name
    return None


def write_table(run_dir: Path, table: str, frame: pd.DataFrame, form: TableFormat) -> str:
    """Write ``frame`` (a ``timestamp`` column, no index) as ``table`` in ``form``; return
    the file's name.

    Parquet: Arrow arrays straight from the columns (floats and times without a copy),
    as the run's other Parquet tables are (`exports.write_arrow`); the positions table
    without its ``value``, which is ``position * close`` of its row and which
    `tradeloom.reporting.run_data.read_table` computes again, bit for bit (`RECOMPUTED`).
    """
    name = table_name(table, form)
    if form == "csv":
        outputs.write_frame(run_dir, name, frame)
        return name
    if table == POSITIONS and {"position", "close", RECOMPUTED} <= set(frame.columns):
        frame = frame.drop(columns=RECOMPUTED)
    arrays = [_arrow(frame[c]) for c in frame.columns]
    arrow = pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])
    exports.write_arrow(run_dir / name, arrow, _COMPRESSION)
    return name


def _arrow(values: pd.Series) -> pa.Array:
    """Return a column as Arrow holds it: numbers as they are (NaN a NaN, not a missing
    value: no mask to compute); a categorical one (a symbol per row) as text, which reads
    back as the CSV file's does (the file still keeps each name once)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "fiu":
        return pa.array(values.to_numpy())
    array = pa.Array.from_pandas(values)
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


_COMPRESSION = "lz4"
