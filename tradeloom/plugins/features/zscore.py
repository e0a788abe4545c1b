"""The ``zscore`` feature: how far an earlier feature's value is from its rolling mean.

Step kernel state: a ring (`tradeloom.core.kernels.window`) of the last ``window``
values. `rolling_zscore` and `zscore_step` are shared with ``volume_zscore``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field

from tradeloom.core.kernels.window import (
    BLOCK,
    block_mean_std,
    new_ring,
    ring_full,
    ring_mean_std,
    ring_push,
)
from tradeloom.domain import Bar, Bars
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.features._base import (
    ColumnName,
    OneColumn,
    bars_key,
    check_known_columns,
    new_columns,
    series,
)
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "ZScore",
    "ZScoreParams",
    "build_zscore",
    "rolling_zscore",
    "zscore",
    "zscore_step",
]


class ZScoreParams(Params):
    """Keys of ``zscore``; the column is ``{of}_zscore_{window}``."""

    of: str = Field(min_length=1, description="A feature column defined earlier in the list.")
    window: int = bars_key(24, 2, "Window in bars")
    name: ColumnName = Field(
        default=None, description="Column name instead of the default (e.g. rsi_z)."
    )

    def column(self) -> str:
        """Return ``name`` if given, else ``{of}_zscore_{window}``."""
        return self.name or f"{self.of}_zscore_{self.window}"


@kernel
def _score(value: float, mean: float, std: float) -> float:
    # np.divide divides as IEEE 754 does (no ZeroDivisionError check): the loop vectorises.
    return 0.0 if std == 0.0 else np.divide(value - mean, std)


@kernel
def zscore_step(ring: np.ndarray, value: float, ddof: int) -> float:
    """Take a value; return its z-score in the window of the last ``window`` values.

    Args:
        ring: ``new_ring(window)``, updated in place.
        value: This bar's value.
        ddof: Delta degrees of freedom of the std: 0 population, 1 sample.

    Returns:
        (value - mean) / std; 0.0 where the std is 0 (a flat window); NaN before
        ``window`` values and while the window holds a NaN.
    """
    ring_push(ring, value)
    if not ring_full(ring):
        return math.nan
    mean, std = ring_mean_std(ring, ddof)
    return _score(value, mean, std)


@kernel
def rolling_zscore(values: np.ndarray, window: int, ddof: int) -> np.ndarray:
    """Return `zscore_step`'s value at every row (values C-contiguous float64)."""
    n = values.size
    out = np.empty(n)
    out[: min(n, window - 1)] = math.nan
    mean = np.empty(BLOCK)
    std = np.empty(BLOCK)
    for end in range(window - 1, n, BLOCK):
        m = min(BLOCK, n - end)
        block_mean_std(values, end, window, ddof, mean[:m], std[:m])
        for j in range(m):
            out[end + j] = _score(values[end + j], mean[j], std[j])
    return out


def zscore(values: np.ndarray, window: int) -> np.ndarray:
    """Return (x_t - mean) / std over the window of ``window`` values ending at t.

    The std is the population std (ddof=0); mean and std are those of
    `tradeloom.core.kernels.window`. A flat window has std 0 and its last value
    is not unusual: the score is 0.0 there. NaN for the first ``window - 1`` rows and
    wherever the window holds a NaN (an earlier feature's warm-up).
    """
    return rolling_zscore(np.ascontiguousarray(values, dtype=np.float64), window, 0)


class _ZScoreStep:
    """Per-bar driver of `ZScore`."""

    __slots__ = ("_of", "_ring")

    def __init__(self, of: str, window: int) -> None:
        self._ring = new_ring(window)
        self._of = of

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's z-score of the earlier feature's value."""
        return (zscore_step(self._ring, features[self._of], 0),)


@dataclass(frozen=True)
class ZScore(OneColumn):
    """Compute the rolling z-score of an earlier feature column."""

    of: str
    window: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the z-scores; row t uses rows t - window + 1 .. t of the column."""
        return zscore(series(features, self.of), self.window)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _ZScoreStep(self.of, self.window)


def build_zscore(params: ZScoreParams, ctx: BuildContext) -> ZScore:
    """Return the feature.

    Raises:
        ParamError: On ``of``, a column that no earlier feature defines; on ``name``,
            a column that an earlier feature already defines.
    """
    check_known_columns([params.of], ctx, "of")
    return new_columns(ZScore(params.of, params.window, params.column()), ctx)
