"""The drift reference saved with a model, as lists that JSON and a pickle can hold."""

from __future__ import annotations

import itertools
import math

from pydantic import BaseModel, ConfigDict, model_validator

from tradeloom.domain import FeatureReference
from tradeloom.runtime.lazy import numpy as np

__all__ = ["ReferenceInfo"]

_SHARES_TOLERANCE = 1e-9
"""How far from 1 a column's proportions may sum: they are counts / rows, in float64."""


class ReferenceInfo(BaseModel):
    """A `FeatureReference` as lists, so that drift monitoring works for a loaded model.

    Per column: the interior bin edges, strictly increasing, and the share of training
    rows in each of the ``len(edges) + 1`` bins, summing to 1. All finite.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str]
    edges: list[list[float]]
    proportions: list[list[float]]

    @model_validator(mode="after")
    def _consistent(self) -> ReferenceInfo:
        n = len(self.columns)
        if len(self.edges) != n or len(self.proportions) != n:
            raise ValueError(
                f"columns, edges and proportions must have one entry per column; they "
                f"have {n}, {len(self.edges)} and {len(self.proportions)}"
            )
        for column, edges, shares in zip(self.columns, self.edges, self.proportions, strict=True):
            if len(shares) != len(edges) + 1:
                raise ValueError(
                    f"{column}: {len(edges)} edges need {len(edges) + 1} proportions, "
                    f"there are {len(shares)}"
                )
            if not all(math.isfinite(v) for v in (*edges, *shares)):
                raise ValueError(f"{column}: edges and proportions must be finite")
            if any(b <= a for a, b in itertools.pairwise(edges)):
                raise ValueError(f"{column}: edges must be strictly increasing")
            if min(shares) < 0 or abs(math.fsum(shares) - 1.0) > _SHARES_TOLERANCE:
                raise ValueError(f"{column}: proportions must be >= 0 and sum to 1")
        return self

    @classmethod
    def of(cls, reference: FeatureReference) -> ReferenceInfo:
        """Return ``reference`` as lists."""
        return cls(
            columns=list(reference.columns),
            edges=[[float(v) for v in e] for e in reference.edges],
            proportions=[[float(v) for v in p] for p in reference.proportions],
        )

    def to_reference(self) -> FeatureReference:
        """Return the `FeatureReference` these lists describe."""
        return FeatureReference(
            columns=tuple(self.columns),
            edges=tuple(np.asarray(e, dtype=np.float64) for e in self.edges),
            proportions=tuple(np.asarray(p, dtype=np.float64) for p in self.proportions),
        )
