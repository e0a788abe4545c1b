"""Built-in plugin: the monitoring layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog, hookimpl

if TYPE_CHECKING:
    from tradeloom.domain import RunInfo

__all__ = ["tradeloom_components", "tradeloom_run_finished"]


tradeloom_components = catalog(
    LazyComponent(
        layer="monitoring",
        kind="rolling_auc",
        module="tradeloom.plugins.monitoring.auc",
        params="RollingAucParams",
        factory="build",
        summary="rolling AUC of predictions vs realized direction; HEALTHY/WARNING/CRITICAL",
    ),
    LazyComponent(
        layer="monitoring",
        kind="calibration",
        module="tradeloom.plugins.monitoring.calibration",
        params="CalibrationParams",
        factory="build",
        summary="rolling Brier score, expected calibration error and bias of the predictions",
    ),
    LazyComponent(
        layer="monitoring",
        kind="feature_drift",
        module="tradeloom.plugins.monitoring.drift",
        params="FeatureDriftParams",
        factory="build",
        summary="PSI of each feature against the training rows of the fold in effect",
    ),
    LazyComponent(
        layer="monitoring",
        kind="execution_quality",
        module="tradeloom.plugins.monitoring.execution",
        params="ExecutionQualityParams",
        factory="build",
        summary="slippage and shortfall in bps, fill ratio and fills per order",
    ),
    LazyComponent(
        layer="monitoring",
        kind="prediction_rate",
        module="tradeloom.plugins.monitoring.prediction_rate",
        params="PredictionRateParams",
        factory="build",
        summary="share of bars with a prediction, and of predictions above 0.5",
    ),
    LazyComponent(
        layer="monitoring",
        kind="mlflow",
        module="tradeloom.plugins.monitoring.mlflow_tracking",
        params="MlflowParams",
        factory="build",
        summary="log the run to MLflow at its end: settings, metrics, folds, report",
    ),
)
"""The monitors: AUC, calibration, feature drift, execution, prediction rate, and
the run's MLflow logging."""


@hookimpl
def tradeloom_run_finished(run: RunInfo, metrics: Mapping[str, Any]) -> None:
    """Log the run to MLflow if its strategy declares a monitor of kind ``mlflow``."""
    if not any(
        isinstance(entry, Mapping) and entry.get("logger") == "mlflow"
        for entry in (metrics.get("monitoring") or {}).values()
    ):
        return
    from tradeloom.plugins.monitoring.mlflow_tracking import log_declared

    log_declared(run, metrics)
