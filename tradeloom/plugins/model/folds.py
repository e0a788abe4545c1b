"""Walk-forward fold planning with purging: which rows each fold trains on, which bars it predicts.

Pure functions over bar indices, with no estimator and no data, so that the plan can be
tested exhaustively and shared by every driver (sequential now, parallel training later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Fold", "plan_folds"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold. Bar indices are inclusive.

    Attributes:
        index: The fold's number, from 0.
        train_start: First training row.
        train_end: Last training row; purging guarantees ``train_end + horizon < predict_start``.
        predict_start: First bar the fold predicts.
        predict_end: Last bar the fold predicts.
        rows: How many training rows: the valid rows in ``[train_start, train_end]``.
    """

    index: int
    train_start: int
    train_end: int
    predict_start: int
    predict_end: int
    rows: int

    def training_rows(self, valid_mask: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Return the indices of the rows this fold trains on.

        Args:
            valid_mask: The mask the fold was planned with.
        """
        window = np.asarray(valid_mask, dtype=bool)[self.train_start : self.train_end + 1]
        return np.flatnonzero(window) + self.train_start


def plan_folds(
    n_bars: int,
    valid_mask: npt.ArrayLike,
    horizon: int,
    train_window: int,
    retrain_every: int,
    min_train_rows: int,
) -> list[Fold]:
    """Plan purged walk-forward folds over ``n_bars`` bars.

    Fold k predicts bars ``[s_k, s_k + retrain_every - 1]`` (clipped to the last bar) and
    trains on the last ``train_window`` valid rows ``i`` with ``i + horizon < s_k``: the
    label of row ``i`` looks ``horizon`` bars ahead, so a row whose label ends at ``s_k``
    or later is not known when ``s_k`` is predicted and is purged. The first fold starts at
    the earliest bar with at least ``min_train_rows`` such rows; bars before it get no fold.

    Args:
        n_bars: Number of bars.
        valid_mask: Per bar, whether the row may be trained on (its features are valid).
        horizon: Label horizon in bars (>= 1).
        train_window: Most rows a fold trains on (>= 1).
        retrain_every: Bars each fold predicts (>= 1).
        min_train_rows: Fewest rows the first fold trains on (>= 1).

    Returns:
        The folds in order; their prediction segments are contiguous, do not overlap and
        end at the last bar. Empty if no bar has enough rows before it.

    Raises:
        ValueError: An argument is out of range, or the mask's length is not ``n_bars``.
    """
    valid = np.asarray(valid_mask, dtype=bool)
    if n_bars < 0 or valid.shape != (n_bars,):
        raise ValueError(f"valid_mask must have shape ({n_bars},), has {valid.shape}")
    for name, value in (
        ("horizon", horizon),
        ("train_window", train_window),
        ("retrain_every", retrain_every),
        ("min_train_rows", min_train_rows),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, was {value}")
    rows_at = np.flatnonzero(valid)
    if len(rows_at) < min_train_rows:
        return []
    # The min_train_rows-th valid row is the last one the first fold needs; its label ends
    # at row + horizon, so the first bar that may use it is one later.
    first = int(rows_at[min_train_rows - 1]) + horizon + 1
    # counts[j] = number of valid rows in [0, j].
    counts = np.cumsum(valid)
    folds: list[Fold] = []
    for index, start in enumerate(range(first, n_bars, retrain_every)):
        available = int(counts[start - horizon - 1])
        rows = min(train_window, available)
        folds.append(
            Fold(
                index=index,
                train_start=int(rows_at[available - rows]),
                train_end=int(rows_at[available - 1]),
                predict_start=start,
                predict_end=min(start + retrain_every, n_bars) - 1,
                rows=rows,
            )
        )
    return folds
