"""Training over a universe: one model per symbol, or one pooled model on the common clock.

``per_symbol``: each symbol gets its own copy of the model, trained walk-forward on its
own bars as a one-symbol strategy's model is; its predictions and folds are then placed
on the clock. ``pooled``: one estimator is trained on the rows of every symbol
(`pooled_rows`, `tradeloom.plugins.model.sklearn_model.SklearnModel`). Its folds are
planned on the clock by `plan_pooled_folds`: a fold predicting from clock bar ``s``
trains only on rows (of any symbol) whose label is known ``embargo`` bars before ``s``,
a label being known at the clock bar of its symbol's bar ``horizon`` bars ahead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeloom.domain import Bars, Universe
from tradeloom.plugins.model.folds import Fold, PurgingError
from tradeloom.plugins.protocols_symbols import fit_per_symbol, on_clock
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

RowsOf = Callable[[Bars, "pd.DataFrame"], tuple[Any, Any, Any, Any]]
"""A model's rows of one symbol: features, labels, usable and trainable masks."""

__all__ = [
    "SYMBOL_ID",
    "PooledRows",
    "fit_per_symbol",
    "on_clock",
    "plan_pooled_folds",
    "pooled_rows",
]

SYMBOL_ID = "symbol_id"
"""The column a pooled model with ``symbol_id: true`` adds: the symbol's index in the file."""


@dataclass(frozen=True)
class PooledRows:
    """Every symbol's rows, stacked in clock order (by bar, then symbol).

    Attributes:
        x: The features (and the symbol id, when asked), one row per symbol and bar.
        labels: Each row's label (NaN: none).
        usable: Rows whose features are all finite (predicted).
        trainable: Usable rows with a label (trained on).
        bar: Each row's clock bar.
        known: The clock bar at which each row's label is known (its symbol's bar
            ``horizon`` bars ahead; a large number when there is none).
        symbol: Each row's symbol index.
        columns: The columns of ``x``.
    """

    x: npt.NDArray[np.float64]
    labels: npt.NDArray[np.float64]
    usable: npt.NDArray[np.bool_]
    trainable: npt.NDArray[np.bool_]
    bar: npt.NDArray[np.int64]
    known: npt.NDArray[np.int64]
    symbol: npt.NDArray[np.int64]
    columns: tuple[str, ...]


def pooled_rows(
    rows_of: RowsOf,
    horizon: int,
    universe: Universe,
    features: Sequence[pd.DataFrame],
    *,
    symbol_id: bool,
) -> PooledRows:
    """Return the stacked rows of every symbol (see `PooledRows`).

    Args:
        rows_of: The model's rows of one symbol's bars and features.
        horizon: The label horizon, in each symbol's own bars.
        universe: The symbols' bars.
        features: Per symbol, its feature rows indexed like its bars.
        symbol_id: Add each row's symbol index as the last column (`SYMBOL_ID`).
    """
    index = universe.index
    never = np.iinfo(np.int64).max // 4
    parts: list[tuple[Any, ...]] = []
    for s, (bars, frame) in enumerate(zip(universe.bars, features, strict=True)):
        x, labels, usable, trainable = rows_of(bars, frame)
        if symbol_id:
            x = np.column_stack([x, np.full(len(x), float(s))])
        position = index.get_indexer(bars.frame.index).astype(np.int64)
        ahead = np.arange(len(x)) + horizon
        known = np.full(len(x), never, np.int64)
        inside = ahead < len(x)
        known[inside] = position[ahead[inside]]
        parts.append((x, labels, usable, trainable, position, known, np.full(len(x), s)))
    stacked = [np.concatenate([p[k] for p in parts]) for k in range(7)]
    order = np.lexsort((stacked[6], stacked[4]))  # by bar, then symbol
    x, labels, usable, trainable, bar, known, symbol = (a[order] for a in stacked)
    columns = tuple(str(c) for c in features[0].columns) + ((SYMBOL_ID,) if symbol_id else ())
    return PooledRows(
        x=x,
        labels=labels,
        usable=usable.astype(bool),
        trainable=trainable.astype(bool),
        bar=bar.astype(np.int64),
        known=known.astype(np.int64),
        symbol=symbol.astype(np.int64),
        columns=columns,
    )


def plan_pooled_folds(
    rows: PooledRows,
    n_bars: int,
    train_window: int,
    retrain_every: int,
    min_train_rows: int,
    embargo: int = 0,
) -> list[tuple[Fold, npt.NDArray[np.intp]]]:
    """Plan walk-forward folds over the clock; return each fold and its training rows.

    Fold k predicts clock bars ``[s_k, s_k + retrain_every - 1]`` and trains on the
    trainable rows whose label is known at a bar ``b`` with ``b + embargo < s_k``,
    from the last ``train_window`` clock bars that have such rows. The first fold starts
    at the first bar with ``min_train_rows`` such clock bars. With one symbol, this is
    `tradeloom.plugins.model.folds.plan_folds`' plan (bars are rows there).

    Raises:
        PurgingError: A fold would train on a row whose label is not known before it
            (a bug, never a user's mistake).
    """
    ready = rows.known + embargo + 1  # the first fold start that may use the row
    trainable = rows.trainable & (rows.known < n_bars)
    # each clock bar counts once, from the first fold start that may use one of its rows
    bars_ready = pd.Series(ready[trainable]).groupby(rows.bar[trainable]).min().to_numpy()
    if len(bars_ready) < min_train_rows:
        return []
    first = int(np.sort(bars_ready)[min_train_rows - 1])
    plan: list[tuple[Fold, npt.NDArray[np.intp]]] = []
    for k, start in enumerate(range(first, n_bars, retrain_every)):
        eligible = np.flatnonzero(trainable & (ready <= start))
        distinct = np.unique(rows.bar[eligible])
        kept = eligible[rows.bar[eligible] >= distinct[-train_window:][0]]
        late = kept[rows.known[kept] + embargo >= start]
        if len(late):  # pragma: no cover - the mask above excludes them
            raise PurgingError(
                f"look-ahead in pooled walk-forward training: fold {k} trains on a row whose "
                f"label is known at bar {int(rows.known[late[0]])}, not before bar {start}"
            )
        fold = Fold(
            index=k,
            train_start=int(rows.bar[kept].min()),
            train_end=int(rows.bar[kept].max()),
            predict_start=start,
            predict_end=min(start + retrain_every, n_bars) - 1,
            rows=len(kept),
        )
        plan.append((fold, kept))
    return plan
