"""Rolling windows: a ring buffer as explicit state, and per-window mean and std.

A ring of ``window`` values is a float64 array of ``window + 2``:

- ``ring[0]``: values pushed so far, saturating at ``window``;
- ``ring[1]``: the slot the next value goes to; once the ring is full, the slot of
  the oldest value, so the window in chronological order starts there;
- ``ring[2:]``: the slots.

The mean and standard deviation of a window ``x_0 .. x_{w-1}`` (oldest first) are
computed from that window alone, in two passes, with sums that start at 0.0 and add
their terms in chronological order:

- ``s = sum(x_k - x_0 for k = 1 .. w-1)`` and ``mean = x_0 + s * (1 / w)``;
- ``ss = sum((x_k - mean) ** 2 for k = 0 .. w-1)`` and
  ``std = sqrt(ss * (1 / (w - ddof)))``.

A running sum would drift (after a spike leaves the window, the subtraction leaves a
residue); here a value depends only on its window, bit for bit. A flat window gives
``s = 0``, a mean equal to its value and a std of exactly 0. A NaN in the window makes
both NaN.

The per-bar driver (`ring_mean_std`) and the batch driver (`block_mean_std`, over a
block of consecutive windows) perform the same operations in the same order, so they
agree bit for bit. The batch driver puts the loop over windows innermost, so LLVM
vectorises across windows and never reorders the terms of one window's sum.
"""

from __future__ import annotations

import math

from tradeloom.kernels.jit import kernel, python_form
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "BLOCK",
    "block_mean_std",
    "new_ring",
    "read_only",
    "ring_back",
    "ring_full",
    "ring_get",
    "ring_max",
    "ring_mean",
    "ring_mean_std",
    "ring_min",
    "ring_push",
    "rolling_mean_std",
    "rolling_std",
]

BLOCK = 512
"""Windows computed together by the batch driver: its buffers stay in the L1 cache."""


@kernel
def new_ring(window: int) -> np.ndarray:
    """Return an empty ring of ``window`` values."""
    return np.zeros(window + 2)


@kernel
def ring_push(ring: np.ndarray, value: float) -> None:
    """Append ``value``, dropping the oldest value of a full ring."""
    window = ring.size - 2
    pos = int(ring[1])
    ring[2 + pos] = value
    pos += 1
    ring[1] = 0.0 if pos == window else pos
    if ring[0] < window:
        ring[0] += 1.0


@kernel
def ring_full(ring: np.ndarray) -> bool:
    """Return whether the ring holds ``window`` values."""
    return bool(ring[0] >= ring.size - 2)


@kernel
def ring_get(ring: np.ndarray, k: int) -> float:
    """Return the ``k``-th value of a full ring in chronological order (0: the oldest)."""
    window = ring.size - 2
    i = int(ring[1]) + k
    if i >= window:
        i -= window
    return float(ring[2 + i])


@kernel
def ring_back(ring: np.ndarray, k: int) -> float:
    """Return the value pushed ``k`` pushes ago (1: the latest); NaN if there is none."""
    window = ring.size - 2
    if k > ring[0]:
        return math.nan
    i = int(ring[1]) - k
    if i < 0:
        i += window
    return float(ring[2 + i])


@kernel
def ring_mean(ring: np.ndarray) -> float:
    """Return the mean of a full ring (the first pass of the module's definition)."""
    window = ring.size - 2
    first = ring_get(ring, 0)
    total = 0.0
    for k in range(1, window):
        total += ring_get(ring, k) - first
    return first + total * (1.0 / window)


@kernel
def ring_mean_std(ring: np.ndarray, ddof: int) -> tuple[float, float]:
    """Return ``(mean, std)`` of a full ring, as defined in the module's docstring."""
    window = ring.size - 2
    mean = ring_mean(ring)
    total = 0.0
    for k in range(window):
        d = ring_get(ring, k) - mean
        total += d * d
    return mean, math.sqrt(total * (1.0 / (window - ddof)))


@kernel
def ring_max(ring: np.ndarray) -> float:
    """Return the largest value of a full ring."""
    best: float = ring[2]
    for i in range(3, ring.size):
        if ring[i] > best:
            best = ring[i]
    return best


@kernel
def ring_min(ring: np.ndarray) -> float:
    """Return the smallest value of a full ring."""
    best: float = ring[2]
    for i in range(3, ring.size):
        if ring[i] < best:
            best = ring[i]
    return best


@kernel
def _add_differences(acc: np.ndarray, x: np.ndarray, start: int, stop: int) -> None:
    # acc[j] += x[k + j] - x[j] for k = start .. stop - 1, in that order. Eight, four,
    # two or one terms per visit of acc: fewer loads and stores, same order of additions.
    m = acc.size
    first = x[:m]
    k = start
    while k + 8 <= stop:
        x1, x2, x3, x4 = x[k:], x[k + 1 :], x[k + 2 :], x[k + 3 :]
        x5, x6, x7, x8 = x[k + 4 :], x[k + 5 :], x[k + 6 :], x[k + 7 :]
        for j in range(m):
            y = first[j]
            s = acc[j]
            s += x1[j] - y
            s += x2[j] - y
            s += x3[j] - y
            s += x4[j] - y
            s += x5[j] - y
            s += x6[j] - y
            s += x7[j] - y
            s += x8[j] - y
            acc[j] = s
        k += 8
    if k + 4 <= stop:
        x1, x2, x3, x4 = x[k:], x[k + 1 :], x[k + 2 :], x[k + 3 :]
        for j in range(m):
            y = first[j]
            s = acc[j]
            s += x1[j] - y
            s += x2[j] - y
            s += x3[j] - y
            s += x4[j] - y
            acc[j] = s
        k += 4
    if k + 2 <= stop:
        x1, x2 = x[k:], x[k + 1 :]
        for j in range(m):
            y = first[j]
            s = acc[j]
            s += x1[j] - y
            s += x2[j] - y
            acc[j] = s
        k += 2
    if k < stop:
        x1 = x[k:]
        for j in range(m):
            acc[j] += x1[j] - first[j]


