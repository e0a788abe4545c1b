"""A torch model's saved folds: weights read with ``weights_only``, loaded by another run to
trade on, and a tampered, truncated, foreign or mismatched file refused in one line.

One small walk-forward run (an LSTM, several folds) is trained once per module; the tests
copy its folder before changing anything and load its folds into other strategies over the
same bars.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.plugins.model.test_registry import build, run
from tradeloom.backtest.run import RunOutcome
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError
from tradeloom.plugins.model.saved_model import SavedTorchModel
from tradeloom.plugins.model.torch_model import TorchModel

pytestmark = pytest.mark.xdist_group("torch")

TRAIN = """\
name: reg
seed: 7
data:
  kind: synthetic
  symbol: BTC/USDT
  timeframe: 1h
  bars: 500
  start: "2023-01-01T00:00:00Z"
features:
  - kind: log_return
    period: 1
  - kind: rsi
    window: 14
model:
  kind: torch
  network: lstm
  params: {hidden: 6}
  window: 12
  training: {epochs: 2, batch_size: 64}
  calibration: {method: isotonic, holdout: 40}
  label: {horizon: 3}
  walk_forward: {train_window: 160, retrain_every: 120, embargo: 1}
signal:
  kind: threshold
  threshold: 0.1
risk:
  sizing:
    kind: kelly
    fraction: 0.25
    avg_win: 0.02
    avg_loss: 0.02
execution:
  kind: simulated
"""

_MODEL = TRAIN[TRAIN.index("model:\n") : TRAIN.index("signal:\n")]


def reuse(model_block: str) -> str:
    """The training strategy with its model section replaced by ``model_block``."""
    return TRAIN.replace(_MODEL, model_block)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Pipeline, RunOutcome]:
    """The training run: its folder (holding ``train/``), pipeline and outcome."""
    folder = tmp_path_factory.mktemp("torch-registry")
    pipeline, outcome = run(folder, TRAIN, "train")
    return folder, pipeline, outcome


def _copy(trained: tuple[Path, Pipeline, RunOutcome], dest: Path) -> Path:
    shutil.copytree(trained[0] / "train", dest / "train")
    return dest / "train" / "models"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _replace(models: Path, name: str, data: bytes) -> None:
    """Write ``data`` as the fold file ``name`` and make its metadata and the index name its
    hash and size: only the file's content is wrong."""
    (models / name).write_bytes(data)
    for path in (models / name.replace(".pt", ".json"), models / "index.json"):
        text = path.read_text()
        record = json.loads(text)
        entries = record.get("folds", [record])
        for entry in entries:
            if entry["model"]["file"] == name:
                entry["model"].update(sha256=_sha(data), size=len(data))
        path.write_text(json.dumps(record, indent=2))


def _refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        build(tmp_path, text)
    (line,) = caught.value.lines()
    return line


def _latest(models: Path) -> str:
    return str(json.loads((models / "index.json").read_text())["latest"])


# --- what a run saves --------------------------------------------------------------------


def test_each_fold_is_saved_as_weights_with_the_trees_metadata(
    trained: tuple[Path, Pipeline, RunOutcome],
) -> None:
    folder, pipeline, _ = trained
    models = folder / "train" / "models"
    model = pipeline.model
    assert isinstance(model, TorchModel) and len(model.trained) >= 2
    index = json.loads((models / "index.json").read_text())
    assert [e["model"]["file"] for e in index["folds"]] == [
        f"fold-{t.training.fold:04d}.pt" for t in model.trained
    ]
    for entry in index["folds"]:
        data = (models / entry["model"]["file"]).read_bytes()
        assert entry["model"]["sha256"] == _sha(data)
        content = torch.load(io.BytesIO(data), weights_only=True)  # no code to run
        assert content["kind"] == "tradeloom.torch"
        assert content["network"] == {
            "network": "lstm",
            "class": "tradeloom.plugins.model.torch_modules.LSTMNetwork",
            "params": {"dropout": 0.0, "hidden": 6, "layers": 1},
            "n_features": 2,
            "window": 12,
            "outputs": 1,
        }
        assert content["calibrator"]["method"] == "isotonic"
        metadata = json.loads((models / entry["metadata"]).read_text())
        assert metadata["estimator"] == {
            "import_path": "tradeloom.plugins.model.torch_modules.LSTMNetwork",
            "name": "LSTMNetwork",
            "params": {"dropout": 0.0, "hidden": 6, "layers": 1, "network": "lstm", "window": 12},
            "scaler": "standard",
        }
        assert metadata["libraries"]["torch"] == torch.__version__
        assert metadata["label"]["kind"] == "direction" and metadata["horizon"] == 3
        assert content["metadata"]["training"] == metadata["training"]


def test_a_second_run_saves_the_same_bytes(
    trained: tuple[Path, Pipeline, RunOutcome], tmp_path: Path
) -> None:
    folder = trained[0]
    run(tmp_path, TRAIN, "again")
    for path in sorted((folder / "train" / "models").glob("*.pt")):
        assert (tmp_path / "again" / "models" / path.name).read_bytes() == path.read_bytes()


# --- loading ------------------------------------------------------------------------------


def test_from_run_trades_the_latest_fold_with_its_runs_probabilities(
    trained: tuple[Path, Pipeline, RunOutcome], tmp_path: Path
) -> None:
    _, first_pipeline, first = trained
    _copy(trained, tmp_path)
    latest = first_pipeline.model.trained[-1].training
    pipeline, second = run(tmp_path, reuse("model:\n  from_run: train\n"), "again")
    model = pipeline.model

    assert isinstance(model, SavedTorchModel) and model.window == 12 and model.calibrated
    start, end = latest.predict_start, latest.predict_end
    p1 = first.result.probability.to_numpy()[start : end + 1]
    p2 = second.result.probability.to_numpy()[start : end + 1]
    assert np.isfinite(p1).all()
    assert np.array_equal(p1, p2)
    x = second.result.features.to_numpy()[:, : len(model.columns)]
    one = [model.predict_window(x[t - 11 : t + 1]) for t in range(start, end + 1)]
    np.testing.assert_allclose(one, p2, rtol=0, atol=1e-6)


