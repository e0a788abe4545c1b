"""Volatility targeting: a position sized so that its volatility is a target's."""

from __future__ import annotations

from pydantic import Field

from tradeloom.bounds import MAX_WINDOW
from tradeloom.core.kernels.specs import SizingKernel
from tradeloom.domain import Rejection, Signal
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols import RiskContext
from tradeloom.plugins.risk.compiled import compiled_only

__all__ = ["VolatilityTargetParams", "VolatilityTargetSizer"]


class VolatilityTargetParams(Params):
    """Keys of ``risk.sizing`` with ``kind: volatility_target``."""

    target: float = Field(
        gt=0,
        le=10,
        description="Target annual volatility of the position, e.g. 0.15: the position is "
        "target / the symbol's annualised volatility, as a fraction of equity "
        "(divided by the account's leverage), capped at max_position.",
    )
    window: int = Field(
        default=20,
        ge=2,
        le=MAX_WINDOW,
        description="Span of the volatility estimate in returns: the mean of the first "
        "window squared log returns, then an EWMA with alpha = 2 / (window + 1) "
        "(RiskMetrics, zero mean). Before window returns: NO_RISK_ESTIMATE.",
    )
    periods_per_year: float | None = Field(
        default=None,
        gt=0,
        description="Bars in a year, which annualise the volatility (null: the data "
        "calendar's year, as the statistics annualize: 365 days of bars for crypto, "
        "about 251.6 daily bars for XNYS; see the calendars guide).",
    )
    max_position: float = Field(
        default=1.0, gt=0, le=1, description="Cap on the position, as a fraction of equity."
    )


class VolatilityTargetSizer:
    """Size each position at ``target`` over the symbol's realised volatility."""

    def __init__(self, params: VolatilityTargetParams) -> None:
        self.params = params

    def kernel_spec(self) -> SizingKernel:
        """Return the kernel's parameters for the compiled core (every mode runs it)."""
        p = self.params
        return SizingKernel(
            "volatility_target",
            p.target,
            max_position=p.max_position,
            window=p.window,
            periods_per_year=p.periods_per_year or 0.0,
        )

    def size(self, signal: Signal, context: RiskContext) -> float | Rejection:
        """Refuse: the volatility lives in the compiled core's state (`kernel_spec`)."""
        return compiled_only("volatility_target")


def build(params: VolatilityTargetParams, ctx: BuildContext) -> VolatilityTargetSizer:
    """Build the sizer."""
    return VolatilityTargetSizer(params)
