"""The walk-forward fold a paper or live run starts with: the backtest's fold for its first bar.

A run that starts (or restarts) inside a fold must predict its first bars as the
backtest predicts them, so it trains the fold the backtest uses at the next bar: the
latest fold of the walk-forward plan (`tradeloom.plugins.model.folds.plan_folds`, as
`LiveTrainer.scheduled_start` finds it) that starts by then, on the rows the plan gives
that fold. Those are the rows known when the fold starts, so the model trains on the
bars before its start only: the history past that start (the newest rows) would give
another forest, other probabilities and other signals until the next fold.
"""

from __future__ import annotations

import pandas as pd

from tradeloom.domain import Bars, ModelTraining
from tradeloom.plugins.protocols import LiveTrainer

__all__ = ["train_fold_in_effect"]


def train_fold_in_effect(
    model: LiveTrainer, bars: Bars, features: pd.DataFrame
) -> ModelTraining | None:
    """Train the walk-forward fold in effect at the bar after ``bars`` (the backtest's).

    Args:
        model: The model; its fold becomes the one it predicts with.
        bars: Every bar known now, the last one just closed.
        features: Their feature rows, indexed like ``bars.frame``.

    Returns:
        The training (``reason`` scheduled, ``predict_start`` the fold's first bar, which
        may be before the next bar; a skipped one included), or None when the plan
        starts no fold by the next bar (too few rows are known).

    Raises:
        ModelFitError: As for a scheduled fold of the backtest.
    """
    start = model.scheduled_start(bars, features)
    if start is None:
        return None
    head = Bars(bars.frame.iloc[:start], bars.symbol, bars.timeframe, bars.timeframe_seconds)
    return model.train_next(head, features.iloc[:start], reason=None)
