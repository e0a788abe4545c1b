"""A bulk write's rows of one kind as typed columnar blocks (the SQLite ``segment`` table).

A backtest writes its events in bulk (`tradeloom.journal.sqlite.SqliteJournal.write_columns`):
each kind's rows of one write are stored as blocks of at most `BLOCK_ROWS` rows, one
row of ``segment`` each, with no Python object per event::

    segment(id, kind, first_seq, last_seq, rows, columns, data, digest, hash)

- ``kind``: the events' kind; ``first_seq`` .. ``last_seq``: the sequence numbers of
  its first and last row (the kinds of one write interleave: a block's rows are not
  consecutive); ``rows``: how many.
- ``columns``: the names of the columns in ``data``, comma-separated (the kind's
  `tradeloom.journal.schema.Schema.columns` when it was written; a text field added
  later reads as '').
- ``data``: little-endian, in 64-bit words (a shorter array is zero-padded to a
  whole word). First ``seq`` as int64[rows]; then each column in ``columns`` order,
  a word saying how it is stored, then its values. An integer, bool (0/1), id (-1:
  none) or time (ns since the epoch, UTC; the int64 minimum: NaT): ``0`` int64[rows],
  ``1`` one int64 for every row, ``2``/``3``/``4`` int32/int16/int8[rows]. A float
  (NaN: none; ``-0.0`` stored as ``0.0``): ``0`` float64[rows], ``1`` one float64.
  A text (UTF-8, redacted as in a table; a length of -1: NULL; row ``i``'s text is
  ``bytes[start : start + length]``): ``0``/``2`` int64/int32 lengths[rows], then
  starts[rows], then the bytes; ``1`` one length word, then the bytes of the text of
  every row; ``5`` (a vocabulary) a count ``k``, int64 lengths[k], int64 starts[k],
  each row's entry as int8 (``k`` <= 127), int16 or int32[rows], then the bytes.
  The bytes: an int64 count, then that many bytes.
  Stored compressed (`pack`) where that is smaller, as almost every block is: the word
  ``-1`` (a block's first word is its first sequence number, >= 1), the length of the
  layout above as a word, then that layout compressed as one Zstandard frame (level
  `LEVEL`; 500 symbols x 10,000 bars: 30.4 MB of blocks in 5.9 MB). Readers take
  either (a block written before compression, or one it would not shrink, is the
  layout itself).
- ``digest``: XXH64 of the block's row digests in sequence order (as a signed
  int64): a byte edited in ``data`` shows as this block (as its digest, or as a frame
  or layout that does not decode).
- ``hash``: the chain value after its row ``last_seq``: the block's place in the
  journal's one hash chain (`tradeloom.journal.chain`).

A block's rows hash exactly as the same rows would in the kind's table: a journal's
chain, head and readers' events are the same whichever way its rows were stored.
Reading decodes a block with numpy (`Block.frame_columns`); per-event readers get
the rows as a table's ``SELECT *`` would give them (`Block.sql_rows`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.journal import chain_numpy
from tradeloom.journal.chain import xxh64_words
from tradeloom.journal.columns import PreparedBatch, Texts, digests_of, text_values
from tradeloom.journal.schema import Codec, Column, Schema, value_decoder
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "BLOCK_ROWS",
    "SEGMENT_SQL",
    "Block",
    "BlockDamaged",
    "block_digest",
    "chunks",
    "decode_block",
    "encode_block",
    "pack",
    "unpack",
]

BLOCK_ROWS = 1 << 20
"""The most rows in one block (a block of ~14 columns stays far below SQLite's 1 GB)."""

SEGMENT_SQL = (
    'CREATE TABLE IF NOT EXISTS "segment" (\n  "id" INTEGER PRIMARY KEY,\n'
    '  "kind" TEXT NOT NULL,\n  "first_seq" INTEGER NOT NULL,\n'
    '  "last_seq" INTEGER NOT NULL,\n  "rows" INTEGER NOT NULL,\n'
    '  "columns" TEXT NOT NULL,\n  "data" BLOB NOT NULL,\n'
    '  "digest" INTEGER NOT NULL,\n  "hash" INTEGER NOT NULL\n) STRICT;\n'
    'CREATE TRIGGER IF NOT EXISTS "segment_no_update" BEFORE UPDATE ON "segment" '
    "BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;\n"
    'CREATE TRIGGER IF NOT EXISTS "segment_no_delete" BEFORE DELETE ON "segment" '
    "BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;\n"
)
"""The table of blocks and its append-only triggers."""

LEVEL = 3
"""The Zstandard level of a block's data: level 1 made blocks 6% larger, 9 cost 4x the
time for 3% less (500 symbols x 10,000 bars: ~0.15 s for the run's 30 MB at 3)."""

_PACKED = -1  # the first word of a compressed block's data
_INT64_MIN = np.iinfo(np.int64).min
# how a column is stored: the word before its values
_FULL = 0  # every value, 64 bits (texts: lengths and starts as int64)
_SAME = 1  # one value for every row
_NARROW = ((2, "<i4"), (3, "<i2"), (4, "<i1"))  # integers (texts: lengths, starts) in fewer bits
_VOCABULARY = 5  # texts: the distinct ones, and each row's as a code


class BlockDamaged(ValueError):
    """A block whose bytes do not hold what its row says (the message says what)."""


@dataclass(frozen=True)
class Block:
    """One decoded block.

    Attributes:
        schema: Its kind's table.
        first, last: The sequence numbers of its first and last row.
        seq: Each row's sequence number, increasing.
        columns: By `Schema.columns` name: an int64 or float64 array, or `Texts`.
        digest: The stored XXH64 of its row digests (unsigned).
        hash: The stored chain value after its last row (unsigned).
    """

    schema: Schema
    first: int
    last: int
    seq: npt.NDArray[np.int64]
    columns: dict[str, Any]
    digest: int
    hash: int

    @property
    def span(self) -> str:
        """Return the block as a message names it."""
        return f"the {self.schema.kind} block of sequences {self.first}..{self.last}"

    def digests(self, *, compiled: bool = True) -> npt.NDArray[np.uint64]:
        """Return each row's digest, recomputed from the stored bytes (``compiled``:
        with the numba kernels; without, `tradeloom.journal.chain_numpy`'s equal ones)."""
        fixed = [self.columns[c.name] for c in self.schema.columns if c.codec.fixed]
        texts = [self.columns[c.name] for c in self.schema.columns if not c.codec.fixed]
        return digests_of(self.schema, self.seq, fixed, texts, compiled=compiled)

    def sql_rows(self, *, as_bytes: bool = False) -> list[tuple[Any, ...]]:
        """Return the rows as the kind's table gives them: ``seq`` first, a None ``hash``
        last (the block holds the hash), NULL as None, texts as str (``as_bytes``: as
        stored).

        Raises:
            BlockDamaged: A text that is not UTF-8.
        """
        lists: list[list[Any]] = [self.seq.tolist()]
        for column in self.schema.columns:
            lists.append(_sql_list(column, self.columns[column.name], as_bytes, self.span))
        lists.append([None] * len(self.seq))
        return list(zip(*lists, strict=True))

    def frame_columns(self) -> dict[str, Any]:
        """Return the columns as `tradeloom.journal.reader.read_frame` gives them (numpy).

        Raises:
            BlockDamaged: A text that is not UTF-8, or JSON that does not decode.
        """
        data: dict[str, Any] = {"seq": self.seq}
        for column in self.schema.columns:
            value = self.columns[column.name]
            codec = column.codec
            if codec is Codec.BOOL:
                data[column.name] = value.astype(bool)
            elif codec is Codec.TIME:
                data[column.name] = pd.DatetimeIndex(value.view("datetime64[ns]")).tz_localize(
                    "UTC"
                )
            elif codec.fixed:
                data[column.name] = value
            else:
                texts = _decoded_texts(value, self.span)
                if codec in (Codec.JSON, Codec.FLOAT_MAP):
                    decode = value_decoder(codec)
                    try:
                        texts = [decode(v) for v in texts]
                    except (TypeError, ValueError) as exc:
                        raise BlockDamaged(f"{self.span}: {column.name}: {exc}") from None
                data[column.name] = pd.Series(texts, dtype=object)
        return data


def encode_block(batch: PreparedBatch, seq: npt.NDArray[np.int64], start: int, stop: int) -> bytes:
    """Return the ``data`` of the block of ``batch``'s rows ``start .. stop - 1``.

    Args:
        batch: Prepared without SQL values (`tradeloom.journal.columns.prepare`).
        seq: Each of ``batch``'s rows' sequence number.
        start, stop: The rows of this block.
    """
    parts = [seq[start:stop].astype("<i8").tobytes()]
    for column, value in zip(batch.schema.columns, batch.arrays, strict=True):
        if column.codec is Codec.FLOAT:
            parts.extend(_encode_fixed(value[start:stop] + 0.0, floats=True))
        elif column.codec.fixed:
            parts.extend(_encode_fixed(value[start:stop], floats=False))
        else:
            parts.extend(_encode_texts(value, start, stop))
    return b"".join(parts)


def pack(data: bytes) -> bytes:
    """Return a block's ``data`` (`encode_block`) as stored: compressed where that is
    smaller (the word ``-1``, the length of ``data``, its Zstandard frame), else as it is."""
    import pyarrow as pa  # the journal's readers of a finished run import it anyway

    frame: bytes = pa.Codec("zstd", compression_level=LEVEL).compress(data, asbytes=True)
    if 16 + len(frame) >= len(data):
        return data
    return _word(_PACKED) + _word(len(data)) + frame


def unpack(data: bytes, span: str) -> bytes:
    """Return a stored block's layout (`pack` undone; ``span``: the block as a message
    names it).

    Raises:
        BlockDamaged: A compressed block whose frame does not decode to its length.
    """
    if len(data) < 16 or struct.unpack_from("<q", data)[0] != _PACKED:
        return data
    import pyarrow as pa

    size = struct.unpack_from("<q", data, 8)[0]
    try:
        if size < 8:
            raise ValueError(size)
        raw = pa.decompress(data[16:], decompressed_size=size, codec="zstd", asbytes=True)
    except (ValueError, OSError, pa.ArrowException):
        raise BlockDamaged(
            f"{span}: its compressed data does not decode ({len(data)} bytes)"
        ) from None
    if not isinstance(raw, bytes) or len(raw) != size:
        raise BlockDamaged(f"{span}: its compressed data does not decode ({len(data)} bytes)")
    return raw


def block_digest(digests: npt.NDArray[np.uint64], *, compiled: bool = True) -> int:
    """Return a block's digest: XXH64 of its rows' digests (unsigned; ``compiled``: with
    the numba kernel; without, `tradeloom.journal.chain_numpy`'s equal one)."""
    if not compiled:
        return int(chain_numpy.xxh64(digests[None, :])[0])
    return int(xxh64_words(digests, len(digests), np.uint64(0)))


def _word(value: int) -> bytes:
    return struct.pack("<q", value)


def _packed(array: npt.NDArray[Any], dtype: str) -> list[bytes]:
    data = array.astype(dtype).tobytes()
    return [data, b"\0" * (-len(data) % 8)]


def _encode_fixed(array: npt.NDArray[Any], *, floats: bool) -> list[bytes]:
    bits = array.view(np.int64) if floats else array
    if len(bits) > 1 and bool(np.all(bits == bits[0])):
        return [_word(_SAME), _word(int(bits[0]))]
    if floats or not len(bits):
        return [_word(_FULL), *_packed(array, "<f8" if floats else "<i8")]
    low, high = int(bits.min()), int(bits.max())
    for tag, dtype in _NARROW:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return [_word(tag), *_packed(bits, dtype)]
    return [_word(_FULL), *_packed(bits, "<i8")]


def _encode_texts(texts: Texts, start: int, stop: int) -> list[bytes]:
    starts = texts.starts[start:stop]
    lengths = texts.lengths[start:stop]
    data = texts.data
    if texts.codes is not None and texts.entries is not None:
        entry_starts, entry_lengths = texts.entries
        codes = texts.codes[start:stop]
        return [
            _word(_VOCABULARY),
            _word(len(entry_starts)),
            *_packed(entry_lengths, "<i8"),
            *_packed(entry_starts, "<i8"),
            *_packed(codes, _code_type(len(entry_starts))),
            *_bytes(data),
        ]
    if len(starts) > 1 and bool(np.all(starts == starts[0]) and np.all(lengths == lengths[0])):
        first = int(starts[0])
        return [
            _word(_SAME),
            _word(int(lengths[0])),
            *_bytes(data[first : first + max(0, int(lengths[0]))]),
        ]
    if (start, stop) != (0, len(texts.starts)) and len(starts):
        # a part of the rows: keep the bytes its texts use
        ends = starts + np.maximum(lengths, 0)
        low, high = int(starts.min()), int(ends.max())
        data = data[low:high]
        starts = starts - low
    wide = len(data) > np.iinfo(np.int32).max
    dtype = "<i8" if wide else "<i4"
    return [
        _word(_FULL if wide else _NARROW[0][0]),
        *_packed(lengths, dtype),
        *_packed(starts, dtype),
        *_bytes(data),
    ]


def _bytes(data: bytes) -> list[bytes]:
    return [_word(len(data)), data, b"\0" * (-len(data) % 8)]


def _code_type(entries: int) -> str:
    return next(dtype for _, dtype in reversed(_NARROW) if entries <= np.iinfo(dtype).max)


def decode_block(
    schema: Schema,
    first: int,
    last: int,
    rows: int,
    names: str,
    data: bytes,
    digest: int,
    chained: int,
) -> Block:
    """Return the block a ``segment`` row holds (its columns, in order).

    Raises:
        BlockDamaged: Its bytes do not have the layout its row describes.
    """
    span = f"the {schema.kind} block of sequences {first}..{last}"
    if not isinstance(data, bytes) or not isinstance(rows, int) or rows < 1:
        raise BlockDamaged(f"{span}: its row count or data is not what a block holds")
    listed = names.split(",") if isinstance(names, str) else []
    by_name = {c.name: c for c in schema.columns}
    unknown = [n for n in listed if n not in by_name]
    missing = [c.name for c in schema.columns if c.name not in listed and not c.added]
    if unknown or missing or len(set(listed)) != len(listed):
        raise BlockDamaged(f"{span}: its columns ({names}) are not those of {schema.kind}")
    reader = _Reader(unpack(data, span), rows, span)
    seq = reader.array("<i8")
    if not bool(np.all(seq[1:] > seq[:-1])) or int(seq[0]) != first or int(seq[-1]) != last:
        raise BlockDamaged(f"{span}: its sequence numbers are not {first}..{last}, increasing")
    columns: dict[str, Any] = {}
    for name in listed:
        codec = by_name[name].codec
        columns[name] = reader.fixed(codec is Codec.FLOAT) if codec.fixed else reader.texts()
    reader.end()
    for column in schema.columns:
        if column.name not in columns:  # a text field added after the block was written
            zeros = np.zeros(rows, dtype=np.int64)
            columns[column.name] = Texts(None, b"", zeros, zeros)
    unsigned = (1 << 64) - 1
    return Block(schema, first, last, seq, columns, digest & unsigned, chained & unsigned)


class _Reader:
    def __init__(self, data: bytes, rows: int, span: str) -> None:
        self.data, self.rows, self.span, self.at = data, rows, span, 0

    def _fail(self) -> BlockDamaged:
        return BlockDamaged(f"{self.span}: its data is cut or malformed ({len(self.data)} bytes)")

    def array(self, dtype: str, count: int | None = None) -> npt.NDArray[Any]:
        n = self.rows if count is None else count
        size = np.dtype(dtype).itemsize * n
        if n < 0 or self.at + size > len(self.data):
            raise self._fail()
        array = np.frombuffer(self.data, dtype=dtype, count=n, offset=self.at)
        self.at += size + (-size % 8)
        wide = np.float64 if array.dtype.kind == "f" else np.int64
        return array.astype(wide)

    def word(self) -> int:
        return int(self.array("<i8", 1)[0])

    def fixed(self, floats: bool) -> npt.NDArray[Any]:
        tag = self.word()
        if tag == _SAME:
            bits = np.full(self.rows, self.word(), dtype=np.int64)
            return bits.view(np.float64) if floats else bits
        if tag == _FULL:
            return self.array("<f8" if floats else "<i8")
        dtype = dict(_NARROW).get(tag)
        if dtype is None or floats:
            raise self._fail()
        return self.array(dtype)

    def _bytes(self) -> bytes:
        size = self.word()
        if size < 0 or self.at + size > len(self.data):
            raise self._fail()
        data = self.data[self.at : self.at + size]
        self.at += size + (-size % 8)
        return data

    def texts(self) -> Texts:
        tag = self.word()
        codes = entries = None
        if tag == _VOCABULARY:
            count = self.word()
            entry_lengths = self.array("<i8", count)
            entry_starts = self.array("<i8", count)
            entries = entry_starts, entry_lengths
            codes = self.array(_code_type(max(count, 1)))
            if count < 1 or int(codes.min()) < 0 or int(codes.max()) >= count:
                raise self._fail()
            data = self._bytes()
            self._check(entry_starts, entry_lengths, len(data))
            starts, lengths = entry_starts[codes], entry_lengths[codes]
        elif tag == _SAME:
            length = self.word()
            data = self._bytes()
            starts = np.zeros(self.rows, dtype=np.int64)
            lengths = np.full(self.rows, length, dtype=np.int64)
        elif tag in (_FULL, _NARROW[0][0]):
            dtype = "<i8" if tag == _FULL else _NARROW[0][1]
            lengths = self.array(dtype)
            starts = self.array(dtype)
            data = self._bytes()
        else:
            raise self._fail()
        self._check(starts, lengths, len(data))
        return Texts(None, data, starts, lengths, codes, entries)

    def _check(
        self, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64], size: int
    ) -> None:
        if len(lengths) and (
            int(lengths.min()) < -1
            or int(starts.min()) < 0
            or int((starts + np.maximum(lengths, 0)).max()) > size
        ):
            raise BlockDamaged(f"{self.span}: a text lies outside its column's bytes")

    def end(self) -> None:
        if self.at != len(self.data):
            raise self._fail()


