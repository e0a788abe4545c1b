"""The model registry: what a run saves, and a second run trading what the first trained.

One small walk-forward run (a scaled random forest, several folds) is trained once per
module; the tests read its ``models`` folder, copy it before changing anything, and load
its folds into other strategies over the same bars.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import shutil
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tradeloom
from tradeloom.backtest.run import RunOutcome, run_strategy
from tradeloom.domain import Bars
from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.errors import ConfigError, UserError
from tradeloom.journal import read_rows
from tradeloom.plugins.model.anomaly import anomaly_scores
from tradeloom.plugins.model.compatibility import (
    feature_problem,
    library_versions,
    version_problem,
)
from tradeloom.plugins.model.fold_predictor import predict_up
from tradeloom.plugins.model.metadata import FeatureSpec, canonical_json
from tradeloom.plugins.model.registry import registry_metrics, save_models
from tradeloom.plugins.model.safe_pickle import RefusedGlobalError, restricted_loads
from tradeloom.plugins.model.saved_model import SavedModel
from tradeloom.plugins.model.sklearn_model import SklearnModel
from tradeloom.schemas import load_strategy

TRAIN = (Path(__file__).resolve().parents[2] / "fixtures" / "registry_train.yaml").read_text(
    encoding="utf-8"
)
"""The training strategy: several folds over 700 synthetic bars, in a couple of seconds."""

_MODEL_BLOCK = TRAIN[TRAIN.index("model:\n") : TRAIN.index("signal:\n")]


def reuse(model_block: str) -> str:
    """Return the training strategy with its model section replaced by ``model_block``."""
    return TRAIN.replace(_MODEL_BLOCK, model_block)


def run(folder: Path, text: str, out: str) -> tuple[Pipeline, RunOutcome]:
    """Write ``text`` as ``folder/<out>.yaml`` and run it into ``folder/<out>``."""
    path = folder / f"{out}.yaml"
    path.write_text(text, encoding="utf-8")
    config, plugins = load_strategy(path)
    pipeline = build_pipeline(config)
    return pipeline, run_strategy(pipeline, plugins, out=folder / out)


def build(folder: Path, text: str, name: str = "s") -> Pipeline:
    """Validate and build ``text`` (written as ``folder/<name>.yaml``) without running it."""
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    config, _ = load_strategy(path)
    return build_pipeline(config)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Pipeline, RunOutcome]:
    """The training run: its folder (holding ``train/``), pipeline and outcome."""
    folder = tmp_path_factory.mktemp("registry")
    pipeline, outcome = run(folder, TRAIN, "train")
    return folder, pipeline, outcome


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_run(trained: tuple[Path, Pipeline, RunOutcome], dest: Path) -> Path:
    shutil.copytree(trained[0] / "train", dest / "train")
    return dest / "train"


# --- what a run saves ----------------------------------------------------------------------


def test_every_trained_fold_is_saved_with_its_metadata(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    folder, pipeline, outcome = trained
    model = pipeline.model
    assert isinstance(model, SklearnModel)
    assert len(model.trained) >= 3
    models = folder / "train" / "models"
    index = json.loads((models / "index.json").read_text())
    stems = [f"fold-{t.training.fold:04d}" for t in model.trained]
    assert [e["model"]["file"] for e in index["folds"]] == [f"{s}.pkl" for s in stems]
    assert index["latest"] == f"{stems[-1]}.pkl"
    assert (index["format"], index["strategy"]) == (2, "reg")
    times = outcome.result.bars.frame.index
    config = pipeline.config
    for entry, fold in zip(index["folds"], model.trained, strict=True):
        training = fold.training
        pkl = models / entry["model"]["file"]
        meta = json.loads((models / entry["metadata"]).read_text())
        assert entry["model"]["sha256"] == meta["model"]["sha256"] == _sha(pkl)
        assert meta["model"]["size"] == pkl.stat().st_size
        assert (entry["fold"], entry["reason"]) == (training.fold, "scheduled")
        assert (meta["format"], meta["strategy"], meta["has_detector"]) == (2, "reg", False)
        assert entry["has_detector"] is False
        journaled = dataclasses.fields(training)
        assert meta["training"] == {
            f.name: getattr(training, f.name) for f in journaled if f.metadata.get("journal", True)
        }
        assert "reference" not in meta["training"]
        assert (meta["training"]["horizon"], meta["training"]["embargo"]) == (3, 2)
        assert meta["training"]["estimator"] == "RandomForestClassifier"
        assert meta["training_window"] == {
            "start_bar": training.train_start,
            "end_bar": training.train_end,
            "start": times[training.train_start].isoformat(),
            "end": times[training.train_end].isoformat(),
            "labels_end": times[training.train_end + 3].isoformat(),
        }
        assert meta["predict_window"] == {
            "start_bar": training.predict_start,
            "end_bar": training.predict_end,
            "start": times[training.predict_start].isoformat(),
            "end": times[training.predict_end].isoformat(),
        }
        spec = meta["feature_spec"]
        assert spec == {"features": config.feature_spec(), "columns": list(fold.columns)}
        assert spec["features"][1] == {"kind": "rsi", "name": None, "window": 14}
        assert (
            meta["feature_spec_sha256"] == hashlib.sha256(canonical_json(spec).encode()).hexdigest()
        )
        assert meta["training_data_sha256"] == fold.data_sha256
        assert (meta["label"]["kind"], meta["label"]["horizon"], meta["horizon"]) == (
            "direction",
            3,
            3,
        )
        estimator = meta["estimator"]
        assert estimator["import_path"] == "sklearn.ensemble._forest.RandomForestClassifier"
        assert (estimator["scaler"], estimator["params"]["n_estimators"]) == ("standard", 8)
        assert estimator["params"]["random_state"] == 7
        assert meta["libraries"] == library_versions()
        assert meta["libraries"]["tradeloom"] == tradeloom.__version__
        reference = training.reference
        assert reference is not None
        assert meta["reference"]["columns"] == list(reference.columns)
        for saved, edges in zip(meta["reference"]["edges"], reference.edges, strict=True):
            assert np.array_equal(np.asarray(saved), edges)
        for saved, shares in zip(
            meta["reference"]["proportions"], reference.proportions, strict=True
        ):
            assert np.array_equal(np.asarray(saved), shares)
        bundle = pickle.loads(pkl.read_bytes())
        assert sorted(bundle) == ["detector", "format", "metadata", "model"]
        assert (bundle["format"], bundle["detector"]) == (2, None)
        x = outcome.result.features.to_numpy()[training.predict_start : training.predict_end + 1]
        assert np.array_equal(predict_up(bundle["model"], x), predict_up(fold.fitted, x))
        # the decisive metadata travels inside the hashed file too, equal to the JSON's
        assert bundle["metadata"] == {
            "estimator": estimator["import_path"],
            "columns": spec["columns"],
            "feature_spec_sha256": meta["feature_spec_sha256"],
            "label": meta["label"],
            "horizon": 3,
            "labels_end": meta["training_window"]["labels_end"],
            "reference": meta["reference"],
            "libraries": meta["libraries"],
            "training": meta["training"],
        }


def test_the_run_journals_models_saved_and_reports_them_in_its_metrics(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    folder, pipeline, outcome = trained
    latest = (
        folder / "train" / "models" / f"fold-{pipeline.model.trained[-1].training.fold:04d}.pkl"
    )
    rows = list(read_rows(folder / "train" / "journal.sqlite", ["models_saved"]))
    assert [r.values for r in rows] == [
        {
            "dir": "models",
            "count": len(pipeline.model.trained),
            "latest": latest.name,
            "sha256": _sha(latest),
        }
    ]
    metrics = json.loads((folder / "train" / "metrics.json").read_text())
    assert metrics["model_registry"] == {
        "dir": "models",
        "files": len(pipeline.model.trained),
        "latest": {"file": latest.name, "sha256": _sha(latest)},
    }
    assert outcome.metrics["model_registry"] == metrics["model_registry"]


def test_a_model_without_trained_folds_saves_nothing(tmp_path: Path) -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    precomputed = types.SimpleNamespace(horizon=1)
    assert (
        save_models(tmp_path / "m", precomputed, strategy="s", feature_spec=[], timestamps=index)
        is None
    )
    assert not (tmp_path / "m").exists()
    assert registry_metrics(None, precomputed) is None
    untrained = types.SimpleNamespace(trained=[])
    assert (
        save_models(tmp_path / "m", untrained, strategy="s", feature_spec=[], timestamps=index)
        is None
    )
    assert registry_metrics(None, untrained) == {"dir": None, "files": 0, "latest": None}


def test_retrained_folds_are_saved_and_the_latest_is_the_one_predicting_the_last_bars(
    trained: tuple[Path, Pipeline, RunOutcome], tmp_path: Path
) -> None:
    _, pipeline, outcome = trained
    scheduled = pipeline.model.trained
    middle = scheduled[1]
    retrained = dataclasses.replace(
        middle,
        training=dataclasses.replace(
            middle.training, fold=len(scheduled), reason="health.0: rolling_auc.auc 0.41 < 0.45"
        ),
    )
    again = dataclasses.replace(retrained)  # the same fold number twice
    model = types.SimpleNamespace(
        trained=[*scheduled, retrained, again],
        estimator=pipeline.model.estimator,
        label=pipeline.model.label,
        scaler="standard",
    )
    saved = save_models(
        tmp_path / "models",
        model,
        strategy="reg",
        feature_spec=pipeline.config.feature_spec(),
        timestamps=outcome.result.bars.frame.index,
    )
    assert saved is not None
    n = len(scheduled)
    files = [e.model.file for e in saved.index.folds]
    assert files[n:] == [f"fold-{n:04d}.pkl", f"fold-{n:04d}-2.pkl"]
    assert saved.index.latest == f"fold-{scheduled[-1].training.fold:04d}.pkl"
    assert saved.index.folds[n].reason == "health.0: rolling_auc.auc 0.41 < 0.45"
    meta = json.loads((tmp_path / "models" / f"fold-{n:04d}-2.json").read_text())
    assert meta["training"]["reason"] == "health.0: rolling_auc.auc 0.41 < 0.45"
    # a retraining that predicts up to the last bar, from later on, is the latest model
    last = scheduled[-1]
    late = dataclasses.replace(
        last,
        training=dataclasses.replace(
            last.training, fold=n + 1, predict_start=last.training.predict_start + 10
        ),
    )
    model.trained = [*scheduled, late, retrained]
    saved = save_models(
        tmp_path / "later",
        model,
        strategy="reg",
        feature_spec=pipeline.config.feature_spec(),
        timestamps=outcome.result.bars.frame.index,
    )
    assert saved is not None and saved.index.latest == f"fold-{n + 1:04d}.pkl"


# --- trading a saved model -------------------------------------------------------------------


def test_from_run_gives_the_latest_folds_probabilities_exactly(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    folder, first_pipeline, first = trained
    latest = first_pipeline.model.trained[-1]
    pipeline, second = run(folder, reuse("model:\n  from_run: train\n"), "again")
    model = pipeline.model
    assert isinstance(model, SavedModel) and model.trained == []
    start, end = latest.training.predict_start, latest.training.predict_end
    p1 = first.result.probability.to_numpy()
    p2 = second.result.probability.to_numpy()
    assert np.isfinite(p1[start : end + 1]).all()
    assert np.array_equal(p1[start : end + 1], p2[start : end + 1])
    # bars up to the last one the training labels reached are in-sample: no prediction
    labels_end = latest.training.train_end + latest.training.horizon
    assert np.isnan(p2[: labels_end + 1]).all()
    assert np.isfinite(p2[labels_end + 1 :]).all()
    # one training journaled, at the first bar it predicts, naming the file and its hash
    source = folder / "train" / "models" / f"fold-{latest.training.fold:04d}.pkl"
    rows = list(read_rows(folder / "again" / "journal.sqlite", ["model_trained"]))
    assert len(rows) == 1 and rows[0].bar == labels_end + 1
    payload = rows[0].values
    assert payload["reason"] == f"loaded {source.name} sha256 {_sha(source)}"
    assert (payload["fold"], payload["train_end"], payload["predict_start"]) == (
        latest.training.fold,
        latest.training.train_end,
        labels_end + 1,
    )
    (training,) = second.result.recorder.trainings
    assert training.reference is not None and latest.training.reference is not None
    for loaded, saved in zip(
        training.reference.edges, latest.training.reference.edges, strict=True
    ):
        assert np.array_equal(loaded, saved)
    assert second.metrics["model_registry"] == {
        "dir": None,
        "files": 0,
        "latest": None,
        "loaded": {"source": str(source), "sha256": _sha(source)},
    }
    assert not (folder / "again" / "models").exists()


def test_predict_row_of_a_loaded_model_matches_its_batch_predictions(
    trained: tuple[Path, Pipeline, RunOutcome], tmp_path: Path
) -> None:
    folder, _, first = trained
    shutil.copytree(folder / "train", tmp_path / "train")
    model = build(tmp_path, reuse("model:\n  from_run: train\n  fold: 0\n")).model
    assert isinstance(model, SavedModel)
    output = model.fit_predict(first.result.bars, first.result.features)
    assert model.compiled is not None  # a random forest runs on the compiled trees
    x = first.result.features.to_numpy()
    p = output.probability.to_numpy()
    rows = np.flatnonzero(np.isfinite(p))[::20]
    assert len(rows) >= 10
    assert [model.predict_row(x[t]) for t in rows] == p[rows].tolist()
    assert np.isnan(model.predict_row(np.full(x.shape[1], np.nan)))
    with pytest.raises(
        ValueError, match=r"^values must hold one value per feature column \(4\), has shape \(3,\)$"
    ):
        model.predict_row(x[0, :3])


def test_path_and_sha256_load_one_fold(trained: tuple[Path, Pipeline, RunOutcome]) -> None:
    folder, first_pipeline, first = trained
    fold = first_pipeline.model.trained[1]
    pkl = folder / "train" / "models" / f"fold-{fold.training.fold:04d}.pkl"
    block = f"model:\n  path: train/models/{pkl.name}\n  sha256: {_sha(pkl).upper()}\n"
    pipeline = build(folder, reuse(block), "by_path")
    assert pipeline.config.model.kind == "saved"
    output = pipeline.model.fit_predict(first.result.bars, first.result.features)
    start, end = fold.training.predict_start, fold.training.predict_end
    p1 = first.result.probability.to_numpy()[start : end + 1]
    assert np.array_equal(output.probability.to_numpy()[start : end + 1], p1)
    assert output.anomalous is None


def test_from_run_with_fold_loads_that_fold(trained: tuple[Path, Pipeline, RunOutcome]) -> None:
    folder, first_pipeline, _ = trained
    fold = first_pipeline.model.trained[0]
    model = build(folder, reuse(f"model:\n  from_run: train\n  fold: {fold.training.fold}\n")).model
    assert isinstance(model, SavedModel)
    assert model.loaded_from["source"].endswith(f"fold-{fold.training.fold:04d}.pkl")


def test_the_columns_given_to_a_loaded_model_must_be_its_own(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    folder, _, first = trained
    model = build(folder, reuse("model:\n  from_run: train\n")).model
    features = first.result.features
    swapped = features[[features.columns[1], features.columns[0], *features.columns[2:]]]
    with pytest.raises(
        UserError,
        match=r"^model: fold-\d{4}\.pkl was trained on columns log_return_1, rsi_14, "
        r"log_return_1_lag_1, log_return_1_lag_2; the features give rsi_14, log_return_1, "
        r"log_return_1_lag_1, log_return_1_lag_2$",
    ):
        model.fit_predict(first.result.bars, swapped)


def test_bars_all_inside_the_training_data_are_refused(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    folder, _, first = trained
    model = build(folder, reuse("model:\n  from_run: train\n  fold: 0\n")).model
    bars = first.result.bars
    short = Bars(bars.frame.iloc[:200], bars.symbol, bars.timeframe, bars.timeframe_seconds)
    with pytest.raises(
        UserError,
        match=r"^model: every bar is inside fold-0000\.pkl's training data \(its labels reach "
        r"\S+, the bars end 2023-01-09T07:00:00\+00:00\); give it bars after that$",
    ):
        model.fit_predict(short, first.result.features.iloc[:200])


# --- the anomaly detector travels with its fold ------------------------------------------------


def test_a_folds_detector_is_saved_inside_its_model_file_and_loaded(tmp_path: Path) -> None:
    gated = TRAIN.replace(
        "  scaler: standard\n", "  scaler: standard\n  anomaly: {n_estimators: 20}\n"
    )
    first_pipeline, first = run(tmp_path, gated, "train")
    folds = first_pipeline.model.trained
    assert all(fold.detector is not None for fold in folds)
    models = tmp_path / "train" / "models"
    assert not list(models.glob("*.detector.pkl"))  # no file of its own to swap
    index = json.loads((models / "index.json").read_text())
    for entry, fold in zip(index["folds"], folds, strict=True):
        assert (entry["fold"], entry["has_detector"]) == (fold.training.fold, True)
        meta = json.loads((models / entry["metadata"]).read_text())
        assert meta["has_detector"] is True and "detector" not in meta
        bundle = pickle.loads((models / entry["model"]["file"]).read_bytes())
        assert type(bundle["detector"]).__name__ == "IsolationForest"

    pipeline, second = run(tmp_path, reuse("model:\n  from_run: train\n"), "again")
    model = pipeline.model
    assert isinstance(model, SavedModel) and model.detector is not None
    output = model.fit_predict(second.result.bars, second.result.features)
    assert output.anomalous is not None and output.anomaly_score is not None
    x = first.result.features.to_numpy()
    t = folds[-1].training
    segment = np.arange(t.predict_start, t.predict_end + 1)
    segment = segment[np.isfinite(x[segment]).all(axis=1)]
    expected = anomaly_scores(folds[-1].detector, x[segment])
    assert np.array_equal(output.anomaly_score.to_numpy()[segment], expected)
    assert np.array_equal(output.anomalous.to_numpy(), output.anomaly_score.to_numpy() < 0)
    assert np.isnan(output.anomaly_score.to_numpy()[: t.train_end + t.horizon + 1]).all()
    assert [model.anomaly_score_row(x[i]) for i in segment[:5]] == expected[:5].tolist()
    assert model.anomalous_row(x[segment[0]]) == bool(expected[0] < 0)

    # the metadata cannot switch the gate off: the file says it holds a detector
    latest = models / index["latest"]
    meta_path = latest.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["has_detector"] = False
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError) as caught:
        build(tmp_path, reuse("model:\n  from_run: train\n"))
    (line,) = caught.value.lines()
    assert line == (
        f"{tmp_path / 's.yaml'}:18:13 model.from_run: metadata file does not match the model "
        f"file: {meta_path} differs from what {latest} holds in has_detector; it was "
        "edited, or belongs to another model file"
    )


# --- the restricted unpickler ----------------------------------------------------------------


class CreatesFile:
    """Pickles as a call that creates ``path``: loading it with plain pickle runs code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_the_malicious_pickle_of_these_tests_runs_code_when_loaded_plainly(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(CreatesFile(marker), protocol=5)).close()
    assert marker.exists()


