"""Calibrated probabilities: the walk-forward's holdout calibration and its compiled form.

Kelly sizing trusts ``probability_up`` as a probability; a random forest's or a boosted
model's scores are not one. ``model.calibration`` fits, in each fold, a calibrator on the
last ``holdout`` training rows, the model itself on the rows before them, purged by the
label horizon and the embargo as a fold's training rows are purged before its first
predicted bar (`split_holdout`). The fold's fitted estimator is then scikit-learn's own
``CalibratedClassifierCV(FrozenEstimator(model), method=...)`` fitted on the holdout, so
that what is saved, loaded and asked for ``predict_proba`` is the library's calibrated
pipeline.

`compile_calibrated` turns a fitted ``CalibratedClassifierCV`` (the walk-forward's, or
one a strategy declares) into a `CompiledCalibrated`: each calibrated classifier's model
through its compiled kernel (`tradeloom.plugins.model.fold_predictor`), its calibrator
as numbers (`Calibrator`: isotonic as its thresholds and values, interpolated as
scikit-learn interpolates them; sigmoid as its two numbers), averaged as the library
averages them. One row and a batch go through the same element-wise arithmetic, so a
backtest and a paper or live run journal the same probability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from tradeloom.bounds import MAX_WINDOW
from tradeloom.plugins.component import Params
from tradeloom.plugins.model.compiled_model import (
    UnsupportedEstimatorError,
    batch_rows,
    one_row,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "CalibrationMethod",
    "CalibrationParams",
    "Calibrator",
    "CompiledCalibrated",
    "calibrate_fold",
    "calibration_figures",
    "compile_calibrated",
    "is_calibrated",
    "split_holdout",
    "uncalibrated_model",
]

CalibrationMethod = Literal["isotonic", "sigmoid"]


class CalibrationParams(Params):
    """``model.calibration``: a calibrator per fold, fitted on the last training rows."""

    method: CalibrationMethod = Field(
        description="isotonic: a monotone piecewise-linear map of the probability (scikit-learn's "
        "IsotonicRegression, needs a few hundred rows); sigmoid: Platt's logistic map (two "
        "numbers, fine with fewer rows).",
    )
    holdout: int = Field(
        ge=20,
        le=MAX_WINDOW,
        description="The last training rows of each fold the calibrator is fitted on "
        "(20 .. 1,000,000); the model is fitted on the rows before them, purged by "
        "label.horizon and walk_forward.embargo.",
    )


def split_holdout(
    rows: npt.NDArray[np.intp], holdout: int, horizon: int, embargo: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Return the rows a calibrated fold fits its model on, and its calibration rows.

    The calibration rows are the last ``holdout`` of ``rows`` (a fold's training rows,
    ascending). The model's rows are those before them whose label, ``horizon`` bars
    ahead, and ``embargo`` more bars end before the first calibration row: the
    calibrator sees the model's predictions of rows the model did not learn from, the
    rule a fold's training rows obey before its first predicted bar (`plan_folds`).
    """
    calibration = rows[-holdout:]
    if len(calibration) == 0:
        return rows, calibration
    before = rows[: len(rows) - len(calibration)]
    return before[before + horizon + embargo < calibration[0]], calibration


