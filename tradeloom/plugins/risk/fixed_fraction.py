"""Fixed-fraction sizing: every position is the same share of equity."""

from __future__ import annotations

from pydantic import Field

from tradeloom.core.kernels.specs import SizingKernel
from tradeloom.domain import Rejection, Signal
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols import RiskContext

__all__ = ["FixedFractionParams", "FixedFractionSizer"]


class FixedFractionParams(Params):
    """Keys of ``risk.sizing`` with ``kind: fixed_fraction``."""

    fraction: float = Field(gt=0, le=1, description="Position as a fraction of equity.")


class FixedFractionSizer:
    """Size every position at ``fraction`` of equity, whatever the confidence."""

    def __init__(self, params: FixedFractionParams) -> None:
        self.fraction = params.fraction

    def kernel_spec(self) -> SizingKernel:
        """Return the kernel's parameters for the batch driver."""
        return SizingKernel("fixed_fraction", self.fraction)

    def size(self, signal: Signal, context: RiskContext) -> float | Rejection:
        """Return the configured fraction."""
        return self.fraction


def build(params: FixedFractionParams, ctx: BuildContext) -> FixedFractionSizer:
    """Build the sizer."""
    return FixedFractionSizer(params)
