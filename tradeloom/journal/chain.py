"""The journal's hash chain: XXH64 over a canonical encoding of each row's typed values.

Every row stores ``hash``, the chain value that links it to the row before it in
sequence order::

    digest(row)  = XXH64(words(row), seed=0)
    chain(0)     = XXH64(words(meta), seed=0)          # binds the chain to the run
    chain(seq)   = XXH64(u64le(digest(row seq)), seed=chain(seq - 1))

``words(meta)`` are the texts (see 3. below) of each key and value of ``format_version``,
``strategy``, ``run_id`` and ``mode``, then of ``strategy_sha256``, ``tail`` and
``folder_key`` where the meta has them (`tradeloom.journal.owner`; a journal from before
them has none).

XXH64 is the 64-bit xxHash (its specification: github.com/Cyan4973/xxHash,
``doc/xxhash_spec.md``); any xxHash library recomputes a chain from the rows.

``words(row)`` is the row as little-endian 64-bit words, in this order:

1. the integers of the header: ``seq``, ``bar`` (-1: none), ``timestamp`` (ns since
   the epoch, UTC; NaT is the int64 minimum), ``correlation_id`` (-1: none);
2. the kind's integer, boolean (0 or 1), time (ns) and float fields, in declaration
   order, one word each; a float as its IEEE-754 bits after ``-0.0`` becomes ``0.0``
   and every NaN the quiet NaN ``0x7ff8000000000000`` (SQLite stores NaN as NULL and
   ``-0.0`` as ``0.0``: the hash covers what can be read back);
3. the texts: the kind's name, ``symbol``, then the kind's text and JSON fields in
   declaration order, each as a word holding its UTF-8 length followed by its bytes
   zero-padded to a whole word; None (a NULL text) is the single word ``2**64 - 1``.
   A text field added to a kind after its format was released (``added`` in the
   field's metadata, `tradeloom.journal.schema`) is no word at all when it is empty:
   the rows written before it existed, which read it as empty, keep their hashes.

The same kernel hashes a backtest's column arrays, a live run's single events (their
words packed by `pack_row`) and the rows read back by ``verify``.

What it protects against (the threat model): damage (bit rot, a torn or truncated
write, a file edited by hand or by a tool) and edits, deletions and insertions of
rows by anyone who does not recompute the chain. It is not a signature: the
algorithm and the seed are public, so someone able to rewrite the file can rewrite
the whole chain. A cryptographic hash would not change that without a secret key or
a head hash kept elsewhere; XXH64 is chosen because a backtest hashes its rows at
well over a gigabyte per second in compiled code. Rows cut from the end of the
journal leave a valid chain (they look like a crash before they were written): the tail
record kept beside it catches those (`tradeloom.journal.tail`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import kernel, python_form

__all__ = [
    "ABSENT_TEXT",
    "NULL_TEXT",
    "chain_rows",
    "chain_scan",
    "chain_step",
    "chain_values",
    "pack_text",
    "pack_text_kept",
    "packed_texts",
    "row_digests",
    "xxh64_words",
]

_U = np.uint64
_P1 = _U(0x9E3779B185EBCA87)
_P2 = _U(0xC2B2AE3D27D4EB4F)
_P3 = _U(0x165667B19E3779F9)
_P4 = _U(0x85EBCA77C2B2AE63)
_P5 = _U(0x27D4EB2F165667C5)
_MASK = (1 << 64) - 1

# Each kernel's call of another is read back as np.uint64 (``_U(...)``, a no-op when
# compiled): a kernel running as Python (`tradeloom.kernels.first_run`) may call one that
# is compiled, whose uint64 numba returns as a Python int, which the next compiled call
# typed as int64 (OverflowError at 2**63 and above) and Python's own arithmetic would
# not wrap at 2**64.

NULL_TEXT = 0xFFFFFFFFFFFFFFFF
"""The word that stands for a NULL (None) text."""

ABSENT_TEXT = -2
"""`row_digests`' length of an empty added text field: it adds no word."""


