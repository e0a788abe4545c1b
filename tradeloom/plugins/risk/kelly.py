"""Fractional Kelly sizing from the model's probability, capped at a maximum position."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from tradeloom.core.kernels.sizing import kelly_fraction, kelly_size, no_edge_message
from tradeloom.core.kernels.specs import SizingKernel
from tradeloom.domain import Rejection, Signal
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols import RiskContext

__all__ = [
    "KellyParams",
    "KellySizer",
    "kelly_fraction",
    "kelly_no_edge",
    "kelly_size",
    "no_edge_message",
]


class KellyParams(Params):
    """Keys of ``risk.sizing`` with ``kind: kelly``."""

    fraction: float = Field(gt=0, le=1, description="Share of the full Kelly bet to take.")
    avg_win: float = Field(gt=0, description="Average winning return of a trade, e.g. 0.02.")
    avg_loss: float = Field(gt=0, description="Average losing return of a trade (positive).")
    max_position: float = Field(
        default=1.0, gt=0, le=1, description="Cap on the position, as a fraction of equity."
    )

    @model_validator(mode="after")
    def _loss_not_absurd(self) -> Self:
        if self.avg_loss >= 1:
            raise ValueError(f"avg_loss is a return and must be < 1, was {self.avg_loss}")
        return self


def kelly_no_edge(signal: Signal, full: float, p_win: float, payoff: float) -> Rejection:
    """Return the KELLY_NO_EDGE rejection of ``signal`` (both drivers word it the same)."""
    return Rejection(
        bar=signal.bar,
        timestamp=signal.timestamp,
        code="KELLY_NO_EDGE",
        message=no_edge_message(full, p_win, payoff),
        values={"kelly": full, "p_win": p_win, "payoff": payoff},
    )


class KellySizer:
    """Size ``fraction`` of the Kelly bet implied by the probability, capped at ``max_position``."""

    needs_calibration = True
    """It reads the probability as the chance of a win: a model swapped in must be
    calibrated (`tradeloom.plugins.protocols.NeedsCalibration`)."""

    def __init__(self, params: KellyParams) -> None:
        self.fraction = params.fraction
        self.payoff = params.avg_win / params.avg_loss
        self.max_position = params.max_position

    def kernel_spec(self) -> SizingKernel:
        """Return the kernel's parameters for the batch driver."""
        return SizingKernel("kelly", self.fraction, self.payoff, self.max_position)

    def size(self, signal: Signal, context: RiskContext) -> float | Rejection:
        """Return the position as a fraction of equity, or KELLY_NO_EDGE."""
        size, full, p_win = kelly_size(
            signal.probability, signal.direction, self.fraction, self.payoff, self.max_position
        )
        if size == 0.0:
            return kelly_no_edge(signal, full, p_win, self.payoff)
        return size


def build(params: KellyParams, ctx: BuildContext) -> KellySizer:
    """Build the sizer."""
    return KellySizer(params)
