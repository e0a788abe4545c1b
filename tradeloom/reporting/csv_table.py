"""A run's CSV tables at array speed, byte for byte what pandas ``to_csv`` writes.

pandas formats a CSV cell by cell in Python objects: a million-row ``equity.csv`` cost
seconds, most of a run's wait. `csv_bytes` writes the same text from the columns'
arrays in one compiled pass per piece of lines (`_write_lines`), straight into the
piece's bytes: floats as Python's ``repr`` (`tradeloom.reporting.float_text`),
integers in decimal, timestamps from their nanoseconds (a day's date written once, the
times after it copy it), text (and categories: a symbol; booleans) by a code into a
table of each distinct value's text (`_texts`). A cell whose value is the one above
it (a position or the cash between fills, the equity and drawdown while flat) copies
the text just written above instead of formatting it again. The text is pandas' with
``index=False``, the default ``na_rep`` (a NaN or None is an empty cell) and minimal
quoting (a text cell holding a comma, a quote or a newline is quoted, its quotes
doubled). A frame this cannot write the same is `None`, and the caller falls back to
pandas: a single column, a column of Python objects (or categories) that are not text,
a text with a carriage return, a timestamp outside years 1000-9999, another date format.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tradeloom.kernels.jit import python_form, released_kernel
from tradeloom.reporting.float_text import (
    DIGIT_PAIRS,
    REPR_WIDTH,
    digit_count,
    write_digits,
    write_repr,
)
from tradeloom.reporting.time_text import second_cells

__all__ = ["CHUNK_CELLS", "ISO_SECONDS", "csv_bytes", "csv_chunks"]

ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
"""The one date format `csv_bytes` writes itself (a run's tables use it)."""

_Text = tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]
"""Cells as text: offsets (``n + 1``) into UTF-8 bytes."""

_NS_PER_SECOND = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_SECOND
_YEAR_1000 = -30_610_224_000 * _NS_PER_SECOND  # 1000-01-01T00:00:00Z
_YEAR_10000 = 253_402_300_800 * _NS_PER_SECOND  # 10000-01-01T00:00:00Z

CHUNK_CELLS = 393_216
"""The cells `csv_chunks` makes at once: 65,536 lines of six columns (equity.csv's), and
never fewer than `CHUNK_LINES` lines (a universe's wide table: each piece costs a few
Python calls per column)."""
CHUNK_LINES = 16_384

_FLOAT, _INTEGER, _TIME, _TEXT = 0, 1, 2, 3
"""How `_write_lines` writes a column's cells: a float by ``repr``, an integer in decimal,
nanoseconds as an ISO time, a code as its text in the table of texts."""

_WIDTHS = {_FLOAT: REPR_WIDTH, _INTEGER: 20, _TIME: 20}
"""The most bytes a cell of each kind takes (an integer: ``-9223372036854775808``)."""

_Value = TypeVar("_Value", bound=np.generic)

_BOOLEANS: _Text = (np.array([0, 5, 9], np.int64), np.frombuffer(b"FalseTrue", np.uint8))


