"""Built-in plugin: the risk layer (sizing and rules)."""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.hookspecs import hookimpl
from tradeloom.plugins.risk import (
    drawdown_halt,
    fixed_fraction,
    kelly,
    risk_per_trade,
    volatility_target,
)

__all__ = ["tradeloom_components"]


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return the sizing components and risk rules."""
    return [
        Component(
            "sizing",
            "kelly",
            kelly.KellyParams,
            kelly.build,
            "fractional Kelly from the model's probability, capped at max_position",
        ),
        Component(
            "sizing",
            "fixed_fraction",
            fixed_fraction.FixedFractionParams,
            fixed_fraction.build,
            "the same fraction of equity for every position",
        ),
        Component(
            "sizing",
            "volatility_target",
            volatility_target.VolatilityTargetParams,
            volatility_target.build,
            "target annual volatility over the symbol's EWMA volatility, capped",
        ),
        Component(
            "sizing",
            "risk_per_trade",
            risk_per_trade.RiskPerTradeParams,
            risk_per_trade.build,
            "the position whose stop (stop_loss or ATR trailing stop) costs risk of equity",
        ),
        Component(
            "risk",
            "drawdown_halt",
            drawdown_halt.DrawdownHaltParams,
            drawdown_halt.build,
            "close the position and stop trading at a drawdown limit",
        ),
    ]
