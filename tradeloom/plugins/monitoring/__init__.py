"""Built-in plugin: the monitoring layer."""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.hookspecs import hookimpl
from tradeloom.plugins.monitoring import auc, calibration, drift, execution, prediction_rate

__all__ = ["tradeloom_components"]


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return the monitors: AUC, calibration, feature drift, execution, prediction rate."""
    return [
        Component(
            "monitoring",
            "rolling_auc",
            auc.RollingAucParams,
            auc.build,
            "rolling AUC of predictions vs realized direction; HEALTHY/WARNING/CRITICAL",
        ),
        Component(
            "monitoring",
            "calibration",
            calibration.CalibrationParams,
            calibration.build,
            "rolling Brier score, expected calibration error and bias of the predictions",
        ),
        Component(
            "monitoring",
            "feature_drift",
            drift.FeatureDriftParams,
            drift.build,
            "PSI of each feature against the training rows of the fold in effect",
        ),
        Component(
            "monitoring",
            "execution_quality",
            execution.ExecutionQualityParams,
            execution.build,
            "slippage and shortfall in bps, fill ratio and fills per order",
        ),
        Component(
            "monitoring",
            "prediction_rate",
            prediction_rate.PredictionRateParams,
            prediction_rate.build,
            "share of bars with a prediction, and of predictions above 0.5",
        ),
    ]
