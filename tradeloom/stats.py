"""Statistics shared by monitoring and the run metrics."""

from __future__ import annotations

import math

import numpy as np

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
    """`auc` of scores with no NaN, from two sorts of values (no sort of indices): each
    distinct score's average rank times the positives holding it.

    The same number as ranking every score: a rank is a multiple of a half and their
    sum is below 2**53, so every sum and product here is exact in any order.
    """
    ordered = np.sort(scores)
    boundaries = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    values = ordered[starts]
    hits = np.sort(scores[positive])
    held = np.searchsorted(hits, values, "right") - np.searchsorted(hits, values, "left")
    u = float(((starts + ends + 1) / 2.0 * held).sum()) - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
