"""The journal's hash chain without compiling: numpy over many rows at once, for readers.

The same numbers as the kernels of `tradeloom.journal.chain` (the tests compare them
with each other and with the ``xxhash`` library), computed with numpy's wrapping
uint64 arithmetic, so that ``status`` (the chain seed) and ``journal verify`` (every
row) answer without importing numba and compiling. Rows with the same number of words
are hashed together, one numpy operation per word for the whole group; the chain
itself, one row after another, runs on Python integers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from tradeloom.journal.chain import ABSENT_TEXT, NULL_TEXT

__all__ = ["chain_values", "row_digests", "xxh64"]

_U = np.uint64
_P1, _P2, _P3, _P4, _P5 = (
    0x9E3779B185EBCA87,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0x85EBCA77C2B2AE63,
    0x27D4EB2F165667C5,
)
_MASK = (1 << 64) - 1


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


def _chain_one(digest: int, previous: int) -> int:
    # XXH64 of one word's 8 bytes, unrolled, on Python integers
    lane = (digest * _P2) & _MASK
    lane = (((lane << 31) | (lane >> 33)) & _MASK) * _P1 & _MASK
    h = ((previous + _P5 + 8) & _MASK) ^ lane
    h = ((((h << 27) | (h >> 37)) & _MASK) * _P1 + _P4) & _MASK
    h = ((h ^ (h >> 33)) * _P2) & _MASK
    h = ((h ^ (h >> 29)) * _P3) & _MASK
    return h ^ (h >> 32)


def chain_values(digests: Iterable[int], seed: int) -> npt.NDArray[np.uint64]:
    """Return the chain value after each digest (in sequence order), starting at ``seed``."""
    out = []
    h = int(seed)
    for digest in digests:
        h = _chain_one(int(digest), h)
        out.append(h)
    return np.array(out, dtype=np.uint64)


def row_digests(
    fixed: npt.NDArray[np.int64],
    kind: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    blob: npt.NDArray[np.uint8],
) -> npt.NDArray[np.uint64]:
    """Return each row's digest from its columns, as `tradeloom.journal.chain.row_digests`."""
    rows = fixed.shape[0]
    head = np.concatenate(
        [fixed.astype(np.int64).view(np.uint64), np.broadcast_to(kind, (rows, len(kind)))], axis=1
    )
    data = blob.tobytes()
    groups: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for i in range(rows):
        parts = [head[i].tobytes()]
        for length, start in zip(lengths[i].tolist(), starts[i].tolist(), strict=True):
            if length == ABSENT_TEXT:
                continue
            if length < 0:
                parts.append(NULL_TEXT.to_bytes(8, "little"))
                continue
            parts.append(length.to_bytes(8, "little"))
            parts.append(data[start : start + length] + b"\0" * (-length % 8))
        words = b"".join(parts)
        groups[len(words) // 8].append((i, words))
    out = np.empty(rows, dtype=np.uint64)
    for n, members in groups.items():
        index = np.array([i for i, _ in members], dtype=np.intp)
        matrix = np.frombuffer(b"".join(w for _, w in members), dtype=np.uint64)
        out[index] = xxh64(matrix.reshape(len(members), n))
    return out
