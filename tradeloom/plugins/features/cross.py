"""Cross-sectional features: a column compared across the symbols of a universe at each bar.

``cross_rank`` (the symbol's percentile among the symbols), ``cross_zscore`` (its
distance from their mean in standard deviations) and ``cross_mean`` (their mean: of a
return column, the universe's mean return). Each reads an earlier per-symbol column
and, at bar t, only row t of each symbol present then with a finite value: causal by
construction (`tradeloom.plugins.protocols.CrossSectionalFeature`). A symbol without a
bar or a value at t takes no part and gets NaN.

Definitions over the k symbols taking part at t:

- rank: ``(r - 0.5) / k``, r the symbol's rank from 1 (smallest) with ties averaged:
  in (0, 1), the middle of its share of the ranks (0.5 for one symbol alone).
- z-score: ``(x - mean) / std``, the population std; 0.0 where the std is 0.
- mean: the mean of the k values, the same for every symbol taking part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from pydantic import Field

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.features._base import (
    ColumnName,
    OneColumn,
    check_known_columns,
    column_frame,
    new_columns,
    series,
)
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "CROSS_KINDS",
    "CrossParams",
    "CrossSectional",
    "build_cross_mean",
    "build_cross_rank",
    "build_cross_zscore",
    "cross_mean",
    "cross_rank",
    "cross_zscore",
]

Array: TypeAlias = "npt.NDArray[np.float64]"

CROSS_KINDS = ("cross_rank", "cross_zscore", "cross_mean")
"""The built-in cross-sectional feature kinds (they need a universe of several symbols)."""


class CrossParams(Params):
    """Keys of ``cross_rank``, ``cross_zscore`` and ``cross_mean``; the column is
    ``{of}_{kind}`` (``rsi_14_cross_rank``)."""

    of: str = Field(min_length=1, description="A per-symbol feature column defined earlier.")
    name: ColumnName = Field(
        default=None, description="Column name instead of the default (e.g. rsi_rank)."
    )


def _taking_part(values: Array, present: npt.NDArray[np.bool_]) -> tuple[Array, Array]:
    """Return the values (NaN where a symbol takes no part) and how many take part per bar."""
    v = np.where(present & np.isfinite(values), values, np.nan)
    return v, np.isfinite(v).sum(axis=1).astype(np.float64)


def cross_rank(values: Array, present: npt.NDArray[np.bool_]) -> Array:
    """Return each symbol's percentile rank at each bar (``[bars, symbols]``; see the module)."""
    v, k = _taking_part(values, present)
    ranks = pd.DataFrame(v).rank(axis=1, method="average").to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((ranks - 0.5) / k[:, None])


def cross_zscore(values: Array, present: npt.NDArray[np.bool_]) -> Array:
    """Return each symbol's z-score across the symbols at each bar (see the module)."""
    v, k = _taking_part(values, present)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(v, axis=1) / k
        std = np.sqrt(np.nansum((v - mean[:, None]) ** 2, axis=1) / k)
        score = (v - mean[:, None]) / std[:, None]
    return np.where(np.isnan(v), np.nan, np.where(std[:, None] == 0.0, 0.0, score))


def cross_mean(values: Array, present: npt.NDArray[np.bool_]) -> Array:
    """Return the symbols' mean at each bar, for each symbol taking part (see the module)."""
    v, k = _taking_part(values, present)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(v, axis=1) / k
    return np.where(np.isnan(v), np.nan, mean[:, None])


@dataclass(frozen=True)
class CrossSectional(OneColumn):
    """A column compared across the symbols at each bar (`tradeloom.plugins.features.cross`)."""

    of: str
    column: str
    statistic: Callable[[Array, npt.NDArray[np.bool_]], Array]

    def inputs(self) -> list[str]:
        """Return the per-symbol column it reads."""
        return [self.of]

    def compute_cross(self, values: Array, present: npt.NDArray[np.bool_]) -> Array:
        """Return ``[bars, symbols, 1]`` from ``values`` ``[bars, symbols, 1]``."""
        return self.statistic(values[:, :, 0], present)[:, :, None]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the statistic of one symbol alone (the universe of one)."""
        values = series(features, self.of)[:, None, None]
        out = self.compute_cross(values, np.ones((len(values), 1), bool))
        return column_frame(bars, {self.column: out[:, 0, 0]})


def _build(
    kind: str, statistic: Callable[[Array, npt.NDArray[np.bool_]], Array]
) -> Callable[[CrossParams, BuildContext], CrossSectional]:
    def build(params: CrossParams, ctx: BuildContext) -> CrossSectional:
        check_known_columns([params.of], ctx, "of")
        return new_columns(
            CrossSectional(params.of, params.name or f"{params.of}_{kind}", statistic), ctx
        )

    build.__doc__ = f"Return the ``{kind}`` feature (raises ParamError on an unknown ``of``)."
    return build


build_cross_rank = _build("cross_rank", cross_rank)
build_cross_zscore = _build("cross_zscore", cross_zscore)
build_cross_mean = _build("cross_mean", cross_mean)
