"""Retraining a walk-forward model at a bar: the plan, purging, and a fold of one class.

`plan_retrain` lays out the fold a health rule asks for at bar t: it trains as a
scheduled fold starting at t+1 would (the rows whose labels are known at t, minus the
embargo) and predicts t+1 up to the next scheduled fold. `SklearnModel.retrain` trains
it exactly like a scheduled fold, and follows ``on_single_class``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model.folds import check_purging, plan_folds, plan_retrain
from tradeloom.plugins.model.sklearn_model import (
    SINGLE_CLASS,
    ModelFitError,
    SklearnParams,
    build_sklearn_model,
)

CTX = BuildContext(strategy_name="t", strategy_dir=Path("."), seed=0)


@settings(max_examples=examples(300), deadline=None)
@given(
    n=st.integers(5, 120),
    holes=st.lists(st.integers(0, 119), max_size=30),
    horizon=st.integers(1, 6),
    embargo=st.integers(0, 4),
    train_window=st.integers(1, 40),
    min_train_rows=st.integers(1, 40),
    retrain_every=st.integers(1, 50),
    where=st.floats(0, 1, exclude_max=True),
)
def test_the_retrained_fold_trains_like_a_scheduled_fold_starting_at_the_next_bar(
    n: int,
    holes: list[int],
    horizon: int,
    embargo: int,
    train_window: int,
    min_train_rows: int,
    retrain_every: int,
    where: float,
) -> None:
    valid = np.ones(n, bool)
    valid[[h for h in holes if h < n]] = False
    min_rows = min(min_train_rows, train_window)
    scheduled = plan_folds(n, valid, horizon, train_window, retrain_every, min_rows, embargo)
    bar = int(where * n)
    fold = plan_retrain(bar, valid, horizon, train_window, min_rows, embargo, scheduled)
    known = np.flatnonzero(valid[: max(bar + 1 - horizon - embargo, 0)])
    following = [f.predict_start for f in scheduled if f.predict_start > bar]
    end = (following[0] if following else n) - 1
    if end < bar + 1 or len(known) < min_rows:
        assert fold is None
        return
    assert fold is not None
    rows = fold.training_rows(valid)
    np.testing.assert_array_equal(rows, known[-train_window:])
    assert (fold.predict_start, fold.predict_end, fold.rows) == (bar + 1, end, len(rows))
    assert fold.train_end + horizon + embargo < fold.predict_start
    check_purging([fold], valid, np.arange(n) + horizon)
    # the number of the scheduled fold whose bars it takes over
    assert fold.index == [f.index for f in scheduled if f.predict_start <= bar][-1]
    # the same rows a scheduled fold starting at bar + 1 would train on
    shifted = plan_folds(n, valid, horizon, train_window, 10**6, 1, embargo)
    alike = [f for f in shifted if f.predict_start == bar + 1]
    if alike:
        assert (alike[0].train_start, alike[0].train_end) == (fold.train_start, fold.train_end)


def test_a_bar_outside_the_data_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^bar must be in \[0, 9\], was 10$"):
        plan_retrain(10, np.ones(10, bool), 1, 5, 5, 0, [])


def _bars(close: np.ndarray) -> Bars:
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    return Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)


def _rising_then_random() -> tuple[Bars, pd.DataFrame]:
    # rising for 50 bars (every label up), then a random walk
    rng = np.random.default_rng(1)
    walk = 150.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 150)))
    bars = _bars(np.concatenate([np.linspace(100.0, 150.0, 50), walk]))
    return bars, pd.DataFrame({"x": rng.normal(size=200)}, index=bars.frame.index)


def _model(on_single_class: str = "skip"):  # type: ignore[no-untyped-def]
    params = SklearnParams.model_validate(
        {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "walk_forward": {
                "train_window": 30,
                "retrain_every": 100,
                "on_single_class": on_single_class,
            },
        }
    )
    return build_sklearn_model(params, CTX)


def test_a_retrain_of_one_class_is_skipped_and_the_old_predictions_stand() -> None:
    bars, features = _rising_then_random()
    model = _model()
    model.fit_predict(bars, features)
    trained = list(model.trained)
    retraining = model.retrain(40, "health.0: test")
    assert retraining is not None and retraining.probability is None
    training = retraining.training
    assert (training.skipped, training.reason) == (SINGLE_CLASS, "health.0: test")
    assert (training.train_start, training.train_end, training.positives) == (10, 39, 30)
    assert (training.predict_start, training.predict_end) == (41, 130)
    assert model.trained == trained  # nothing was fitted


def test_a_retrain_of_one_class_fails_when_the_file_says_so() -> None:
    bars, features = _rising_then_random()
    model = _model("skip")
    model.fit_predict(bars, features)
    model.on_single_class = "fail"
    with pytest.raises(ModelFitError) as caught:
        model.retrain(40, "health.0: test")
    assert str(caught.value) == (
        "model: fold 0 has one class only in its 30 training rows 10..39 (every label is 1; "
        "predicting bars 41..130); lengthen walk_forward.train_window, change the label, or "
        "set walk_forward.on_single_class: skip"
    )


def test_a_retrain_predicts_the_bars_up_to_the_next_scheduled_fold() -> None:
    bars, features = _rising_then_random()
    model = _model()
    output = model.fit_predict(bars, features)
    assert [t.predict_start for t in output.trainings] == [31, 131]
    retraining = model.retrain(150, "health.0: test")
    assert retraining is not None and retraining.probability is not None
    assert (retraining.training.predict_start, retraining.training.predict_end) == (151, 199)
    assert retraining.probability.shape == (49,)
    assert np.all((retraining.probability > 0) & (retraining.probability < 1))
    assert model.fitted is model.trained[-1].fitted  # no scheduled fold after it
    assert model.retrain(130, "health.0: test") is None  # fold 1 starts at 131
    assert model.retrain(199, "health.0: test") is None  # the last bar: nothing to predict


def test_retrain_needs_fit_predict_first() -> None:
    with pytest.raises(
        RuntimeError, match=r"^retrain needs the data of fit_predict; call it first$"
    ):
        _model().retrain(10, "why")


def test_a_retrain_of_a_middle_segment_leaves_the_latest_fold_for_both_row_paths(
    tmp_path: Path,
) -> None:
    from tradeloom.plugins.model.anomaly import anomaly_scores
    from tradeloom.plugins.model.fold_predictor import predict_up
    from tradeloom.plugins.model.registry import save_models

    params = SklearnParams.model_validate(
        {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "walk_forward": {"train_window": 30, "retrain_every": 50},
            "anomaly": {"n_estimators": 10},
        }
    )
    model = build_sklearn_model(params, CTX)
    bars, features = _rising_then_random()
    output = model.fit_predict(bars, features)
    assert [t.predict_end for t in output.trainings][-1] == 199
    scheduled = model.latest
    assert scheduled is not None and scheduled is model.trained[-1]
    middle = model.retrain(100, "health.0: test")
    assert middle is not None and middle.training.predict_end < 199
    retrained = model.trained[-1]
    assert retrained.training.reason == "health.0: test"
    assert model.latest is scheduled and model.fitted is scheduled.fitted
    x = features.to_numpy()
    assert scheduled.detector is not None and retrained.detector is not None
    mine = anomaly_scores(scheduled.detector, x)
    assert (mine != anomaly_scores(retrained.detector, x)).any()  # a wrong pick would show
    assert [model.anomaly_score_row(row) for row in x[:20]] == mine[:20].tolist()
    assert model.predict_row(x[5]) == pytest.approx(predict_up(scheduled.fitted, x[5:6])[0])
    saved = save_models(
        tmp_path / "a", model, strategy="t", feature_spec=[], timestamps=bars.frame.index
    )
    assert saved is not None
    assert (saved.latest.fold, saved.latest.reason) == (scheduled.training.fold, "scheduled")
    # a retraining that predicts the last bars becomes the latest, for all of them
    last = model.retrain(190, "health.0: late")
    assert last is not None and last.training.predict_end == 199
    assert model.latest is model.trained[-1] and model.fitted is model.latest.fitted
    saved = save_models(
        tmp_path / "b", model, strategy="t", feature_spec=[], timestamps=bars.frame.index
    )
    assert saved is not None and saved.latest.reason == "health.0: late"
    assert model.anomaly_score_row(x[0]) == anomaly_scores(model.latest.detector, x[:1])[0]


def test_a_fold_trained_live_is_ready_to_predict_before_the_next_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compiling a fold for one-row predictions happens at the close that trains it: the
    next bar's tick predicts at once (a large forest compiles for tens of ms)."""
    from tradeloom.plugins.model import sklearn_inference

    bars, features = _rising_then_random()
    model = _model()
    start = model.scheduled_start(bars, features)
    assert start is not None
    head = Bars(bars.frame.iloc[:start], bars.symbol, bars.timeframe, bars.timeframe_seconds)
    training = model.train_next(head, features.iloc[:start])
    assert training is not None and training.predict_start == start
    predictor = model._row_model
    assert predictor is not None and predictor.fitted is model.fitted

    def not_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fold was prepared again at prediction time")

    monkeypatch.setattr(sklearn_inference, "FoldPredictor", not_again)
    row = features.to_numpy()[start]
    assert 0.0 <= model.predict_row(row) <= 1.0
