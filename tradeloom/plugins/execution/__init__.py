"""Built-in plugin: the execution layer."""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.execution import ccxt_execution, router, simulated
from tradeloom.plugins.hookspecs import hookimpl

__all__ = ["tradeloom_components"]


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return the simulated venue, the ccxt account and the router over several venues."""
    return [
        Component(
            "execution",
            "simulated",
            simulated.SimulatedVenueParams,
            simulated.build,
            "fills at the next open or the close, with slippage and fees",
        ),
        Component(
            "execution",
            "ccxt",
            ccxt_execution.CcxtExecutionParams,
            ccxt_execution.build,
            "an exchange account through ccxt: live orders; simulated fills in backtests",
        ),
        Component(
            "execution",
            "router",
            router.RouterParams,
            router.build,
            "several venues; each order routed by expected cost after fees",
        ),
    ]
