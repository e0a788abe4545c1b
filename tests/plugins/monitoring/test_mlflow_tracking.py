"""The ``mlflow`` monitor: a backtest logged at its end (settings as parameters, metrics,
each fold as a nested run, the report and metrics as artifacts), read back with MLflow's
own client from a local file store and from a real ``mlflow server`` this module starts;
its keys validated with the file, one line each."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.builders import REPORTED, strategy
from tests.plugins.model.test_registry import run
from tradeloom.errors import ConfigError
from tradeloom.schemas import load_strategy

MODEL = {
    "kind": "sklearn",
    "estimator": "sklearn.ensemble.RandomForestClassifier",
    "params": {"n_estimators": 5, "max_depth": 3, "n_jobs": 1},
    "calibration": {"method": "sigmoid", "holdout": 40},
    "label": {"horizon": 2},
    "walk_forward": {"train_window": 150, "retrain_every": 100},
}


def _logged(folder: Path, uri: str, run_name: str | None = "first") -> tuple[Path, dict[str, Any]]:
    """Run the base strategy with an ``mlflow`` monitor into ``folder/r``; return the run
    folder and its metrics."""
    monitor: dict[str, Any] = {"kind": "mlflow", "tracking_uri": uri, "experiment": "exp"}
    if run_name is not None:
        monitor["run_name"] = run_name
    document = strategy(REPORTED, model=MODEL, monitoring=[monitor])  # its report an artifact
    run(folder, yaml.safe_dump(document), "r")
    return folder / "r", json.loads((folder / "r" / "metrics.json").read_text())


def _check_logged(client: MlflowClient, run_dir: Path, metrics: dict[str, Any]) -> None:
    experiment = client.get_experiment_by_name("exp")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.run_name == "first"
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tradeloom.run_id"] == run_dir.name
    assert parent.data.tags["tradeloom.strategy"] == "demo"
    params = parent.data.params
    assert params["model.estimator"] == "sklearn.ensemble.RandomForestClassifier"
    assert params["model.params.n_estimators"] == "5"
    assert params["features.1.kind"] == "rsi"
    assert params["monitoring.0.kind"] == "mlflow"
    logged = parent.data.metrics
    for key in ("total_return", "sharpe", "max_drawdown", "trades"):
        assert logged[key] == pytest.approx(metrics[key], rel=1e-12, abs=0.0), key
    index = json.loads((run_dir / "models" / "index.json").read_text())
    folds = sorted(
        (r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
        key=lambda r: r.info.run_name,
    )
    assert [r.info.run_name for r in folds] == [f"fold-{e['fold']:04d}" for e in index["folds"]]
    for fold, entry, figures in zip(
        folds, index["folds"], metrics["calibration_by_fold"], strict=True
    ):
        assert fold.data.params["train_start_bar"] == str(entry["train_start"])
        assert fold.data.params["train_end_bar"] == str(entry["train_end"])
        assert fold.data.params["sha256"] == entry["model"]["sha256"]
        assert fold.data.metrics["brier_after"] == pytest.approx(figures["brier_after"], rel=1e-12)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert artifacts == {"metrics.json", "report.html", "strategy.yaml"}
    local = client.download_artifacts(parent.info.run_id, "metrics.json", str(run_dir.parent))
    assert json.loads(Path(local).read_text())["total_return"] == metrics["total_return"]


def test_a_backtest_is_logged_to_a_local_file_store(tmp_path: Path) -> None:
    uri = f"file:{tmp_path / 'mlruns'}"
    run_dir, metrics = _logged(tmp_path, uri)
    assert metrics["monitoring"]["mlflow"] == {
        "logger": "mlflow",
        "tracking_uri": uri,
        "experiment": "exp",
        "run_name": "first",
    }
    _check_logged(MlflowClient(tracking_uri=uri), run_dir, metrics)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (a SQLite backend store, artifacts served by it); its URI."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # its database's migrations take a while
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {folder / 'server.log'}")
            time.sleep(0.5)
        yield uri
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_a_backtest_is_logged_to_an_mlflow_server(server: str, tmp_path: Path) -> None:
    run_dir, metrics = _logged(tmp_path, server)
    _check_logged(MlflowClient(tracking_uri=server), run_dir, metrics)


def _refusals(tmp_path: Path, monitor: dict[str, Any]) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(strategy(monitoring=[monitor])))
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    return [line.split(" ", 1)[1] for line in caught.value.lines()]


def test_unknown_keys_and_bad_uris_are_one_line_each(tmp_path: Path) -> None:
    assert _refusals(
        tmp_path, {"kind": "mlflow", "tracking_uri": "ftp://host/x", "experimnt": "e"}
    ) == [
        "monitoring.0.experimnt: unknown key (did you mean 'experiment'?)",
        "monitoring.0.tracking_uri: expected a URI of scheme file, http, https, sqlite, "
        "postgresql, mysql, mssql, databricks (file:/path/mlruns, http://127.0.0.1:5000), "
        "was 'ftp://host/x'",
    ]
    (line,) = _refusals(tmp_path, {"kind": "mlflow", "tracking_uri": "http://:5000"})
    assert line.startswith("monitoring.0.tracking_uri: expected http://HOST[:PORT], was ")
    (line,) = _refusals(tmp_path, {"kind": "mlflow", "tracking_uri": "https://u:p@host"})
    assert line.startswith(
        "monitoring.0.tracking_uri: credentials in the URI would be written into metrics.json"
    )
    (line,) = _refusals(tmp_path, {"kind": "mlflow"})
    assert line == "monitoring.0.tracking_uri: required key is missing"


def test_a_run_without_the_monitor_logs_nothing(tmp_path: Path) -> None:
    from tradeloom.domain import RunInfo
    from tradeloom.plugins.monitoring.mlflow_tracking import log_declared

    info = RunInfo(run_id="r", strategy="s", mode="backtest", run_dir=str(tmp_path))
    assert log_declared(info, {"monitoring": {"rolling_auc": {"status": "HEALTHY"}}}) == []
    held = RunInfo(run_id="r", strategy="s", mode="backtest", run_dir="")
    declared = {"logger": "mlflow", "tracking_uri": f"file:{tmp_path}", "experiment": "e"}
    assert log_declared(held, {"monitoring": {"mlflow": declared}}) == []
    assert not any(tmp_path.iterdir())


def test_without_the_extra_the_monitor_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "mlflow" else find_spec(name, *a),
    )
    from tests.plugins.model.test_registry import build

    monitor = {"kind": "mlflow", "tracking_uri": f"file:{tmp_path}"}
    from tradeloom.runtime.extras import MissingExtra

    expected = "monitoring kind mlflow needs mlflow: pip install 'tradeloom[mlflow]'"
    with pytest.raises(MissingExtra, match=rf"^{re.escape(expected)}$"):
        build(tmp_path, yaml.safe_dump(strategy(monitoring=[monitor])))