def test_the_restricted_unpickler_refuses_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(
        RefusedGlobalError,
        match=r"^refused global io\.open "
        r"\(not from scikit-learn or a package the strategy file trusts\)$",
    ):
        restricted_loads(pickle.dumps(CreatesFile(marker), protocol=5))
    assert not marker.exists()


# --- what makes a model incompatible -------------------------------------------------------


SPEC = FeatureSpec(
    features=[
        {"kind": "log_return", "name": None, "period": 1},
        {"kind": "rsi", "name": None, "window": 14},
    ],
    columns=["log_return_1", "rsi_14"],
)


def test_equal_features_have_no_problem() -> None:
    assert feature_problem(SPEC, SPEC.features, SPEC.columns) is None


def test_a_changed_parameter_is_named_by_its_key_path() -> None:
    ours = [SPEC.features[0], {"kind": "rsi", "name": None, "window": 21}]
    assert feature_problem(SPEC, ours, ["log_return_1", "rsi_21"]) == (
        "features.1 (rsi) window is 21 here, 14 in the model; columns missing here: rsi_14; "
        "columns not in the model: rsi_21"
    )


def test_added_missing_and_reordered_features_are_named() -> None:
    vol = {"kind": "volatility", "name": None, "window": 24, "annualize": True}
    assert feature_problem(SPEC, [*SPEC.features, vol], [*SPEC.columns, "volatility_24"]) == (
        "features.2 (volatility) is not in the model's features; "
        "columns not in the model: volatility_24"
    )
    assert feature_problem(SPEC, SPEC.features[:1], SPEC.columns[:1]) == (
        "features.1 (rsi) of the model's features is missing here; columns missing here: rsi_14"
    )
    assert feature_problem(SPEC, SPEC.features[::-1], SPEC.columns[::-1]) == (
        "features.0 is rsi here, log_return in the model; "
        "features.1 is log_return here, rsi in the model; "
        "columns in another order: the model's are log_return_1, rsi_14"
    )


