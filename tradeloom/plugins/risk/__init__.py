"""Built-in plugin: the risk layer (sizing and rules)."""

from __future__ import annotations

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]


tradeloom_components = catalog(
    LazyComponent(
        layer="sizing",
        kind="kelly",
        module="tradeloom.plugins.risk.kelly",
        params="KellyParams",
        factory="build",
        summary="fractional Kelly from the model's probability, capped at max_position",
    ),
    LazyComponent(
        layer="sizing",
        kind="fixed_fraction",
        module="tradeloom.plugins.risk.fixed_fraction",
        params="FixedFractionParams",
        factory="build",
        summary="the same fraction of equity for every position",
    ),
    LazyComponent(
        layer="sizing",
        kind="volatility_target",
        module="tradeloom.plugins.risk.volatility_target",
        params="VolatilityTargetParams",
        factory="build",
        summary="target annual volatility over the symbol's EWMA volatility, capped",
    ),
    LazyComponent(
        layer="sizing",
        kind="risk_per_trade",
        module="tradeloom.plugins.risk.risk_per_trade",
        params="RiskPerTradeParams",
        factory="build",
        summary="the position whose stop (stop_loss or ATR trailing stop) costs risk of equity",
    ),
    LazyComponent(
        layer="risk",
        kind="drawdown_halt",
        module="tradeloom.plugins.risk.drawdown_halt",
        params="DrawdownHaltParams",
        factory="build",
        summary="close the position and stop trading at a drawdown limit",
    ),
)
"""The sizing components and risk rules."""
