"""The ``sklearn`` model: factory checks, walk-forward predictions, and no leakage."""

from __future__ import annotations

import re
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
from pydantic import ValidationError
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

import tradeloom.plugins.model.folds as folds
from tradeloom.cli.main import main
from tradeloom.domain import Bars, ModelTraining
from tradeloom.errors import UserError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.model import SklearnModel, SklearnParams, build_sklearn_model, plan_folds
from tradeloom.plugins.model.folds import PurgingError
from tradeloom.plugins.model.labels import direction_labels, triple_barrier_labels
from tradeloom.plugins.model.sklearn_model import LabelParams, ModelFitError, WalkForwardParams

FAKE_MODULE = "tradeloom_test_estimators"

# One entry per fit: the bar indices trained on (feature column 0 holds the bar index),
# the features and labels seen, and the bar indices then predicted.
RECORDS: list[dict[str, Any]] = []


def _recorded_up(x0: np.ndarray) -> np.ndarray:
    # A probability that depends on the bar and is never 0.5, so that a wrong column or a
    # wrong bar shows.
    return 0.05 + np.mod(x0, 7.0) / 10.0


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Record what each fold trains on and predicts; predict `_recorded_up`."""

    def __init__(self, reverse_classes: bool = False, random_state: int | None = None) -> None:
        self.reverse_classes = reverse_classes
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> RecordingClassifier:
        self.classes_ = np.array([1, 0] if self.reverse_classes else [0, 1])
        self.record_ = {
            "train": X[:, 0].copy(),
            "x": X.copy(),
            "y": y.copy(),
            "predict": [],
            "random_state": self.random_state,
        }
        RECORDS.append(self.record_)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.record_["predict"].extend(X[:, 0].tolist())
        up = _recorded_up(X[:, 0])
        return np.column_stack([up, 1 - up] if self.reverse_classes else [1 - up, up])


class FailingClassifier(RecordingClassifier):
    """Fail to fit, as an estimator whose parameter suits no data does."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> FailingClassifier:
        raise RuntimeError("boom")


class NotAnEstimator:
    """Has no fit, get_params or set_params."""


