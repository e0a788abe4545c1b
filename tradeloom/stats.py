"""Statistics shared by monitoring and the run metrics."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import released_kernel

__all__ = ["auc"]


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Return the ROC AUC of ``scores`` for the boolean labels ``positive`` (NaN if one class).

    Mann-Whitney U with average ranks for ties: the value of
    ``sklearn.metrics.roc_auc_score``.
    """
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    if not np.isnan(scores).any():
        return _sorted_auc(scores, positive, n_pos, n_neg)
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _sorted_auc(scores: np.ndarray, positive: np.ndarray, n_pos: int, n_neg: int) -> float:
    """`auc` of scores with no NaN, from the positives' and the negatives' scores each
    sorted and walked together once: each positive counts the negatives below it and
    half those level with it (Mann-Whitney U, average ranks for ties).

    The same number as ranking every score: U is a count of halves below 2**53, exact
    in any order.
    """
    hits = np.sort(scores[positive])
    misses = np.sort(scores[~positive])
    u = _twice_u(hits, misses) / 2.0
    return float(u / (n_pos * n_neg))


@released_kernel
def _twice_u(hits: npt.NDArray[np.float64], misses: npt.NDArray[np.float64]) -> int:
    """Return twice Mann-Whitney's U of the sorted ``hits`` over the sorted ``misses``:
    for each hit, the misses below it plus the misses at or below it."""
    below = level = total = 0
    n = len(misses)
    for hit in hits:
        while below < n and misses[below] < hit:
            below += 1
        level = max(level, below)
        while level < n and misses[level] <= hit:
            level += 1
        total += below + level
    return total
