"""A run's CSV tables at array speed, byte for byte what pandas ``to_csv`` writes.

pandas formats a CSV cell by cell in Python objects: a million-row ``equity.csv`` cost
seconds, most of a run's wait. `csv_bytes` writes the same text from the columns'
arrays: each column becomes its cells' text at once (Arrow casts integers; floats are
written as Python's ``repr``, `tradeloom.reporting.float_text`; timestamps are formatted from their
nanoseconds, `_iso_times`), and one compiled pass joins them into lines
(`_join_rows`); a column of runs of one value (a position, the cash) has each run's
text made once, a column of text (or of categories: a symbol) each distinct value's
(`_taken`). The text is pandas' with ``index=False``, the default ``na_rep`` (a NaN or
None is an empty cell) and minimal quoting (a text cell holding a comma, a quote or a
newline is quoted, its quotes doubled). A frame this cannot write the same is `None`,
and the caller falls back to pandas: a single column, a column of Python objects (or
categories) that are not text, a text with a carriage return, a timestamp outside
years 1000-9999, another date format.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tradeloom.jit import released_kernel
from tradeloom.reporting.float_text import repr_floats

__all__ = ["CHUNK_CELLS", "ISO_SECONDS", "csv_bytes", "csv_chunks"]

ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
"""The one date format `csv_bytes` writes itself (a run's tables use it)."""

_Text = tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]
"""A column's cells as text: offsets (``n + 1``) into UTF-8 bytes."""

_NS_PER_SECOND = 1_000_000_000
_YEAR_1000 = -30_610_224_000 * _NS_PER_SECOND  # 1000-01-01T00:00:00Z
_YEAR_10000 = 253_402_300_800 * _NS_PER_SECOND  # 10000-01-01T00:00:00Z

CHUNK_CELLS = 393_216
"""The cells `csv_chunks` makes at once: 65,536 lines of six columns (equity.csv's), and
never fewer than `CHUNK_LINES` lines (a universe's wide table: each piece costs a few
Python calls per column)."""
CHUNK_LINES = 16_384

_Cells = Callable[[int, int], _Text]
"""A column's cells ``start:end`` as text."""