def test_library_versions_must_match_in_major_minor_for_sklearn_and_major_for_numpy() -> None:
    here = library_versions()
    assert version_problem(here) is None
    sk_major, sk_minor = here["scikit-learn"].split(".")[:2]
    patched = {**here, "scikit-learn": f"{sk_major}.{sk_minor}.99"}
    assert version_problem(patched) is None
    old = {**here, "scikit-learn": "0.24.2"}
    assert version_problem(old) == (
        f"it was saved with scikit-learn 0.24.2, this is scikit-learn {here['scikit-learn']} "
        "(the major.minor version must match); retrain it here or install scikit-learn 0.24"
    )
    np_major = int(here["numpy"].split(".")[0])
    assert version_problem({**here, "numpy": f"{np_major}.0.0"}) is None
    assert version_problem({**here, "numpy": f"{np_major - 1}.26.4"}) == (
        f"it was saved with numpy {np_major - 1}.26.4, this is numpy {here['numpy']} "
        f"(the major version must match); retrain it here or install numpy {np_major - 1}"
    )
    # a third-party estimator's package is recorded by distribution and must match too
    third = library_versions("yaml")
    assert third == {**here, "PyYAML": third["PyYAML"]}
    assert version_problem(third) is None
    assert version_problem({**here, "PyYAML": "0.1"}) == (
        f"it was saved with PyYAML 0.1, this is PyYAML {third['PyYAML']} (the major.minor "
        "version must match); retrain it here or install PyYAML 0.1"
    )
    assert version_problem({**here, "xgboostish": "1.0"}) == (
        "it was saved with xgboostish 1.0, which is not installed here"
    )
    assert (
        version_problem({"numpy": here["numpy"]}) == "its metadata records no scikit-learn version"
    )


