"""The ``sklearn`` model's predictions one bar at a time, as the live driver asks for them:
the latest fold's compiled estimator (`FoldPredictor`), its anomaly detector, and why a
fold may not be compiled (paper and live then may not match the backtest bit for bit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeloom.plugins.model.anomaly import anomaly_scores
from tradeloom.plugins.model.declared_estimators import DeclaredRecipe
from tradeloom.plugins.model.estimator_checks import CheckedEstimator
from tradeloom.plugins.model.fold_predictor import FoldPredictor, label_problem, parity_note
from tradeloom.plugins.model.labels import BINARY_KINDS
from tradeloom.plugins.model.sklearn_fitting import FoldFitter, TrainedFold
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.plugins.model.compiled_model import CompiledModel

__all__ = ["RowInference"]


class RowInference(FoldFitter):
    """Predict one bar's row with the latest trained fold, as the batch path predicts it."""

    latest: TrainedFold | None
    _row_model: FoldPredictor | None

    @property
    def fitted(self) -> Any | None:
        """The fitted estimator of the latest fold (`latest`), or None before `fit_predict`."""
        return None if self.latest is None else self.latest.fitted

    @property
    def compiled(self) -> CompiledModel | None:
        """The compiled estimator `predict_row` uses for the latest fold; None if it has none.

        Reading it prepares the latest fold for `predict_row` (compiling and checking a
        large forest takes a fraction of a second), so a live driver can do that right
        after training rather than at the next bar.
        """
        row_model = self._latest_row_model()
        return None if row_model is None else row_model.compiled

    def predict_row(self, values: npt.ArrayLike) -> float:
        """Return the probability of an up move for one bar's features, as the batch path does.

        Uses the latest trained fold (`latest`) through its `FoldPredictor`, the rule
        `fit_predict` predicts that fold's segment with: for a compiled estimator
        (`compiling.compile_classifier`) the number is the one `fit_predict` gives the
        same row, bit for bit (for a forest with ``n_jobs`` > 1, the one it gives with
        ``n_jobs=1``: see `compiled_trees`). Other estimators are asked for
        ``predict_proba`` of the one row, which is what they say for it alone; one whose
        arithmetic depends on the batch (a BLAS product adds in another order for one row
        than for many) may differ from `fit_predict` in the last bits; the model logs
        ``model_not_compiled`` once (see `fold_predictor`).

        Args:
            values: One value per feature column, in the order `fit_predict` was given.

        Returns:
            The probability, or NaN when no fold has trained or a value is not finite
            (rows the batch path does not predict either).

        Raises:
            ValueError: ``values`` does not hold one value per feature column.
        """
        row = np.asarray(values, dtype=np.float64)
        row_model = self._latest_row_model()
        if row_model is None:
            return float("nan")
        n_features = row_model.n_features
        if row.ndim != 1 or (n_features is not None and len(row) != n_features):
            raise ValueError(
                f"values must hold one value per feature column ({n_features}), "
                f"has shape {row.shape}"
            )
        if not np.isfinite(row).all():
            return float("nan")
        return row_model.predict_one(row)

    def anomaly_score_row(self, values: npt.ArrayLike) -> float:
        """Return the anomaly score of one bar's features, as `fit_predict` scores it.

        Uses the detector of the latest trained fold (`latest`, as `predict_row` does);
        the number is the one `fit_predict` gives the same row in that fold's segment
        (see `anomaly_scores`). Below 0 is anomalous.

        Args:
            values: One value per feature column, in the order `fit_predict` was given.

        Returns:
            The score, or NaN without an anomaly gate, before the first fold, or when a
            value is not finite (rows the batch path does not score either).

        Raises:
            ValueError: ``values`` does not hold one value per feature column.
        """
        row = np.asarray(values, dtype=np.float64)
        latest = self.latest
        if latest is None or latest.detector is None:
            return float("nan")
        if row.ndim != 1 or len(row) != len(latest.columns):
            raise ValueError(
                f"values must hold one value per feature column ({len(latest.columns)}), "
                f"has shape {row.shape}"
            )
        if not np.isfinite(row).all():
            return float("nan")
        return float(anomaly_scores(latest.detector, row[None, :])[0])

    def anomalous_row(self, values: npt.ArrayLike) -> bool:
        """Return whether the latest fold's detector finds one bar's features anomalous.

        What `fit_predict` says in ``ModelOutput.anomalous`` for the same row: False
        without an anomaly gate, before the first fold and for a non-finite value.

        Raises:
            ValueError: ``values`` does not hold one value per feature column.
        """
        return self.anomaly_score_row(values) < 0.0

    def _latest_row_model(self) -> FoldPredictor | None:
        fitted = self.fitted
        if fitted is None:
            return None
        row_model = self._row_model
        if row_model is None or row_model.fitted is not fitted:
            row_model = FoldPredictor(fitted, self.label.kind)
            self._row_model = row_model
            self._note_not_compiled(row_model)
        return row_model

    @property
    def not_compiled(self) -> str | None:
        """Why a fold's estimator was not compiled (the first fold met), or None."""
        return self._not_compiled

    @property
    def parity_note(self) -> str | None:
        """Why paper and live may not journal this model's backtest probabilities bit for
        bit (its estimator will not be compiled), or None.

        Answered from the estimator's import path and params (`compile_problem`), before
        anything trains, and without importing it when its check was remembered.
        """
        from tradeloom.plugins.model.compiling import (
            calibrated_problem,
            compile_problem,
            decision_function_problem,
        )

        estimator = self._estimator
        if isinstance(estimator, DeclaredRecipe) and self.label.kind in BINARY_KINDS:
            found = estimator.problem
            if found is None and self.calibration is not None:
                found = estimator.calibrated
            return None if found is None else parity_note(found)
        if isinstance(estimator, DeclaredRecipe):
            path, settings = estimator.spec.class_, {}
        elif isinstance(estimator, CheckedEstimator):
            path, settings = estimator.path, estimator.settings
        else:
            cls = type(estimator)
            path = f"{cls.__module__}.{cls.__name__}"
            settings = estimator.get_params(deep=False)
        if self.label.kind not in BINARY_KINDS:
            method = "predict" if self.label.regression else "predict_proba"
            problem = label_problem(self.label.kind, path)
            return None if problem is None else parity_note(problem, method)
        problem = compile_problem(path, settings)
        if problem is None and self.calibration is not None:
            declared = _declared_decision_function(estimator, path)
            if declared is None:  # asked of the estimator itself (built: sklearn imported)
                problem = calibrated_problem(self.estimator)
            elif declared:
                problem = decision_function_problem(estimator.name)
            # else calibrated on predict_proba, its compile problem none (as above, from
            # the settings over the class's defaults)
        return None if problem is None else parity_note(problem)


def _declared_decision_function(estimator: Any, path: str) -> bool | None:
    """Return whether a checked estimator has a ``decision_function``: as its check found
    it (remembered with its verdict: a LightGBM or XGBoost estimator's too), else, for a
    plain scikit-learn estimator, as the table of declared estimators says of its class
    for the installed scikit-learn (`estimator_table.declared_decision_function`):
    nothing built, nothing imported, at every ``validate``; None: ask the estimator."""
    from tradeloom.plugins.model.estimator_checks import installed_distribution
    from tradeloom.plugins.model.estimator_table import declared_decision_function

    if not isinstance(estimator, CheckedEstimator):
        return None
    if estimator.decision_function is not None:
        return estimator.decision_function
    if not path.startswith("sklearn."):
        return None
    installed = installed_distribution("sklearn")
    return None if installed is None else declared_decision_function(path, installed[1])
