"""Rows of one kind as columns: typed arrays, SQL values and chain digests, no per-row object.

`prepare` turns a `ColumnBatch` into what a store writes: the columns as typed arrays
(numbers as int64/float64, texts as UTF-8 bytes located by starts and lengths: what a
SQLite block stores, `tradeloom.journal.blocks`), optionally as lists of SQL values
(what a driver binds: PostgreSQL, a format-2 file), and each row's digest, computed by
`tradeloom.journal.chain.row_digests` over the canonical words (`digests_of`).
`stored_digests` does the same for rows read back from a table, so that a row hashes
the same whichever path wrote it, with `tradeloom.journal.chain_numpy` (the same
numbers, no compiling: ``journal verify`` imports no numba).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.journal import chain_numpy
from tradeloom.journal.chain import ABSENT_TEXT, chain_scan, pack_text, row_digests
from tradeloom.journal.schema import Codec, Column, JournalValueError, Schema, value_encoder
from tradeloom.journal.store import ColumnBatch
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.runtime.redaction import redact_text

__all__ = [
    "PreparedBatch",
    "Texts",
    "chain_batches",
    "column_digests",
    "digests_of",
    "prepare",
    "stored_digests",
    "text_values",
]

_INT64_MIN = np.iinfo(np.int64).min
_QUIET_NAN = np.array([0x7FF8000000000000], np.uint64).view(np.float64)[0]
_HEADER_DEFAULTS = {"bar": -1, "timestamp": _INT64_MIN, "symbol": "", "correlation_id": -1}


@dataclass(frozen=True)
class PreparedBatch:
    """One batch, ready to write.

    Attributes:
        schema: The kind's table.
        positions: Each row's position in the write, increasing.
        values: The SQL values of every column after ``seq`` and before ``hash``, one
            list per column (`Schema.columns` order): a value per row, or, for a column
            whose rows all hold the same value, that value alone (``repeated``).
        digests: Each row's digest (the chain links them in position order).
        repeated: Per column, whether ``values`` holds the one value of every row (a
            store binds it once per statement rather than once per row).
        arrays: Per column (`Schema.columns` order), its typed values in position
            order: an array (int64; float64 for floats) or a `Texts` (what a block
            stores, `tradeloom.journal.blocks`).

    ``values`` and ``repeated`` are empty when `prepare` was asked for no SQL values.
    """

    schema: Schema
    positions: npt.NDArray[np.int64]
    values: list[list[Any]]
    digests: npt.NDArray[np.uint64]
    repeated: tuple[bool, ...] = ()
    arrays: tuple[Any, ...] = ()


def prepare(
    schema: Schema, batch: ColumnBatch, first_seq: int, *, sql: bool = True
) -> PreparedBatch:
    """Convert ``batch`` to typed arrays, SQL values (``sql``) and digests; its rows get
    ``first_seq + position``.

    Raises:
        JournalValueError: A column is missing or has the wrong length or type.
    """
    positions = np.asarray(batch.positions, dtype=np.int64)
    if positions.ndim != 1:
        raise JournalValueError(f"{schema.kind}: positions must be one-dimensional")
    n = len(positions)
    order = None
    if n > 1 and not bool(np.all(positions[1:] > positions[:-1])):
        order = np.argsort(positions, kind="stable")
        positions = positions[order]
    defaults = _defaults(schema)
    unknown = set(batch.columns) - set(schema.names)
    if unknown:
        raise JournalValueError(f"{schema.kind}: no field {sorted(unknown)[0]!r}")
    fixed: list[npt.NDArray[Any]] = []
    texts: list[Texts] = []
    arrays: list[Any] = []
    values: list[list[Any]] = []
    repeated: list[bool] = []
    for column in schema.columns:
        if column.name in batch.columns:
            given = batch.columns[column.name]
        elif column.name in defaults:
            given = defaults[column.name]
            if column.codec in (Codec.JSON, Codec.FLOAT_MAP) or given is None:
                given = [given] * n  # one value per row (None: an optional text's NULL)
        else:
            raise JournalValueError(f"{schema.kind}: the column {column.name!r} is missing")
        where = f"{schema.kind}.{column.name}"
        if column.codec.fixed:
            array = _fixed_array(column, given, n, where, order)
            fixed.append(array)
            arrays.append(array)
            if sql:
                same = n > 1 and _all_same(array)
                values.append(_sql_fixed(column, array[:1] if same else array))
                repeated.append(same)
        else:
            text = _text_values(column, given, n, where, order)
            texts.append(text)
            arrays.append(text)
            if sql:
                listed = text.listed()
                same = n > 1 and listed.count(listed[0]) == n
                values.append(listed[:1] if same else listed)
                repeated.append(same)
    seq = positions + first_seq
    digests = digests_of(schema, seq, fixed, texts)
    return PreparedBatch(schema, positions, values, digests, tuple(repeated), tuple(arrays))


def chain_batches(
    prepared: Sequence[PreparedBatch], previous: int
) -> tuple[npt.NDArray[np.uint64], int]:
    """Chain the rows of one write, in position order, after the chain value ``previous``.

    Returns:
        Each row's chain value by position, and the last one (the new head); an empty
        array and ``previous`` for a write of no rows.

    Raises:
        JournalValueError: Positions that are not ``0 .. rows - 1`` each once.
    """
    total = sum(len(p.positions) for p in prepared)
    digests = np.empty(total, dtype=np.uint64)
    counts = np.zeros(total, dtype=np.int64)
    for batch in prepared:
        positions = batch.positions
        if len(positions) and (positions[0] < 0 or positions[-1] >= total):
            raise JournalValueError(f"positions must be 0 .. {total - 1}, found {positions[-1]}")
        digests[positions] = batch.digests
        counts += np.bincount(positions, minlength=total)
    if not bool(np.all(counts == 1)):
        missing = int(np.flatnonzero(counts != 1)[0])
        raise JournalValueError(f"position {missing} is given {int(counts[missing])} times")
    chained = np.empty(total, dtype=np.uint64)
    return chained, int(chain_scan(digests, np.uint64(previous), chained))


def stored_digests(schema: Schema, rows: Sequence[Sequence[Any]]) -> npt.NDArray[np.uint64]:
    """Return the digests of stored rows (``SELECT *``: ``seq`` first, ``hash`` last).

    Texts may be ``bytes`` (read with ``text_factory=bytes``): they hash as stored.
    """
    if len(rows) == 0:
        return np.zeros(0, np.uint64)
    return column_digests(schema, list(zip(*rows, strict=True)))


def column_digests(schema: Schema, columns: Sequence[Sequence[Any]]) -> npt.NDArray[np.uint64]:
    """Return the digests of stored rows given as columns: ``seq``, then the schema's
    columns (`stored_digests`' rows transposed, without their ``hash``)."""
    seq = np.asarray(columns[0], dtype=np.int64)
    if len(seq) == 0:
        return np.zeros(0, np.uint64)
    fixed: list[npt.NDArray[Any]] = []
    texts: list[Texts] = []
    for j, column in enumerate(schema.columns, start=1):
        raw = columns[j]
        if column.codec.fixed:
            fixed.append(_stored_fixed(column, raw))
        else:
            texts.append(_texts(list(raw)))
    return digests_of(schema, seq, fixed, texts, compiled=False)


# --- fixed-width columns ---------------------------------------------------------


def _fixed_array(
    column: Column, given: Any, n: int, where: str, order: npt.NDArray[np.intp] | None
) -> npt.NDArray[Any]:
    codec = column.codec
    if codec is Codec.TIME:
        array = _times(given, n)
    elif codec is Codec.FLOAT:
        array = np.asarray(given, dtype=np.float64)
    else:
        array = np.asarray(given)
        if array.dtype.kind not in "iub":
            raise JournalValueError(f"{where}: expected integers, was {array.dtype}")
        array = array.astype(np.int64)
    if array.ndim == 0:
        array = np.full(n, array[()], dtype=array.dtype)
    if array.shape != (n,):
        raise JournalValueError(f"{where}: {len(array)} values for {n} positions")
    if codec is Codec.BOOL and not bool(np.all((array == 0) | (array == 1))):
        raise JournalValueError(f"{where}: booleans must be 0 or 1")
    return array if order is None else array[order]


def _times(given: Any, n: int) -> npt.NDArray[np.int64]:
    if isinstance(given, pd.Timestamp):
        return np.asarray(_INT64_MIN if given is pd.NaT else given.value, dtype=np.int64)
    if isinstance(given, pd.DatetimeIndex | pd.Series):
        given = pd.DatetimeIndex(given)
        return np.asarray(given.asi8 if given.tz is None else given.tz_convert("UTC").asi8)
    array = np.asarray(given)
    if array.dtype.kind == "M":
        return array.astype("datetime64[ns]").view(np.int64)
    if array.dtype.kind not in "iu":
        raise JournalValueError(f"times must be int64 ns or datetime64, were {array.dtype}")
    return array.astype(np.int64)


def _all_same(array: npt.NDArray[Any]) -> bool:
    """Whether every value has the bits of the first (each NaN, each -0.0 as stored)."""
    bits = array.view(np.int64) if array.dtype == np.float64 else array
    return bool(np.all(bits == bits[0]))


def _sql_fixed(column: Column, array: npt.NDArray[Any]) -> list[Any]:
    values: list[Any] = array.tolist()
    if column.codec is Codec.ID:
        if bool(np.any(array == -1)):
            values = [None if v == -1 else v for v in values]
    elif column.codec is Codec.TIME and bool(np.any(array == _INT64_MIN)):
        values = [None if v == _INT64_MIN else v for v in values]
    return values


_FOREIGN = float(np.finfo(np.float64).max)


def _stored_fixed(column: Column, raw: Sequence[Any]) -> npt.NDArray[Any]:
    codec = column.codec
    if codec is Codec.FLOAT:
        try:
            return np.array(raw, dtype=np.float64)  # None (NULL) -> NaN
        except (TypeError, ValueError):
            # a value of another type (a damaged row): hash one no run writes (not NaN,
            # which hashes as NULL)
            numbers = [v if v is None or isinstance(v, int | float) else _FOREIGN for v in raw]
            return np.array(numbers, dtype=np.float64)
    if None in raw:
        null = -1 if codec is Codec.ID else _INT64_MIN
        raw = [null if v is None else v for v in raw]
    try:
        return np.array(raw, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        # a value of another type (a damaged row): hash something that cannot match
        return np.array([v if isinstance(v, int) else _INT64_MIN for v in raw], np.int64)


# --- texts -----------------------------------------------------------------------


@dataclass(frozen=True)
class Texts:
    """One text column: its UTF-8 bytes (for the digests and a block) and its values.

    ``data`` holds the texts one after the other, each followed by one separator
    byte that no digest reads; ``starts`` and ``lengths`` (-1: NULL) locate each row's
    (rows of a vocabulary share one copy of each distinct text). ``values``: the SQL
    values (str, bytes as stored, or None), or None where not built yet (`listed`).
    Texts of a vocabulary also have ``codes``, each row's entry of ``entries`` (the
    starts and lengths of the distinct texts, the last one NULL).
    """

    values: list[Any] | None
    data: bytes
    starts: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    codes: npt.NDArray[np.int64] | None = None
    entries: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    def listed(self, *, as_bytes: bool = False) -> list[Any]:
        """Return the values, one per row (decoded from the bytes if not kept).

        Raises:
            UnicodeDecodeError: Bytes that are not UTF-8 (unless ``as_bytes``).
        """
        if self.values is not None:
            return self.values
        if self.codes is not None and self.entries is not None:
            distinct = text_values(self.data, *self.entries, as_bytes=as_bytes)
            table = np.empty(len(distinct), dtype=object)
            table[:] = distinct
            return list(table[self.codes].tolist())
        return text_values(self.data, self.starts, self.lengths, as_bytes=as_bytes)


_SEPARATOR = 10  # b"\n", the byte put after each text


def text_values(
    data: bytes,
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    *,
    as_bytes: bool = False,
) -> list[Any]:
    """Return the texts that ``data``, ``starts`` and ``lengths`` locate (None: NULL).

    Texts laid one after the other (each followed by the separator) are split in one
    call; otherwise each distinct text is decoded once.

    Raises:
        UnicodeDecodeError: Bytes that are not UTF-8 (unless ``as_bytes``).
    """
    n = len(starts)
    if n == 0:
        return []
    sizes = np.maximum(lengths, 0)
    nulls = lengths < 0
    end = int(starts[-1] + sizes[-1])
    values: list[Any] | None = None
    if (
        int(starts[0]) == 0
        and bool(np.all(starts[1:] == starts[:-1] + sizes[:-1] + 1))
        and data.count(b"\n", 0, end) == n - 1
        and bool(np.all(np.frombuffer(data, np.uint8)[starts[1:] - 1] == _SEPARATOR))
    ):
        part = data[:end]
        values = part.split(b"\n") if as_bytes else part.decode("utf-8").split("\n")
    if values is None:
        keys = starts * (int(sizes.max()) + 2) + (lengths + 1)
        distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        texts: list[Any] = [
            None if lengths[i] < 0 else data[starts[i] : starts[i] + lengths[i]]
            for i in first.tolist()
        ]
        if not as_bytes:
            texts = [None if t is None else t.decode("utf-8") for t in texts]
        table = np.empty(len(distinct), dtype=object)
        table[:] = texts
        return list(table[inverse.reshape(-1)].tolist())
    if bool(nulls.any()):
        array = np.empty(n, dtype=object)
        array[:] = values
        array[nulls] = None
        return list(array.tolist())
    return values


def _text_values(
    column: Column, given: Any, n: int, where: str, order: npt.NDArray[np.intp] | None
) -> Texts:
    codec = column.codec
    if isinstance(given, pd.Categorical):
        if len(given) != n:
            raise JournalValueError(f"{where}: {len(given)} values for {n} positions")
        if codec in (Codec.TEXT, Codec.OPT_TEXT):
            return _vocabulary(codec, given, where, order)
        given = list(np.asarray(given, dtype=object))
    if codec in (Codec.TEXT, Codec.OPT_TEXT) and isinstance(given, str):
        text = redact_text(given)
        data = text.encode("utf-8")
        zeros = np.zeros(n, dtype=np.int64)
        return Texts([text] * n, data, zeros, np.full(n, len(data), dtype=np.int64))
    values = given if isinstance(given, list) else list(given)
    if len(values) != n:
        raise JournalValueError(f"{where}: {len(values)} values for {n} positions")
    if codec in (Codec.JSON, Codec.FLOAT_MAP):
        encode = value_encoder(codec, where)
        values = [encode(v) for v in values]
    elif codec is Codec.OPT_TEXT and None in values:
        if values.count(None) == n:  # none at all (an order without a parent...)
            zeros = np.zeros(n, dtype=np.int64)
            return Texts([None] * n, b"", zeros, np.full(n, -1, dtype=np.int64))
        values = [None if v is None else redact_text(_text(v, where)) for v in values]
    else:
        try:
            joined = "\n".join(values)
        except TypeError:
            bad = next(v for v in values if not isinstance(v, str))
            raise JournalValueError(f"{where}: expected texts, found {bad!r}") from None
        if redact_text(joined) != joined:
            values = [redact_text(v) for v in values]
    if order is not None:
        values = [values[i] for i in order.tolist()]
    return _texts(values)


def _vocabulary(
    codec: Codec, given: pd.Categorical, where: str, order: npt.NDArray[np.intp] | None
) -> Texts:
    """Texts from a small vocabulary: each distinct text redacted and encoded once."""
    labels = [_text(label, where) for label in given.categories]
    codes = np.asarray(given.codes, dtype=np.int64)
    if order is not None:
        codes = codes[order]
    if codec is Codec.TEXT and len(codes) and int(codes.min()) < 0:
        raise JournalValueError(f"{where}: expected texts, found None")
    texts = [redact_text(label) for label in labels]
    encoded = [text.encode("utf-8") for text in texts]
    # one more entry, at index -1: a missing value (code -1) is NULL
    lengths = np.array([*map(len, encoded), -1], dtype=np.int64)
    starts = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1 : len(encoded) + 1])
    starts[-1] = 0
    codes = codes % len(lengths)  # a missing value: the last entry
    data = b"\n".join(encoded)
    return Texts(None, data, starts[codes], lengths[codes], codes, (starts, lengths))


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise JournalValueError(f"{where}: expected a text, found {value!r}")
    return value


