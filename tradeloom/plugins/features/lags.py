"""The ``lags`` feature: earlier features' values from k bars ago.

Step kernel state (`new_lags_state`): one ring (`tradeloom.core.kernels.window`)
per lagged column, each of the largest lag's length, as the rows of a 2-D array.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator

from tradeloom.bounds import MAX_WINDOW
from tradeloom.core.kernels.window import ring_back, ring_push
from tradeloom.domain import Bar, Bars
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.features._base import (
    ReadsBars,
    check_known_columns,
    column_frame,
    new_columns,
)
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Lags", "LagsParams", "build_lags", "lag", "lags", "lags_step", "new_lags_state"]

_Column = Annotated[str, Field(min_length=1)]
_Lag = Annotated[int, Field(ge=1, le=MAX_WINDOW, strict=True)]


def _column_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


MAX_LAGS = 100
"""Most lags, and most columns in ``of``: each pair is a column of the feature matrix."""


def _lag_list(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"must be n >= 1 (lags 1..n) or a list of lags >= 1; was {value}")
        if value > MAX_LAGS:
            raise ValueError(f"must be n <= {MAX_LAGS} (lags 1..n); was {value}")
        return list(range(1, value + 1))
    return value


# Validation sees one list type (one clear error, not one per member of a union);
# editors see both spellings.
_OF_SCHEMA = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ]
}
_LAGS_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
    ]
}


_REFUSED = {
    "of": ("must name at least one feature column", "must not name a column twice"),
    "lags": ("must hold at least one lag", "must not repeat a lag"),
}
"""What an empty list and a repeated value of each key is told."""


class LagsParams(Params):
    """Keys of ``lags``; the columns are ``{column}_lag_{k}`` for each column and lag.

    ``of`` may be one column or a list; ``lags`` a list of lags or ``n`` for 1..n.
    Both are stored as lists.
    """

    of: Annotated[list[_Column], BeforeValidator(_column_list), WithJsonSchema(_OF_SCHEMA)] = Field(
        max_length=MAX_LAGS,
        description="Feature column(s) defined earlier in the features list (at most 100).",
    )
    lags: Annotated[list[_Lag], BeforeValidator(_lag_list), WithJsonSchema(_LAGS_SCHEMA)] = Field(
        max_length=MAX_LAGS,
        description="Lags in bars: a list such as [1, 2, 5], or n for 1..n (at most 100 lags, "
        "each 1 .. 1,000,000).",
    )

    @field_validator("of", "lags")
    @classmethod
    def _distinct(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        empty, repeated = _REFUSED[info.field_name or ""]
        if not value:
            raise ValueError(empty)
        if len(set(value)) != len(value):
            raise ValueError(f"{repeated}; was {value}")
        return value


@kernel
def new_lags_state(columns: int, longest: int) -> np.ndarray:
    """Return the state of ``columns`` lagged columns before any bar (``longest``: max lag)."""
    return np.zeros((columns, longest + 2))


@kernel
def lags_step(state: np.ndarray, values: np.ndarray, steps: np.ndarray, out: np.ndarray) -> None:
    """Take this bar's values; write each column's value ``k`` bars ago for each lag ``k``.

    Args:
        state: ``new_lags_state(len(values), max(steps))``, updated in place.
        values: This bar's value of each lagged column.
        steps: The lags (int64, each >= 1).
        out: Receives column by column, lag by lag, the lagged values (NaN where the
            column has no value that many bars back).
    """
    nk = steps.size
    for i in range(values.size):
        ring = state[i]
        for j in range(nk):
            out[i * nk + j] = ring_back(ring, steps[j])
        ring_push(ring, values[i])


@kernel
def _lags(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    n, columns = values.shape
    state = new_lags_state(columns, steps.max())
    out = np.empty((n, columns * steps.size))
    for t in range(n):
        lags_step(state, values[t], steps, out[t])
    return out


def lags(values: np.ndarray, steps: list[int]) -> np.ndarray:
    """Return each column of a 2-D ``values`` (rows are bars) shifted down by each lag.

    Column ``i * len(steps) + j`` is column ``i`` lagged by ``steps[j]`` rows; NaN for
    its first ``steps[j]`` rows.
    """
    table = np.ascontiguousarray(values, dtype=np.float64)
    return _lags(table, np.asarray(steps, dtype=np.int64))


def lag(values: np.ndarray, k: int) -> np.ndarray:
    """Return ``values`` shifted down by ``k`` rows; NaN for the first ``k``."""
    return lags(np.asarray(values, dtype=np.float64).reshape(-1, 1), [k])[:, 0]


class _LagsStep:
    """Per-bar driver of `Lags`."""

    __slots__ = ("_out", "_sources", "_state", "_steps", "_values")

    def __init__(self, sources: tuple[str, ...], steps: tuple[int, ...]) -> None:
        self._sources = sources
        self._steps = np.asarray(steps, dtype=np.int64)
        self._state = new_lags_state(len(sources), max(steps))
        self._values = np.empty(len(sources))
        self._out = np.empty(len(sources) * len(steps))

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's lagged values, column by column, lag by lag."""
        for i, column in enumerate(self._sources):
            self._values[i] = features[column]
        lags_step(self._state, self._values, self._steps, self._out)
        return tuple(self._out.tolist())


@dataclass(frozen=True)
class Lags(ReadsBars):
    """Compute lagged copies of earlier feature columns.

    Attributes:
        sources: Columns to lag.
        steps: Lags in bars.
    """

    sources: tuple[str, ...]
    steps: tuple[int, ...]

    def columns(self) -> list[str]:
        """Return ``{column}_lag_{k}``, column by column, lag by lag."""
        return [f"{column}_lag_{k}" for column in self.sources for k in self.steps]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the lagged columns; row t uses row t - k of an earlier feature."""
        values = lags(features[list(self.sources)].to_numpy(dtype=np.float64), list(self.steps))
        return column_frame(bars, dict(zip(self.columns(), values.T, strict=True)))

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _LagsStep(self.sources, self.steps)


def build_lags(params: LagsParams, ctx: BuildContext) -> Lags:
    """Return the feature.

    Raises:
        ParamError: On ``of``: a column that no earlier feature defines, or a lagged
            column that an earlier feature already defines.
    """
    check_known_columns(params.of, ctx, "of")
    return new_columns(Lags(tuple(params.of), tuple(params.lags)), ctx, "of")
