"""Saved models through the ``tradeloom`` command: every bad model file exits 2 with one line.

A walk-forward run is trained once (in process); each test copies its run directory,
damages or tampers with it as a user or an attacker would, and calls the command's
``main`` in process with a strategy that loads it. A tampered pickle would create a
marker file if any of its code ran: the marker must never appear.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import structlog
import yaml

from tests import forkserver
from tradeloom.backtest.run import run_strategy
from tradeloom.cli.main import main
from tradeloom.engine.wiring import build_pipeline
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas import load_strategy, strategy_json_schema
from tradeloom.schemas.json_schema import to_draft7

TRAIN = (Path(__file__).resolve().parents[1] / "fixtures" / "registry_train.yaml").read_text(
    encoding="utf-8"
)
"""The training strategy; the model section of the strategies below starts at line 17."""

_MODEL_BLOCK = TRAIN[TRAIN.index("model:\n") : TRAIN.index("signal:\n")]
FIRST_FOLD = "fold-0000.pkl"


class CreatesFile:
    """Pickles as a call that creates ``path``: loading it with plain pickle runs code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose sklearn model saved several folds."""
    folder = tmp_path_factory.mktemp("trained")
    path = folder / "train.yaml"
    path.write_text(TRAIN, encoding="utf-8")
    config, plugins = load_strategy(path)
    saved = structlog.get_config()
    try:
        run_strategy(build_pipeline(config), plugins, out=folder / "train")
    finally:
        structlog.configure(**saved)
    return folder / "train"


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def run_dir(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the trained run as ``train/`` in the current folder (tmp_path)."""
    shutil.copytree(trained_run, tmp_path / "train")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "train"


def strategy(model_block: str) -> Path:
    """Write ``s.yaml`` in the current folder: the training strategy with this model."""
    path = Path("s.yaml")
    path.write_text(TRAIN.replace(_MODEL_BLOCK, model_block), encoding="utf-8")
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def index(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "models" / "index.json").read_text())


def latest(run_dir: Path) -> Path:
    return run_dir / "models" / index(run_dir)["latest"]


def metadata_of(pkl: Path) -> Path:
    return pkl.with_suffix(".json")


