"""The ``saved`` model: trade a fold that another run trained and saved.

``model: {path: models/fold-0007.pkl, sha256: ...}`` loads one model file (a torch
network's ``fold-0007.pt`` too: `SavedTorchModel`), trusting the
hash written in the strategy file; ``model: {from_run: runs/btc_rf-...}`` loads the
latest fold (or ``fold: N``) of a run directory, trusting the hash its index lists
unless ``sha256`` pins it. The section needs no ``kind:``: a model section with
``path`` or ``from_run`` is this one. The model is loaded and checked when the strategy
is built (`tradeloom.plugins.model.loading`), so ``tradeloom validate`` refuses a
missing, tampered or incompatible model file before anything runs. A model of a
third-party estimator loads only if ``trusted_packages`` names its package.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from tradeloom.bounds import MAX_WINDOW
from tradeloom.domain import Bars, ModelOutput, ModelTraining, Universe
from tradeloom.errors import UserError
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.model.anomaly import anomaly_scores
from tradeloom.plugins.model.fold_predictor import FoldPredictor, parity_note
from tradeloom.plugins.model.loading import (
    WEIGHTS_SUFFIX,
    LoadedModel,
    ModelRequest,
    load_saved_model,
)
from tradeloom.plugins.model.safe_pickle import trusted_package_problem
from tradeloom.plugins.model.sklearn_fitting import TrainedFold, _predict_serially
from tradeloom.plugins.model.torch_fold import (
    PARITY_NOTE,
    TorchFold,
    check_window,
    window_rows,
)
from tradeloom.plugins.protocols_symbols import fit_each_symbol
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.plugins.model.compiled_model import CompiledModel

__all__ = ["SavedModel", "SavedParams", "SavedTorchModel", "build_saved_model"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _trustable(package: str) -> str:
    problem = trusted_package_problem(package)
    if problem is not None:
        raise ValueError(problem)
    return package


_Package = Annotated[str, AfterValidator(_trustable)]


class SavedParams(Params):
    """YAML keys of the ``saved`` model: exactly one of ``path`` and ``from_run``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [{"required": ["path"]}, {"required": ["from_run"]}],
            "dependentRequired": {"path": ["sha256"]},
        },
    )

    path: str | None = Field(
        default=None,
        min_length=1,
        description="A model file a run saved (models/fold-NNNN.pkl), its fold-NNNN.json "
        "beside it; relative to the strategy file. Needs sha256.",
    )
    from_run: str | None = Field(
        default=None,
        min_length=1,
        description="A run directory; its models/index.json names the fold to load.",
    )
    sha256: str | None = Field(
        default=None,
        description="SHA-256 of the model file (64 hex digits, as sha256sum prints it): "
        "required with path; with from_run, pins the file the run's index names.",
        json_schema_extra={"pattern": _SHA256.pattern},
    )
    fold: int | None = Field(
        default=None,
        ge=0,
        le=MAX_WINDOW,
        description="With from_run: the fold to load (default: the latest).",
    )
    trusted_packages: list[_Package] = Field(
        default_factory=list,
        max_length=16,
        description="Third-party packages (top-level import names, e.g. lightgbm) whose "
        "classes the model file may name when it is unpickled; scikit-learn's estimators "
        "need none. Trust only a package you would run code from.",
    )

    @field_validator("sha256")
    @classmethod
    def _is_sha256(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().lower()
        if not _SHA256.match(text):
            raise ValueError("expected 64 hexadecimal digits (a SHA-256, as sha256sum prints it)")
        return text

    @model_validator(mode="after")
    def _one_source(self) -> SavedParams:
        if self.path is not None and self.from_run is not None:
            raise ValueError("give path or from_run, not both")
        if self.path is None and self.from_run is None:
            raise ValueError("give path (with sha256) or from_run")
        if self.path is not None and self.sha256 is None:
            raise ValueError(
                "path needs sha256: the model file's SHA-256, written here so that "
                "a swapped file is refused (sha256sum FILE prints it)"
            )
        if self.path is not None and self.fold is not None:
            raise ValueError("fold goes with from_run; path names one fold's file")
        return self


class SavedModel:
    """A fold trained elsewhere, predicting the bars after its training data.

    It trains nothing: `fit_predict` checks the feature columns, leaves NaN on every bar
    up to the one whose close its training labels reached (``labels_end``: the training
    rows' last bar plus the horizon; the model has seen those prices), and predicts the
    others exactly as the fold did in the run that trained it. Its one `ModelTraining`
    is journaled at the first bar it predicts, with ``reason`` naming the file and hash;
    ``train_start``, ``train_end``, ``rows`` and ``positives`` are the fold's own (bars
    of the run that trained it). It has no ``retrain``: health rules cannot retrain it.

    Args:
        loaded: The checked, unpickled fold.

    Attributes:
        horizon: The label horizon it was trained with.
        fitted: The fitted estimator (or scaler and estimator pipeline).
        detector: The fold's anomaly detector, or None; with one, `fit_predict` scores the
            bars it predicts (below 0: anomalous, no position is opened there).
        trained: Always empty: a loaded model saves nothing of its own.
        loaded_from: ``{source, sha256}`` of the file, for ``metrics.json``.
    """

    fits_fold_transforms = True
    """Its folds carry the fold transforms they were fitted with (the loader refuses a
    fold whose feature specification differs from the strategy's)."""

    def __init__(self, loaded: LoadedModel) -> None:
        bundled = loaded.bundled  # what the hashed file holds, not the editable JSON
        self.horizon = bundled.horizon
        self.columns = tuple(bundled.columns)
        self.fitted = loaded.fitted
        self.detector = loaded.detector
        self.estimator_name = bundled.training.estimator
        self.labels_end = pd.Timestamp(bundled.labels_end)
        self.trained: list[TrainedFold] = []
        self.per_symbol: dict[str, Any] = {}
        """After `fit_predict_universe` over several symbols: each symbol's copy."""
        self.loaded_from = {"source": str(loaded.source), "sha256": loaded.sha256}
        self._loaded = loaded
        self._predictor: FoldPredictor | None = None
        if callable(getattr(self.fitted, "get_params", None)):  # an estimator, not weights
            _predict_serially(self.fitted)

    def clock_refusal(self, last_open: pd.Timestamp) -> ParamError | None:
        """Return why it cannot predict bars whose last opens at ``last_open``: every one
        is inside its training data (`tradeloom.plugins.protocols.ClockRefusal`)."""
        if last_open > self.labels_end:
            return None
        name = self._loaded.source.name
        return ParamError(
            "",
            f"every bar is inside {name}'s training data (its labels reach "
            f"{self.labels_end.isoformat()}, the bars end {last_open.isoformat()}); "
            "give it bars after that",
        )

    def label_record(self) -> dict[str, Any]:
        """Return the label the fold was trained with, as its file holds it."""
        return dict(self._loaded.bundled.label)

    @property
    def calibrated(self) -> bool:
        """Whether the fold was calibrated in the run that trained it."""
        return bool(self._loaded.bundled.training.calibration)

    def fit_predict_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> tuple[ModelOutput, ...]:
        """Return each symbol's output on the clock: `fit_predict` of the universe of one,
        else of a copy per symbol, on its own bars (`per_symbol`)."""
        outputs, self.per_symbol = fit_each_symbol(self, universe, features)
        return outputs

    def fit_predict(self, bars: Bars, features: pd.DataFrame) -> ModelOutput:
        """Predict the bars after the model's training data; train nothing.

        Raises:
            UserError: The feature columns are not the model's, or no bar is after the
                model's training data, or the estimator fails to predict.
        """
        frame = bars.frame
        if not features.index.equals(frame.index):
            raise ValueError("features must be indexed like bars.frame")
        name = self._loaded.source.name
        columns = tuple(str(c) for c in features.columns)
        if columns != self.columns:
            raise UserError(
                f"model: {name} was trained on columns {', '.join(self.columns)}; "
                f"the features give {', '.join(columns)}"
            )
        n = len(frame)
        first = int(frame.index.searchsorted(self.labels_end, side="right"))
        refusal = self.clock_refusal(frame.index[-1]) if n else None
        if first >= n:  # refused before any bar (`clock_refusal`); kept for a direct caller
            raise UserError(f"model: {refusal.message if refusal else 'no bars'}")
        x = features.to_numpy(dtype=np.float64)
        usable = self._usable(x)
        usable[:first] = False
        rows = np.flatnonzero(usable)
        probability = np.full(n, np.nan)
        scores = np.full(n, np.nan)
        try:
            if len(rows):
                probability[rows] = self._predict_rows(x, rows)
                if self.detector is not None:
                    scores[rows] = anomaly_scores(self.detector, x[rows])
        except Exception as exc:  # a third-party estimator may raise anything
            raise UserError(
                f"model: {name} failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        bundled = self._loaded.bundled
        fold = bundled.training
        reference = bundled.reference
        training = ModelTraining(
            fold=fold.fold,
            train_start=fold.train_start,
            train_end=fold.train_end,
            predict_start=first,
            predict_end=n - 1,
            rows=fold.rows,
            positives=fold.positives,
            horizon=self.horizon,
            estimator=self.estimator_name,
            reason=f"loaded {name} sha256 {self._loaded.sha256}",
            reference=None if reference is None else reference.to_reference(),
        )
        series = pd.Series(probability, index=frame.index, name="probability_up")
        if self.detector is None:
            return ModelOutput(probability=series, trainings=(training,))
        return ModelOutput(
            probability=series,
            trainings=(training,),
            anomalous=pd.Series(scores < 0.0, index=frame.index, name="anomalous"),
            anomaly_score=pd.Series(scores, index=frame.index, name="anomaly_score"),
        )

    def _usable(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Which rows it can predict: every feature finite."""
        return np.asarray(np.isfinite(x).all(axis=1))

    def _predict_rows(
        self, x: npt.NDArray[np.float64], rows: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """Its probabilities of rows ``rows`` of ``x``."""
        return self._row().predict(x[rows])

    @property
    def compiled(self) -> CompiledModel | None:
        """The compiled estimator `fit_predict` and `predict_row` use; None if it has none."""
        return self._row().compiled

    @property
    def parity_note(self) -> str | None:
        """Why paper and live may not journal the backtest's probabilities bit for bit (the
        estimator is not compiled), or None."""
        row = self._row()
        method = "predict" if row.kind == "return" else "predict_proba"
        return None if row.problem is None else parity_note(row.problem, method)

    def predict_row(self, values: npt.ArrayLike) -> float:
        """Return the probability of an up move for one bar's features, as `fit_predict` does.

        As `SklearnModel.predict_row` for its latest fold: the fold's `FoldPredictor`,
        which `fit_predict` uses too.

        Returns:
            The probability, or NaN when a value is not finite.

        Raises:
            ValueError: ``values`` does not hold one value per feature column.
        """
        row = self._checked(values)
        if not np.isfinite(row).all():
            return float("nan")
        return self._row().predict_one(row)

    def anomaly_score_row(self, values: npt.ArrayLike) -> float:
        """Return the detector's score of one bar's features, as `fit_predict` scores it.

        Returns:
            The score (below 0: anomalous), or NaN without a detector or when a value is
            not finite.

        Raises:
            ValueError: ``values`` does not hold one value per feature column.
        """
        row = self._checked(values)
        if self.detector is None or not np.isfinite(row).all():
            return float("nan")
        return float(anomaly_scores(self.detector, row[None, :])[0])

    def anomalous_row(self, values: npt.ArrayLike) -> bool:
        """Return whether the detector finds one bar's features anomalous (False: none)."""
        return self.anomaly_score_row(values) < 0.0

    def _checked(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        row = np.asarray(values, dtype=np.float64)
        if row.ndim != 1 or len(row) != len(self.columns):
            raise ValueError(
                f"values must hold one value per feature column ({len(self.columns)}), "
                f"has shape {row.shape}"
            )
        return row

    def _row(self) -> FoldPredictor:
        if self._predictor is None:  # compiling a large forest takes a moment: on first use
            kind = str(self._loaded.bundled.label.get("kind", "direction"))
            self._predictor = FoldPredictor(self.fitted, kind)
        return self._predictor


class SavedTorchModel(SavedModel):
    """A saved torch fold (``fold-NNNN.pt``), predicting windows as `SavedModel` predicts
    rows: each bar after the fold's training data from the window of ``window`` rows
    ending at it, as the fold predicted it in the run that trained it; paper and live ask
    `predict_window` with the symbol's last rows (`WindowedModel`).

    Args:
        loaded: The checked fold, its `TorchFold` read from the file's weights
            (`tradeloom.plugins.model.torch_fold`).

    Attributes:
        window: Rows each prediction reads.
    """

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(loaded)
        self.fold: TorchFold = loaded.fitted
        self.window = self.fold.window

    def _usable(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        return window_rows(np.asarray(np.isfinite(x).all(axis=1)), self.window)

    def _predict_rows(
        self, x: npt.NDArray[np.float64], rows: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        return self.fold.predict_rows(x, rows)

    @property
    def compiled(self) -> CompiledModel | None:
        """None: a network is not compiled (`PARITY_NOTE`)."""
        return None

    @property
    def parity_note(self) -> str | None:
        """Why paper and live may differ from the backtest in the last bits."""
        return PARITY_NOTE

    def predict_window(self, rows: npt.ArrayLike) -> float:
        """Return the probability of an up move from the symbol's last ``window`` rows, as
        `fit_predict` predicts the window ending at that bar (NaN: a value is not finite,
        or fewer rows than ``window``).

        Raises:
            ValueError: The rows do not have one value per feature column.
        """
        block = np.asarray(rows, dtype=np.float64)
        check_window(block, len(self.columns))
        if len(block) < self.window or not np.isfinite(block[-self.window :]).all():
            return math.nan
        return self.fold.predict_one(block[-self.window :])

    def predict_row(self, values: npt.ArrayLike) -> float:
        """Return the probability for one row: a fold whose ``window`` is 1 reads no more.

        Raises:
            ValueError: The window is longer than one row: ask `predict_window`.
        """
        if self.window != 1:
            raise ValueError(
                f"the torch model reads the last {self.window} rows of a symbol; "
                "call predict_window with them"
            )
        return self.predict_window(np.asarray(values, dtype=np.float64)[None, :])


def build_saved_model(params: SavedParams, ctx: BuildContext) -> SavedModel:
    """Load, check and unpickle the model file (see `tradeloom.plugins.model.loading`).

    Raises:
        ParamError: The file is missing, truncated, of another hash, of incompatible
            library versions, trained on other features, names a refused global, or
            does not match its metadata file.
    """
    request = ModelRequest(
        path=None if params.path is None else ctx.resolve_path(params.path),
        from_run=None if params.from_run is None else ctx.resolve_path(params.from_run),
        sha256=params.sha256,
        fold=params.fold,
        trusted_packages=tuple(params.trusted_packages),
    )
    spec = [dict(f) for f in ctx.feature_spec] if ctx.features_known else None
    loaded = load_saved_model(request, feature_spec=spec, columns=ctx.feature_columns)
    if loaded.source.suffix == WEIGHTS_SUFFIX:  # a torch fold: it reads windows of rows
        return SavedTorchModel(loaded)
    return SavedModel(loaded)
