"""Fractional Kelly sizing from the model's probability, capped at a maximum position."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from tradeloom.domain import Rejection, Signal
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols import RiskContext

__all__ = ["KellyParams", "KellySizer", "kelly_fraction"]


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


def kelly_fraction(p_win: float, payoff: float) -> float:
    """Return the full Kelly fraction ``p - (1 - p) / b`` for win probability and payoff ratio."""
    return p_win - (1.0 - p_win) / payoff


class KellySizer:
    """Size ``fraction`` of the Kelly bet implied by the probability, capped at ``max_position``."""

    def __init__(self, params: KellyParams) -> None:
        self.fraction = params.fraction
        self.payoff = params.avg_win / params.avg_loss
        self.max_position = params.max_position

    def size(self, signal: Signal, context: RiskContext) -> float | Rejection:
        """Return the position as a fraction of equity, or KELLY_NO_EDGE."""
        p = signal.probability
        p_win = p if signal.direction > 0 else 1.0 - p
        full = kelly_fraction(p_win, self.payoff)
        if not full > 0:
            return Rejection(
                bar=signal.bar,
                timestamp=signal.timestamp,
                code="KELLY_NO_EDGE",
                message=f"kelly={full:.4f} <= 0 (p_win={p_win:.4f}, payoff={self.payoff:.4f})",
                values={"kelly": full, "p_win": p_win, "payoff": self.payoff},
            )
        return min(self.fraction * full, self.max_position)


def build(params: KellyParams, ctx: BuildContext) -> KellySizer:
    """Build the sizer."""
    return KellySizer(params)
