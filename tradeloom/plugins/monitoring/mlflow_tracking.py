"""The ``mlflow`` monitor: a run logged to an MLflow tracking server at its end.

Declared like any monitor, ``monitoring: [{kind: mlflow, tracking_uri: ..., experiment:
..., run_name: ...}]``, validated with the file (unknown keys, a URI MLflow cannot reach
as written: one line each). It watches no bar (`MlflowMonitor.on_bar` returns None); its
summary in ``metrics.json`` names where the run goes, and the monitoring plugin's
``tradeloom_run_finished`` observer (`log_declared`) logs it when the run has ended, its
metrics and report written:

- parameters: the run's resolved strategy file (``strategy.yaml``), flattened to dotted
  keys (``model.params.max_depth``);
- metrics: every finite number of ``metrics.json``, flattened the same way;
- each fold the run saved (``models/index.json`` and each fold's metadata) as a nested run
  named ``fold-NNNN``: its windows, rows and calibration as parameters, its calibration
  figures (``metrics.json``'s ``calibration_by_fold``) as metrics;
- ``metrics.json``, ``strategy.yaml`` and ``report.html`` as artifacts.

The run's tags name tradeloom's run id, strategy, mode and run folder. A run held in memory
(`tradeloom.api` without a folder) has no files to log: it is logged when a folder's run
ends, and says so in a warning. It needs the ``mlflow`` extra (mlflow-skinny: the client
and the file store; a server is MLflow's own process).
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from tradeloom.plugins.component import BuildContext, Params
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.domain import HealthChange, RunInfo
    from tradeloom.plugins.protocols import MonitorInput

__all__ = ["KIND", "MlflowMonitor", "MlflowParams", "build", "log_declared", "log_run"]

KIND = "mlflow"
"""The monitor's kind, and the ``logger`` its summary names."""

_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")

_MAX_PARAM = 6000
"""MLflow's longest parameter value (longer ones are cut, marked with an ellipsis)."""

_KEY = re.compile(r"[^0-9A-Za-z_\-. /]")
"""What MLflow refuses in a metric or parameter key (replaced by ``_``)."""

_log = logger("tradeloom.mlflow")


