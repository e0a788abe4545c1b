"""Built-in plugin: the risk layer (sizing and rules)."""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.hookspecs import hookimpl
from tradeloom.plugins.risk import drawdown_halt, fixed_fraction, kelly

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
            "risk",
            "drawdown_halt",
            drawdown_halt.DrawdownHaltParams,
            drawdown_halt.build,
            "close the position and stop trading at a drawdown limit",
        ),
    ]