@dataclasses.dataclass(frozen=True)
class _Column:
    """A column as `_write_lines` reads it: its kind and values (floats; integers,
    nanoseconds, or a text column's codes into ``text``, its distinct cells' text)."""

    kind: int
    values: npt.NDArray[Any]
    text: _Text | None = None


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
    values are read and its text written while they are in the processor's cache.
    """
    if frame.shape[1] < 2 or date_format != ISO_SECONDS or os.linesep != "\n":
        return None
    columns = []
    for position in range(frame.shape[1]):
        column = _column(frame.iloc[:, position])
        if column is None:
            return None
        columns.append(column)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([str(c) for c in frame.columns])
    head = np.frombuffer(header.getvalue().encode(), np.uint8)
    if rows is None:
        rows = max(CHUNK_LINES, CHUNK_CELLS // frame.shape[1])
    return _pieces(head, columns, len(frame), rows)


def _pieces(
    head: npt.NDArray[np.uint8], columns: list[_Column], n: int, rows: int
) -> Iterator[npt.NDArray[np.uint8]]:
    if n == 0:
        yield head.copy()
        return
    kinds = np.array([c.kind for c in columns], np.int64)
    floats = [c.values for c in columns if c.kind == _FLOAT]
    integers, text_offsets, text = _one_table(columns)
    is_float = kinds == _FLOAT
    # each column's row in the piece's floats, or in its integers
    slots = np.where(is_float, np.cumsum(is_float), np.cumsum(~is_float)) - 1
    widths = [_WIDTHS[c.kind] if c.text is None else _longest(c.text) for c in columns]
    width = sum(widths) + len(columns)  # and a comma or the newline after each cell
    for start in range(0, n, rows):
        end = min(start + rows, n)
        yield _write_lines(
            head if start == 0 else head[:0],
            kinds,
            slots,
            _stacked(floats, start, end, np.float64),
            _stacked(integers, start, end, np.int64),
            text_offsets,
            text,
            width,
        )


def _stacked(
    columns: Sequence[npt.NDArray[Any]], start: int, end: int, dtype: type[_Value]
) -> npt.NDArray[_Value]:
    """Return rows ``start:end`` of ``columns``, a row of the result per column."""
    out = np.empty((len(columns), end - start), dtype)
    for k, column in enumerate(columns):
        out[k] = column[start:end]
    return out


def _one_table(
    columns: list[_Column],
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Return the values of the columns not of floats (a text column's codes made codes
    into one table of every text column's cells) and that table."""
    integers = []
    offsets = [np.zeros(1, np.int64)]
    data = [np.empty(0, np.uint8)]
    cells = size = 0
    for column in columns:
        if column.kind == _FLOAT:
            continue
        if column.text is None:
            integers.append(column.values)
            continue
        cell_offsets, cell_data = column.text
        integers.append(column.values + cells)
        offsets.append(cell_offsets[1:] + size)
        data.append(cell_data)
        cells += len(cell_offsets) - 1
        size += int(cell_offsets[-1])
    return integers, np.concatenate(offsets), np.concatenate(data)


def _longest(text: _Text) -> int:
    return int(np.diff(text[0]).max(initial=0))


def _column(column: pd.Series) -> _Column | None:
    """Return a column's values as `_write_lines` reads them, or None where pandas' own
    text is not promised. A column of text is made whole at once (a cell that cannot be
    promised is found before a line is written)."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) != "UTC":
        return None
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        nanoseconds = np.asarray(column.array.as_unit("ns").asi8, np.int64)
        known = nanoseconds[nanoseconds != np.iinfo(np.int64).min]
        if len(known) and (known.min() < _YEAR_1000 or known.max() >= _YEAR_10000):
            return None
        return _Column(_TIME, nanoseconds)
    if isinstance(dtype, pd.StringDtype):  # Arrow's strings as they are (no Python str)
        return _texts(pa.array(column.array))
    if isinstance(dtype, pd.CategoricalDtype):  # each category's text once (a symbol)
        categories = np.asarray(dtype.categories, dtype=object)
        text = _object_text(np.append(categories, np.array([None], object)))  # the last: none
        if text is None:
            return None
        codes = column.cat.codes.to_numpy(np.int64)
        return _Column(_TEXT, np.where(codes < 0, len(categories), codes), text)
    if not isinstance(dtype, np.dtype):
        return None  # an extension type (nullable integers): pandas' own text
    if dtype.kind == "O":
        return _texts(column.to_numpy())
    values = column.to_numpy()
    if dtype == np.float64:
        return _Column(_FLOAT, values)
    if dtype.kind == "b":
        return _Column(_TEXT, values.astype(np.int64), _BOOLEANS)
    if dtype.kind == "i" or (dtype.kind == "u" and values.max(initial=0) <= np.iinfo(np.int64).max):
        return _Column(_INTEGER, values.astype(np.int64, copy=False))
    if dtype.kind == "u":  # beyond int64: Arrow's decimal text
        text = _arrow_text(pa.array(values).cast(pa.large_string()))
        return _Column(_TEXT, np.arange(len(values), dtype=np.int64), text)
    return None


def _texts(values: npt.NDArray[np.object_] | pa.Array) -> _Column | None:
    """Return a column of text: each row's cell, or (where a cell must be quoted) a code
    per row into the quoted text of each distinct cell.

    Arrow's strings are read as they are (pandas' own, or made once from Python
    objects): turning an orders.csv's 27k order ids into Python strings, ``factorize``
    and quoting each cost ~25 ms of the run's worker, mostly holding the GIL."""
    cells = _strings(values)
    if cells is None:
        return None
    text = _arrow_text(cells.fill_null(""))
    if not _special(text[1]):  # no cell to quote (the usual table): each row's own text
        return _Column(_TEXT, np.arange(len(cells), dtype=np.int64), text)
    encoded = pc.dictionary_encode(cells, null_encoding="encode")  # a missing cell: a code
    quoted = _quoted(encoded.dictionary)
    if quoted is None:
        return None
    return _Column(_TEXT, encoded.indices.to_numpy().astype(np.int64), quoted)


