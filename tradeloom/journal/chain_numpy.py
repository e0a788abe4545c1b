"""The journal's hash chain without compiling: numpy over many rows at once, for readers.

The same numbers as the kernels of `tradeloom.journal.chain` (the tests compare them
with each other and with the ``xxhash`` library), computed with numpy's wrapping
uint64 arithmetic, so that ``status`` (the chain seed) and ``journal verify`` (every
row) answer without importing numba and compiling. Every row's words are laid out in
one buffer by array operations (texts copied by one fancy-indexed assignment per text
column), rows with the same number of words are hashed together, one numpy operation
per word for the whole group; `chain_next` checks every stored link of the chain at
once (each row's chain value from the one stored before it). Only a chain whose values
are not stored row by row (inside a bulk write's blocks) is computed one row after
another, on Python integers (`chain_values`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tradeloom.journal.chain import ABSENT_TEXT, chain_values

__all__ = ["chain_next", "chain_values", "row_digests", "xxh64"]

_U = np.uint64
_P1, _P2, _P3, _P4, _P5 = (
    0x9E3779B185EBCA87,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0x85EBCA77C2B2AE63,
    0x27D4EB2F165667C5,
)


def _rotl(x: npt.NDArray[np.uint64], r: int) -> npt.NDArray[np.uint64]:
    return (x << _U(r)) | (x >> _U(64 - r))


def _round(acc: npt.NDArray[np.uint64], lane: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    return _rotl(acc + lane * _U(_P2), 31) * _U(_P1)


def _merge(acc: npt.NDArray[np.uint64], value: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    return (acc ^ _round(np.zeros_like(value), value)) * _U(_P1) + _U(_P4)


def xxh64(words: npt.NDArray[np.uint64], seed: int = 0) -> npt.NDArray[np.uint64]:
    """Return XXH64 of each row of ``words`` (``(rows, n)``, read as ``8 * n`` bytes LE)."""
    words = np.ascontiguousarray(words, dtype=np.uint64)
    rows, n = words.shape
    with np.errstate(over="ignore"):
        s = np.full(rows, seed, dtype=np.uint64)
        i = 0
        if n >= 4:
            v1, v2 = s + _U(_P1) + _U(_P2), s + _U(_P2)
            v3, v4 = s.copy(), s - _U(_P1)
            while i + 4 <= n:
                v1 = _round(v1, words[:, i])
                v2 = _round(v2, words[:, i + 1])
                v3 = _round(v3, words[:, i + 2])
                v4 = _round(v4, words[:, i + 3])
                i += 4
            h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
            for v in (v1, v2, v3, v4):
                h = _merge(h, v)
        else:
            h = s + _U(_P5)
        h = h + _U(8 * n)
        zero = np.zeros(rows, dtype=np.uint64)
        while i < n:
            h = h ^ _round(zero, words[:, i])
            h = _rotl(h, 27) * _U(_P1) + _U(_P4)
            i += 1
        h = (h ^ (h >> _U(33))) * _U(_P2)
        h = (h ^ (h >> _U(29))) * _U(_P3)
        return h ^ (h >> _U(32))


def chain_next(
    digests: npt.NDArray[np.uint64], previous: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint64]:
    """Return each row's chain value from its digest and the chain value before it.

    Elementwise: ``chain_values([digests[i]], previous[i])[0]`` for every ``i`` at once,
    so that a journal whose rows each store their chain value has every link checked in
    a few array operations.
    """
    d = np.asarray(digests, dtype=np.uint64)
    with np.errstate(over="ignore"):
        lane = _rotl(d * _U(_P2), 31) * _U(_P1)
        h = (np.asarray(previous, dtype=np.uint64) + _U(_P5 + 8)) ^ lane
        h = _rotl(h, 27) * _U(_P1) + _U(_P4)
        h = (h ^ (h >> _U(33))) * _U(_P2)
        h = (h ^ (h >> _U(29))) * _U(_P3)
        return np.asarray(h ^ (h >> _U(32)))


def row_digests(
    fixed: npt.NDArray[np.int64],
    kind: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    blob: npt.NDArray[np.uint8],
) -> npt.NDArray[np.uint64]:
    """Return each row's digest from its columns, as `tradeloom.journal.chain.row_digests`."""
    rows = fixed.shape[0]
    if rows == 0:
        return np.zeros(0, dtype=np.uint64)
    head = np.concatenate(
        [fixed.astype(np.int64).view(np.uint64), np.broadcast_to(kind, (rows, len(kind)))], axis=1
    )
    width = head.shape[1]
    # each text's words: none (an empty added field), one (NULL, or empty: its length
    # word), or its length word and its bytes zero-padded to whole words
    sizes = np.where(lengths == ABSENT_TEXT, 0, np.where(lengths <= 0, 1, 1 + (lengths + 7) // 8))
    total = width + sizes.sum(axis=1)
    ends = np.cumsum(total)
    offsets = ends - total
    words = np.zeros(int(ends[-1]), dtype=np.uint64)
    words[offsets[:, None] + np.arange(width)] = head
    data = words.view(np.uint8)
    at = offsets + width
    for j in range(lengths.shape[1]):
        length = lengths[:, j]
        present = length != ABSENT_TEXT
        # a NULL's length -1 is, as uint64, the NULL word itself
        words[at[present]] = length[present].view(np.uint64)
        held = length > 0
        if bool(held.any()):
            count = length[held]
            first = np.cumsum(count) - count
            step = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(first, count)
            target = np.repeat((at[held] + 1) * 8, count) + step
            data[target] = blob[np.repeat(starts[held, j], count) + step]
        at = at + sizes[:, j]
    out = np.empty(rows, dtype=np.uint64)
    order = np.argsort(total, kind="stable")
    grouped = total[order]
    cuts = np.flatnonzero(np.diff(grouped)) + 1
    for members in np.split(order, cuts):
        n = int(total[members[0]])
        out[members] = xxh64(words[offsets[members][:, None] + np.arange(n)])
    return out