def csv_bytes(frame: pd.DataFrame, date_format: str) -> npt.NDArray[np.uint8] | None:
    """Return ``frame.to_csv(index=False, date_format=date_format)`` as UTF-8 bytes.

    Returns:
        The bytes pandas would write (an array: a file writes it as it is, with no copy
        into a ``bytes``), or None where this cannot promise them (see the module's
        docstring): write the frame with pandas then.
    """
    chunks = csv_chunks(frame, date_format, max(len(frame), 1))
    if chunks is None:
        return None
    parts = list(chunks)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def csv_chunks(
    frame: pd.DataFrame, date_format: str, rows: int | None = None
) -> Iterator[npt.NDArray[np.uint8]] | None:
    """Return `csv_bytes` of ``frame`` in pieces of ``rows`` lines (the first with the
    header; None: about `CHUNK_CELLS` cells a piece), or None where `csv_bytes` is.

    A file written piece by piece holds no copy of the whole text, and each piece's
    cells are joined while they are in the processor's cache: over a million-row
    ``equity.csv``, 16% less CPU than the whole text at once (most of it the kernel's,
    mapping and unmapping a hundred megabytes twice).
    """
    if frame.shape[1] < 2 or date_format != ISO_SECONDS or os.linesep != "\n":
        return None
    cells = []
    for position in range(frame.shape[1]):
        column = _column_cells(frame.iloc[:, position])
        if column is None:
            return None
        cells.append(column)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([str(c) for c in frame.columns])
    head = np.frombuffer(header.getvalue().encode(), np.uint8)
    if rows is None:
        rows = max(CHUNK_LINES, CHUNK_CELLS // frame.shape[1])
    return _pieces(head, cells, len(frame), rows)


def _pieces(
    head: npt.NDArray[np.uint8], cells: list[_Cells], n: int, rows: int
) -> Iterator[npt.NDArray[np.uint8]]:
    if n == 0:
        yield head.copy()
        return
    for start in range(0, n, rows):
        end = min(start + rows, n)
        texts = [column(start, end) for column in cells]
        base = 0
        offsets = np.empty((len(texts), end - start + 1), np.int64)
        for k, (offset, _) in enumerate(texts):
            offsets[k] = offset + base
            base += int(offset[-1])
        data = np.concatenate([d for _, d in texts]) if base else np.empty(0, np.uint8)
        yield _join_rows(head if start == 0 else head[:0], offsets, data)


def _column_cells(column: pd.Series) -> _Cells | None:
    """Return how to make a column's cells of rows ``start:end`` as text, or None where
    pandas' own text is not promised. A column of text is made whole at once (a cell
    that cannot be promised is found before a line is written)."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) != "UTC":
        return None
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        nanoseconds = np.asarray(column.array.as_unit("ns").asi8, np.int64)
        known = nanoseconds[nanoseconds != np.iinfo(np.int64).min]
        if len(known) and (known.min() < _YEAR_1000 or known.max() >= _YEAR_10000):
            return None
        return lambda a, b: _iso_times(nanoseconds[a:b])  # type: ignore[no-any-return]
    text: _Text | None = None
    if isinstance(dtype, pd.StringDtype):
        text = _distinct_text(column.to_numpy(dtype=object, na_value=None))
    elif isinstance(dtype, pd.CategoricalDtype):  # each category's text once (a symbol)
        categories = np.asarray(dtype.categories, dtype=object)
        text = _object_text(np.append(categories, np.array([None], object)))  # the last: none
        if text is None:
            return None
        codes = column.cat.codes.to_numpy(np.int64)
        text = _taken(*text, np.where(codes < 0, len(categories), codes))
    elif not isinstance(dtype, np.dtype):
        return None  # an extension type (nullable integers): pandas' own text
    elif dtype.kind == "O":
        text = _distinct_text(column.to_numpy())
    if text is not None:
        return functools.partial(_rows_of, text)
    if not isinstance(dtype, np.dtype):
        return None
    values = column.to_numpy()
    if dtype == np.float64:
        return lambda a, b: _float_cells(values[a:b])
    if dtype.kind in "iu":
        return lambda a, b: _arrow_text(pa.array(values[a:b]).cast(pa.large_string()))
    if dtype.kind == "b":
        return lambda a, b: _arrow_text(
            pa.array(np.where(values[a:b], "True", "False"), pa.large_string())
        )
    return None


def _rows_of(text: _Text, start: int, end: int) -> _Text:
    offsets, data = text
    piece = offsets[start : end + 1]
    return piece - piece[0], data[piece[0] : piece[-1]]


def _float_cells(values: npt.NDArray[np.float64]) -> _Text:
    bits = values.view(np.int64)
    changes = np.r_[True, bits[1:] != bits[:-1]]
    starts = np.flatnonzero(changes)
    if 5 * len(starts) < 4 * len(values):  # runs of one value (a position, the cash)
        return _taken(*repr_floats(values[starts]), np.cumsum(changes) - 1)  # type: ignore[no-any-return]
    return repr_floats(values)


def _distinct_text(values: npt.NDArray[np.object_]) -> _Text | None:
    """Return `_object_text` of ``values``, made once per distinct value (a symbol, a
    reason: a few values over many rows)."""
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    if 2 * len(distinct) > len(values):
        return _object_text(values)
    text = _object_text(np.asarray(distinct, dtype=object))
    return None if text is None else _taken(*text, codes.astype(np.int64, copy=False))


def _object_text(values: npt.NDArray[np.object_]) -> _Text | None:
    try:  # text or missing only: any other Python object's text is pandas' choice
        cells = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if pc.any(pc.match_substring(cells, "\r")).as_py():
        return None  # quoted or not by the Python version's csv module
    quote = pc.match_substring_regex(cells, r'[,"\n]')
    doubled = pc.replace_substring(cells, '"', '""')
    quote_mark = pa.scalar('"', pa.large_string())
    quoted = pc.binary_join_element_wise(
        quote_mark, doubled, quote_mark, pa.scalar("", pa.large_string())
    )
    return _arrow_text(pc.if_else(quote, quoted, cells).fill_null(""))


def _arrow_text(array: pa.Array) -> _Text:
    """Return the offsets and bytes of a large_string array with no nulls."""
    _, offsets, data = array.buffers()
    n = len(array)
    start = array.offset
    offset = np.frombuffer(offsets, np.int64)[start : start + n + 1]
    text = (
        np.frombuffer(data, np.uint8)[offset[0] : offset[-1]]
        if data is not None
        else np.empty(0, np.uint8)
    )
    return offset - offset[0], text


@released_kernel
def _iso_times(nanoseconds: npt.NDArray[np.int64]) -> _Text:
    """Return each UTC time as ``YYYY-MM-DDTHH:MM:SSZ`` (NaT, int64's minimum, as empty).

    Seconds are floored, as ``strftime`` shows a time's second; the civil date of a
    day count is Howard Hinnant's ``civil_from_days``, made once per day (a day's bars
    copy its ten bytes from the previous time's text).
    """
    n = len(nanoseconds)
    out_offsets = np.empty(n + 1, np.int64)
    out = np.empty(20 * n, np.uint8)
    nat = np.iinfo(np.int64).min
    w = 0
    out_offsets[0] = 0
    day_ns = 86400 * 1_000_000_000
    zero, ten = np.uint64(48), np.uint64(10)
    day_start = nat  # the nanoseconds of the day whose date was written last
    last_at = 0  # where that date's text starts in ``out``
    for i in range(n):
        ns = nanoseconds[i]
        if ns == nat:
            out_offsets[i + 1] = w
            continue
        if day_start <= ns < day_start + day_ns:
            _copy(out, w, out, last_at, last_at + 10)
        else:
            days = ns // day_ns
            day_start = days * day_ns
            _civil_date(out, w, days)
        last_at = w
        # unsigned: the time of day is not negative, and its divisions need no floor
        of_day = np.uint64(ns - day_start) // np.uint64(1_000_000_000)
        hour = of_day // np.uint64(3600)
        minute = (of_day // np.uint64(60)) % np.uint64(60)
        second = of_day % np.uint64(60)
        out[w + 10] = 84  # 'T'
        out[w + 11] = zero + hour // ten
        out[w + 12] = zero + hour % ten
        out[w + 13] = 58
        out[w + 14] = zero + minute // ten
        out[w + 15] = zero + minute % ten
        out[w + 16] = 58
        out[w + 17] = zero + second // ten
        out[w + 18] = zero + second % ten
        out[w + 19] = 90  # 'Z'
        w += 20
        out_offsets[i + 1] = w
    return out_offsets, out[:w]


@released_kernel
def _civil_date(out: npt.NDArray[np.uint8], w: int, days: int) -> None:
    """Write the UTC date ``YYYY-MM-DD`` of a day count (days since 1970-01-01) into
    ``out`` from ``w``."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    year = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    if month <= 2:
        year += 1
    out[w] = 48 + year // 1000
    out[w + 1] = 48 + (year // 100) % 10
    out[w + 2] = 48 + (year // 10) % 10
    out[w + 3] = 48 + year % 10
    out[w + 4] = 45
    out[w + 5] = 48 + month // 10
    out[w + 6] = 48 + month % 10
    out[w + 7] = 45
    out[w + 8] = 48 + day // 10
    out[w + 9] = 48 + day % 10


@released_kernel
def _copy(
    out: npt.NDArray[np.uint8], at: int, text: npt.NDArray[np.uint8], start: int, end: int
) -> int:
    """Copy ``text[start:end]`` into ``out`` from ``at``; return where it ended.

    A loop, not a slice assignment (``out[a:b] = text[c:d]``): numba compiles a slice's
    shape check and its error message for each, 1.8 s of CPU at the first run.
    """
    for j in range(end - start):
        out[at + j] = text[start + j]
    return at + end - start


@released_kernel
def _taken(
    offsets: npt.NDArray[np.int64], text: npt.NDArray[np.uint8], which: npt.NDArray[np.int64]
) -> _Text:
    """Return cell ``which[i]`` of ``offsets``/``text`` for each ``i``, in order."""
    n = len(which)
    size = 0
    for i in range(n):
        size += offsets[which[i] + 1] - offsets[which[i]]
    out_offsets = np.empty(n + 1, np.int64)
    out = np.empty(size, np.uint8)
    out_offsets[0] = 0
    w = 0
    for i in range(n):
        start, end = offsets[which[i]], offsets[which[i] + 1]
        w = _copy(out, w, text, start, end)
        out_offsets[i + 1] = w
    return out_offsets, out


@released_kernel
def _join_rows(
    header: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64], text: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    """Return ``header`` and the lines of a table: row ``i``'s cells (``offsets[k,
    i]:offsets[k, i + 1]`` of ``text`` for each column ``k``) joined by commas, each line
    ended by a newline."""
    columns, rows = offsets.shape[0], offsets.shape[1] - 1
    out = np.empty(len(header) + len(text) + columns * rows, np.uint8)
    w = _copy(out, 0, header, 0, len(header))
    for i in range(rows):
        for k in range(columns):
            if k:
                out[w] = 44
                w += 1
            start = offsets[k, i]
            end = offsets[k, i + 1]
            w = _copy(out, w, text, start, end)
        out[w] = 10
        w += 1
    return out
