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

__all__ = ["ITEMS", "SQUARED_DEVIATIONS", "SQUARED_LOSSES", "pairwise_sum", "pairwise_sum_of"]

_BLOCK = 128
"""numpy's ``PW_BLOCKSIZE``: the longest run summed by one set of accumulators."""
_DEPTH = 64
"""Halvings of a run of at most 2**63 items, the deepest the walk goes."""


ITEMS = 0
"""`pairwise_sum_of`'s terms: the items themselves."""
SQUARED_DEVIATIONS = 1
"""`pairwise_sum_of`'s terms: each item's squared deviation from ``center``
(``(a - center) ** 2`` as numpy's ``_var`` writes them)."""
SQUARED_LOSSES = 2
"""`pairwise_sum_of`'s terms: ``np.minimum(a, 0.0) ** 2`` (a NaN stays NaN)."""


@kernel
def pairwise_sum(a: np.ndarray, start: int, count: int) -> float:
    """Return ``np.sum(a[start:start + count])`` (``a`` float64), in numpy's order."""
    return 0.0 + _pairwise(a, start, count, ITEMS, 0.0)


@kernel
def pairwise_sum_of(a: np.ndarray, start: int, count: int, terms: int, center: float) -> float:
    """Return numpy's sum, in numpy's order, of an array of ``terms`` (`ITEMS`,
    `SQUARED_DEVIATIONS` from ``center``, `SQUARED_LOSSES`) of ``a[start:start +
    count]``, each term made as it is added rather than written to an array first:
    the same terms added in the same order, so the same bits as `pairwise_sum` of that
    array."""
    return 0.0 + _pairwise(a, start, count, terms, center)


@kernel
def _term(a: np.ndarray, i: int, terms: int, center: float) -> float:
    value: float = a[i]
    if terms == SQUARED_DEVIATIONS:
        deviation = value - center
        return deviation * deviation
    if terms == SQUARED_LOSSES:
        loss = value if value < 0.0 or value != value else 0.0  # `np.minimum(a, 0.0)`
        return loss * loss
    return value


@kernel
def _pairwise(a: np.ndarray, start: int, count: int, terms: int, center: float) -> float:
    """numpy's recursion (halves at a multiple of eight, blocks of `_BLOCK` summed by
    `_block`) walked with a stack of its own: numba's cache cannot hold a kernel that
    calls itself (a recursive one loaded from the cache crashed)."""
    if count <= _BLOCK:
        return _block(a, start, count, terms, center)
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
            total = _block(a, run_start, run_count, terms, center)
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
def _block(a: np.ndarray, start: int, count: int, terms: int, center: float) -> float:
    """numpy's sum of a run of at most `_BLOCK` terms."""
    if terms == SQUARED_DEVIATIONS:  # each loop of its own: the choice out of the loop
        return _block_of(a, start, count, SQUARED_DEVIATIONS, center)
    if terms == SQUARED_LOSSES:
        return _block_of(a, start, count, SQUARED_LOSSES, center)
    return _block_of(a, start, count, ITEMS, center)


@kernel
def _block_of(a: np.ndarray, start: int, count: int, terms: int, center: float) -> float:
    if count < 8:
        res = -0.0  # numpy's: keeps the sign of a sum of -0.0
        for i in range(start, start + count):
            res += _term(a, i, terms, center)
        return res
    r0, r1 = _term(a, start, terms, center), _term(a, start + 1, terms, center)
    r2, r3 = _term(a, start + 2, terms, center), _term(a, start + 3, terms, center)
    r4, r5 = _term(a, start + 4, terms, center), _term(a, start + 5, terms, center)
    r6, r7 = _term(a, start + 6, terms, center), _term(a, start + 7, terms, center)
    end = start + count - count % 8
    for i in range(start + 8, end, 8):
        r0 += _term(a, i, terms, center)
        r1 += _term(a, i + 1, terms, center)
        r2 += _term(a, i + 2, terms, center)
        r3 += _term(a, i + 3, terms, center)
        r4 += _term(a, i + 4, terms, center)
        r5 += _term(a, i + 5, terms, center)
        r6 += _term(a, i + 6, terms, center)
        r7 += _term(a, i + 7, terms, center)
    total: float = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, start + count):
        total += _term(a, i, terms, center)
    return total


@python_form(pairwise_sum)
def _pairwise_sum_as_python(a: np.ndarray, start: int, count: int) -> float:
    """`pairwise_sum` as Python (`tradeloom.kernels.jit.python_form`): numpy's own sum."""
    return float(a[start : start + count].sum())


@python_form(pairwise_sum_of)
def _pairwise_sum_of_as_python(
    a: np.ndarray, start: int, count: int, terms: int, center: float
) -> float:
    """`pairwise_sum_of` as Python: numpy's sum of the array of those terms."""
    x = a[start : start + count]
    if terms == SQUARED_DEVIATIONS:
        x = x - center
        x = x * x
    elif terms == SQUARED_LOSSES:
        x = np.minimum(x, 0.0)
        x = x * x
    return float(x.sum())