def test_a_tampered_fold_is_refused_before_it_is_read(
    trained: tuple[Path, Pipeline, RunOutcome], tmp_path: Path
) -> None:
    models = _copy(trained, tmp_path)
    name = _latest(models)
    data = bytearray((models / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (models / name).write_bytes(bytes(data))

    line = _refusal(tmp_path, reuse("model:\n  from_run: train\n"))
    index = re.escape(str(models / "index.json"))
    assert re.fullmatch(
        rf".*:\d+:\d+ model\.from_run: sha256 of {re.escape(str(models / name))} is "
        rf"[0-9a-f]{{64}}, expected [0-9a-f]{{64}} \(listed in {index}\); refusing to load it",
        line,
    ), line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "truncated",
            r"it is not a torch weights file \(RuntimeError: PytorchStreamReader failed "
            r"reading zip archive: failed finding central directory\)$",
        ),
        ("text", r"it is not a torch weights file \(torch\.save writes a zip archive\)$"),
        (
            "foreign",
            r"it holds a dict, not a tradeloom torch fold \(a dict of format, kind, network, "
            r"state_dict, scaler, target_scale, calibrator, epochs, label_kind, metadata\)$",
        ),
        ("code", r"it is not a torch weights file \(UnpicklingError: Weights only load failed\)$"),
        (
            "misfit",
            r"its weights do not fit its network lstm: Error\(s\) in loading state_dict for "
            r"LSTMNetwork:$",
        ),
    ],
)
def test_a_damaged_or_foreign_fold_is_refused_in_one_line(
    trained: tuple[Path, Pipeline, RunOutcome], tmp_path: Path, content: str, message: str
) -> None:
    models = _copy(trained, tmp_path)
    name = _latest(models)
    good = (models / name).read_bytes()
    if content == "truncated":
        data = good[: len(good) // 2]
    elif content == "text":
        data = b"hello, not a model\n"
    elif content == "foreign":  # a torch file of another program
        buffer = io.BytesIO()
        torch.save({"weights": torch.zeros(3)}, buffer)
        data = buffer.getvalue()
    elif content == "code":  # a torch file naming a class: torch's loader refuses it
        buffer = io.BytesIO()
        torch.save({"model": torch.nn.Linear(2, 1)}, buffer)
        data = buffer.getvalue()
    else:  # another architecture's weights under this network record
        saved = torch.load(io.BytesIO(good), weights_only=True)
        saved["network"]["params"]["hidden"] = 7
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        data = buffer.getvalue()
    _replace(models, name, data)

    line = _refusal(tmp_path, reuse("model:\n  from_run: train\n"))
    prefix = rf".*:\d+:\d+ model\.from_run: cannot load {re.escape(str(models / name))}: "
    assert re.match(prefix + message, line), line


def _with_torch_version(models: Path, name: str, version: str) -> None:
    """Save ``name`` again as if by torch ``version``: inside the file and in its metadata."""
    saved = torch.load(io.BytesIO((models / name).read_bytes()), weights_only=True)
    saved["metadata"]["libraries"]["torch"] = version
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    meta = models / name.replace(".pt", ".json")
    record = json.loads(meta.read_text())
    record["libraries"]["torch"] = version
    meta.write_text(json.dumps(record, indent=2))
    _replace(models, name, buffer.getvalue())


def test_a_fold_of_another_torch_minor_loads_and_of_another_major_is_refused(
    trained: tuple[Path, Pipeline, RunOutcome], tmp_path: Path
) -> None:
    models = _copy(trained, tmp_path)
    name = _latest(models)
    _with_torch_version(models, name, "2.5.1")
    assert isinstance(build(tmp_path, reuse("model:\n  from_run: train\n")).model, SavedTorchModel)

    _with_torch_version(models, name, "1.13.1")
    line = _refusal(tmp_path, reuse("model:\n  from_run: train\n"))
    here = re.escape(torch.__version__)
    assert re.fullmatch(
        rf".*:\d+:\d+ model\.from_run: cannot load {re.escape(str(models / name))}: it was saved "
        rf"with torch 1\.13\.1, this is torch {here} \(the major version must match\); "
        r"retrain it here or install torch 1",
        line,
    ), line


def test_a_users_network_loads_only_from_a_package_the_strategy_trusts(tmp_path: Path) -> None:
    block = _MODEL.replace("network: lstm", "network: tests.plugins.model.torch_nets.TinyNet")
    block = block.replace("params: {hidden: 6}", "params: {width: 3}")
    run(tmp_path, reuse(block), "train")
    models = tmp_path / "train" / "models"

    line = _refusal(tmp_path, reuse("model:\n  from_run: train\n"))
    assert line.endswith(
        f"model.from_run: cannot load {models / _latest(models)}: its metadata names the "
        "estimator tests.plugins.model.torch_nets.TinyNet; only scikit-learn estimators "
        "load, and those of packages the strategy file trusts "
        "(model.trusted_packages: [tests])"
    ), line
    trusted = "model:\n  from_run: train\n  trusted_packages: [tests]\n"
    model: Any = build(tmp_path, reuse(trusted)).model
    assert isinstance(model, SavedTorchModel) and model.fold.spec.class_name == "TinyNet"
