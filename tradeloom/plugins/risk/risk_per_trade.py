"""Risk per trade: a position sized so that its stop costs a share of equity."""

from __future__ import annotations

from pydantic import Field

from tradeloom.core.kernels.specs import SizingKernel
from tradeloom.domain import Rejection, Signal
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols import RiskContext
from tradeloom.plugins.risk.compiled import compiled_only

__all__ = ["RiskPerTradeParams", "RiskPerTradeSizer"]


class RiskPerTradeParams(Params):
    """Keys of ``risk.sizing`` with ``kind: risk_per_trade``."""

    risk: float = Field(
        gt=0,
        lt=1,
        description="Share of equity a trade loses at its stop, e.g. 0.01: the position "
        "is risk / the stop's distance (a fraction of the decision bar's close), divided "
        "by the account's leverage, capped at max_position. The stop is the tightest of "
        "risk.stop_loss and risk.trailing_stop (a fraction, or multiple ATRs); one of "
        "them is required.",
    )
    max_position: float = Field(
        default=1.0, gt=0, le=1, description="Cap on the position, as a fraction of equity."
    )


class RiskPerTradeSizer:
    """Size each position so that its stop costs ``risk`` of equity."""

    def __init__(self, params: RiskPerTradeParams) -> None:
        self.params = params

    def kernel_spec(self) -> SizingKernel:
        """Return the kernel's parameters for the compiled core (every mode runs it)."""
        return SizingKernel(
            "risk_per_trade", self.params.risk, max_position=self.params.max_position
        )

    def size(self, signal: Signal, context: RiskContext) -> float | Rejection:
        """Refuse: the stop's distance lives in the compiled core's state (`kernel_spec`)."""
        return compiled_only("risk_per_trade")


def build(params: RiskPerTradeParams, ctx: BuildContext) -> RiskPerTradeSizer:
    """Build the sizer."""
    return RiskPerTradeSizer(params)