def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``tradeloom ARGS``; check it exits 2 with one line and no output; return it."""
    code = main(list(args))
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, ""), captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def plant(run_dir: Path, pkl: Path, marker: Path) -> str:
    """Put a pickle that would create ``marker`` in place of ``pkl``; return its sha256."""
    pkl.write_bytes(pickle.dumps(CreatesFile(marker), protocol=5))
    assert pkl.is_relative_to(run_dir)
    return sha(pkl)


# --- loading works without kind: ---------------------------------------------------------


@pytest.mark.usefixtures("cli_logging")
def test_path_and_sha256_validate_without_kind(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkl = run_dir / "models" / FIRST_FOLD
    path = strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {sha(pkl)}\n")
    assert main(["validate", str(path)]) == 0
    assert "model saved," in capsys.readouterr().out


@pytest.mark.usefixtures("cli_logging")
def test_from_run_runs_through_the_cli(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = strategy("model:\n  from_run: train\n")
    assert main(["run", str(path), "--out", "again"]) == 0
    metrics = json.loads(Path("again/metrics.json").read_text())
    source = latest(run_dir)
    assert metrics["model_registry"]["loaded"] == {"source": str(source), "sha256": sha(source)}
    assert metrics["model_trainings"] == 1 and metrics["predictions"] > 0


@pytest.mark.parametrize("draft", ["2020-12", "7"])
def test_the_json_schema_accepts_a_saved_model_without_kind(draft: str) -> None:
    schema = strategy_json_schema(load_plugins(entry_points=False).registry)
    # a path needs its sha256: dependentRequired, draft 7's dependencies
    check = jsonschema.Draft202012Validator if draft == "2020-12" else jsonschema.Draft7Validator
    if draft == "7":
        schema = to_draft7(schema)
    check.check_schema(schema)
    validator = check(schema)
    document = yaml.safe_load(TRAIN)
    valid = [
        {"from_run": "runs/x"},
        {"from_run": "runs/x", "fold": 2, "sha256": "a" * 64},
        {"path": "m.pkl", "sha256": "a" * 64},
        {"kind": "saved", "path": "m.pkl", "sha256": "a" * 64},
        document["model"],
    ]
    invalid = [
        {"path": "m.pkl"},
        {"path": "m.pkl", "from_run": "runs/x", "sha256": "a" * 64},
        {"from_run": "runs/x", "sha256": "abc"},
        {"kind": "saved"},
        {"sha256": "a" * 64},
    ]
    for model in valid:
        assert validator.is_valid({**document, "model": model}), model
    for model in invalid:
        assert not validator.is_valid({**document, "model": model}), model


# --- bad model files: exit 2, one line ---------------------------------------------------


@pytest.mark.usefixtures("cli_logging")
def test_missing_model_file(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy(f"model:\n  path: train/models/fold-0099.pkl\n  sha256: {'f' * 64}\n")
    missing = run_dir / "models" / "fold-0099.pkl"
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:9 model.path: file not found: {missing}"
    )


@pytest.mark.usefixtures("cli_logging")
def test_truncated_model_file(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkl = latest(run_dir)
    listed = sha(pkl)
    data = pkl.read_bytes()
    pkl.write_bytes(data[:100])
    strategy("model:\n  from_run: train\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:13 model.from_run: sha256 of {pkl} is {sha(pkl)}, expected {listed} "
        f"(listed in {run_dir / 'models' / 'index.json'}); it is 100 bytes, its metadata "
        f"says {len(data):,} (truncated?); refusing to load it"
    )


@pytest.mark.usefixtures("cli_logging")
def test_wrong_hash(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkl = run_dir / "models" / FIRST_FOLD
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {'ab' * 32}\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:19:11 model.sha256: sha256 of {pkl} is {sha(pkl)}, expected {'ab' * 32} "
        "(the sha256 pinned there); refusing to load it"
    )


@pytest.mark.usefixtures("cli_logging")
def test_model_trained_on_other_features(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy("model:\n  from_run: train\n")
    name = latest(run_dir).name
    assert refused(capsys, "validate", "s.yaml", "--set", "features.1.window=21") == (
        f"s.yaml:18:3 model: {name} was trained on other features: features.1 (rsi) window "
        "is 21 here, 14 in the model; columns missing here: rsi_14; columns not in the "
        "model: rsi_21"
    )


@pytest.mark.usefixtures("cli_logging")
def test_model_saved_with_another_scikit_learn(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkl = latest(run_dir)
    here = json.loads(metadata_of(pkl).read_text())["libraries"]["scikit-learn"]
    edit_json(metadata_of(pkl), lambda m: m["libraries"].update({"scikit-learn": "0.24.2"}))
    strategy("model:\n  from_run: train\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:13 model.from_run: cannot load {pkl}: it was saved with scikit-learn "
        f"0.24.2, this is scikit-learn {here} (the major.minor version must match); retrain "
        "it here or install scikit-learn 0.24"
    )


@pytest.mark.usefixtures("cli_logging")
def test_model_saved_with_another_numpy_major(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkl = run_dir / "models" / FIRST_FOLD
    here = json.loads(metadata_of(pkl).read_text())["libraries"]["numpy"]
    edit_json(metadata_of(pkl), lambda m: m["libraries"].update({"numpy": "1.26.4"}))
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {sha(pkl)}\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:9 model.path: cannot load {pkl}: it was saved with numpy 1.26.4, this is "
        f"numpy {here} (the major version must match); retrain it here or install numpy 1"
    )


@pytest.mark.usefixtures("cli_logging")
def test_missing_metadata(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkl = run_dir / "models" / FIRST_FOLD
    metadata_of(pkl).unlink()
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {sha(pkl)}\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:9 model.path: no metadata for {pkl}: {metadata_of(pkl)} not found (a model "
        "file is loaded with the metadata its run saved beside it)"
    )


@pytest.mark.usefixtures("cli_logging")
def test_metadata_that_is_not_model_metadata(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkl = run_dir / "models" / FIRST_FOLD
    edit_json(metadata_of(pkl), lambda m: m.pop("feature_spec"))
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {sha(pkl)}\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:9 model.path: {metadata_of(pkl)} is not tradeloom model metadata: "
        "feature_spec: Field required"
    )


@pytest.mark.usefixtures("cli_logging")
def test_a_run_without_saved_models(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(run_dir / "models")
    strategy("model:\n  from_run: train\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:13 model.from_run: {run_dir} holds no saved models (models/index.json not "
        "found); give the directory of a run whose model trained (an sklearn model)"
    )


@pytest.mark.usefixtures("cli_logging")
def test_a_fold_the_run_did_not_save(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folds = ", ".join(str(e["fold"]) for e in index(run_dir)["folds"])
    strategy("model:\n  from_run: train\n  fold: 42\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:19:9 model.fold: {run_dir} saved no fold 42; it saved folds {folds}"
    )


# --- bad model sections: exit 2, one line ------------------------------------------------


@pytest.mark.usefixtures("cli_logging", "run_dir")
def test_malformed_sha256(capsys: pytest.CaptureFixture[str]) -> None:
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: abc\n")
    assert refused(capsys, "validate", "s.yaml") == (
        "s.yaml:19:11 model.sha256: expected 64 hexadecimal digits (a SHA-256, as sha256sum "
        "prints it), was 'abc'"
    )


@pytest.mark.usefixtures("cli_logging", "run_dir")
def test_both_path_and_from_run(capsys: pytest.CaptureFixture[str]) -> None:
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {'a' * 64}\n  from_run: x\n")
    assert refused(capsys, "validate", "s.yaml") == (
        "s.yaml:18:3 model: give path or from_run, not both"
    )


@pytest.mark.usefixtures("cli_logging", "run_dir")
def test_neither_path_nor_from_run(capsys: pytest.CaptureFixture[str]) -> None:
    strategy("model:\n  kind: saved\n  sha256: " + "a" * 64 + "\n")
    assert refused(capsys, "validate", "s.yaml") == (
        "s.yaml:18:3 model: give path (with sha256) or from_run"
    )


@pytest.mark.usefixtures("cli_logging", "run_dir")
def test_path_without_sha256(capsys: pytest.CaptureFixture[str]) -> None:
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n")
    assert refused(capsys, "validate", "s.yaml") == (
        "s.yaml:18:3 model: path needs sha256: the model file's SHA-256, written here so that "
        "a swapped file is refused (sha256sum FILE prints it)"
    )


@pytest.mark.usefixtures("cli_logging", "run_dir")
def test_a_model_section_without_kind_or_source_still_asks_for_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    strategy("model:\n  sha256: " + "a" * 64 + "\n")
    assert refused(capsys, "validate", "s.yaml") == (
        "s.yaml:18:3 model.kind: required key is missing"
    )


# --- tampered model files: refused before any of their code runs ----------------------------


@pytest.mark.usefixtures("cli_logging")
def test_a_swapped_pickle_is_refused_by_its_hash(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    pkl = latest(run_dir)
    listed = sha(pkl)
    evil = plant(run_dir, pkl, marker)
    strategy("model:\n  from_run: train\n")
    line = refused(capsys, "run", "s.yaml", "--out", "out")
    assert line.startswith(
        f"s.yaml:18:13 model.from_run: sha256 of {pkl} is {evil}, expected {listed} (listed in "
    )
    assert not marker.exists()
    assert not Path("out").exists()


def test_the_installed_command_refuses_a_swapped_pickle_without_a_traceback(
    run_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    pkl = run_dir / "models" / FIRST_FOLD
    pinned = sha(pkl)
    evil = plant(run_dir, pkl, marker)
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {pinned}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = forkserver.run(
        [sys.executable, "-m", "tradeloom.cli.main", "run", "s.yaml", "--out", "out"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"s.yaml:19:11 model.sha256: sha256 of {pkl} is {evil}, expected {pinned} (the sha256 "
        f"pinned there); it is {pkl.stat().st_size:,} bytes, its metadata says "
        f"{json.loads(metadata_of(pkl).read_text())['model']['size']:,} (truncated?); "
        "refusing to load it\n"
    )
    assert not marker.exists() and not Path("out").exists()


@pytest.mark.usefixtures("cli_logging")
def test_a_pickle_whose_index_was_edited_too_is_refused_by_the_unpickler(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    pkl = latest(run_dir)
    evil = plant(run_dir, pkl, marker)
    size = pkl.stat().st_size

    def forge(record: dict[str, Any]) -> None:
        record.update({"sha256": evil, "size": size})

    edit_json(run_dir / "models" / "index.json", lambda i: forge(i["folds"][-1]["model"]))
    edit_json(metadata_of(pkl), lambda m: forge(m["model"]))
    strategy("model:\n  from_run: train\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:13 model.from_run: refused to unpickle {pkl}: it names io.open, which the "
        "model allow-list does not admit; it may have been tampered with"
    )
    assert not marker.exists()


@pytest.mark.usefixtures("cli_logging")
def test_a_pinned_malicious_pickle_is_still_refused(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    pkl = run_dir / "models" / FIRST_FOLD
    original = sha(pkl)
    evil = plant(run_dir, pkl, marker)
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {evil}\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:9 model.path: {metadata_of(pkl)} describes a model file with sha256 "
        f"{original}, not {pkl} ({evil}); keep each model file with its own metadata"
    )
    assert not marker.exists()
    # the metadata forged as well: the allow-list is the line that holds
    edit_json(metadata_of(pkl), lambda m: m["model"].update({"sha256": evil}))
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:9 model.path: refused to unpickle {pkl}: it names io.open, which the "
        "model allow-list does not admit; it may have been tampered with"
    )
    assert not marker.exists()


# --- the security review's attacks: refused, nothing created or deleted ------------------------


class _Reduce:
    """Pickles as ``func(*args)``; ``func`` may be an instance, which loading then calls."""

    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


def pytest_running(marker: Path, test_file: Path) -> bytes:
    """Return the review's detector pickle: a scipy test runner called on attacker code."""
    from scipy._lib._testutils import PytestTester

    argv = ["-p", "no:cacheprovider", "-q", f"--junitxml={marker}"]
    runner = _Reduce(PytestTester("scipy"), ("full", 0, argv, False, False, [str(test_file)]))
    return pickle.dumps(runner, protocol=5)


