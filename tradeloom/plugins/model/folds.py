"""Walk-forward fold planning with purging: which rows each fold trains on, which bars it predicts.

Pure functions over bar indices, with no estimator and no data, so that the plan can be
tested exhaustively and shared by every driver (serial or parallel training). `check_purging`
checks a plan against what each row's label and features actually reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["Fold", "PurgingError", "check_purging", "plan_folds", "plan_retrain"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold. Bar indices are inclusive.

    Attributes:
        index: The fold's number, from 0.
        train_start: First training row.
        train_end: Last training row; purging and the embargo guarantee
            ``train_end + horizon + embargo < predict_start``.
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
    embargo: int = 0,
) -> list[Fold]:
    """Plan purged, embargoed walk-forward folds over ``n_bars`` bars.

    Fold k predicts bars ``[s_k, s_k + retrain_every - 1]`` (clipped to the last bar) and
    trains on the last ``train_window`` valid rows ``i`` with ``i + horizon + embargo <
    s_k``: the label of row ``i`` looks ``horizon`` bars ahead, so a row whose label ends
    at ``s_k`` or later is not known when ``s_k`` is predicted and is purged; the embargo
    drops ``embargo`` more rows before that, whose returns are serially correlated with
    the first predicted bars. The first fold starts at the earliest bar with at least
    ``min_train_rows`` such rows; bars before it get no fold.

    Args:
        n_bars: Number of bars.
        valid_mask: Per bar, whether the row may be trained on (its features are valid).
        horizon: Label horizon in bars (>= 1).
        train_window: Most rows a fold trains on (>= 1).
        retrain_every: Bars each fold predicts (>= 1).
        min_train_rows: Fewest rows the first fold trains on (>= 1).
        embargo: Bars dropped from training before each fold's purged rows (>= 0).

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
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0, was {embargo}")
    gap = horizon + embargo  # a row i trains fold s only if i + gap < s
    rows_at = np.flatnonzero(valid)
    if len(rows_at) < min_train_rows:
        return []
    # The min_train_rows-th valid row is the last one the first fold needs; its label ends
    # at row + horizon, and the embargo keeps it embargo bars further, so the first bar
    # that may use it is one later.
    first = int(rows_at[min_train_rows - 1]) + gap + 1
    # counts[j] = number of valid rows in [0, j].
    counts = np.cumsum(valid)
    folds: list[Fold] = []
    for index, start in enumerate(range(first, n_bars, retrain_every)):
        available = int(counts[start - gap - 1])
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


def plan_retrain(
    bar: int,
    valid_mask: npt.ArrayLike,
    horizon: int,
    train_window: int,
    min_train_rows: int,
    embargo: int,
    scheduled: Sequence[Fold],
) -> Fold | None:
    """Plan a fold trained at ``bar``'s close, between the scheduled folds.

    The fold predicts ``bar + 1`` up to the bar before the next scheduled fold's first
    bar (or the last bar), and trains as `plan_folds` would train a fold starting at
    ``bar + 1``: on the last ``train_window`` valid rows ``i`` with ``i + horizon +
    embargo < bar + 1``, the rows whose labels are known at ``bar``. The scheduled
    folds are not changed. It keeps the number of the scheduled fold whose bars it
    takes over: a number that depends only on the folds started by ``bar`` (how many
    folds the rest of the data holds is not known at ``bar``).

    Args:
        bar: The bar at whose close it trains.
        valid_mask: Per bar, whether the row may be trained on.
        horizon: Label horizon in bars (>= 1).
        train_window: Most rows it trains on (>= 1).
        min_train_rows: Fewest rows it trains on (>= 1).
        embargo: Bars dropped before the purged rows (>= 0).
        scheduled: The folds of `plan_folds`, in order.

    Returns:
        The fold, or None when there is no bar to predict before the next scheduled fold
        (``bar`` is the last bar, or one starts at ``bar + 1``) or fewer than
        ``min_train_rows`` rows are known at ``bar``.

    Raises:
        ValueError: ``bar`` is not a bar of the mask.
    """
    valid = np.asarray(valid_mask, dtype=bool)
    n = len(valid)
    if not 0 <= bar < n:
        raise ValueError(f"bar must be in [0, {n - 1}], was {bar}")
    start = bar + 1
    end = min((f.predict_start for f in scheduled if f.predict_start > bar), default=n) - 1
    if end < start:
        return None
    rows_at = np.flatnonzero(valid[: max(start - horizon - embargo, 0)])
    if len(rows_at) < min_train_rows:
        return None
    kept = rows_at[-train_window:]
    return Fold(
        index=max((f.index for f in scheduled if f.predict_start <= bar), default=0),
        train_start=int(kept[0]),
        train_end=int(kept[-1]),
        predict_start=start,
        predict_end=end,
        rows=len(kept),
    )


class PurgingError(AssertionError):
    """A fold trains on a row whose label or features reach its predictions (a leak)."""


def check_purging(
    folds: Sequence[Fold],
    valid_mask: npt.ArrayLike,
    label_reach: npt.ArrayLike,
    feature_reach: npt.ArrayLike | None = None,
) -> None:
    """Check that no fold learns anything from the bars it predicts, or later.

    The reach of a row is the last bar its values use: ``i + horizon`` for a label of
    horizon ``horizon``, ``i`` for a causal feature. A fold predicting from bar ``s`` may
    train only on rows whose label and features all reach bars before ``s``, and may
    predict a bar ``p`` only from features reaching no bar after ``p``.

    Args:
        folds: The plan to check.
        valid_mask: The mask the plan was made with (it decides the training rows).
        label_reach: Per row, the last bar its label uses (NaN or any value for rows that
            are not valid).
        feature_reach: Per row, the last bar its features use (default: the row itself).

    Raises:
        PurgingError: Naming the first violation in fold order and how many folds have one.
    """
    valid = np.asarray(valid_mask, dtype=bool)
    n = len(valid)
    label = np.asarray(label_reach, dtype=np.float64)
    feature = (
        np.arange(n, dtype=np.float64)
        if feature_reach is None
        else np.asarray(feature_reach, dtype=np.float64)
    )
    if label.shape != (n,) or feature.shape != (n,):
        raise ValueError(
            f"label_reach and feature_reach must have shape ({n},), "
            f"have {label.shape} and {feature.shape}"
        )
    reach = np.fmax(label, feature)
    problems: list[str] = []
    for fold in folds:
        s = fold.predict_start
        rows = fold.training_rows(valid)
        late = rows[reach[rows] >= s]
        if len(late):
            row = int(late[0])
            what = "label reaches" if label[row] >= s else "features reach"
            problems.append(
                f"fold {fold.index} trains on row {row} whose {what} bar "
                f"{_bar(reach[row])}, not before its first predicted bar {s}"
            )
            continue
        segment = np.arange(s, fold.predict_end + 1)
        ahead = segment[feature[segment] > segment]
        if len(ahead):
            bar = int(ahead[0])
            problems.append(
                f"fold {fold.index} predicts bar {bar} from features that reach bar "
                f"{_bar(feature[bar])}, after the bar itself"
            )
    if problems:
        more = f" ({len(problems) - 1} more folds leak)" if len(problems) > 1 else ""
        raise PurgingError(f"look-ahead in walk-forward training: {problems[0]}{more}")


def _bar(value: float) -> str:
    return str(int(value)) if np.isfinite(value) else str(value)