@kernel
def _rotl(x: np.uint64, r: int) -> np.uint64:
    return (x << _U(r)) | (x >> _U(64 - r))


@kernel
def _round(acc: np.uint64, lane: np.uint64) -> np.uint64:
    acc = acc + lane * _P2
    acc = _U(_rotl(acc, 31))
    return acc * _P1


@kernel
def _merge(acc: np.uint64, value: np.uint64) -> np.uint64:
    acc = acc ^ _U(_round(_U(0), value))
    return acc * _P1 + _P4


@kernel
def xxh64_words(words: npt.NDArray[np.uint64], n: int, seed: np.uint64) -> np.uint64:
    """Return XXH64 of the first ``n`` words of ``words`` read as ``8 * n`` little-endian bytes."""
    seed = _U(seed)
    i = 0
    if n >= 4:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        while i + 4 <= n:
            v1 = _U(_round(v1, words[i]))
            v2 = _U(_round(v2, words[i + 1]))
            v3 = _U(_round(v3, words[i + 2]))
            v4 = _U(_round(v4, words[i + 3]))
            i += 4
        h = _U(_rotl(v1, 1)) + _U(_rotl(v2, 7)) + _U(_rotl(v3, 12)) + _U(_rotl(v4, 18))
        h = _U(_merge(h, v1))
        h = _U(_merge(h, v2))
        h = _U(_merge(h, v3))
        h = _U(_merge(h, v4))
    else:
        h = seed + _P5
    h = h + _U(8 * n)
    while i < n:
        h = h ^ _U(_round(_U(0), words[i]))
        h = _U(_rotl(h, 27)) * _P1 + _P4
        i += 1
    h = h ^ (h >> _U(33))
    h = h * _P2
    h = h ^ (h >> _U(29))
    h = h * _P3
    return h ^ (h >> _U(32))


@kernel
def _chain_one(digest: np.uint64, previous: np.uint64) -> np.uint64:
    # XXH64 of the 8 bytes of one word, unrolled
    h = _U(previous) + _P5 + _U(8)
    h = h ^ _U(_round(_U(0), _U(digest)))
    h = _U(_rotl(h, 27)) * _P1 + _P4
    h = h ^ (h >> _U(33))
    h = h * _P2
    h = h ^ (h >> _U(29))
    h = h * _P3
    return h ^ (h >> _U(32))


def signed(value: int) -> int:
    """Return a 64-bit chain value or digest as the int64 a database column stores."""
    return value - (1 << 64) if value >= 1 << 63 else value


@kernel
def chain_step(words: npt.NDArray[np.uint64], n: int, previous: np.uint64) -> np.uint64:
    """Return the chain value of one row (its first ``n`` words) after ``previous``."""
    return _U(_chain_one(_U(xxh64_words(words, n, _U(0))), _U(previous)))


@kernel
def chain_rows(
    words: npt.NDArray[np.uint64],
    ends: npt.NDArray[np.int64],
    previous: np.uint64,
    out: npt.NDArray[np.uint64],
) -> np.uint64:
    """Chain rows after ``previous`` into ``out``; return the last value.

    Row ``i``'s words are ``words[ends[i - 1]:ends[i]]`` (the first's from 0): a live
    run's rows of one commit, hashed in one call rather than one each.
    """
    h = _U(previous)
    start = 0
    for i in range(len(ends)):
        end = ends[i]
        h = _U(_chain_one(_U(xxh64_words(words[start:end], end - start, _U(0))), h))
        out[i] = h
        start = end
    return h


@kernel
def chain_scan(
    digests: npt.NDArray[np.uint64], seed: np.uint64, out: npt.NDArray[np.uint64]
) -> np.uint64:
    """Chain ``digests`` (in sequence order) after ``seed`` into ``out``; return the last value."""
    h = _U(seed)
    for i in range(len(digests)):
        h = _U(_chain_one(digests[i], h))
        out[i] = h
    return h