@pytest.mark.usefixtures("cli_logging")
def test_a_forged_detector_entry_beside_a_pinned_model_is_refused(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker, ran = tmp_path / "junit.xml", tmp_path / "ran"
    models = run_dir / "models"
    attack = models / "test_payload.py"
    attack.write_text(f"import pathlib\npathlib.Path({str(ran)!r}).write_text('pwned')\n")
    evil = models / "fold-0000.detector.pkl"
    evil.write_bytes(pytest_running(marker, attack))
    pkl = models / FIRST_FOLD
    forged = {"file": evil.name, "sha256": sha(evil), "size": evil.stat().st_size}
    edit_json(metadata_of(pkl), lambda m: m.update(detector=forged))
    strategy(f"model:\n  path: train/models/{FIRST_FOLD}\n  sha256: {sha(pkl)}\n")
    assert refused(capsys, "run", "s.yaml", "--out", "out") == (
        f"s.yaml:18:9 model.path: {metadata_of(pkl)} is not tradeloom model metadata: "
        "detector: Extra inputs are not permitted"
    )
    assert not marker.exists() and not ran.exists() and not Path("out").exists()


@pytest.mark.usefixtures("cli_logging")
def test_a_forged_import_path_does_not_widen_the_allow_list(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from joblib.memory import Memory

    created = tmp_path / "created_by_joblib"
    pkl = latest(run_dir)
    genuine = sha(pkl)
    edit_json(metadata_of(pkl), lambda m: m["estimator"].update(import_path="joblib.Anything"))
    strategy("model:\n  from_run: train\n  trusted_packages: [lightgbm]\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:13 model.from_run: cannot load {pkl}: its metadata names the estimator "
        "joblib.Anything; only scikit-learn estimators load, and those of packages the "
        "strategy file trusts (model.trusted_packages: [joblib])"
    )
    # trusting joblib lets the metadata through, but the model file says otherwise
    strategy(f"model:\n  from_run: train\n  sha256: {genuine}\n  trusted_packages: [joblib]\n")
    assert refused(capsys, "validate", "s.yaml") == (
        f"s.yaml:18:13 model.from_run: metadata file does not match the model file: "
        f"{metadata_of(pkl)} differs from what {pkl} holds in estimator; it was edited, or "
        "belongs to another model file"
    )
    # the model file swapped for the review's folder-creating pickle, index and metadata
    # forged to match, the estimator named as scikit-learn's: the allow-list refuses it
    pkl.write_bytes(pickle.dumps(_Reduce(Memory, (str(created),)), protocol=5))
    forged = {"sha256": sha(pkl), "size": pkl.stat().st_size}
    edit_json(run_dir / "models" / "index.json", lambda i: i["folds"][-1]["model"].update(forged))
    edit_json(metadata_of(pkl), lambda m: m["model"].update(forged))
    edit_json(
        metadata_of(pkl),
        lambda m: m["estimator"].update(import_path="sklearn.ensemble.RandomForestClassifier"),
    )
    strategy("model:\n  from_run: train\n")
    assert refused(capsys, "run", "s.yaml", "--out", "out") == (
        f"s.yaml:18:13 model.from_run: refused to unpickle {pkl}: it names "
        "joblib.memory.Memory, which the model allow-list does not admit; it may have been "
        "tampered with"
    )
    assert not created.exists() and not Path("out").exists()


@pytest.mark.usefixtures("cli_logging", "run_dir")
def test_the_standard_library_cannot_be_trusted(capsys: pytest.CaptureFixture[str]) -> None:
    strategy("model:\n  from_run: train\n  trusted_packages: [lightgbm, os]\n")
    assert refused(capsys, "validate", "s.yaml") == (
        "s.yaml:19:32 model.trusted_packages.1: part of Python's standard library, which a "
        "model never needs, was 'os'"
    )


# --- hand-edited metadata: one line at the model key, exit 2 -----------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda m: m["libraries"].update({"": "1.0"}),
            "libraries: '' is not a distribution name (such as scikit-learn)",
        ),
        (
            lambda m: m["training_window"].update(labels_end="not a time"),
            "training_window.labels_end: Input should be a valid datetime or date, invalid "
            "character in year",
        ),
        (
            lambda m: m["training_window"].update(labels_end="2023-01-28T15:00:00"),
            "training_window.labels_end: Input should have timezone info",
        ),
        (
            lambda m: m["reference"].update(edges=[[1.0]]),
            "reference: columns, edges and proportions must have one entry per column; they "
            "have 4, 1 and 4",
        ),
        (
            lambda m: m["reference"]["edges"][0].append(1e9),
            "reference: log_return_1: 10 edges need 11 proportions, there are 10",
        ),
        (
            lambda m: m["reference"]["proportions"][1].__setitem__(0, 0.5),
            "reference: rsi_14: proportions must be >= 0 and sum to 1",
        ),
        (
            lambda m: m.update(horizon=10**30),
            "horizon: Input should be less than or equal to 1000000",
        ),
        (
            lambda m: m.update(horizon=1e30),
            "horizon: Unable to parse input string as an integer, exceeded maximum size",
        ),
        (lambda m: m.update(horizon=4), "horizon: must equal label.horizon (3), was 4"),
        (
            lambda m: m.update(format=1),
            "format: this tradeloom reads format 2, the file is format 1 (saved by an older "
            "tradeloom, with the anomaly detector in a file of its own; train the model "
            "again to save it in this format)",
        ),
    ],
)
@pytest.mark.usefixtures("cli_logging")
def test_hand_edited_metadata_is_one_line_at_the_model_key(
    run_dir: Path, capsys: pytest.CaptureFixture[str], change: Any, problem: str
) -> None:
    meta = metadata_of(latest(run_dir))
    edit_json(meta, change)
    strategy("model:\n  from_run: train\nmonitoring:\n  - kind: feature_drift\n")
    assert refused(capsys, "run", "s.yaml", "--out", "out") == (
        f"s.yaml:18:13 model.from_run: {meta} is not tradeloom model metadata: {problem}"
    )
    assert not Path("out").exists()


@pytest.mark.usefixtures("cli_logging")
def test_metadata_that_passes_its_checks_but_differs_from_the_model_file_is_refused(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkl = latest(run_dir)

    def shift(m: dict[str, Any]) -> None:
        window = m["training_window"]
        window["labels_end"] = window["end"]  # would let the model predict in-sample bars
        m["libraries"]["scikit-learn"] += ".post1"

    edit_json(metadata_of(pkl), shift)
    strategy("model:\n  from_run: train\n")
    assert refused(capsys, "run", "s.yaml", "--out", "out") == (
        f"s.yaml:18:13 model.from_run: metadata file does not match the model file: "
        f"{metadata_of(pkl)} differs from what {pkl} holds in labels_end, libraries; it was "
        "edited, or belongs to another model file"
    )