def test_a_saved_section_is_a_config_error_when_its_file_is_bad(
    trained: tuple[Path, Pipeline, RunOutcome], tmp_path: Path
) -> None:
    train = _copy_run(trained, tmp_path)
    (train / "models" / "index.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build(tmp_path, reuse("model:\n  from_run: train\n"))
    (line,) = caught.value.lines()
    index = train / "models" / "index.json"
    assert line == (
        f"{tmp_path / 's.yaml'}:18:13 model.from_run: {index} is not valid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )


@pytest.mark.parametrize(
    ("estimator", "label"),
    [
        ("sklearn.ensemble.RandomForestRegressor", "{kind: return, horizon: 3}"),
        (
            "sklearn.ensemble.RandomForestClassifier",
            "{kind: classes, horizon: 3, dead_band: 0.004}",
        ),
    ],
)
def test_a_saved_return_or_classes_model_predicts_its_runs_numbers(
    tmp_path: Path, estimator: str, label: str
) -> None:
    text = TRAIN.replace("sklearn.ensemble.RandomForestClassifier", estimator).replace(
        "label: {horizon: 3}", f"label: {label}"
    )
    first_pipeline, first = run(tmp_path, text, "train")
    latest = first_pipeline.model.trained[-1]
    metadata = json.loads(
        (tmp_path / "train" / "models" / f"fold-{latest.training.fold:04d}.json").read_text()
    )
    assert metadata["label"]["kind"] == label.split(",")[0].removeprefix("{kind: ")
    pipeline, second = run(tmp_path, reuse("model:\n  from_run: train\n"), "again")
    model = pipeline.model
    assert isinstance(model, SavedModel) and model.compiled is None
    start, end = latest.training.predict_start, latest.training.predict_end
    p1 = first.result.probability.to_numpy()[start : end + 1]
    p2 = second.result.probability.to_numpy()[start : end + 1]
    assert np.isfinite(p1).all() and np.array_equal(p1, p2)
    x = second.result.features.to_numpy()
    assert model.predict_row(x[end]) == p2[-1]


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_a_saved_calibrated_fold_loads_and_predicts_its_runs_calibrated_numbers(
    tmp_path: Path, method: str
) -> None:
    text = TRAIN.replace(
        "  label: {horizon: 3}",
        f"  label: {{horizon: 3}}\n  calibration: {{method: {method}, holdout: 60}}",
    )
    first_pipeline, first = run(tmp_path, text, "train")
    latest = first_pipeline.model.trained[-1]
    metadata = json.loads(
        (tmp_path / "train" / "models" / f"fold-{latest.training.fold:04d}.json").read_text()
    )
    assert metadata["training"]["calibration"].startswith(f"{method} on rows ")
    pipeline, second = run(tmp_path, reuse("model:\n  from_run: train\n"), "again")
    model = pipeline.model
    assert isinstance(model, SavedModel) and model.compiled is not None  # its calibrator too
    start, end = latest.training.predict_start, latest.training.predict_end
    p1 = first.result.probability.to_numpy()[start : end + 1]
    p2 = second.result.probability.to_numpy()[start : end + 1]
    assert np.isfinite(p1).all() and np.array_equal(p1, p2)
    x = second.result.features.to_numpy()
    assert model.predict_row(x[end]) == p2[-1]
