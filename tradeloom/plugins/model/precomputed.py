"""The ``precomputed`` model: probabilities read from a column the data source carried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from tradeloom.bounds import MAX_WINDOW
from tradeloom.domain import Bars, ModelOutput, Universe
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols_symbols import fit_each_symbol
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.suggestions import did_you_mean
from tradeloom.time.timeframes import format_timestamp

__all__ = ["PrecomputedModel", "PrecomputedParams", "build_precomputed_model"]

_SHOWN_ROWS = 3


class PrecomputedParams(Params):
    """YAML keys of the ``precomputed`` model."""

    column: str = Field(
        min_length=1, description="Column of the data holding the probability of an up move."
    )
    horizon: int = Field(
        default=1,
        ge=1,
        le=MAX_WINDOW,
        description="Bars ahead the probabilities refer to (for monitoring; 1 .. 1,000,000).",
    )


class PrecomputedModel:
    """Read the probability of an up move from a column of the bars; train nothing.

    Args:
        column: The column of ``bars.frame``.
        horizon: Bars ahead the probabilities refer to.
    """

    def __init__(self, column: str, horizon: int = 1) -> None:
        self.column = column
        self.horizon = horizon
        self.per_symbol: dict[str, Any] = {}
        """After `fit_predict_universe` over several symbols: each symbol's copy."""
        self.fits_fold_transforms = True
        """It reads no feature, so a feature fitted per fold changes nothing it answers:
        parity replays a run whose model projected its text embeddings per fold from the
        run's probabilities (`tradeloom.plugins.protocols.FitsFoldTransforms`)."""

    def fit_predict_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> tuple[ModelOutput, ...]:
        """Return each symbol's output on the clock: `fit_predict` of the universe of one,
        else of a copy per symbol, on its own bars (`per_symbol`)."""
        outputs, self.per_symbol = fit_each_symbol(self, universe, features)
        return outputs

    def fit_predict(self, bars: Bars, features: pd.DataFrame) -> ModelOutput:
        """Return the column's values as probabilities (NaN: no prediction), with no trainings.

        Args:
            bars: The validated bars; ``bars.frame`` holds the column.
            features: Ignored.

        Raises:
            DataError: The column is missing, not numeric, or has values outside [0, 1].
        """
        frame = bars.frame
        name = self.column
        if name not in frame.columns:
            available = [str(c) for c in frame.columns]
            raise DataError(
                f"precomputed model: column '{name}' is not in the data"
                f"{did_you_mean(name, available)}; available columns: {', '.join(available)}"
            )
        column = frame[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise DataError(
                f"precomputed model: column '{name}' must be numeric, is {column.dtype}"
            )
        values = column.to_numpy(dtype=np.float64)
        outside = np.flatnonzero(~np.isnan(values) & ~((values >= 0.0) & (values <= 1.0)))
        if len(outside):
            shown = ", ".join(
                f"bar {i} ({format_timestamp(frame.index[i])}) = {values[i]:g}"
                for i in outside[:_SHOWN_ROWS]
            )
            more = ", ..." if len(outside) > _SHOWN_ROWS else ""
            plural = "s" if len(outside) > 1 else ""
            raise DataError(
                f"precomputed model: column '{name}' must hold probabilities in [0, 1] or NaN; "
                f"{len(outside)} value{plural} outside, first at {shown}{more}"
            )
        series = pd.Series(values, index=frame.index, name="probability_up")
        return ModelOutput(probability=series)


def build_precomputed_model(params: PrecomputedParams, ctx: BuildContext) -> PrecomputedModel:
    """Return the model; the column is checked when the data is there."""
    return PrecomputedModel(params.column, params.horizon)
