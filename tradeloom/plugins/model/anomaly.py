"""The anomaly gate's detector: an IsolationForest fitted beside each fold's model.

``model.anomaly`` in a strategy file turns it on. Each walk-forward fold fits a seeded
IsolationForest on the rows its model trains on and scores the bars the fold
predicts; a bar whose score is below 0 (``IsolationForest.predict`` says -1) is
unlike anything the model learnt from, so its probability is not trusted to open a
position (the runner rejects entries there with ``ANOMALY``; exits still go through).

The score is scikit-learn's ``decision_function``: ``score_samples - offset_``, below
0 for outliers. With ``contamination: auto`` the offset is -0.5 (the original paper's
cut); with a number, it is the quantile of the training rows' scores that marks that
share of them as outliers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from tradeloom.plugins.component import Params
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["AnomalyParams", "DetectorSpec", "anomaly_scores", "fit_detector", "make_detector"]


class AnomalyParams(Params):
    """Keys of ``model.anomaly``: the IsolationForest of the anomaly gate."""

    n_estimators: int = Field(
        default=100,
        ge=1,
        le=10_000,
        strict=True,
        description="Trees in the forest (1 .. 10,000).",
    )
    contamination: Literal["auto"] | float = Field(
        default="auto",
        description="Expected share of outliers in the training rows, in (0, 0.5]; auto: "
        "the cut of the IsolationForest paper (score_samples < -0.5).",
    )
    max_samples: Literal["auto"] | int | float = Field(
        default="auto",
        description="Rows each tree is grown on: a count, a fraction in (0, 1] of the "
        "training rows, or auto (min(256, rows)).",
    )

    @field_validator("contamination", mode="before")
    @classmethod
    def _contamination_in_range(cls, value: Any) -> Any:
        if value == "auto" or (_is_number(value) and 0.0 < value <= 0.5):
            return value
        raise ValueError(f"expected 'auto' or a number in (0, 0.5], was {_show(value)}")

    @field_validator("max_samples", mode="before")
    @classmethod
    def _max_samples_in_range(cls, value: Any) -> Any:
        if value == "auto":
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, float) and 0.0 < value <= 1.0:
            return value
        raise ValueError(
            f"expected 'auto', a count >= 1 or a fraction in (0, 1], was {_show(value)}"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class DetectorSpec:
    """How to make a model's anomaly detector (`make_detector`), kept until a fold fits one."""

    params: AnomalyParams
    seed: int

    def make(self) -> Any:
        """Return the unfitted detector."""
        return make_detector(self.params, self.seed)


def make_detector(params: AnomalyParams, seed: int) -> Any:
    """Return an unfitted IsolationForest configured by ``params`` and seeded with ``seed``."""
    from sklearn.ensemble import IsolationForest

    return IsolationForest(
        n_estimators=params.n_estimators,
        contamination=params.contamination,
        max_samples=params.max_samples,
        random_state=seed,
    )


def fit_detector(detector: Any, x: npt.NDArray[np.float64]) -> Any:
    """Return a fitted clone of ``detector`` (`make_detector`) trained on the rows ``x``."""
    from sklearn.base import clone

    fitted = clone(detector)
    count = fitted.max_samples
    if isinstance(count, int) and count > len(x):
        # what sklearn does itself, without warning once per fold that it does
        fitted.set_params(max_samples=len(x))
    fitted.fit(x)
    return fitted


def anomaly_scores(detector: Any, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the fitted ``detector``'s score of each row of ``x``: below 0 is anomalous.

    Each row's score depends on that row alone (the trees' path lengths, added up tree
    by tree in the same order), so scoring one row gives the number a batch gives it.
    """
    if len(x) == 0:
        return np.empty(0)
    return np.asarray(detector.decision_function(x), dtype=np.float64)
