"""What the monitors of a bulk run (a backtest) see: the core's rows of the kinds they
watch (orders, fills, cancellations, trainings), read back as the run reaches them
(`tradeloom.engine.driver.Engine`; a paper or live run's monitors read its recorder)."""

from __future__ import annotations

from typing import Any

from tradeloom.core import layout as L
from tradeloom.core import records as R
from tradeloom.core.columns import RowContext, RowEvent, decode
from tradeloom.core.state import CoreState
from tradeloom.domain import Cancellation, Fill, ModelTraining, Order
from tradeloom.runtime.lazy import numpy as np

__all__ = ["RowLog"]


class RowLog:
    """What the monitors of a bulk run see: the rows read back, as they reach them."""

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.cancellations: list[Cancellation] = []
        self.trainings: list[ModelTraining] = []
        self.read = 0
        self.kept: dict[str, list[Any]] = R.dispatch(
            {
                R.ORDER: self.orders,
                R.FILL: self.fills,
                R.CANCEL: self.cancellations,
                R.TRAINING: self.trainings,
            },
            # a monitor watches the orders, their fills and the model's trainings
            without=(
                R.SIGNAL,
                R.DECISION,
                R.REJECT,
                R.HALT,
                R.TRADE,
                R.REGIME,
                R.STATE,
                R.LIQUIDATION,
                R.EXTERNAL,
                R.PARENT,
                R.FUNDING,
            ),
        )
        self.codes = [R.record(kind).code for kind in self.kept]
        """The kinds of rows it keeps, by code."""

    def take(self, event: RowEvent) -> None:
        """Keep ``event``'s value in its kind's list."""
        self.kept[event.kind].append(event.value)

    def read_from(self, state: CoreState, ctx: RowContext) -> None:
        """Take the rows of the kinds it keeps that the core wrote since it last read."""
        rows = state.rows(self.read)
        self.read = state.count
        wanted = np.isin(rows[:, L.E_KIND], self.codes)
        for event in decode(rows[wanted], ctx).events():
            self.take(event)