def calibrate_fold(model: Any, method: str, x: npt.NDArray[np.float64], y: Any) -> Any:
    """Return scikit-learn's calibrated pipeline of fitted ``model``, fitted on ``x``, ``y``.

    ``CalibratedClassifierCV(FrozenEstimator(model), method=method)``: the model is not
    refitted; the calibrator maps its response (``predict_proba``'s class 1, or the
    ``decision_function`` where the model has one, as the library chooses) on the rows.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import PredefinedSplit

    # One split whose test part is every row: the frozen model predicts the holdout in
    # one call (the default would ask it in five stratified parts, for the same numbers).
    # The saved pipeline keeps the default (which gives a frozen model the same numbers),
    # so that its pickle names no splitter class the model files' allow-list refuses.
    whole = PredefinedSplit(np.zeros(len(x), dtype=np.intp))
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method=method, cv=whole)
    return calibrated.fit(x, y).set_params(cv=None)


def is_calibrated(estimator: Any) -> bool:
    """Return whether ``estimator`` is a fitted ``CalibratedClassifierCV`` (this class exactly)."""
    cls = type(estimator)
    return (cls.__module__, cls.__name__) == ("sklearn.calibration", "CalibratedClassifierCV")


@dataclass(frozen=True)
class Calibrator:
    """A fitted binary calibrator as numbers.

    Attributes:
        method: ``isotonic`` or ``sigmoid``.
        thresholds: isotonic: the fitted ``X_thresholds_`` (ascending); empty for sigmoid.
        values: isotonic: the fitted ``y_thresholds_``; empty for sigmoid.
        low: isotonic: ``X_min_``, where a probability is clipped from below.
        high: isotonic: ``X_max_``, where a probability is clipped from above.
        a: sigmoid: the slope, ``p -> expit(-(a * p + b))``.
        b: sigmoid: the intercept.
    """

    method: str
    thresholds: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    low: float = 0.0
    high: float = 1.0
    a: float = 0.0
    b: float = 0.0

    @classmethod
    def of(cls, calibrator: Any) -> Calibrator:
        """Return the numbers of a fitted scikit-learn calibrator.

        Raises:
            UnsupportedEstimatorError: It is neither an ``IsotonicRegression`` that clips
                out-of-range values nor scikit-learn's sigmoid calibration.
        """
        name = type(calibrator).__name__
        if name == "IsotonicRegression" and calibrator.out_of_bounds == "clip":
            thresholds = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
            values = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
            return cls(
                "isotonic",
                thresholds.copy(),
                values.copy(),
                low=float(calibrator.X_min_),
                high=float(calibrator.X_max_),
            )
        if name == "_SigmoidCalibration":
            empty = np.empty(0, dtype=np.float64)
            return cls("sigmoid", empty, empty, a=float(calibrator.a_), b=float(calibrator.b_))
        raise UnsupportedEstimatorError(
            f"a {name} calibrator is not compiled; compiled are isotonic and sigmoid"
        )

    def apply(self, p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return the calibrated probability of each of ``p``, element by element.

        What scikit-learn's calibrator predicts: isotonic clips to ``[low, high]`` and
        interpolates linearly between the thresholds (``np.interp``, which scipy's
        ``interp1d`` calls for it); sigmoid is ``expit(-(a * p + b))``.
        """
        if self.method == "isotonic":
            clipped = np.clip(p, self.low, self.high)
            if len(self.values) == 1:
                return np.full(clipped.shape, self.values[0])
            return np.interp(clipped, self.thresholds, self.values)
        from scipy.special import expit

        return np.asarray(expit(-(self.a * p + self.b)), dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        """Return the calibrator as JSON types (the numbers, exactly, as floats)."""
        if self.method == "isotonic":
            return {
                "method": "isotonic",
                "thresholds": self.thresholds.tolist(),
                "values": self.values.tolist(),
            }
        return {"method": "sigmoid", "a": self.a, "b": self.b}


class CompiledCalibrated:
    """A fitted ``CalibratedClassifierCV`` whose every model is compiled.

    Made by `compile_calibrated`. P(class 1) of a row is, as the library computes it,
    the mean over its calibrated classifiers of the calibrated probability of the
    model's ``predict_proba`` class 1; each model goes through its compiled kernel (and
    its scaler, `FoldPredictor`), each calibrator through `Calibrator.apply`. All of it
    is element-wise per row, so a row's number is the same alone and in any batch.

    Attributes:
        estimator_name: ``CalibratedClassifierCV(<the model's class>)``.
        n_features: The number of values a row must have.
        allows_nan: Whether every model predicts a NaN value.
        calibrators: Each calibrated classifier's `Calibrator`, in the library's order.
    """

    def __init__(self, parts: list[tuple[Any, Calibrator]], n_features: int) -> None:
        self._parts = parts
        self.n_features = n_features
        self.calibrators = tuple(c for _, c in parts)
        compiled = [p.compiled for p, _ in parts]
        self.allows_nan = all(c.allows_nan for c in compiled)
        self.estimator_name = f"CalibratedClassifierCV({compiled[0].estimator_name})"

    def predict_proba_one(self, row: npt.ArrayLike) -> float:
        """Return P(class 1) for one row: the number `predict_proba` gives it in any batch."""
        return float(self.predict_proba(one_row(row, self.n_features)[None, :])[0, 1])

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the ``(n_rows, 2)`` probabilities of classes 0 and 1, as the library
        sums them: per calibrated classifier, class 1 calibrated and class 0 its
        complement, each kept at 1 where it exceeds 1 by rounding; then their mean."""
        rows = batch_rows(X, self.n_features)
        total = np.zeros((len(rows), 2))
        for part, calibrator in self._parts:
            proba = np.empty((len(rows), 2))
            proba[:, 1] = calibrator.apply(part.predict(rows))
            proba[:, 0] = 1.0 - proba[:, 1]
            proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
            total += proba
        total /= len(self._parts)
        return total


def compile_calibrated(estimator: Any, predictor_of: Callable[[Any], Any]) -> CompiledCalibrated:
    """Compile a fitted binary ``CalibratedClassifierCV`` whose every model compiles.

    ``predictor_of(model)`` is the rule each model predicts by (`FoldPredictor`, given by
    it: its ``compiled`` and ``problem``, and ``predict`` of rows).

    Raises:
        UnsupportedEstimatorError: Saying why not: a model that is not compiled, one
            calibrated on its ``decision_function`` (the library calibrates that where a
            model has one), a calibrator other than isotonic or sigmoid, or classes other
            than ``[0, 1]``.
    """
    classes = np.asarray(estimator.classes_)
    if classes.dtype.kind not in "biuf" or classes.tolist() != [0, 1]:
        raise UnsupportedEstimatorError(
            f"CalibratedClassifierCV has classes {classes.tolist()!r}; "
            "only binary classification with classes [0, 1] is supported"
        )
    parts: list[tuple[Any, Calibrator]] = []
    for calibrated in estimator.calibrated_classifiers_:
        model = calibrated.estimator
        # a FrozenEstimator (the walk-forward's): the fitted model it holds
        inner = model.estimator if type(model).__name__ == "FrozenEstimator" else model
        name = type(inner).__name__
        if hasattr(model, "decision_function"):
            raise UnsupportedEstimatorError(
                f"CalibratedClassifierCV calibrates the decision_function of {name}; "
                "compiled calibration takes models calibrated on predict_proba (trees, "
                "forests, XGBoost; not LightGBM 4.7's classifier, which has one)"
            )
        if calibrated.method not in ("isotonic", "sigmoid") or len(calibrated.calibrators) != 1:
            raise UnsupportedEstimatorError(
                f"a CalibratedClassifierCV with method {calibrated.method} is not compiled; "
                "compiled are isotonic and sigmoid"
            )
        predictor = predictor_of(inner)
        if predictor.compiled is None:
            raise UnsupportedEstimatorError(f"CalibratedClassifierCV of {predictor.problem}")
        parts.append((predictor, Calibrator.of(calibrated.calibrators[0])))
    return CompiledCalibrated(parts, int(estimator.n_features_in_))


def uncalibrated_model(fitted: Any) -> Any | None:
    """Return the model a walk-forward fold calibrated (the frozen one), or None."""
    if not is_calibrated(fitted):
        return None
    model = fitted.calibrated_classifiers_[0].estimator
    return model.estimator if type(model).__name__ == "FrozenEstimator" else None


def calibration_figures(
    fold: int,
    before: npt.NDArray[np.float64],
    after: npt.NDArray[np.float64],
    up: npt.NDArray[np.float64],
) -> dict[str, Any]:
    """Return a fold's out-of-sample Brier score and ECE before and after calibration, and
    its reliability diagram (per bin: predictions, mean probability, share of up moves).

    Args:
        fold: The fold's number.
        before: The model's probabilities of the fold's predicted bars whose outcome is known.
        after: The calibrated probabilities of the same bars.
        up: Their outcomes (1.0: an up move).
    """
    from tradeloom.stats import RELIABILITY_BINS, calibration_error

    figures: dict[str, Any] = {"fold": fold, "predictions": len(up)}
    for name, p in (("before", before), ("after", after)):
        if len(up) == 0:
            figures[f"brier_{name}"] = figures[f"ece_{name}"] = None
            continue
        ece, counts, predicted, observed = calibration_error(p, up, RELIABILITY_BINS)
        figures[f"brier_{name}"] = float(np.mean((p - up) ** 2))
        figures[f"ece_{name}"] = ece
        figures[f"reliability_{name}"] = {
            "count": counts.tolist(),
            "predicted": [None if np.isnan(v) else float(v) for v in predicted],
            "observed": [None if np.isnan(v) else float(v) for v in observed],
        }
    return figures
