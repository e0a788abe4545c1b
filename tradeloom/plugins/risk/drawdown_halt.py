"""Halt trading when equity falls too far below its peak."""

from __future__ import annotations

from pydantic import Field

from tradeloom.core.kernels.labels import halt_message
from tradeloom.core.kernels.specs import DrawdownKernel
from tradeloom.domain import Halt, OrderIntent, Rejection
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols import RiskContext
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["DrawdownHalt", "DrawdownHaltParams", "drawdown_halt", "halt_message"]


class DrawdownHaltParams(Params):
    """Keys of a ``risk.rules`` entry with ``kind: drawdown_halt``."""

    max_drawdown: float = Field(
        gt=0, lt=1, description="Halt when equity is this fraction below its peak (0.15 = 15%)."
    )


class DrawdownHalt:
    """Halt once the drawdown, marked at a bar's close, reaches ``max_drawdown``."""

    def __init__(self, params: DrawdownHaltParams) -> None:
        self.limit = params.max_drawdown

    def kernel_spec(self) -> DrawdownKernel:
        """Return the kernel's parameters for the batch driver."""
        return DrawdownKernel(self.limit)

    def check(self, intent: OrderIntent, context: RiskContext) -> Rejection | None:
        """Never block an intent by itself: the halt does that."""
        return None

    def on_bar(self, context: RiskContext) -> Halt | None:
        """Return MAX_DRAWDOWN_HALT when the drawdown reaches the limit."""
        drawdown = context.portfolio.drawdown
        if drawdown < self.limit:
            return None
        return drawdown_halt(context.bar.index, context.bar.timestamp, drawdown, self.limit)


def drawdown_halt(bar: int, timestamp: pd.Timestamp, drawdown: float, limit: float) -> Halt:
    """Return the MAX_DRAWDOWN_HALT halt (both drivers word it the same)."""
    return Halt(
        bar=bar,
        timestamp=timestamp,
        code="MAX_DRAWDOWN_HALT",
        message=halt_message(drawdown, limit),
        values={"drawdown": drawdown, "limit": limit},
    )


def build(params: DrawdownHaltParams, ctx: BuildContext) -> DrawdownHalt:
    """Build the rule."""
    return DrawdownHalt(params)