def chain_values(digests: Iterable[int], seed: int) -> npt.NDArray[np.uint64]:
    """Return the chain value after each digest (in sequence order), starting at ``seed``."""
    out: list[int] = []
    append = out.append
    h = int(seed)
    p1, p2, p3, p4, start, mask = int(_P1), int(_P2), int(_P3), int(_P4), int(_P5) + 8, _MASK
    # XXH64 of one word's 8 bytes, unrolled, on Python integers (`_chain_one`'s steps)
    for digest in digests:
        lane = (int(digest) * p2) & mask
        lane = (((lane << 31) | (lane >> 33)) & mask) * p1 & mask
        h = ((h + start) & mask) ^ lane
        h = ((((h << 27) | (h >> 37)) & mask) * p1 + p4) & mask
        h = ((h ^ (h >> 33)) * p2) & mask
        h = ((h ^ (h >> 29)) * p3) & mask
        h ^= h >> 32
        append(h)
    return np.array(out, dtype=np.uint64)


@python_form(chain_scan)
def _chain_scan_as_python(
    digests: npt.NDArray[np.uint64], seed: np.uint64, out: npt.NDArray[np.uint64]
) -> np.uint64:
    """`chain_scan` as Python (`tradeloom.kernels.jit.python_form`): `chain_values`, the
    same chain on Python integers masked to 64 bits (as Python, the kernel's calls of
    `_chain_one` per digest, each a few kernels' calls on numpy's uint64 scalars, cost a
    small run's journal ~10 ms)."""
    values = chain_values(digests.tolist(), int(seed))
    out[: len(values)] = values
    return _U(values[-1]) if len(values) else _U(seed)


@kernel
def row_digests(
    fixed: npt.NDArray[np.int64],
    kind: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    blob: npt.NDArray[np.uint8],
    out: npt.NDArray[np.uint64],
) -> None:
    """Digest each row of one kind from its columns (see the module docstring).

    Args:
        fixed: ``(rows, k)``: the header integers, then the fixed-width fields, as int64
            (floats already canonical and viewed as int64).
        kind: The words of the kind's name as a text.
        lengths: ``(rows, t)``: each text's UTF-8 length, -1 for NULL (symbol first),
            `ABSENT_TEXT` for an added field left empty (no word).
        starts: ``(rows, t)``: where each text's bytes start in ``blob``.
        blob: The texts' UTF-8 bytes.
        out: Receives each row's digest.
    """
    rows, k = fixed.shape
    t = lengths.shape[1]
    size = k + len(kind) + t
    longest = 0
    for i in range(rows):
        words = 0
        for j in range(t):
            if lengths[i, j] > 0:
                words += (lengths[i, j] + 7) // 8
        longest = max(longest, words)
    scratch = np.zeros(size + longest + 1, np.uint64)
    view = scratch.view(np.uint8)
    for i in range(rows):
        w = 0
        for j in range(k):
            scratch[w] = _U(fixed[i, j])
            w += 1
        for j in range(len(kind)):
            scratch[w] = kind[j]
            w += 1
        for j in range(t):
            length = lengths[i, j]
            if length == ABSENT_TEXT:
                continue
            if length < 0:
                scratch[w] = _U(NULL_TEXT)
                w += 1
                continue
            scratch[w] = _U(length)
            w += 1
            if length == 0:
                continue
            count = (length + 7) // 8
            scratch[w + count - 1] = _U(0)
            start = starts[i, j]
            base = 8 * w
            for b in range(length):
                view[base + b] = blob[start + b]
            w += count
        out[i] = xxh64_words(scratch, w, _U(0))


