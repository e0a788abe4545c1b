"""Execution quality: what the venue's fills cost against the prices the orders expected.

A backtest assumes a slippage and a fill rate; a live venue has its own. The monitor
watches the orders, fills and cancellations of each bar and reports, over the last
``window`` fills (and the last ``window`` finished orders):

* ``slippage_bps``: the slippage the venue charged (`Fill.slippage`, in quote
  currency, against the price before slippage), in basis points of the notional at
  that price, weighted by notional;
* ``shortfall_bps``: how far fills landed from the order's reference price (the
  decision bar's close, or a stop's trigger), adverse positive, in basis points of the
  reference notional, weighted by it. With ``fill: next_open`` this includes the move
  from the close to the next open: the cost of deciding at one price and trading at
  another;
* ``fill_ratio``: filled over ordered quantity of the last ``window`` finished orders
  (an order finishes when it is filled completely or cancelled);
* ``fills_per_order``: fills per finished order (partial fills by volume raise it);
* ``fills``: the fills in the window (up to ``window``), the sample behind the figures.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tradeloom.domain import HealthChange
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.execution.simulated import DONE_FRACTION
from tradeloom.plugins.monitoring.params import WindowParams, min_samples_field, window_field
from tradeloom.plugins.protocols import MonitorInput

__all__ = ["ExecutionQuality", "ExecutionQualityParams", "build"]


class ExecutionQualityParams(WindowParams):
    """Keys of a ``monitoring`` entry with ``kind: execution_quality``."""

    window: int = window_field(100, "Fills (and finished orders) kept")
    min_samples: int = min_samples_field(10, "Fills (finished orders for fill_ratio) needed first")


@dataclass
class _Working:
    quantity: float
    reference_price: float
    filled: float = 0.0
    fills: int = 0


class ExecutionQuality:
    """Slippage, shortfall and fill ratio over the last ``window`` fills and orders.

    Metrics: ``slippage_bps``, ``shortfall_bps``, ``fill_ratio``, ``fills_per_order``
    (NaN before ``min_samples`` fills, or finished orders) and ``fills``.
    """

    metric_names: tuple[str, ...] = (
        "slippage_bps",
        "shortfall_bps",
        "fill_ratio",
        "fills_per_order",
        "fills",
    )

    def __init__(self, params: ExecutionQualityParams, name: str = "execution_quality") -> None:
        self.name = name
        self.params = params
        self._working: dict[str, _Working] = {}
        # per fill: slippage cost, notional before slippage, adverse move x quantity vs
        # the reference, reference notional (the last two NaN for an unknown order)
        self._fills: deque[tuple[float, float, float, float]] = deque(maxlen=params.window)
        # per finished order: ordered quantity, filled quantity, fills
        self._orders: deque[tuple[float, float, int]] = deque(maxlen=params.window)
        self._values: dict[str, float] | None = None
        self._total_fills = 0
        self._total_orders = 0
        self._slippage_cost = 0.0

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Take the bar's orders, fills and cancellations; never reports a status."""
        if not (data.orders or data.fills or data.cancellations):
            return None
        self._values = None
        for order in data.orders:
            self._working[order.id] = _Working(order.quantity, order.reference_price)
        for fill in data.fills:
            if fill.quantity <= 0.0:
                continue
            base = fill.price - fill.side * fill.slippage / fill.quantity
            working = self._working.get(fill.order_id)
            adverse = reference = math.nan
            if working is not None:
                adverse = fill.side * (fill.price - working.reference_price) * fill.quantity
                reference = working.reference_price * fill.quantity
            self._fills.append((fill.slippage, base * fill.quantity, adverse, reference))
            self._total_fills += 1
            self._slippage_cost += fill.slippage
            if working is not None:
                working.filled += fill.quantity
                working.fills += 1
                if working.quantity - working.filled <= working.quantity * DONE_FRACTION:
                    self._finish(fill.order_id)
        for cancellation in data.cancellations:
            self._finish(cancellation.order_id)
        return None

    def metrics(self) -> Mapping[str, float]:
        """Return the figures of the current windows."""
        if self._values is None:
            fills, orders, least = self._fills, self._orders, self.params.min_samples
            values = dict.fromkeys(self.metric_names, math.nan)
            values["fills"] = float(len(fills))
            if len(fills) >= least:
                cost = math.fsum(f[0] for f in fills)
                values["slippage_bps"] = 1e4 * cost / math.fsum(f[1] for f in fills)
                known = [(a, r) for _, _, a, r in fills if not math.isnan(r)]
                if known:
                    values["shortfall_bps"] = (
                        1e4 * math.fsum(a for a, _ in known) / math.fsum(r for _, r in known)
                    )
            if len(orders) >= least:
                ordered = math.fsum(o[0] for o in orders)
                values["fill_ratio"] = math.fsum(o[1] for o in orders) / ordered
                values["fills_per_order"] = sum(o[2] for o in orders) / len(orders)
            self._values = values
        return self._values

    def summary(self) -> dict[str, Any]:
        """Return the current figures and the run's totals."""
        return {
            **self.metrics(),
            "fills": int(self.metrics()["fills"]),  # a count: an integer in metrics.json
            "fills_total": self._total_fills,
            "orders_finished": self._total_orders,
            "slippage_cost": self._slippage_cost,
        }

    def _finish(self, order_id: str) -> None:
        working = self._working.pop(order_id, None)
        if working is not None:
            self._orders.append((working.quantity, working.filled, working.fills))
            self._total_orders += 1


def build(params: ExecutionQualityParams, ctx: BuildContext) -> ExecutionQuality:
    """Build the monitor."""
    return ExecutionQuality(params, params.name or "execution_quality")
