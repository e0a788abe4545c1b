"""The ``series`` feature: a column of the bars that is not OHLCV, as a feature column.

Made for the auxiliary series of ``data.auxiliary`` (sentiment, funding rates...),
which the data source joins to the bars as-of with their publication delay, so that
row t holds what was published by bar t's close; any numeric extra column of a file
source works too. ``transform`` is ``level`` (the value), ``diff`` (the change since
the previous bar) or ``zscore`` (the rolling z-score over ``window`` bars, the
``zscore`` feature's kernel).

Step kernel state: none for ``level``; the previous value for ``diff``; a ring
(`tradeloom.core.kernels.window`) of the last ``window`` values for ``zscore``.
The per-bar driver reads the bar's value from `StepContext.extra` by the bar's time, or
(a paper or live run) from `StepContext.live_rows` as the bar closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from tradeloom.core.kernels.window import new_ring
from tradeloom.domain import OHLCV, Bar, Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.features._base import (
    ColumnName,
    OneColumn,
    bars_key,
    column_frame,
    new_columns,
)
from tradeloom.plugins.features.zscore import rolling_zscore, zscore_step
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Series", "SeriesParams", "build_series", "transform_series"]

Transform = Literal["level", "diff", "zscore"]


class SeriesParams(Params):
    """Keys of ``series``; the column is ``{of}``, ``{of}_diff`` or ``{of}_zscore_{window}``."""

    of: str = Field(
        min_length=1,
        description="A column of the bars that is not OHLCV: the name of a data.auxiliary "
        "series, or an extra numeric column of a file.",
    )
    transform: Transform = Field(
        default="level",
        description="level: the value; diff: its change since the previous bar; zscore: its "
        "rolling z-score over window bars.",
    )
    window: int = bars_key(24, 2, "Window in bars of transform zscore")
    name: ColumnName = Field(
        default=None, description="Column name instead of the default (e.g. sentiment_z)."
    )

    def column(self) -> str:
        """Return ``name`` if given, else the transform's default column."""
        if self.name:
            return self.name
        return {
            "level": self.of,
            "diff": f"{self.of}_diff",
            "zscore": f"{self.of}_zscore_{self.window}",
        }[self.transform]


def transform_series(values: np.ndarray, transform: Transform, window: int) -> np.ndarray:
    """Return the transform of ``values`` at every row (row t uses rows <= t).

    ``diff`` is NaN at row 0; ``zscore`` is `tradeloom.plugins.features.zscore.zscore`
    (population std, 0.0 in a flat window, NaN while the window holds a NaN).
    """
    x = np.ascontiguousarray(values, dtype=np.float64)
    if transform == "level":
        return x.copy()
    if transform == "diff":
        out = np.full(len(x), np.nan)
        out[1:] = x[1:] - x[:-1]
        return out
    return rolling_zscore(x, window, 0)


class _SeriesStep:
    """Per-bar driver of `Series`: the bar's value by its time, then the transform."""

    __slots__ = ("_live", "_of", "_previous", "_ring", "_times", "_transform", "_values")

    def __init__(self, feature: Series, context: StepContext) -> None:
        extra, live = context.extra, context.live_rows
        self._of = feature.of
        self._live = None
        self._times = np.empty(0, np.int64)
        self._values = np.empty(0)
        if extra is not None and feature.of in extra.columns:
            self._times = extra.index.as_unit("ns").asi8
            self._values = extra[feature.of].to_numpy(np.float64)
        elif live is not None and feature.of in live.columns:
            self._live = live  # a paper or live run's series, row by row as bars close
        else:
            raise DataError(
                f"features: series of '{feature.of}': the bars stepped have no such column; "
                "declare the series under data.auxiliary"
            )
        self._transform = feature.transform
        self._previous = np.nan
        self._ring = new_ring(feature.window)

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's transformed value."""
        if self._live is not None:
            value = float(self._live.row_at(bar.timestamp)[self._of].iloc[0])
        else:
            at = int(np.searchsorted(self._times, bar.timestamp.value))
            if at >= len(self._times) or self._times[at] != bar.timestamp.value:
                raise DataError(f"features: series: no value for the bar at {bar.timestamp}")
            value = float(self._values[at])
        if self._transform == "level":
            return (value,)
        if self._transform == "diff":
            change = value - self._previous
            self._previous = value
            return (change,)
        return (zscore_step(self._ring, value, 0),)


@dataclass(frozen=True)
class Series(OneColumn):
    """Expose a column of the bars (an auxiliary series) as a feature column."""

    of: str
    transform: Transform
    window: int
    column: str

    def input_columns(self) -> tuple[str, ...]:
        """Return the column of the bars it reads (checked against the data at validation)."""
        return (self.of,)

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the transformed column; row t uses rows <= t.

        Raises:
            DataError: The bars have no column ``of``.
        """
        if self.of not in bars.frame.columns:
            extra = [str(c) for c in bars.frame.columns if c not in OHLCV]
            has = f"its extra columns: {', '.join(extra)}" if extra else "it has no extra column"
            raise DataError(
                f"features: series of '{self.of}': the bars have no such column ({has}); "
                "declare the series under data.auxiliary"
            )
        values = bars.frame[self.of].to_numpy(np.float64)
        return column_frame(
            bars, {self.column: transform_series(values, self.transform, self.window)}
        )

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver.

        Raises:
            DataError: Neither the bars nor a paper or live run's rows have column ``of``.
        """
        return _SeriesStep(self, context)


def build_series(params: SeriesParams, ctx: BuildContext) -> Series:
    """Return the feature; its column must not be defined already."""
    return new_columns(Series(params.of, params.transform, params.window, params.column()), ctx)
