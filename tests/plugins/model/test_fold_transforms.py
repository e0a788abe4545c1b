"""Transforms fitted inside each walk-forward fold (a projection of a wide block of
columns), saved with the fold, applied alike in a batch and to one row, and a projection
fitted on the future caught by check-lookahead.

The features are tests/fixtures/plugins/fold_projection.py's: the last six log returns
(``return_window``), projected to two components per fold; and two planted leaks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.decomposition import PCA

from tradeloom.backtest.run import RunOutcome, run_strategy
from tradeloom.diagnostics.lookahead import check_lookahead
from tradeloom.engine.fold_fitting import fold_transform_problems
from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.plugins.model.fold_predictor import FoldPredictor
from tradeloom.plugins.model.fold_transforms import FoldColumns, Projection
from tradeloom.plugins.model.safe_pickle import restricted_loads
from tradeloom.plugins.model.saved_model import SavedModel
from tradeloom.plugins.model.sklearn_model import SklearnModel
from tradeloom.plugins.protocols import FoldTransform
from tradeloom.schemas import load_strategy

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "plugins"

DOC: dict[str, Any] = {
    "name": "fold",
    "seed": 7,
    "plugins": ["fold_projection"],
    "data": {
        "kind": "synthetic",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "bars": 600,
        "start": "2023-01-01T00:00:00Z",
    },
    "features": [{"kind": "log_return", "period": 1}, {"kind": "return_window"}],
    "model": {
        "kind": "sklearn",
        "estimator": "sklearn.linear_model.LogisticRegression",
        "scaler": "standard",
        "label": {"horizon": 3},
        "walk_forward": {"train_window": 200, "retrain_every": 150, "embargo": 2},
    },
    "signal": {"kind": "threshold", "threshold": 0.02},
    "risk": {"sizing": {"kind": "kelly", "fraction": 0.25, "avg_win": 0.02, "avg_loss": 0.02}},
    "execution": {"kind": "simulated"},
}


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def write(folder: Path, doc: dict[str, Any], name: str = "s") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run(folder: Path, doc: dict[str, Any], out: str) -> tuple[Pipeline, RunOutcome]:
    config, plugins = load_strategy(write(folder, doc, out))
    pipeline = build_pipeline(config)
    return pipeline, run_strategy(pipeline, plugins, out=folder / out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Pipeline, RunOutcome]:
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(FIXTURES))
    folder = tmp_path_factory.mktemp("fold")
    try:
        pipeline, outcome = run(folder, DOC, "train")
    finally:
        mp.undo()
    return folder, pipeline, outcome


def test_a_projection_is_pca_with_fixed_signs_and_projects_a_row_alone_as_in_a_batch() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))
    projection = Projection(3).fit(x)
    pca = PCA(3, svd_solver="full").fit(x)
    np.testing.assert_allclose(np.abs(projection.components_), np.abs(pca.components_), atol=1e-9)
    np.testing.assert_allclose(
        projection.explained_variance_ratio_, pca.explained_variance_ratio_, rtol=1e-9
    )
    batch = projection.transform(x)
    np.testing.assert_allclose(np.abs(batch), np.abs(pca.transform(x)), atol=1e-9)
    alone = np.vstack([projection.transform(row) for row in x])
    assert alone.tobytes() == batch.tobytes()
    again = Projection(3).fit(x.copy())
    assert again.components_.tobytes() == projection.components_.tobytes()
    with pytest.raises(ValueError, match=r"^3 components need at least 3 rows and columns, "):
        Projection(3).fit(x[:2])


def test_fold_columns_keep_the_other_columns_first_and_append_the_projection() -> None:
    x = np.random.default_rng(2).normal(size=(50, 5))
    step = FoldColumns((("w", (1, 3, 4), Projection(2)),)).fit(x)
    out = step.transform(x)
    assert out.shape == (50, 4)
    assert out[:, :2].tobytes() == x[:, [0, 2]].copy().tobytes()
    assert (
        out[:, 2:].tobytes()
        == Projection(2).fit(x[:, [1, 3, 4]]).transform(x[:, [1, 3, 4]]).tobytes()
    )
    assert step.row_exact and step.transform_rows(x[7]).tobytes() == out[7].tobytes()


def test_each_fold_fits_its_projection_on_its_own_training_rows_only(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    _, pipeline, outcome = trained
    model = pipeline.model
    assert isinstance(model, SklearnModel) and len(model.trained) >= 2
    history = model._history
    assert history is not None
    x, window = history.x, [history.columns.index(f"window_{i}") for i in range(6)]
    for fold, trained_fold in zip(history.folds, model.trained, strict=True):
        rows = fold.training_rows(history.trainable)
        step = trained_fold.fitted.steps[0][1]
        assert isinstance(step, FoldColumns)
        expected = Projection(2).fit(x[np.ix_(rows, window)])
        (fitted,) = step.transformers_
        assert fitted.mean_.tobytes() == expected.mean_.tobytes()
        assert fitted.components_.tobytes() == expected.components_.tobytes()
        # the scaler behind it sees log_return and the two components
        assert trained_fold.fitted.steps[1][1].n_features_in_ == 3
    assert np.isfinite(outcome.result.probability.to_numpy()[-100:]).all()


def test_a_saved_fold_carries_its_projection_and_predicts_a_row_as_the_run_did(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    folder, pipeline, outcome = trained
    model = pipeline.model
    assert isinstance(model, SklearnModel)
    latest = model.trained[-1]
    data = (folder / "train" / "models" / f"fold-{latest.training.fold:04d}.pkl").read_bytes()
    loaded = restricted_loads(data)["model"]  # numbers: the allow-list names both classes
    assert isinstance(loaded.steps[0][1], FoldColumns)
    predictor = FoldPredictor(loaded)
    assert predictor.problem is None and predictor.compiled is not None
    x = outcome.result.features.to_numpy()
    p = outcome.result.probability.to_numpy()
    bars = np.arange(latest.training.predict_start, latest.training.predict_end + 1)
    assert predictor.predict(x[bars]).tobytes() == p[bars].tobytes()
    assert [predictor.predict_one(x[t]) for t in bars] == p[bars].tolist()


def test_a_model_loaded_from_the_run_predicts_its_numbers(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    folder, pipeline, first = trained
    again = {**DOC, "model": {"from_run": "train"}}
    second_pipeline, second = run(folder, again, "again")
    assert isinstance(second_pipeline.model, SavedModel)
    latest = pipeline.model.trained[-1].training
    bars = slice(latest.predict_start, latest.predict_end + 1)
    p1, p2 = first.result.probability.to_numpy(), second.result.probability.to_numpy()
    assert np.isfinite(p1[bars]).all() and p1[bars].tobytes() == p2[bars].tobytes()


def test_a_model_that_cannot_fit_fold_transforms_is_refused(tmp_path: Path) -> None:
    # the precomputed model reads no feature: a fold-fitted one changes nothing it answers
    # (parity replays such a run through it), so it is the one model kind let through
    doc = {**DOC, "model": {"kind": "precomputed", "column": "close"}}
    config, _ = load_strategy(write(tmp_path, doc))
    build_pipeline(config)
    # a model that reads features and does not say it fits their fold transforms
    transforms = [("features.1", FoldTransform(("window_0", "window_1", "window_2", "w"), PCA()))]
    problems = fold_transform_problems(config, object(), transforms)
    assert [p.message for p in problems] == [
        "is fitted inside each walk-forward fold (columns window_0, window_1, window_2, "
        "...); model kind precomputed does not fit fold transforms (kind sklearn does)"
    ]


def test_check_lookahead_passes_a_projection_fitted_per_fold(tmp_path: Path) -> None:
    config, _ = load_strategy(write(tmp_path, DOC))
    assert check_lookahead(config, points=2).finding is None


def test_check_lookahead_finds_a_projection_fitted_on_every_row(tmp_path: Path) -> None:
    doc = {
        **DOC,
        "features": [{"kind": "log_return", "period": 1}, {"kind": "all_rows_projection"}],
    }
    config, _ = load_strategy(write(tmp_path, doc))
    finding = check_lookahead(config, points=2).finding
    assert finding is not None
    assert finding.message.startswith(
        "look-ahead: features.1 (kind all_rows_projection, plugin fold_projection) column "
        "leaky_pc_0 at bar "
    )


def test_check_lookahead_finds_a_fold_transform_fitted_on_every_row(tmp_path: Path) -> None:
    doc = {
        **DOC,
        "features": [{"kind": "log_return", "period": 1}, {"kind": "all_rows_fold_projection"}],
    }
    config, _ = load_strategy(write(tmp_path, doc))
    finding = check_lookahead(config, points=2).finding
    assert finding is not None
    assert finding.message.startswith("look-ahead: model (kind sklearn, plugin ")
    assert " probability at bar " in finding.message