@kernel
def _add_squares(acc: np.ndarray, x: np.ndarray, stop: int, mean: np.ndarray) -> None:
    # acc[j] += (x[k + j] - mean[j]) ** 2 for k = 0 .. stop - 1, in that order.
    m = acc.size
    k = 0
    while k + 8 <= stop:
        x1, x2, x3, x4 = x[k:], x[k + 1 :], x[k + 2 :], x[k + 3 :]
        x5, x6, x7, x8 = x[k + 4 :], x[k + 5 :], x[k + 6 :], x[k + 7 :]
        for j in range(m):
            y = mean[j]
            s = acc[j]
            d = x1[j] - y
            s += d * d
            d = x2[j] - y
            s += d * d
            d = x3[j] - y
            s += d * d
            d = x4[j] - y
            s += d * d
            d = x5[j] - y
            s += d * d
            d = x6[j] - y
            s += d * d
            d = x7[j] - y
            s += d * d
            d = x8[j] - y
            s += d * d
            acc[j] = s
        k += 8
    if k + 4 <= stop:
        x1, x2, x3, x4 = x[k:], x[k + 1 :], x[k + 2 :], x[k + 3 :]
        for j in range(m):
            y = mean[j]
            s = acc[j]
            d = x1[j] - y
            s += d * d
            d = x2[j] - y
            s += d * d
            d = x3[j] - y
            s += d * d
            d = x4[j] - y
            s += d * d
            acc[j] = s
        k += 4
    if k + 2 <= stop:
        x1, x2 = x[k:], x[k + 1 :]
        for j in range(m):
            y = mean[j]
            s = acc[j]
            d = x1[j] - y
            s += d * d
            d = x2[j] - y
            s += d * d
            acc[j] = s
        k += 2
    if k < stop:
        x1 = x[k:]
        for j in range(m):
            d = x1[j] - mean[j]
            acc[j] += d * d


@python_form(_add_differences)
def _add_differences_by_rows(acc: np.ndarray, x: np.ndarray, start: int, stop: int) -> None:
    """`_add_differences` as Python: a whole-array step per k, the same additions in the
    same order for each element (numpy adds element by element, as the kernel does)."""
    m = acc.size
    first = x[:m]
    for k in range(start, stop):
        acc += x[k : k + m] - first


@python_form(_add_squares)
def _add_squares_by_rows(acc: np.ndarray, x: np.ndarray, stop: int, mean: np.ndarray) -> None:
    """`_add_squares` as Python, as `_add_differences_by_rows`."""
    m = acc.size
    for k in range(stop):
        d = x[k : k + m] - mean
        acc += d * d


@kernel
def block_mean_std(
    values: np.ndarray, end: int, window: int, ddof: int, mean: np.ndarray, std: np.ndarray
) -> None:
    """Compute the mean and std of consecutive windows, as `ring_mean_std` does one.

    Args:
        values: The series (C-contiguous).
        end: Index of the last value of the first window (>= ``window - 1``).
        window: Window length.
        ddof: Delta degrees of freedom of the std: 0 population, 1 sample.
        mean: Receives the means of the windows ending at ``end .. end + m - 1``,
            where ``m = mean.size`` (those indices must exist).
        std: Receives their standard deviations (same size as ``mean``).
    """
    m = mean.size
    x = values[end - window + 1 : end + m]
    mean[:] = 0.0
    _add_differences(mean, x, 1, window)
    inv_window = 1.0 / window
    for j in range(m):
        mean[j] = x[j] + mean[j] * inv_window
    std[:] = 0.0
    _add_squares(std, x, window, mean)
    inv_dof = 1.0 / (window - ddof)
    for j in range(m):
        std[j] = math.sqrt(std[j] * inv_dof)


@kernel
def rolling_mean_std(values: np.ndarray, window: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and std of every window ending at t; NaN for t < window - 1.

    Args:
        values: The series (C-contiguous float64).
        window: Window length (>= 2).
        ddof: Delta degrees of freedom of the std: 0 population, 1 sample.
    """
    n = values.size
    mean = np.empty(n)
    std = np.empty(n)
    head = min(n, window - 1)
    mean[:head] = math.nan
    std[:head] = math.nan
    for end in range(window - 1, n, BLOCK):
        m = min(BLOCK, n - end)
        block_mean_std(values, end, window, ddof, mean[end : end + m], std[end : end + m])
    return mean, std


def read_only(values: np.ndarray) -> np.ndarray:
    """Return a read-only view of ``values``, for a kernel that is also given columns.

    numba compiles a kernel once per argument type, and a read-only array (a pandas
    column, under copy-on-write) is a type of its own: passed the same way, a series the
    run computed shares the columns' compiled code.
    """
    view = values.view()
    view.flags.writeable = False
    return view


@kernel
def rolling_std(values: np.ndarray, window: int, ddof: int) -> np.ndarray:
    """Return the std of every window ending at t; NaN for t < window - 1.

    Args:
        values: The series (C-contiguous float64).
        window: Window length (>= 2).
        ddof: Delta degrees of freedom: 0 population (TA-Lib ``STDDEV``), 1 sample.
    """
    n = values.size
    out = np.empty(n)
    out[: min(n, window - 1)] = math.nan
    mean = np.empty(BLOCK)
    for end in range(window - 1, n, BLOCK):
        m = min(BLOCK, n - end)
        block_mean_std(values, end, window, ddof, mean[:m], out[end : end + m])
    return out