class MlflowParams(Params):
    """Keys of a ``monitoring`` entry with ``kind: mlflow``."""

    tracking_uri: str = Field(
        min_length=1,
        description="Where MLflow tracks runs: file:/path (a local store), http(s)://host:port "
        "(an mlflow server), sqlite:///file.db, postgresql://..., databricks. Credentials go "
        "in MLflow's environment variables (MLFLOW_TRACKING_USERNAME, _PASSWORD, _TOKEN), "
        "never in the URI.",
    )
    experiment: str = Field(
        default="tradeloom",
        min_length=1,
        max_length=500,
        description="The experiment the run is logged under (created if missing).",
    )
    run_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=250,
        description="The MLflow run's name (default: tradeloom's run id, the run folder's name).",
    )

    @field_validator("tracking_uri")
    @classmethod
    def _reachable_uri(cls, value: str) -> str:
        text = value.strip()
        parts = urllib.parse.urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(
                f"expected a URI of scheme {', '.join(_SCHEMES)} (file:/path/mlruns, "
                f"http://127.0.0.1:5000), was {text!r}"
            )
        if parts.username or parts.password:
            raise ValueError(
                "credentials in the URI would be written into metrics.json and logs: give "
                "them in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            )
        if scheme in ("http", "https") and not parts.hostname:
            raise ValueError(f"expected {scheme}://HOST[:PORT], was {text!r}")
        if scheme == "file" and not parts.path:
            raise ValueError(f"expected file:/path/of/a/folder, was {text!r}")
        return text


class MlflowMonitor:
    """Where the run is logged; watches no bar (`log_declared` logs at the run's end)."""

    def __init__(self, params: MlflowParams, name: str = KIND) -> None:
        self.name = name
        self.params = params

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Watch nothing: return None."""
        return None

    def summary(self) -> dict[str, Any]:
        """Return where the run is logged (``metrics.json``'s entry, read at the run's end)."""
        return {
            "logger": KIND,
            "tracking_uri": self.params.tracking_uri,
            "experiment": self.params.experiment,
            "run_name": self.params.run_name,
        }


def build(params: MlflowParams, ctx: BuildContext) -> MlflowMonitor:
    """Return the monitor; refuse it where mlflow is not installed (the extra to install)."""
    from tradeloom.runtime.extras import require_installed

    require_installed("mlflow", "monitoring kind mlflow")
    return MlflowMonitor(params)


def log_declared(run: RunInfo, metrics: Mapping[str, Any]) -> list[str]:
    """Log the run to each MLflow monitor its ``metrics`` name; return the MLflow run ids.

    Called by the monitoring plugin's ``tradeloom_run_finished`` for every run; a run
    without an ``mlflow`` monitor returns at once.
    """
    monitoring = metrics.get("monitoring")
    if not isinstance(monitoring, Mapping):
        return []
    # over a universe each symbol has its monitor (`mlflow[BTC/USDT]`): one run is logged
    declared = list(
        {
            json.dumps(dict(entry), sort_keys=True): MlflowParams.model_validate(
                {k: v for k, v in entry.items() if k != "logger"}
            )
            for entry in monitoring.values()
            if isinstance(entry, Mapping) and entry.get("logger") == KIND
        }.values()
    )
    if not declared:
        return []
    if not run.run_dir:
        _log.warning(
            "mlflow_not_logged",
            run_id=run.run_id,
            reason="a run held in memory has no folder to log; save it and run from the file",
        )
        return []
    return [log_run(Path(run.run_dir), run, metrics, params) for params in declared]


def log_run(run_dir: Path, run: RunInfo, metrics: Mapping[str, Any], params: MlflowParams) -> str:
    """Log the run in ``run_dir`` to MLflow as ``params`` says; return the MLflow run id."""
    from tradeloom.runtime.extras import require

    require("mlflow", "monitoring kind mlflow")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from tradeloom.files.reading import read_yaml_kept

    if params.tracking_uri.lower().startswith("file:"):
        # MLflow 3 keeps its file store in maintenance mode and refuses it unless asked:
        # the strategy file asking for a file: store is that request
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=params.tracking_uri)
    experiment = client.get_experiment_by_name(params.experiment)
    experiment_id = (
        client.create_experiment(params.experiment)
        if experiment is None
        else experiment.experiment_id
    )
    tags = {
        "tradeloom.run_id": run.run_id,
        "tradeloom.strategy": run.strategy,
        "tradeloom.mode": run.mode,
        "tradeloom.run_dir": str(run_dir),
    }
    parent = client.create_run(
        experiment_id, run_name=params.run_name or run.run_id, tags=tags
    ).info.run_id
    strategy_path = run_dir / "strategy.yaml"
    document = (
        read_yaml_kept(strategy_path, "a run's strategy file") if strategy_path.is_file() else {}
    )
    stamp = 0
    _batch(
        client,
        parent,
        [Param(k, v) for k, v in _params(document)],
        [Metric(k, v, stamp, 0) for k, v in _numbers(metrics)],
    )
    calibration = {
        int(f["fold"]): f
        for f in metrics.get("calibration_by_fold") or []
        if isinstance(f, Mapping) and "fold" in f
    }
    for stem, fold in _folds(run_dir):
        child = client.create_run(
            experiment_id,
            run_name=stem,
            tags={**tags, "mlflow.parentRunId": parent, "tradeloom.fold": str(fold["fold"])},
        ).info.run_id
        figures = calibration.get(int(fold["fold"]), {})
        _batch(
            client,
            child,
            [Param(k, v) for k, v in _params(fold)],
            [Metric(k, v, stamp, 0) for k, v in _numbers(figures)],
        )
        client.set_terminated(child)
    for name in ("metrics.json", "strategy.yaml", "report.html"):
        if (run_dir / name).is_file():
            client.log_artifact(parent, str(run_dir / name))
    client.set_terminated(parent)
    _log.info("mlflow_logged", run_id=run.run_id, mlflow_run=parent, experiment=params.experiment)
    return str(parent)


def _batch(client: Any, run_id: str, params: list[Any], metrics: list[Any]) -> None:
    # MLflow takes at most 100 parameters and 1,000 metrics in one batch
    for first in range(0, len(params), 100):
        client.log_batch(run_id, params=params[first : first + 100])
    for first in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[first : first + 1000])


def _folds(run_dir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each saved fold (every model folder's), as its stem and its parameters."""
    from tradeloom.plugins.model.loading import read_index
    from tradeloom.plugins.model.registry import INDEX_FILE, MODELS_DIR

    models = run_dir / MODELS_DIR
    folders = (
        [models]
        if (models / INDEX_FILE).is_file()
        else sorted(p.parent for p in models.glob(f"*/{INDEX_FILE}"))
    )
    for folder in folders:
        index = read_index(folder)
        for entry in index.folds:
            stem = Path(entry.model.file).stem
            if folder != models:
                stem = f"{folder.name}/{stem}"
            record = entry.model_dump(mode="json")
            yield (
                stem,
                {
                    "fold": entry.fold,
                    "reason": entry.reason,
                    "file": entry.model.file,
                    "sha256": entry.model.sha256,
                    "train_start": record["train_start_time"],
                    "train_end": record["train_end_time"],
                    "train_start_bar": entry.train_start,
                    "train_end_bar": entry.train_end,
                },
            )


def _flat(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flat(item, f"{prefix}{key}.")
    elif isinstance(value, list) and value and all(isinstance(i, Mapping) for i in value):
        for position, item in enumerate(value):
            yield from _flat(item, f"{prefix}{position}.")
    else:
        yield prefix[:-1], value


def _key(text: str) -> str:
    return _KEY.sub("_", text)[:250]


def _params(document: Any) -> list[tuple[str, str]]:
    found = []
    for key, value in _flat(document):
        text = "" if value is None else str(value)
        if len(text) > _MAX_PARAM:
            text = text[: _MAX_PARAM - 3] + "..."
        found.append((_key(key), text))
    return found


def _numbers(figures: Any) -> list[tuple[str, float]]:
    found = []
    for key, value in _flat(figures):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        number = float(value)
        if math.isfinite(number):
            found.append((_key(key), number))
    return found
