"""Built-in plugin: the execution layer."""

from __future__ import annotations

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]


tradeloom_components = catalog(
    LazyComponent(
        layer="execution",
        kind="simulated",
        module="tradeloom.plugins.execution.simulated",
        params="SimulatedVenueParams",
        factory="build",
        summary="fills at the next open or the close, with slippage and fees",
    ),
    LazyComponent(
        layer="execution",
        kind="ccxt",
        module="tradeloom.plugins.execution.ccxt_execution",
        params="CcxtExecutionParams",
        factory="build",
        summary="an exchange account through ccxt: live orders; simulated fills in backtests",
    ),
    LazyComponent(
        layer="execution",
        kind="router",
        module="tradeloom.plugins.execution.router",
        params="RouterParams",
        factory="build",
        summary="several venues; each order routed by expected cost after fees",
    ),
)
"""The simulated venue, the ccxt account and the router over several venues."""