def _object_text(values: npt.NDArray[np.object_]) -> _Text | None:
    """Return each cell's text as pandas writes it (`_quoted`), or None (`_strings`)."""
    cells = _strings(values)
    return None if cells is None else _quoted(cells)


def _strings(values: npt.NDArray[np.object_] | pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """Return cells as Arrow's ``large_string`` (a NaN or None missing), or None where one
    is neither text nor missing: any other Python object's text is pandas' choice."""
    try:
        if isinstance(values, np.ndarray):
            return pa.array(values, type=pa.large_string(), from_pandas=True)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        return values.cast(pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def _quoted(cells: pa.Array) -> _Text | None:
    """Return each cell's text as pandas' minimal quoting writes it (a missing cell
    empty), or None where a cell holds a carriage return."""
    text = _arrow_text(cells.fill_null(""))
    if not _special(text[1]):
        return text
    if pc.any(pc.match_substring(cells, "\r")).as_py():
        return None  # quoted or not by the Python version's csv module
    quote = pc.match_substring_regex(cells, r'[,"\n]')
    doubled = pc.replace_substring(cells, '"', '""')
    quote_mark = pa.scalar('"', pa.large_string())
    quoted = pc.binary_join_element_wise(
        quote_mark, doubled, quote_mark, pa.scalar("", pa.large_string())
    )
    return _arrow_text(pc.if_else(quote, quoted, cells).fill_null(""))


def _special(text: npt.NDArray[np.uint8]) -> bool:
    """Return whether UTF-8 text holds a byte that a cell is quoted for, or a carriage
    return (no byte of a multi-byte character is one: ASCII bytes are themselves)."""
    data = text.tobytes()  # a byte search (memchr) each: Arrow's per cell took ~50 ns a cell
    return any(mark in data for mark in (b",", b'"', b"\n", b"\r"))


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
def _civil_date(out: npt.NDArray[np.uint8], w: int, days: int | np.int64) -> None:
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
def _write_lines(
    header: npt.NDArray[np.uint8],
    kinds: npt.NDArray[np.int64],
    slots: npt.NDArray[np.int64],
    floats: npt.NDArray[np.float64],
    integers: npt.NDArray[np.int64],
    text_offsets: npt.NDArray[np.int64],
    text: npt.NDArray[np.uint8],
    width: int,
) -> npt.NDArray[np.uint8]:
    """Return ``header`` and the lines of a piece of a table, each cell written in place.

    Column ``k`` is of kind ``kinds[k]`` (`_FLOAT`...) and its values are row
    ``slots[k]`` of ``floats`` (floats) or of ``integers`` (the rest: a text's code is
    its cell ``text_offsets[code]:text_offsets[code + 1]`` of ``text``); a line is at
    most ``width`` bytes. A cell whose value (its bits) is the one of the line above
    copies that line's cell; a time of the day of the one above copies its date.

    Bytes are copied by loops written out here: a slice assignment (``out[a:b] =
    text[c:d]``) compiles a shape check and its error message each (1.8 s of CPU at the
    first run), and a helper's call that passes arrays counts their references (a
    million rows' repeated cells: 30 ms).
    """
    columns, rows = len(kinds), floats.shape[1]
    out = np.empty(len(header) + rows * width, np.uint8)
    for j in range(len(header)):
        out[j] = header[j]
    w = len(header)
    float_bits = floats.view(np.uint64)
    above_start = np.zeros(columns, np.int64)  # where the cell above starts and ends
    above_end = np.zeros(columns, np.int64)
    above = np.zeros(columns, np.int64)  # its value's bits
    day_start = np.zeros(columns, np.int64)  # a time column's day last written, and where
    date_at = np.full(columns, -1, np.int64)
    nat = np.iinfo(np.int64).min
    for i in range(rows):
        for k in range(columns):
            if k:
                out[w] = 44  # ','
                w += 1
            kind, slot = kinds[k], slots[k]
            value = np.int64(float_bits[slot, i]) if kind == _FLOAT else integers[slot, i]
            start = w
            if i and value == above[k]:
                at = above_start[k]
                for j in range(above_end[k] - at):
                    out[w + j] = out[at + j]
                w += above_end[k] - at
            elif kind == _FLOAT:
                w = write_repr(out, w, floats[slot, i], float_bits[slot, i])
            elif kind == _INTEGER:
                w = _write_integer(out, w, value)
            elif kind == _TIME:
                if value != nat:
                    if date_at[k] >= 0 and day_start[k] <= value < day_start[k] + _NS_PER_DAY:
                        at = date_at[k]
                        for j in range(10):
                            out[w + j] = out[at + j]
                    else:
                        day_start[k] = value // _NS_PER_DAY * _NS_PER_DAY
                        _civil_date(out, w, value // _NS_PER_DAY)
                    date_at[k] = w
                    w = _write_time_of_day(out, w + 10, value - day_start[k])
            else:
                at = text_offsets[value]
                for j in range(text_offsets[value + 1] - at):
                    out[w + j] = text[at + j]
                w += text_offsets[value + 1] - at
            above_start[k], above_end[k], above[k] = start, w, value
        out[w] = 10  # '\n'
        w += 1
    return out[:w]


@python_form(_write_lines)
def _write_lines_as_python(
    header: npt.NDArray[np.uint8],
    kinds: npt.NDArray[np.int64],
    slots: npt.NDArray[np.int64],
    floats: npt.NDArray[np.float64],
    integers: npt.NDArray[np.int64],
    text_offsets: npt.NDArray[np.int64],
    text: npt.NDArray[np.uint8],
    width: int,
) -> npt.NDArray[np.uint8]:
    """`_write_lines` as Python (`tradeloom.kernels.jit.python_form`): the same bytes, made
    by whole columns rather than the kernel's loops over digits, which as Python took
    seconds for a small run's tables: floats and integers by orjson (`_number_cells`),
    times by `_time_cells`, each cell's bytes joined once. As the kernel copies the cell
    above, a value the same as the one above (its bits) is not formatted again (a
    position, the cash between fills: 97% of equity.csv's)."""
    cells: list[list[bytes]] = []
    table: list[bytes] | None = None
    for kind, slot in zip(kinds.tolist(), slots.tolist(), strict=True):
        if kind == _FLOAT:
            values = floats[slot]
            cells.append(_changes(values, values.view(np.uint64), _float_cells))
        elif kind == _INTEGER:
            cells.append(_changes(integers[slot], integers[slot], _number_cells))
        elif kind == _TIME:
            cells.append(_time_cells(integers[slot]))
        else:
            if table is None:  # each distinct cell's bytes once
                at = text_offsets.tolist()
                whole = text.tobytes()
                table = [whole[at[v] : at[v + 1]] for v in range(len(at) - 1)]
            cells.append(list(map(table.__getitem__, integers[slot].tolist())))
    lines = b"\n".join(map(b",".join, zip(*cells, strict=True)))
    if cells and cells[0]:  # a line's end after each line, the last too
        lines += b"\n"
    return np.frombuffer(header.tobytes() + lines, np.uint8).copy()


def _changes(
    values: npt.NDArray[Any],
    bits: npt.NDArray[Any],
    cells: Callable[[npt.NDArray[Any]], list[bytes]],
) -> list[bytes]:
    """Return the ``cells`` of ``values``, made for each value unlike (by its ``bits``) the
    one above it only, the others the cell above them."""
    n = len(values)
    if n < 2:
        return cells(values)
    new = np.empty(n, np.bool_)
    new[0] = True
    np.not_equal(bits[1:], bits[:-1], out=new[1:])
    made = cells(values[new])
    if len(made) == n:
        return made
    return list(map(made.__getitem__, (np.cumsum(new) - 1).tolist()))


_REPR_TESTS = (0.0, -0.0, 1.0, 0.1, 2.5, 100000.0, 1e15, 1e16, 1.5e16, 1e22, 0.0001,
               123456789012345680.0, 9007199254740993.0, 30000.02952369511, 5e-324,
               2.2250738585072014e-308, 1.7976931348623157e308, -1e300, 1 / 3)  # fmt: skip
"""Floats `_orjson_writes_repr` formats both ways: the shortest digits, each notation."""


@functools.cache
def _orjson_writes_repr() -> bool:
    """Return whether orjson writes each float of at least 1e-4 in magnitude (and zero) as
    Python's ``repr`` does (orjson 3.9-3.11 checked: the same shortest digits and notation;
    below 1e-4 its exponent is not written as ``repr``'s): a release that writes otherwise
    leaves the floats to ``repr``."""
    tests = np.array(_REPR_TESTS)
    written = orjson.dumps(tests, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    return written == [repr(value).encode() for value in _REPR_TESTS]


def _float_cells(values: npt.NDArray[np.float64]) -> list[bytes]:
    """Float cells: ``repr``, empty for NaN. orjson writes them (`_orjson_writes_repr`),
    ``repr`` the few it writes otherwise (NaN, infinities, magnitudes under 1e-4)."""
    if not _orjson_writes_repr():
        return [b"" if v != v else repr(v).encode() for v in values.tolist()]
    cells = _number_cells(values)
    magnitude = np.abs(values)
    odd = ~(magnitude >= 1e-4) & (magnitude != 0) | np.isinf(magnitude)  # NaN is odd too
    for i in np.flatnonzero(odd).tolist():
        value = float(values[i])
        cells[i] = b"" if value != value else repr(value).encode()
    return cells


def _number_cells(values: npt.NDArray[Any]) -> list[bytes]:
    """The cells of numbers as orjson writes them (an integer in decimal)."""
    if not len(values):
        return []
    written = orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)
    return written[1:-1].split(b",")


def _time_cells(ns: npt.NDArray[np.int64]) -> list[bytes]:
    """Time cells as `_write_lines` writes them: ``YYYY-MM-DDTHH:MM:SSZ``, the second
    floored (the caller's years are 1000 to 9999); empty for NaT."""
    known = ns != np.iinfo(np.int64).min
    cells = second_cells(ns // _NS_PER_SECOND, "s", known, after="Z")  # floored, before 1970 too
    assert cells is not None  # a time outside those years: `_column` left it to pandas
    return cells


@released_kernel
def _write_integer(out: npt.NDArray[np.uint8], w: int, value: int | np.int64) -> int:
    """Write ``value`` in decimal into ``out`` from ``w``; return where it ended."""
    if value < 0:
        out[w] = 45  # '-'
        w += 1
        magnitude = np.uint64(-(value + 1)) + np.uint64(1)  # int64's minimum too
    else:
        magnitude = np.uint64(value)
    end = w + digit_count(magnitude)
    write_digits(out, end, magnitude)
    return end


@released_kernel
def _write_time_of_day(out: npt.NDArray[np.uint8], w: int, of_day: int) -> int:
    """Write ``THH:MM:SSZ`` of ``of_day`` nanoseconds into ``out`` from ``w`` (the second
    floored, as ``strftime`` shows it); return where it ended."""
    # unsigned: the time of day is not negative, and its divisions need no floor
    seconds = np.uint64(of_day) // np.uint64(_NS_PER_SECOND)
    hour = np.uint64(2) * (seconds // np.uint64(3600))
    minute = np.uint64(2) * ((seconds // np.uint64(60)) % np.uint64(60))
    second = np.uint64(2) * (seconds % np.uint64(60))
    out[w] = 84  # 'T'
    out[w + 1] = DIGIT_PAIRS[hour]
    out[w + 2] = DIGIT_PAIRS[hour + np.uint64(1)]
    out[w + 3] = 58  # ':'
    out[w + 4] = DIGIT_PAIRS[minute]
    out[w + 5] = DIGIT_PAIRS[minute + np.uint64(1)]
    out[w + 6] = 58
    out[w + 7] = DIGIT_PAIRS[second]
    out[w + 8] = DIGIT_PAIRS[second + np.uint64(1)]
    out[w + 9] = 90  # 'Z'
    return w + 10
