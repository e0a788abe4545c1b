"""Built-in plugin: the execution layer."""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.execution import simulated
from tradeloom.plugins.hookspecs import hookimpl

__all__ = ["tradeloom_components"]


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return the simulated venue."""
    return [
        Component(
            "execution",
            "simulated",
            simulated.SimulatedVenueParams,
            simulated.build,
            "fills at the next open or the close, with slippage and fees",
        )
    ]
