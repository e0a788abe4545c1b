"""``tradeloom models export RUN --onnx``: a run folder's folds written as ONNX, each graph
giving the fold's probability on its own rows, and every bad input one line with exit 2.

Two tiny runs are trained once per module: a calibrated random forest (as the shipped
strategies declare theirs) and a calibrated LSTM; the tests copy a run folder before
changing anything in it. Every family's graph: ``test_onnx_graphs.py``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pandas as pd
import pytest
import yaml

from tests.builders import strategy
from tests.plugins.model.test_registry import run
from tradeloom.cli.main import main
from tradeloom.plugins.model.loading import ModelRequest, load_saved_model

pytestmark = pytest.mark.xdist_group("torch")

FOREST = {
    "kind": "sklearn",
    "estimator": "sklearn.ensemble.RandomForestClassifier",
    "params": {"n_estimators": 5, "max_depth": 3, "n_jobs": 1},
    "calibration": {"method": "sigmoid", "holdout": 40},
    "label": {"horizon": 2},
    "walk_forward": {"train_window": 150, "retrain_every": 100},
}

LSTM = {
    "kind": "torch",
    "network": "lstm",
    "params": {"hidden": 4},
    "window": 6,
    "training": {"epochs": 1, "batch_size": 64},
    "calibration": {"method": "isotonic", "holdout": 40},
    "label": {"horizon": 2},
    "walk_forward": {"train_window": 150, "retrain_every": 150},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two runs' folders, by name."""
    folder = tmp_path_factory.mktemp("export")
    for name, model in (("forest", FOREST), ("lstm", LSTM)):
        # features.parquet: the columns the exported models are fed
        run(folder, yaml.safe_dump(strategy(model=model, outputs={"features": True})), name)
    return {"forest": folder / "forest", "lstm": folder / "lstm"}


def _copy(runs: dict[str, Path], name: str, dest: Path) -> Path:
    return Path(shutil.copytree(runs[name], dest / name))