@python_form(row_digests)
def _row_digests_as_python(
    fixed: npt.NDArray[np.int64],
    kind: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    blob: npt.NDArray[np.uint8],
    out: npt.NDArray[np.uint64],
) -> None:
    """`row_digests` as Python (`tradeloom.kernels.jit.python_form`): the same digests, the
    rows' words laid in one matrix and XXH64 run over all rows at once, a word position
    at a time, in numpy's wrapping uint64 arithmetic (as Python, the kernel's word by
    word calls took a third of a small run's kernel time)."""
    rows = len(fixed)
    if rows == 0:
        return
    head = np.concatenate([fixed.view(np.uint64), np.broadcast_to(kind, (rows, len(kind)))], 1)
    texts = [_text_words(lengths[i], starts[i], blob) for i in range(rows)]
    n = np.array([head.shape[1] + len(t) // 8 for t in texts], np.int64)
    words = np.zeros((rows, int(n.max()) + 1), np.uint64)
    words[:, : head.shape[1]] = head
    for i, text in enumerate(texts):
        words[i, head.shape[1] : n[i]] = np.frombuffer(text, "<u8")
    out[:] = _xxh64_rows(words, n)


def _text_words(lengths: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], blob: Any) -> bytes:
    """Return one row's text words as `row_digests` lays them (little-endian bytes)."""
    parts = []
    for length, start in zip(lengths.tolist(), starts.tolist(), strict=True):
        if length == ABSENT_TEXT:
            continue
        if length < 0:
            parts.append(struct.pack("<Q", NULL_TEXT))
            continue
        data = blob[start : start + length].tobytes()
        parts.append(struct.pack("<Q", length) + data + b"\0" * (-length % 8))
    return b"".join(parts)


def _xxh64_rows(words: npt.NDArray[np.uint64], n: npt.NDArray[np.int64]) -> Any:
    """Return `xxh64_words` (seed 0) of each row's first ``n[i]`` words of ``words``."""

    def rotl(x: Any, r: int) -> Any:
        return (x << _U(r)) | (x >> _U(64 - r))

    def round_(acc: Any, lane: Any) -> Any:
        return rotl(acc + lane * _P2, 31) * _P1

    def merge(acc: Any, value: Any) -> Any:
        return (acc ^ round_(_U(0), value)) * _P1 + _P4

    rows = len(n)
    stripes = n // 4
    with np.errstate(over="ignore"):
        v = [np.full(rows, value, np.uint64) for value in (_P1 + _P2, _P2, _U(0), _U(0) - _P1)]
        for s in range(int(stripes.max())):
            going = s < stripes
            for lane in range(4):
                v[lane] = np.where(going, round_(v[lane], words[:, 4 * s + lane]), v[lane])
        h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)
        for lane in range(4):
            h = merge(h, v[lane])
        h = np.where(n >= 4, h, _P5) + (_U(8) * n.astype(np.uint64))
        at = 4 * stripes
        every = np.arange(rows)
        for r in range(3):  # at most three words after the last stripe
            index = at + r
            left = index < n
            word = words[every, np.minimum(index, words.shape[1] - 1)]
            h = np.where(left, rotl(h ^ round_(_U(0), word), 27) * _P1 + _P4, h)
        h = h ^ (h >> _U(33))
        h = h * _P2
        h = h ^ (h >> _U(29))
        h = h * _P3
        return h ^ (h >> _U(32))


def pack_text(text: str | bytes | None) -> bytes:
    """Return the words of one text (UTF-8, or its bytes as stored; None: NULL)."""
    if text is None:
        return struct.pack("<Q", NULL_TEXT)
    data = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data + b"\0" * (-len(data) % 8)


packed_texts: dict[str, bytes] = {}
"""`pack_text` of the short texts `pack_text_kept` packed: a journal's rows repeat their
symbol, code and reason at every bar (the texts are redacted before they are packed).
Emptied when full, never replaced: a row's words read it through its ``get``."""
_KEPT_LENGTH = 128
_KEPT_ENTRIES = 4096


def pack_text_kept(text: str | bytes | None) -> bytes:
    """Return `pack_text` of ``text``, kept in `packed_texts` when it is a short text."""
    packed = pack_text(text)
    if type(text) is str and len(text) <= _KEPT_LENGTH:
        if len(packed_texts) >= _KEPT_ENTRIES:
            packed_texts.clear()
        packed_texts[text] = packed
    return packed