class FilterDamagingForest(RandomForestClassifier):
    """A forest whose fit leaves the process's warning filters an empty list, as two of
    scikit-learn's worker threads (``n_jobs`` > 1) racing through ``catch_warnings`` and
    ``resetwarnings`` can (Python < 3.14; at random, under load)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FilterDamagingForest:
        super().fit(X, y, sample_weight)
        warnings.filters = []
        return self


@pytest.fixture(autouse=True)
def fake_module(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(FAKE_MODULE)
    for cls in (RecordingClassifier, FailingClassifier, NotAnEstimator, FilterDamagingForest):
        setattr(module, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, FAKE_MODULE, module)
    RECORDS.clear()


CTX = BuildContext(strategy_name="t", strategy_dir=Path("."), seed=42)


def _bars(close: np.ndarray) -> Bars:
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    return Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)


def _random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))


def _recording_data(n: int, seed: int, nan_share: float = 0.1) -> tuple[Bars, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    bars = _bars(_random_walk(n, seed))
    noise = rng.normal(size=n)
    noise[rng.random(n) < nan_share] = np.nan
    features = pd.DataFrame(
        {"bar": np.arange(n, dtype=float), "noise": noise}, index=bars.frame.index
    )
    return bars, features


def _params(estimator: str, **overrides: Any) -> SklearnParams:
    document: dict[str, Any] = {
        "estimator": estimator,
        "walk_forward": {"train_window": 20, "retrain_every": 7},
    }
    document.update(overrides)
    return SklearnParams.model_validate(document)


def _build(estimator: str = f"{FAKE_MODULE}.RecordingClassifier", **overrides: Any) -> SklearnModel:
    return build_sklearn_model(_params(estimator, **overrides), CTX)


# --- the leak test ------------------------------------------------------------------


def _assert_no_leak(records: list[dict[str, Any]], horizon: int) -> None:
    """Fail if any fold trained on a row whose label horizon reaches a bar it predicted."""
    assert records, "no fold was trained"
    for record in records:
        if record["predict"]:
            assert record["train"].max() + horizon < min(record["predict"])


@pytest.mark.parametrize("horizon", [1, 3, 10])
def test_no_fold_trains_on_a_label_that_overlaps_its_predictions(horizon: int) -> None:
    bars, features = _recording_data(300, seed=horizon)
    model = _build(label={"horizon": horizon})
    output = model.fit_predict(bars, features)

    _assert_no_leak(RECORDS, horizon)
    trained = [t for t in output.trainings if not t.skipped]
    assert len(trained) == len(RECORDS) > 10
    usable = features.notna().all(axis=1).to_numpy()
    boundary_checked = 0
    for training, record in zip(trained, RECORDS, strict=True):
        s = training.predict_start
        train = set(record["train"].astype(int))
        predicted = set(int(b) for b in record["predict"])
        assert predicted == {b for b in range(s, training.predict_end + 1) if usable[b]}
        assert training.train_end + horizon < s
        # Off by one either way is caught: the last row whose label ends before s is used,
        # the first row whose label ends at s is not.
        assert s - horizon not in train
        if usable[s - horizon - 1]:
            assert s - horizon - 1 in train
            boundary_checked += 1
    assert boundary_checked > len(trained) // 2


def _leaky_plan(n: int, valid: Any, horizon: int, *rest: int) -> list[Any]:
    return plan_folds(n, valid, horizon - 1, *rest)  # allows i + horizon == s


def test_the_model_refuses_an_off_by_one_planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folds, "plan_folds", _leaky_plan)
    bars, features = _recording_data(200, seed=0, nan_share=0.0)
    with pytest.raises(
        PurgingError,
        match=r"^look-ahead in walk-forward training: fold 0 trains on row 19 whose label "
        r"reaches bar 22, not before its first predicted bar 22 \(25 more folds leak\)$",
    ):
        _build(label={"horizon": 3}).fit_predict(bars, features)
    assert RECORDS == []  # refused before any fold trained


def test_leak_test_catches_an_off_by_one_planner(monkeypatch: pytest.MonkeyPatch) -> None:
    # With the model's own check switched off, the recorded folds show the leak.
    monkeypatch.setattr(folds, "plan_folds", _leaky_plan)
    monkeypatch.setattr(folds, "check_purging", lambda *args: None)
    bars, features = _recording_data(200, seed=0, nan_share=0.0)
    _build(label={"horizon": 3}).fit_predict(bars, features)
    with pytest.raises(AssertionError):
        _assert_no_leak(RECORDS, 3)


@pytest.mark.parametrize(("horizon", "embargo"), [(1, 4), (3, 10)])
def test_embargo_keeps_rows_before_the_purged_ones_out(horizon: int, embargo: int) -> None:
    bars, features = _recording_data(300, seed=4, nan_share=0.0)
    output = _build(
        label={"horizon": horizon},
        walk_forward={"train_window": 20, "retrain_every": 7, "embargo": embargo},
    ).fit_predict(bars, features)
    _assert_no_leak(RECORDS, horizon + embargo)
    for training, record in zip(output.trainings, RECORDS, strict=True):
        # The row just outside the embargo is used, the one just inside is not.
        assert record["train"].max() == training.predict_start - horizon - embargo - 1


def test_dead_zone_rows_are_predicted_but_not_trained_on() -> None:
    bars, features = _recording_data(300, seed=6, nan_share=0.0)
    zone = 0.01
    output = _build(
        label={"horizon": 2, "dead_zone": zone},
        walk_forward={"train_window": 30, "retrain_every": 10},
    ).fit_predict(bars, features)
    close = bars.frame["close"].to_numpy()
    forward = np.abs(np.log(close[2:] / close[:-2]))
    inside = set(np.flatnonzero(forward < zone).tolist())
    assert 50 < len(inside) < 250
    trained = set()
    for record in RECORDS:
        rows = record["train"].astype(int)
        trained.update(rows.tolist())
        np.testing.assert_array_equal(record["y"], close[rows + 2] > close[rows])
    assert trained and not trained & inside
    # Rows inside the zone still get a probability once a fold covers them.
    covered = np.arange(output.trainings[0].predict_start, 300)
    zone_rows = np.array(sorted(inside & set(covered.tolist())))
    assert len(zone_rows) > 20
    assert np.isfinite(output.probability.to_numpy()[zone_rows]).all()


def test_triple_barrier_labels_are_given_to_the_estimator() -> None:
    bars, features = _recording_data(300, seed=9, nan_share=0.0)
    frame = bars.frame.assign(high=bars.frame["close"] * 1.004, low=bars.frame["close"] * 0.996)
    bars = Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)
    label = {"kind": "triple_barrier", "horizon": 5, "take_profit": 0.01, "stop_loss": 0.02}
    _build(label=label).fit_predict(bars, features)
    expected = triple_barrier_labels(
        frame["high"], frame["low"], frame["close"], 5, take_profit=0.01, stop_loss=0.02
    )
    # Not the direction at the limit: the barriers decide a share of the rows.
    assert not np.array_equal(expected, direction_labels(frame["close"], 5), equal_nan=True)
    assert RECORDS
    for record in RECORDS:
        rows = record["train"].astype(int)
        np.testing.assert_array_equal(record["y"], expected[rows])
    _assert_no_leak(RECORDS, 5)


def test_labels_given_to_the_estimator_are_forward_directions() -> None:
    horizon = 4
    bars, features = _recording_data(200, seed=5)
    _build(label={"horizon": horizon}).fit_predict(bars, features)
    close = bars.frame["close"].to_numpy()
    for record in RECORDS:
        rows = record["train"].astype(int)
        np.testing.assert_array_equal(record["y"], close[rows + horizon] > close[rows])
        np.testing.assert_array_equal(record["x"], features.to_numpy()[rows])


# --- predictions --------------------------------------------------------------------


@pytest.mark.parametrize("reverse_classes", [False, True])
def test_probabilities_only_where_features_valid_and_a_fold_trained(
    reverse_classes: bool,
) -> None:
    horizon = 2
    bars, features = _recording_data(150, seed=11, nan_share=0.15)
    model = _build(
        label={"horizon": horizon},
        params={"reverse_classes": reverse_classes},
        walk_forward={"train_window": 25, "retrain_every": 10, "min_train_rows": 20},
    )
    output = model.fit_predict(bars, features)

    usable = features.notna().all(axis=1).to_numpy()
    first_start = int(np.flatnonzero(usable)[19]) + horizon + 1
    assert output.trainings[0].predict_start == first_start
    expected = np.full(150, np.nan)
    for training in output.trainings:
        if not training.skipped:
            segment = np.arange(training.predict_start, training.predict_end + 1)
            segment = segment[usable[segment]]
            expected[segment] = _recorded_up(segment.astype(float))
    assert np.isnan(expected[:first_start]).all()
    np.testing.assert_array_equal(output.probability.to_numpy(), expected)
    assert output.probability.index.equals(bars.frame.index)
    assert output.probability.name == "probability_up"
    assert model.horizon == horizon


def test_trainings_describe_each_fold() -> None:
    bars, features = _recording_data(100, seed=3, nan_share=0.0)
    output = _build(label={"horizon": 2}).fit_predict(bars, features)
    close = bars.frame["close"].to_numpy()
    first = output.trainings[0]
    rows = np.arange(0, 20)
    assert first == ModelTraining(
        fold=0,
        train_start=0,
        train_end=19,
        predict_start=22,
        predict_end=28,
        rows=20,
        positives=int((close[rows + 2] > close[rows]).sum()),
        horizon=2,
        estimator="RecordingClassifier",
    )
    assert [t.fold for t in output.trainings] == list(range(len(output.trainings)))
    assert output.trainings[-1].predict_end == 99


def _rising_then_random() -> tuple[Bars, pd.DataFrame]:
    # Rising for 50 bars (every label up), then a random walk.
    close = np.concatenate([np.linspace(100.0, 150.0, 50), 150.0 * _random_walk(150, 1) / 100])
    bars = _bars(close)
    rng = np.random.default_rng(0)
    return bars, pd.DataFrame({"x": rng.normal(size=200)}, index=bars.frame.index)


def test_single_class_fold_is_skipped_not_fatal() -> None:
    bars, features = _rising_then_random()
    model = _build(
        "sklearn.linear_model.LogisticRegression",
        walk_forward={"train_window": 30, "retrain_every": 10},
    )
    output = model.fit_predict(bars, features)

    first = output.trainings[0]
    assert first.skipped == "single class in training rows"
    assert first.positives == first.rows == 30
    assert first.estimator == "LogisticRegression"
    probability = output.probability.to_numpy()
    assert np.isnan(probability[: first.predict_end + 1]).all()
    trained = [t for t in output.trainings if not t.skipped]
    assert trained
    for training in trained:
        assert np.isfinite(probability[training.predict_start : training.predict_end + 1]).all()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_single_class_fold_fails_when_the_file_says_so(n_jobs: int) -> None:
    bars, features = _rising_then_random()
    model = _build(
        "sklearn.linear_model.LogisticRegression",
        walk_forward={
            "train_window": 30,
            "retrain_every": 10,
            "on_single_class": "fail",
            "n_jobs": n_jobs,
        },
    )
    with pytest.raises(ModelFitError) as caught:
        model.fit_predict(bars, features)
    assert str(caught.value) == (
        "model: fold 0 has one class only in its 30 training rows 0..29 (every label is 1; "
        "predicting bars 31..40); lengthen walk_forward.train_window, change the label, or "
        "set walk_forward.on_single_class: skip"
    )


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("cli_logging")
def test_single_class_failure_exits_2_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars, _ = _rising_then_random()
    bars.frame.reset_index().to_csv(tmp_path / "bars.csv", index=False)
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        "name: single\n"
        "data: {kind: csv, path: bars.csv, timeframe: 1h}\n"
        "features: [{kind: log_return}]\n"
        "model:\n"
        "  kind: sklearn\n"
        "  estimator: sklearn.linear_model.LogisticRegression\n"
        "  walk_forward: {train_window: 30, retrain_every: 10, on_single_class: fail}\n"
        "signal: {kind: threshold, threshold: 0.3}\n"
        "risk: {sizing: {kind: fixed_fraction, fraction: 0.1}}\n"
        "execution: {kind: simulated}\n"
    )
    assert main(["run", str(strategy), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "model: fold 0 has one class only in its 30 training rows 1..30 (every label is 1; "
        "predicting bars 32..41); lengthen walk_forward.train_window, change the label, or "
        "set walk_forward.on_single_class: skip"
    ]


# --- parallel folds -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 20, "max_depth": 4}),
        ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 20, "n_jobs": 2}),
        ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 20}),
        ("sklearn.linear_model.LogisticRegression", {}),
        ("lightgbm.LGBMClassifier", {"n_estimators": 20, "num_leaves": 7}),
        ("xgboost.XGBClassifier", {"n_estimators": 20, "max_depth": 3}),
    ],
)
def test_parallel_folds_predict_exactly_as_serial_ones(
    estimator: str, params: dict[str, Any]
) -> None:
    bars, features = _planted_signal(900, seed=12)

    def run(n_jobs: int) -> tuple[Any, SklearnModel]:
        model = _build(
            estimator,
            params=params,
            scaler="standard",
            label={"horizon": 2, "dead_zone": 0.002},
            walk_forward={"train_window": 150, "retrain_every": 40, "n_jobs": n_jobs},
        )
        return model.fit_predict(bars, features), model

    serial, serial_model = run(1)
    assert len(serial.trainings) > 15
    assert np.isfinite(serial.probability.to_numpy()).sum() > 600
    for n_jobs in (2, -1):
        parallel, parallel_model = run(n_jobs)
        assert np.array_equal(
            parallel.probability.to_numpy(), serial.probability.to_numpy(), equal_nan=True
        )
        assert parallel.trainings == serial.trainings
        # The latest fold is the one kept for live predictions, whatever finished last.
        row = features.to_numpy()[-1]
        assert parallel_model.predict_row(row) == serial_model.predict_row(row)


@pytest.mark.parametrize("n_jobs", [1, 3])
def test_a_failing_fold_is_reported_in_fold_order(n_jobs: int) -> None:
    bars, features = _recording_data(120, seed=0, nan_share=0.0)
    model = _build(
        f"{FAKE_MODULE}.FailingClassifier",
        walk_forward={"train_window": 20, "retrain_every": 7, "n_jobs": n_jobs},
    )
    with pytest.raises(ModelFitError) as caught:
        model.fit_predict(bars, features)
    assert str(caught.value) == (
        "model: FailingClassifier failed to train fold 0 "
        "(training rows 0..19, predicting bars 21..27): RuntimeError: boom"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_scaler_is_fitted_on_each_fold_training_rows_only() -> None:
    bars, features = _recording_data(200, seed=8, nan_share=0.1)
    _build(scaler="standard").fit_predict(bars, features)
    assert len(RECORDS) > 10
    for record in RECORDS:
        # Standardized with the training rows' own mean and std: the bar index column,
        # a trend, would be far from mean 0 if later rows had been in the fit.
        np.testing.assert_allclose(record["x"].mean(axis=0), 0.0, atol=1e-9)
        np.testing.assert_allclose(record["x"].std(axis=0), 1.0, atol=1e-9)


@pytest.mark.parametrize("scaler", ["none", "standard", "minmax", "robust"])
def test_changing_the_future_does_not_move_past_predictions(scaler: str) -> None:
    bars, features = _recording_data(300, seed=2, nan_share=0.05)
    features = features.assign(bar=np.random.default_rng(1).normal(size=300))
    model = _build(
        "sklearn.linear_model.LogisticRegression",
        scaler=scaler,
        label={"horizon": 3},
        walk_forward={"train_window": 40, "retrain_every": 15},
    )
    before = model.fit_predict(bars, features).probability.to_numpy()

    cut = 180  # bars after the cut change: closes, features, and which rows are valid
    future_close = bars.frame["close"].to_numpy().copy()
    future_close[cut + 1 :] *= np.linspace(0.5, 3.0, 300 - cut - 1)
    future_features = features.copy()
    future_features.iloc[cut + 1 :] *= 100.0
    future_features.iloc[cut + 5 :: 7, 1] = np.nan
    after = model.fit_predict(_bars(future_close), future_features).probability.to_numpy()

    assert np.isfinite(before[: cut + 1]).sum() > 100
    np.testing.assert_array_equal(after[: cut + 1], before[: cut + 1])
    assert not np.array_equal(after[cut + 1 :], before[cut + 1 :], equal_nan=True)


def _planted_signal(n: int, seed: int) -> tuple[Bars, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    # The next bar's return leans on this bar's signal: up-probability ~ Phi(0.8 * signal).
    returns = np.zeros(n)
    returns[1:] = 0.01 * (0.8 * signal[:-1] + rng.normal(size=n - 1))
    bars = _bars(100.0 * np.exp(np.cumsum(returns)))
    features = pd.DataFrame(
        {"noise_a": rng.normal(size=n), "signal": signal, "noise_b": rng.normal(size=n)},
        index=bars.frame.index,
    )
    return bars, features


def _forest(seed: int = 42, **params: Any) -> SklearnModel:
    document = _params(
        "sklearn.ensemble.RandomForestClassifier",
        params={"n_estimators": 30, "max_depth": 4, **params},
        walk_forward={"train_window": 300, "retrain_every": 100},
    )
    ctx = BuildContext(strategy_name="t", strategy_dir=Path("."), seed=seed)
    return build_sklearn_model(document, ctx)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_fit_that_empties_the_warning_filters_floods_nothing(n_jobs: int) -> None:
    """With the filters emptied, every task of scikit-learn's ``Parallel`` warns that
    "`sklearn.utils.parallel.delayed` should be used with `sklearn.utils.parallel.Parallel`"
    (once per tree and fold: hundreds of lines a run). Each fold's fit puts them back.

    Serially (``n_jobs: 1``) no fit sees the damage of another: not one line. With fold
    threads a fold whose trees grow while another's damage is not yet put back warns, as
    scikit-learn's own race would (the window is the end of that fit's block; under load a
    thread switch lands in it): what holds is the process's filters after the run, and a
    fit after it that warns nothing."""
    bars, features = _planted_signal(700, seed=3)
    model = _build(
        f"{FAKE_MODULE}.FilterDamagingForest",
        params={"n_estimators": 10, "max_depth": 3},
        walk_forward={"train_window": 150, "retrain_every": 100, "n_jobs": n_jobs},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", DeprecationWarning)
        before, items = warnings.filters, list(warnings.filters)
        output = model.fit_predict(bars, features)
        assert warnings.filters is before and warnings.filters == items
        after = len(caught)
        x, y = features.to_numpy(), np.arange(len(features)) % 2
        RandomForestClassifier(n_estimators=10, max_depth=3, n_jobs=2).fit(x, y)
    assert len(output.trainings) >= 5
    floods = [i for i, w in enumerate(caught) if "sklearn.utils.parallel" in str(w.message)]
    assert [i for i in floods if i >= after] == []  # the process floods nothing after
    if n_jobs == 1:
        assert floods == []


def test_random_forest_finds_a_planted_signal_out_of_sample() -> None:
    bars, features = _planted_signal(1400, seed=7)
    output = _forest().fit_predict(bars, features)
    probability = output.probability.to_numpy()
    close = bars.frame["close"].to_numpy()
    scored = np.flatnonzero(np.isfinite(probability[:-1]))
    assert len(scored) == 1400 - 302
    up = close[scored + 1] > close[scored]
    assert roc_auc_score(up, probability[scored]) > 0.6


def test_predictions_are_reproducible_and_follow_the_seed() -> None:
    bars, features = _planted_signal(700, seed=3)
    first = _forest(seed=42).fit_predict(bars, features)
    second = _forest(seed=42).fit_predict(bars, features)
    other = _forest(seed=43).fit_predict(bars, features)
    np.testing.assert_array_equal(first.probability.to_numpy(), second.probability.to_numpy())
    assert first.trainings == second.trainings
    assert not np.array_equal(first.probability.to_numpy(), other.probability.to_numpy(), True)


def test_seed_sets_random_state_unless_params_set_it() -> None:
    assert _forest(seed=42).estimator.get_params()["random_state"] == 42
    assert _forest(seed=42, random_state=7).estimator.get_params()["random_state"] == 7
    bars, features = _recording_data(60, seed=0)
    _build().fit_predict(bars, features)
    assert {record["random_state"] for record in RECORDS} == {42}


def test_fitted_is_the_latest_trained_fold() -> None:
    bars, features = _recording_data(60, seed=0, nan_share=0.0)
    model = _build()
    assert model.fitted is None
    model.fit_predict(bars, features)
    assert model.fitted is not None
    assert model.fitted.record_ is RECORDS[-1]


def test_a_failing_fit_names_the_fold() -> None:
    bars, features = _recording_data(60, seed=0, nan_share=0.0)
    model = _build(f"{FAKE_MODULE}.FailingClassifier")
    with pytest.raises(ModelFitError) as caught:
        model.fit_predict(bars, features)
    assert str(caught.value) == (
        "model: FailingClassifier failed to train fold 0 "
        "(training rows 0..19, predicting bars 21..27): RuntimeError: boom"
    )


def test_no_feature_columns_is_a_user_error() -> None:
    bars, _ = _recording_data(60, seed=0)
    with pytest.raises(UserError) as caught:
        _build().fit_predict(bars, pd.DataFrame(index=bars.frame.index))
    assert str(caught.value) == (
        "model: the sklearn model needs at least one feature column; add one under features:"
    )


# --- the factory ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimator", "params", "key", "message"),
    [
        (
            "sklearn.ensemble.RandomForrestClassifier",
            {},
            "estimator",
            "cannot import 'sklearn.ensemble.RandomForrestClassifier': module "
            "'sklearn.ensemble' has no attribute 'RandomForrestClassifier' "
            "(did you mean 'RandomForestClassifier'?)",
        ),
        (
            "sklearn.ensembel.RandomForestClassifier",
            {},
            "estimator",
            "cannot import 'sklearn.ensembel.RandomForestClassifier': No module named "
            "'sklearn.ensembel' (did you mean 'sklearn.ensemble'?)",
        ),
        (
            "RandomForestClassifier",
            {},
            "estimator",
            "expected an import path like 'sklearn.ensemble.RandomForestClassifier', "
            "was 'RandomForestClassifier'",
        ),
        (
            "sklearn.linear_model.LinearRegression",
            {},
            "estimator",
            "'sklearn.linear_model.LinearRegression' is not a classifier; expected a "
            "scikit-learn classifier with predict_proba, such as "
            "sklearn.ensemble.RandomForestClassifier (a regressor learns label kind return)",
        ),
        (
            "sklearn.metrics.roc_auc_score",
            {},
            "estimator",
            "'sklearn.metrics.roc_auc_score' is not a class (it is a function); expected a "
            "classifier class such as sklearn.ensemble.RandomForestClassifier",
        ),
        (
            f"{FAKE_MODULE}.NotAnEstimator",
            {},
            "estimator",
            f"'{FAKE_MODULE}.NotAnEstimator' is not a scikit-learn estimator "
            "(it needs fit, get_params and set_params)",
        ),
        (
            "sklearn.ensemble.RandomForestClassifier",
            {"n_estimators": 10, "n_estimatorz": 3},
            "params.n_estimatorz",
            "unknown parameter of RandomForestClassifier (did you mean 'n_estimators'?)",
        ),
        (
            "sklearn.ensemble.RandomForestClassifier",
            {"n_estimators": -1},
            "params.n_estimators",
            "must be an int in the range [1, inf), was -1",
        ),
        (
            "sklearn.svm.SVC",
            {},
            "estimator",
            "SVC has no predict_proba with these params (set params.probability: true); "
            "the model needs class probabilities",
        ),
        (
            "sklearn.linear_model.RidgeClassifier",
            {},
            "estimator",
            "RidgeClassifier has no predict_proba with these params; "
            "the model needs class probabilities",
        ),
    ],
)
def test_factory_errors(estimator: str, params: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ParamError) as caught:
        _build(estimator, params=params)
    assert (caught.value.key, caught.value.message) == (key, message)


def test_factory_accepts_a_configured_classifier() -> None:
    model = _build(
        "sklearn.svm.SVC",
        params={"probability": True, "C": 2.0},
        scaler="robust",
        label={"horizon": 4},
        walk_forward={"train_window": 50, "retrain_every": 5, "min_train_rows": 30},
    )
    assert model.estimator.get_params()["C"] == 2.0
    assert (model.horizon, model.train_window, model.retrain_every) == (4, 50, 5)
    assert (model.min_train_rows, model.scaler, model.estimator_name) == (30, "robust", "SVC")
    assert (model.embargo, model.n_jobs, model.on_single_class) == (0, 1, "skip")
    assert _build().min_train_rows == 20
    model = _build(
        label={"kind": "triple_barrier", "horizon": 6, "take_profit": 0.02, "stop_loss": 0.01},
        walk_forward={
            "train_window": 50,
            "retrain_every": 5,
            "embargo": 3,
            "n_jobs": -1,
            "on_single_class": "fail",
        },
    )
    assert (model.embargo, model.n_jobs, model.on_single_class) == (3, -1, "fail")
    assert (model.horizon, model.label.kind, model.label.take_profit) == (6, "triple_barrier", 0.02)


# --- the params ----------------------------------------------------------------------


def _error(document: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as caught:
        SklearnParams.model_validate(document)
    (error,) = caught.value.errors()
    return error["loc"], error["msg"]


BASE: dict[str, Any] = {
    "estimator": "sklearn.ensemble.RandomForestClassifier",
    "walk_forward": {"train_window": 100, "retrain_every": 10},
}


def test_params_min_train_rows_cannot_exceed_train_window() -> None:
    loc, msg = _error(
        {**BASE, "walk_forward": {"train_window": 100, "retrain_every": 10, "min_train_rows": 101}}
    )
    assert loc == ("walk_forward",)
    assert msg == "Value error, min_train_rows must be <= train_window (100), was 101"
    assert WalkForwardParams(train_window=100, retrain_every=10, min_train_rows=100)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (
            {"walk_forward": {"train_window": 19, "retrain_every": 10}},
            ("walk_forward", "train_window"),
        ),
        (
            {"walk_forward": {"train_window": 20, "retrain_every": 0}},
            ("walk_forward", "retrain_every"),
        ),
        ({"walk_forward": {"train_window": 20}}, ("walk_forward", "retrain_every")),
        (
            {"walk_forward": {"train_window": 20, "retrain_every": 1, "purge": 2}},
            ("walk_forward", "purge"),
        ),
        ({"label": {"horizon": 0}}, ("label", "horizon")),
        ({"label": {"horizon": 1, "kind": "up"}}, ("label", "kind")),
        ({"label": {"dead_zone": -0.1}}, ("label", "dead_zone")),
        ({"label": {"dead_zone": float("nan")}}, ("label", "dead_zone")),
        ({"label": {"take_profit": 0, "stop_loss": 0.1}}, ("label", "take_profit")),
        ({"label": {"take_profit": 0.1, "stop_loss": 1}}, ("label", "stop_loss")),
        ({"label": {"horizon": 1, "barrier": 2}}, ("label", "barrier")),
        (
            {"walk_forward": {"train_window": 20, "retrain_every": 1, "embargo": -1}},
            ("walk_forward", "embargo"),
        ),
        (
            {"walk_forward": {"train_window": 20, "retrain_every": 1, "on_single_class": "x"}},
            ("walk_forward", "on_single_class"),
        ),
        ({"scaler": "zscore"}, ("scaler",)),
        ({"estimator": ""}, ("estimator",)),
        ({"paramz": {}}, ("paramz",)),
    ],
)
def test_params_reject(change: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert _error({**BASE, **change})[0] == loc


def test_params_defaults() -> None:
    params = SklearnParams.model_validate(BASE)
    assert params.params == {}
    assert params.scaler == "none"
    assert params.label == LabelParams(
        kind="direction", horizon=1, dead_zone=0.0, take_profit=None, stop_loss=None
    )
    assert params.walk_forward.min_train_rows is None
    assert params.walk_forward.embargo == 0
    assert params.walk_forward.n_jobs == 1
    assert params.walk_forward.on_single_class == "skip"


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        (
            {"label": {"horizon": 101}},
            (),
            "Value error, label.horizon must be <= walk_forward.train_window (100), was 101",
        ),
        (
            {"label": {"kind": "triple_barrier", "take_profit": 0.02}},
            ("label",),
            "Value error, kind triple_barrier needs stop_loss",
        ),
        (
            {"label": {"kind": "triple_barrier"}},
            ("label",),
            "Value error, kind triple_barrier needs take_profit and stop_loss",
        ),
        (
            {"label": {"take_profit": 0.02}},
            ("label",),
            "Value error, take_profit is a triple_barrier key; kind is direction",
        ),
        (
            {"label": {"take_profit": 0.02, "stop_loss": 0.01}},
            ("label",),
            "Value error, take_profit and stop_loss are triple_barrier keys; kind is direction",
        ),
        (
            {"label": {"kind": "classes", "horizon": 4}},
            ("label",),
            "Value error, kind classes needs dead_band (the flat band, e.g. 0.002)",
        ),
        (
            {"label": {"kind": "return", "dead_band": 0.01}},
            ("label",),
            "Value error, dead_band is a classes key; kind is return",
        ),
        (
            {"label": {"kind": "return", "take_profit": 0.02}},
            ("label",),
            "Value error, take_profit is a triple_barrier key; kind is return",
        ),
        (
            {"label": {"kind": "classes", "dead_band": 0.01, "dead_zone": 0.01}},
            ("label",),
            "Value error, dead_zone is a direction and triple_barrier key; kind is classes "
            "(dead_band sets its flat class)",
        ),
        (
            {"label": {"kind": "return", "dead_zone": 0.01}},
            ("label",),
            "Value error, dead_zone is a direction and triple_barrier key; kind is return "
            "(none is left out)",
        ),
        (
            {"walk_forward": {"train_window": 100, "retrain_every": 10, "n_jobs": 0}},
            ("walk_forward", "n_jobs"),
            "Value error, must be >= 1, or -1 for every core, was 0",
        ),
        (
            {"walk_forward": {"train_window": 100, "retrain_every": 10, "n_jobs": -2}},
            ("walk_forward", "n_jobs"),
            "Value error, must be >= 1, or -1 for every core, was -2",
        ),
    ],
)
def test_params_cross_field_messages(
    change: dict[str, Any], loc: tuple[Any, ...], message: str
) -> None:
    assert _error({**BASE, **change}) == (loc, message)
    assert SklearnParams.model_validate({**BASE, "label": {"horizon": 100}})


@pytest.mark.usefixtures("cli_logging")
def test_horizon_longer_than_the_window_exits_2_through_the_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    strategy = Path(__file__).resolve().parents[3] / "strategies" / "btc_rf.yaml"
    # the cause, not its calibration's holdout (which no such horizon leaves room for)
    code = main(["validate", str(strategy), "--set", "model.label.horizon=3001"])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(
        r".*btc_rf\.yaml:\d+:\d+ model: label\.horizon must be <= "
        r"walk_forward\.train_window \(3000\), was 3001",
        line,
    ), line


# --- label kinds return and classes --------------------------------------------------------


@pytest.mark.parametrize(
    ("estimator", "label", "message"),
    [
        (
            "sklearn.ensemble.RandomForestClassifier",
            {"kind": "return"},
            "'sklearn.ensemble.RandomForestClassifier' is not a regressor; label kind return "
            "needs a scikit-learn regressor with predict, such as "
            "sklearn.ensemble.RandomForestRegressor (a classifier learns label kind direction, "
            "triple_barrier or classes)",
        ),
        (
            "sklearn.ensemble.RandomForestRegressor",
            {"kind": "classes", "dead_band": 0.01},
            "'sklearn.ensemble.RandomForestRegressor' is not a classifier; expected a "
            "scikit-learn classifier with predict_proba, such as "
            "sklearn.ensemble.RandomForestClassifier (a regressor learns label kind return)",
        ),
    ],
)
def test_the_estimator_must_suit_the_label(
    estimator: str, label: dict[str, Any], message: str
) -> None:
    with pytest.raises(ParamError) as caught:
        _build(estimator, label=label)
    assert (caught.value.key, caught.value.message) == ("estimator", message)


def _planted_kind(kind: str, estimator: str, **label: Any) -> tuple[SklearnModel, Any]:
    bars, features = _planted_signal(900, 3)
    model = build_sklearn_model(
        _params(
            estimator,
            params={"n_estimators": 15, "max_depth": 3, "min_samples_leaf": 10},
            label={"kind": kind, "horizon": 1, **label},
            walk_forward={"train_window": 300, "retrain_every": 200},
        ),
        CTX,
    )
    return model, model.fit_predict(bars, features)


def test_a_return_model_regresses_the_forward_return_and_maps_it_to_probability_up() -> None:
    model, output = _planted_kind("return", "sklearn.ensemble.RandomForestRegressor")
    bars, features = _planted_signal(900, 3)
    close = bars.frame["close"].to_numpy()
    forward = np.r_[close[1:] / close[:-1] - 1.0, np.nan]
    latest = model.latest
    assert latest is not None and model.trained
    fold = latest.training
    predicted = latest.fitted.predict(features.to_numpy()[fold.predict_start :])
    p = output.probability.to_numpy()[fold.predict_start :]
    np.testing.assert_array_equal(p, np.clip(0.5 + predicted * 0.5, 0.0, 1.0))
    # it learnt the planted signal: the predicted return ranks the realised one
    seen = np.isfinite(output.probability.to_numpy()) & np.isfinite(forward)
    assert roc_auc_score(forward[seen] > 0, output.probability.to_numpy()[seen]) > 0.7
    # a fold's positives are its rows with a positive forward return
    training = model.trained[0].training
    rows = np.arange(training.train_start, training.train_end + 1)
    assert training.positives == int((forward[rows] > 0).sum())
    for t in (fold.predict_start, len(close) - 1):  # a live bar's row, alone
        assert model.predict_row(features.to_numpy()[t]) == output.probability.iloc[t]


def test_a_classes_model_gives_up_plus_half_flat() -> None:
    model, output = _planted_kind(
        "classes", "sklearn.ensemble.RandomForestClassifier", dead_band=0.002
    )
    bars, features = _planted_signal(900, 3)
    latest = model.latest
    assert latest is not None
    assert latest.fitted.classes_.tolist() == [0, 1, 2]
    fold = latest.training
    proba = latest.fitted.predict_proba(features.to_numpy()[fold.predict_start :])
    p = output.probability.to_numpy()[fold.predict_start :]
    np.testing.assert_array_equal(p, proba[:, 2] + proba[:, 1] * 0.5)
    t = len(bars) - 1
    assert model.predict_row(features.to_numpy()[t]) == output.probability.iloc[t]
    assert model.parity_note is None  # a forest predicts a row alone as in a batch


def test_a_return_model_of_a_batch_dependent_estimator_says_so() -> None:
    model = _build("sklearn.linear_model.Ridge", label={"kind": "return"})
    assert model.parity_note == (
        "label kind return predicts through the estimator itself (compiled inference covers "
        "binary classifiers: label kinds direction and triple_barrier; of the others only "
        "ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, "
        "RandomForestRegressor, DecisionTreeClassifier, DecisionTreeRegressor predict a row "
        "alone as in a batch); a paper or live run predicts each bar alone with its predict, "
        "which may differ from the backtest's batch prediction in the last bits"
    )


def test_a_class_a_fold_never_saw_has_probability_zero() -> None:
    from tradeloom.plugins.model.fold_predictor import FoldPredictor

    class TwoOfThree(ClassifierMixin, BaseEstimator):
        classes_ = np.array([1, 2])  # flat and up only
        n_features_in_ = 1

        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return np.column_stack([np.full(len(x), 0.25), np.full(len(x), 0.75)])

    predictor = FoldPredictor(TwoOfThree(), "classes")
    assert predictor.compiled is None
    np.testing.assert_array_equal(predictor.predict(np.zeros((2, 1))), [0.875, 0.875])
    assert predictor.predict_one(np.zeros(1)) == 0.875


@pytest.mark.usefixtures("cli_logging")
def test_a_classifier_for_a_return_label_exits_2_naming_model_estimator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        "name: mismatch\n"
        "data: {kind: synthetic, bars: 200}\n"
        "features: [{kind: log_return}]\n"
        "model:\n"
        "  kind: sklearn\n"
        "  estimator: sklearn.tree.DecisionTreeClassifier\n"
        "  label: {kind: return, horizon: 2}\n"
        "  walk_forward: {train_window: 30, retrain_every: 10}\n"
        "signal: {kind: threshold, threshold: 0.01}\n"
        "risk: {sizing: {kind: fixed_fraction, fraction: 0.1}}\n"
        "execution: {kind: simulated}\n"
    )
    assert main(["validate", str(strategy)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{strategy}:6:14 model.estimator: 'sklearn.tree.DecisionTreeClassifier' is not a "
        "regressor; label kind return needs a scikit-learn regressor with predict, such as "
        "sklearn.ensemble.RandomForestRegressor (a classifier learns label kind direction, "
        "triple_barrier or classes)"
    ]