def _decoded_texts(texts: Texts, span: str, *, as_bytes: bool = False) -> list[Any]:
    try:
        return (
            texts.values
            if texts.values is not None
            else text_values(texts.data, texts.starts, texts.lengths, as_bytes=as_bytes)
        )
    except UnicodeDecodeError:
        raise BlockDamaged(f"{span}: a text is not UTF-8") from None


def _sql_list(column: Column, value: Any, as_bytes: bool, span: str) -> list[Any]:
    codec = column.codec
    if not codec.fixed:
        return _decoded_texts(value, span, as_bytes=as_bytes)
    values = value.tolist()
    if codec is Codec.FLOAT:
        if bool(np.isnan(value).any()):
            return [None if v != v else v for v in values]
    elif codec is Codec.ID:
        if bool((value == -1).any()):
            return [None if v == -1 else v for v in values]
    elif codec is Codec.TIME and bool((value == _INT64_MIN).any()):
        return [None if v == _INT64_MIN else v for v in values]
    return list(values)


def chunks(rows: int) -> Iterator[tuple[int, int]]:
    """Yield the ``(start, stop)`` rows of each block of a batch of ``rows`` rows."""
    for start in range(0, rows, BLOCK_ROWS):
        yield start, min(rows, start + BLOCK_ROWS)
