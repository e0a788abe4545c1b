"""Walk-forward fold planning with purging: which rows each fold trains on, which bars it predicts.

Pure functions over bar indices, with no estimator and no data, so that the plan can be
tested exhaustively and shared by every driver (serial or parallel training). `check_purging`
checks a plan against what each row's label and features actually reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.domain import ModelTraining

__all__ = [
    "Fold",
    "PurgingError",
    "RetrainPlan",
    "WalkForward",
    "check_purging",
    "fitted_history",
    "plan_checked_folds",
    "plan_checked_retrain",
    "plan_folds",
    "plan_next_fold",
    "plan_retrain",
    "predicts_latest",
]


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


class WalkForward(Protocol):
    """A model's walk-forward plan, as `plan_folds` takes it."""

    @property
    def horizon(self) -> int:
        """Label horizon in bars."""

    @property
    def train_window(self) -> int:
        """Most rows a fold trains on."""

    @property
    def retrain_every(self) -> int:
        """Bars each scheduled fold predicts."""

    @property
    def min_train_rows(self) -> int:
        """Fewest rows a fold trains on."""

    @property
    def embargo(self) -> int:
        """Bars dropped before the purged rows."""


class _Rows(Protocol):
    """What a model's `fit_predict` kept of its data for `retrain`."""

    @property
    def trainable(self) -> npt.NDArray[np.bool_]:
        """Per bar, whether its row may be trained on."""

    @property
    def usable(self) -> npt.NDArray[np.bool_]:
        """Per bar, whether its row can be predicted."""

    @property
    def folds(self) -> tuple[Fold, ...]:
        """The scheduled folds."""


def plan_checked_folds(trainable: npt.NDArray[np.bool_], plan: WalkForward) -> list[Fold]:
    """`plan_folds` over the bars of a backtest's data, checked by `check_purging`.

    Every label of row i is known at bar i + horizon (labels.py): a plan that lets a
    fold train on one reaching its predictions is a bug, never a user's mistake.

    Raises:
        PurgingError: A fold leaks.
    """
    n, horizon = len(trainable), plan.horizon
    every, least = plan.retrain_every, plan.min_train_rows
    folds = plan_folds(n, trainable, horizon, plan.train_window, every, least, plan.embargo)
    check_purging(folds, trainable, np.arange(n) + horizon)
    return folds


@dataclass(frozen=True)
class RetrainPlan:
    """A fold of `plan_retrain` over a backtest's data, with the rows it trains on and
    the bars it predicts.

    Attributes:
        fold: The fold.
        rows: The rows it trains on.
        bars: Every bar it predicts.
        segment: Those of ``bars`` whose rows are usable (a prediction is made there).
    """

    fold: Fold
    rows: npt.NDArray[np.intp]
    bars: npt.NDArray[np.intp]
    segment: npt.NDArray[np.intp]


_History = TypeVar("_History")


def fitted_history(history: _History | None) -> _History:
    """Return what a model's `fit_predict` kept of its data for `retrain`.

    Raises:
        RuntimeError: ``history`` is None: `retrain` was called before `fit_predict`.
    """
    if history is None:
        raise RuntimeError("retrain needs the data of fit_predict; call it first")
    return history


def plan_checked_retrain(bar: int, history: _Rows, plan: WalkForward) -> RetrainPlan | None:
    """`plan_retrain` at ``bar`` over the rows of a backtest's data (``history``), the
    fold checked by `check_purging` against labels reaching ``horizon`` bars ahead.

    Returns:
        The plan, or None when there is nothing to retrain (see `plan_retrain`).

    Raises:
        PurgingError: The fold leaks.
    """
    trainable, horizon = history.trainable, plan.horizon
    window, least, embargo = plan.train_window, plan.min_train_rows, plan.embargo
    fold = plan_retrain(bar, trainable, horizon, window, least, embargo, history.folds)
    if fold is None:
        return None
    check_purging([fold], trainable, np.arange(len(trainable)) + horizon)
    bars = np.arange(fold.predict_start, fold.predict_end + 1)
    return RetrainPlan(fold, fold.training_rows(trainable), bars, bars[history.usable[bars]])


def plan_next_fold(
    trainable: npt.NDArray[np.bool_], plan: WalkForward, reason: str | None
) -> tuple[Fold, str, npt.NDArray[np.intp]] | None:
    """Plan the fold a paper or live driver trains at the last bar's close, predicting
    from the next bar, as the backtest's plan has it.

    The scheduled fold starting at the next bar; else, with a ``reason``, a fold of
    `plan_retrain` predicting up to the next scheduled fold. The fold is checked by
    `check_purging` and keeps the backtest's (unclipped) ``predict_end``.

    Args:
        trainable: Per bar so far, whether its row may be trained on.
        plan: The model's walk-forward plan.
        reason: Why a fold is retrained off schedule (None: only a scheduled fold).

    Returns:
        The fold, its kind (``"scheduled"`` or ``reason``) and its training rows, or
        None when no fold is due or possible.

    Raises:
        PurgingError: The fold leaks.
    """
    horizon, window, every = plan.horizon, plan.train_window, plan.retrain_every
    least, embargo = plan.min_train_rows, plan.embargo
    n = len(trainable)
    mask = np.append(trainable, False)  # the next bar: known to exist, not its label
    folds = plan_folds(n + 1, mask, horizon, window, every, least, embargo)
    fold = next((f for f in folds if f.predict_start == n), None)
    kind, end = "scheduled", n + every - 1
    if fold is None and reason is not None:
        fold = plan_retrain(n - 1, mask, horizon, window, least, embargo, folds)
        kind, end = reason, n
        if folds:  # it predicts up to the next scheduled fold
            first = folds[0].predict_start
            end = first + -(-(n - first) // every) * every - 1
    if fold is None:
        return None
    check_purging([fold], mask, np.arange(n + 1) + horizon)
    fold = replace(fold, predict_end=end)  # as the backtest's fold (unclipped) has it
    return fold, kind, fold.training_rows(mask)


def predicts_latest(fold: Fold, latest: ModelTraining | None) -> bool:
    """Whether ``fold`` predicts bars at least as late as the training ``latest`` (None:
    there is none), as the registry's index picks its latest: the fold predicting the last bars."""
    return latest is None or (fold.predict_end, fold.predict_start) >= (
        latest.predict_end,
        latest.predict_start,
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