def _refusal(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    assert main(["-q", "models", "export", *words]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("name", ["forest", "lstm"])
def test_each_fold_is_written_with_its_manifest_and_gives_the_fold_s_probability(
    runs: dict[str, Path], name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "onnx"
    assert main(["-q", "models", "export", str(runs[name]), "--onnx", "--out", str(out)]) == 0
    index = json.loads((runs[name] / "models" / "index.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["fold"] for f in manifest["folds"]] == [e["fold"] for e in index["folds"]]
    assert len(manifest["folds"]) >= 2
    printed = capsys.readouterr().out
    assert f"wrote {len(manifest['folds'])} folds and manifest.json into {out}" in printed
    assert {"onnx", "onnxruntime", "skl2onnx", "torch"} <= set(manifest["libraries"])
    features = pd.read_parquet(runs[name] / "features.parquet")
    for entry, fold in zip(index["folds"], manifest["folds"], strict=True):
        data = (out / fold["file"]).read_bytes()
        assert fold["sha256"] == hashlib.sha256(data).hexdigest()
        assert fold["source"] == {
            "file": entry["model"]["file"],
            "sha256": entry["model"]["sha256"],
        }
        assert fold["features"] == ["log_return_1", "rsi_14"]
        assert fold["output"] == "probability_up"
        assert fold["train_window"]["start_bar"] == entry["train_start"]
        assert fold["train_window"]["end_bar"] == entry["train_end"]
        assert fold["calibration"]
        assert fold["checked_rows"] > 100 and fold["max_difference"] <= 1e-6
        # independently of the command: the graph against the fold loaded as a run loads it
        loaded = load_saved_model(
            ModelRequest(
                path=runs[name] / "models" / entry["model"]["file"],
                sha256=entry["model"]["sha256"],
            ),
            feature_spec=None,
            columns=(),
        )
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        x = features[fold["features"]].to_numpy(np.float64)
        first, last = fold["train_window"]["start_bar"], fold["predict_window"]["end_bar"]
        if name == "lstm":
            window = fold["input"]["shape"][1]
            rows = [r for r in range(max(first, window), last + 1)]
            inputs = np.stack([x[r - window + 1 : r + 1] for r in rows])
            expected = loaded.fitted.predict(inputs)
        else:
            from tradeloom.plugins.model.fold_predictor import FoldPredictor

            inputs = x[first : last + 1]
            expected = FoldPredictor(loaded.fitted).predict(inputs)
        (got,) = session.run(["probability_up"], {fold["input"]["name"]: inputs})
        assert np.abs(got - expected).max() <= 1e-6
        assert np.ptp(expected) > 0.0


def test_the_default_folder_is_the_run_s_onnx_folder(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = _copy(runs, "forest", tmp_path)
    assert main(["-q", "models", "export", str(copy), "--onnx"]) == 0
    assert sorted(p.name for p in (copy / "onnx").iterdir()) == [
        "fold-0000.onnx",
        "fold-0001.onnx",
        "fold-0002.onnx",
        "manifest.json",
    ]


def test_not_a_run_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert _refusal(capsys, str(missing), "--onnx") == f"{missing}: not a run directory"
    (tmp_path / "plain").mkdir()
    assert _refusal(capsys, str(tmp_path / "plain"), "--onnx") == (
        f"{tmp_path / 'plain'}: not a run directory (no journal.sqlite); give the folder a "
        "run wrote"
    )


def test_a_run_without_saved_models_is_refused(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(runs, "forest", tmp_path)
    shutil.rmtree(copy / "models")
    assert _refusal(capsys, str(copy), "--onnx") == (
        f"{copy} holds no saved models (models/index.json not found); give the folder of a "
        "run whose model trained (an sklearn or torch model)"
    )
    assert not (copy / "onnx").exists()


@pytest.mark.parametrize("name", ["forest", "lstm"])
def test_a_tampered_or_truncated_model_file_is_refused(
    runs: dict[str, Path], name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(runs, name, tmp_path)
    suffix = ".pt" if name == "lstm" else ".pkl"
    target = copy / "models" / f"fold-0001{suffix}"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    line = _refusal(capsys, str(copy), "--onnx")
    assert line.startswith(f"{copy}: fold 1: sha256 of {target} is ")
    assert line.endswith("(listed in the run's models/index.json); refusing to load it") or (
        "refusing to load it" in line
    )
    target.write_bytes(bytes(data[:100]))
    assert "(truncated?); refusing to load it" in _refusal(capsys, str(copy), "--onnx")
    assert not (copy / "onnx").exists()  # nothing written before every fold is exported


def test_a_run_whose_journal_is_refused_is_not_exported(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(runs, "forest", tmp_path)
    document = yaml.safe_load((copy / "strategy.yaml").read_text())
    document["model"]["trusted_packages"] = ["lightgbm"]
    (copy / "strategy.yaml").write_text(yaml.safe_dump(document))
    line = _refusal(capsys, str(copy), "--onnx")
    assert "the run's strategy file was replaced" in line


def test_a_fold_that_cannot_be_exported_is_named_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model: dict[str, Any] = {
        **FOREST,
        "estimator": "sklearn.svm.SVC",
        "params": {"probability": True, "random_state": 0},
    }
    run(tmp_path, yaml.safe_dump(strategy(model=model, outputs={"features": True})), "svc")
    assert _refusal(capsys, str(tmp_path / "svc"), "--onnx") == (
        f"{tmp_path / 'svc'}: fold 0: cannot export it: its calibrator was fitted on the "
        "decision_function of SVC, which the ONNX graph does not give (exported: calibrated "
        "trees, boosting, and LogisticRegression, HistGradientBoostingClassifier, "
        "GradientBoostingClassifier, LGBMClassifier)"
    )
    assert not (tmp_path / "svc" / "onnx").exists()


def test_a_missing_extra_names_it(
    runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # an import of it fails
    assert _refusal(capsys, str(runs["forest"]), "--onnx") == (
        "tradeloom models export --onnx needs skl2onnx: pip install 'tradeloom[onnx]'"
    )