def _texts(values: list[Any]) -> Texts:
    """Locate ``values`` (str, bytes as stored, or None) in one byte string."""
    n = len(values)
    nulls: list[int] = []
    if None in values:
        nulls = [i for i, v in enumerate(values) if v is None]
        clean = ["" if v is None else v for v in values]
    else:
        clean = values
    joined = None
    if not any(isinstance(v, bytes) for v in clean[:1]):
        try:
            joined = "\n".join(clean)
        except TypeError:  # bytes as stored, or a damaged row's number
            joined = None
    if joined is None:
        parts = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in clean]
        data = b"\n".join(parts)
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=n)
    else:
        data = joined.encode("utf-8")
        if len(data) == len(joined):
            lengths = np.fromiter(map(len, clean), dtype=np.int64, count=n)
        else:
            lengths = np.fromiter((len(v.encode("utf-8")) for v in clean), np.int64, count=n)
    starts = np.empty(n, dtype=np.int64)
    if n:
        starts[0] = 0
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
    if nulls:
        lengths[nulls] = -1
    return Texts(values, data, starts, lengths)


def digests_of(
    schema: Schema,
    seq: npt.NDArray[np.int64],
    fixed: list[npt.NDArray[Any]],
    texts: list[Texts],
    *,
    compiled: bool = True,
) -> npt.NDArray[np.uint64]:
    """Return the digests of rows of ``schema`` given as columns (`tradeloom.journal.chain`).

    Args:
        seq: Each row's sequence number.
        fixed: The fixed-width columns, `Schema.columns` order (floats as float64).
        texts: The text columns, `Schema.columns` order.
    """
    n = len(seq)
    words = np.empty((n, 1 + len(schema.fixed_columns)), dtype=np.int64)
    words[:, 0] = seq
    # fixed arrives in Schema.columns order; the words want Schema.fixed_columns order
    by_name = dict(zip((c.name for c in schema.columns if c.codec.fixed), fixed, strict=True))
    for j, column in enumerate(schema.fixed_columns, start=1):
        array = by_name[column.name]
        if column.codec is Codec.FLOAT:
            canonical = np.where(np.isnan(array), _QUIET_NAN, array + 0.0)
            words[:, j] = canonical.view(np.int64)
        else:
            words[:, j] = array
    lengths = np.empty((n, len(texts)), dtype=np.int64)
    starts = np.empty((n, len(texts)), dtype=np.int64)
    offset = 0
    added = [c.added for c in schema.text_columns]
    for j, text in enumerate(texts):
        lengths[:, j] = text.lengths
        if added[j]:  # an empty added text adds no word (the rows before it existed)
            lengths[:, j] = np.where(text.lengths <= 0, ABSENT_TEXT, text.lengths)
        starts[:, j] = text.starts + offset
        offset += len(text.data)
    blob = np.frombuffer(b"".join(t.data for t in texts) or b"\0", dtype=np.uint8)
    kind = np.frombuffer(pack_text(schema.kind), dtype=np.uint64)
    if not compiled:
        return chain_numpy.row_digests(words, kind, lengths, starts, blob)
    out = np.empty(n, dtype=np.uint64)
    if n:
        row_digests(words, kind, lengths, starts, blob, out)
    return out


def _defaults(schema: Schema) -> dict[str, Any]:
    defaults: dict[str, Any] = dict(_HEADER_DEFAULTS)
    for f in dataclasses.fields(schema.cls):
        if f.default is not dataclasses.MISSING:
            defaults.setdefault(f.name, f.default)
        elif f.default_factory is not dataclasses.MISSING:
            defaults.setdefault(f.name, f.default_factory())
    return defaults
