"""numpy's sum of a float64 array, bit for bit, as a kernel.

``np.sum`` and ``np.mean`` of a contiguous float64 array add its items pairwise: blocks of
at most 128 items, each summed by eight accumulators then combined as
``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`` and the tail added one by one,
longer runs halved at a multiple of eight (``DOUBLE_pairwise_sum`` in numpy's
``_core/src/umath/loops_utils.h.src``); the reduction starts from the identity 0.0
(``np.sum([-0.0])`` is 0.0). A compiled pass that must give the figures numpy's passes
gave (`tradeloom.reporting.curve_moments`) sums in that order: a running sum differs in
the last bits. tests/reporting/test_curve_moments.py checks it against numpy at every
length that changes the order.
"""

from __future__ import annotations

import numpy as np

from tradeloom.kernels.jit import kernel, python_form

__all__ = ["pairwise_sum"]

_BLOCK = 128
"""numpy's ``PW_BLOCKSIZE``: the longest run summed by one set of accumulators."""
_DEPTH = 64
"""Halvings of a run of at most 2**63 items, the deepest the walk goes."""


@kernel
def pairwise_sum(a: np.ndarray, start: int, count: int) -> float:
    """Return ``np.sum(a[start:start + count])`` (``a`` float64), in numpy's order."""
    return 0.0 + _pairwise(a, start, count)


@kernel
def _pairwise(a: np.ndarray, start: int, count: int) -> float:
    """numpy's recursion (halves at a multiple of eight, blocks of `_BLOCK` summed by
    `_block`) walked with a stack of its own: numba's cache cannot hold a kernel that
    calls itself (a recursive one loaded from the cache crashed)."""
    if count <= _BLOCK:
        return _block(a, start, count)
    starts = np.empty(_DEPTH, np.int64)
    counts = np.empty(_DEPTH, np.int64)
    stages = np.zeros(_DEPTH, np.int64)  # 0: to halve, 1: left half summed, 2: both
    lefts = np.empty(_DEPTH)
    starts[0], counts[0] = start, count
    depth = 0
    total = 0.0  # the sum of the run last finished
    while depth >= 0:
        run_start, run_count = starts[depth], counts[depth]
        if run_count <= _BLOCK:
            total = _block(a, run_start, run_count)
            depth -= 1
            continue
        half = run_count // 2
        half -= half % 8
        stage = stages[depth]
        if stage == 2:  # both halves summed: left + right, as numpy adds them
            total = lefts[depth] + total
            depth -= 1
            continue
        if stage == 1:
            lefts[depth] = total
            stages[depth] = 2
            run_start, half = run_start + half, run_count - half  # the right half next
        else:
            stages[depth] = 1
        depth += 1
        starts[depth], counts[depth], stages[depth] = run_start, half, 0
    return total


@kernel
def _block(a: np.ndarray, start: int, count: int) -> float:
    """numpy's sum of a run of at most `_BLOCK` items."""
    if count < 8:
        res = -0.0  # numpy's: keeps the sign of a sum of -0.0
        for i in range(start, start + count):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    end = start + count - count % 8
    for i in range(start + 8, end, 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
    total: float = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, start + count):
        total += a[i]
    return total


@python_form(pairwise_sum)
def _pairwise_sum_as_python(a: np.ndarray, start: int, count: int) -> float:
    """`pairwise_sum` as Python (`tradeloom.kernels.jit.python_form`): numpy's own sum."""
    return float(a[start : start + count].sum())
