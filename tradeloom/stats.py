"""Statistics shared by monitoring and the run metrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import released_kernel

__all__ = [
    "RELIABILITY_BINS",
    "auc",
    "binned_calibration_error",
    "calibration_error",
    "resolved_pairs",
]

RELIABILITY_BINS = 10
"""Equal-width probability bins of a reliability diagram and its ECE: a fold's, the
calibration monitor's, a book's (status, the report) and a promotion's health."""


def resolved_pairs(
    probabilities: npt.NDArray[np.float64], closes: npt.NDArray[np.float64], horizon: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Return the predictions whose label is known, every symbol's pooled (symbol by
    symbol, in the columns' order), and their labels.

    The one rule of a live book's resolved predictions (the figures of status, the console
    and the report; a promotion gate's health; a canary's and a watch's rollback): each
    symbol's own bars are the rows where its close is known (NaN: it had no bar); its
    probability at its k-th own bar is labelled up when its close at its (k + ``horizon``)-th
    own bar is above its close at the k-th; a NaN probability, or one whose later bar is
    not in ``closes`` yet, is left out.

    Args:
        probabilities: ``[bars, symbols]``: the model's probability at each bar (NaN: none).
        closes: ``[bars, symbols]``: each symbol's close at the same bars.
        horizon: The label's horizon, in the symbol's own bars.
    """
    scores: list[npt.NDArray[np.float64]] = [np.zeros(0)]
    ups: list[npt.NDArray[np.bool_]] = [np.zeros(0, dtype=bool)]
    for s in range(probabilities.shape[1]):
        own = ~np.isnan(closes[:, s])
        p, c = probabilities[own, s], closes[own, s]
        n = len(p) - horizon
        if n <= 0:
            continue
        known = ~np.isnan(p[:n])
        scores.append(p[:n][known])
        ups.append((c[horizon:] > c[:n])[known])
    return np.concatenate(scores), np.concatenate(ups)


def calibration_error(
    p: npt.NDArray[np.float64], y: npt.NDArray[np.float64], bins: int
) -> tuple[float, npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the ECE of probabilities ``p`` against outcomes ``y`` (0 or 1), and the bins:
    ``sum_b (n_b / n) |mean p_b - mean y_b|`` over ``bins`` equal-width bins of p (p = 1
    falls in the last bin).

    Returns:
        ``(ece, counts, predicted, observed)``: per bin the number of predictions, their
        mean probability and the share of up moves (NaN for an empty bin).
    """
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    p_sums = np.bincount(index, weights=p, minlength=bins)
    y_sums = np.bincount(index, weights=y, minlength=bins)
    return binned_calibration_error(counts, p_sums, y_sums)


def binned_calibration_error(
    counts: npt.NDArray[np.int64], p_sums: npt.NDArray[Any], y_sums: npt.NDArray[Any]
) -> tuple[float, npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return `calibration_error` from its bins' sums: per bin the number of predictions,
    the sum of their probabilities (added in the predictions' order, from 0.0, as
    ``np.bincount`` adds) and of their outcomes (a running book's, kept as they come:
    `tradeloom.live.lifecycle.prediction_health.HealthBook`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = p_sums / counts
        observed = y_sums / counts
    filled = counts > 0
    gaps = np.abs(predicted[filled] - observed[filled])
    return float(np.sum(counts[filled] * gaps) / int(counts.sum())), counts, predicted, observed


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
        twice_u = _levels_twice_u(scores, positive)
        if twice_u is not None:
            return float(twice_u / 2.0 / (n_pos * n_neg))
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


_LEVELS = 8
"""Most distinct scores counted level by level (`_levels_twice_u`) rather than sorted."""

_SAMPLE = 4096
"""Scores whose distinct values guess the levels of all of them (`_levels_twice_u`)."""


def _levels_twice_u(scores: np.ndarray, positive: np.ndarray) -> int | None:
    """Return twice Mann-Whitney's U of ``scores`` (no NaN) where they take at most
    `_LEVELS` distinct values (a precomputed column of 0, 0.5 and 1; a threshold's
    scores), counted level by level in a few passes instead of sorted; None otherwise.

    Each level's positives count the negatives at lower levels twice and those level
    with them once: the integer `_twice_u` returns, so `auc` is the same to the bit.
    """
    if len(scores) < _SAMPLE:
        return None  # a few scores sort in less time than the levels are found
    levels = np.unique(scores[:_SAMPLE])  # ascending; -0.0 and 0.0 one level, as ==
    if len(levels) > _LEVELS:
        return None
    counted = 0
    below = total = 0
    for level in levels.tolist():
        at = scores == level
        hits = int(np.count_nonzero(at & positive))
        level_count = int(np.count_nonzero(at))
        misses = level_count - hits
        total += hits * (2 * below + misses)
        below += misses
        counted += level_count
    return total if counted == len(scores) else None  # a level the sample missed: sort


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
