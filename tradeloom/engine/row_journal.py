"""Journal the core's event rows as they are read back, one event at a time.

In paper and live, and in a backtest whose step stops for Python, the engine reads back
the rows the compiled bar wrote since it last stopped (`tradeloom.core.columns.decode`)
and journals each before Python acts (`tradeloom.engine.driver.Engine.flush`).
`RowJournal` is what each row becomes: a recorder call (`tradeloom.engine.events.Recorder`)
by its kind, in the core's order, and a closed trade kept in the engine's book. A
backtest's rows are journaled in bulk instead (`tradeloom.engine.bulk_journal`), to the
same journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradeloom.core import records as R
from tradeloom.core.columns import RowContext, RowEvent
from tradeloom.core.kernels.labels import trend_label, volatility_label
from tradeloom.domain import HealthAction, HealthChange, Trade
from tradeloom.engine.events import Recorder
from tradeloom.journal import (
    Event,
    FundingPayment,
    Liquidation,
    SlicedOrder,
    TradingStateChanged,
)
from tradeloom.tables.kept import Kept

__all__ = ["RowJournal"]


class RowJournal:
    """Journal each row read back through ``recorder``, by the row's kind.

    Args:
        recorder: Journals and broadcasts the events.
        ctx: What the rows refer to (times, orders, symbols, Python objects).
        trades: Where the closed trades are kept (the engine's book).
        symbols: The symbols traded, in the order of the core's symbol axis (None: one,
            the recorder's).
        training: Journals a model training's row (the engine's, which a portfolio
            file's account overrides to name the strategy that trained).
    """

    def __init__(
        self,
        recorder: Recorder,
        ctx: RowContext,
        trades: Kept[Trade],
        symbols: tuple[str, ...] | None,
        training: Callable[[RowEvent], None],
    ) -> None:
        self.rec = recorder
        self.ctx = ctx
        self.trades = trades
        self.symbols = symbols
        self._by_kind = self._dispatch(training)

    def __call__(self, event: RowEvent) -> None:
        """Journal ``event``, stamped with its symbol over a universe."""
        if self.symbols is not None and event.symbol >= 0:
            self.rec.symbol = self.symbols[event.symbol]  # stamped on the event's market rows
        self._by_kind[event.kind](event)

    def external(self, value: Any) -> None:
        """Journal a Python object the core refers to (a health change or action, an
        event of the live run's own)."""
        rec = self.rec
        if isinstance(value, HealthChange):
            rec.health(value)
        elif isinstance(value, HealthAction):
            rec.health_action(value)
        elif isinstance(value, Event):
            rec.record(value)
        else:  # pragma: no cover - the engine refers to nothing else
            raise TypeError(f"cannot journal {value!r}")

    def _dispatch(
        self, training: Callable[[RowEvent], None]
    ) -> dict[str, Callable[[RowEvent], None]]:
        """Return what journaling a row read back does, by kind."""
        rec, ctx = self.rec, self.ctx
        return R.dispatch(
            {
                R.TRAINING: training,
                R.SIGNAL: lambda e: rec.signal(e.value),
                R.DECISION: lambda e: rec.decision(e.bar, ctx.times(e.bar), **e.value),
                R.REJECT: lambda e: rec.rejection(e.value),
                R.HALT: lambda e: rec.halted(e.value),
                R.ORDER: lambda e: rec.order(e.value),
                R.FILL: lambda e: rec.fill(e.value, e.decision_bar),
                R.CANCEL: lambda e: rec.cancelled(e.value, e.decision_bar),
                R.TRADE: self._trade,
                R.REGIME: self._regime,
                # stamped with the bar's time, as the bulk journal stamps it
                R.STATE: lambda e: rec.record(
                    TradingStateChanged(**rec.at(e.bar, ctx.times(e.bar)), **e.value)
                ),
                R.LIQUIDATION: lambda e: rec.record(Liquidation(**self._at(e), **e.value)),
                R.FUNDING: lambda e: rec.record(FundingPayment(**self._at(e), **e.value)),
                R.PARENT: lambda e: rec.record(SlicedOrder(**self._at(e), **e.value)),
                R.EXTERNAL: lambda e: self.external(e.value),
            }
        )

    def _at(self, event: RowEvent) -> dict[str, Any]:
        """Return the head of a market event at ``event``'s bar."""
        return self.rec.at(event.bar, self.ctx.times(event.bar), market=True)

    def _trade(self, event: RowEvent) -> None:
        fields = event.value  # the trade row's fields, by name
        symbol = self.rec.symbol if self.symbols is None else self.symbols[event.symbol]
        self.trades.append(
            Trade.from_kernel(
                fields,
                self.ctx.times(fields["entry_bar"]),
                self.ctx.times(event.bar),
                symbol,
            )
        )

    def _regime(self, event: RowEvent) -> None:
        code, previous = event.value["code"], event.value["previous"]
        change = {
            "trend": trend_label(code),
            "volatility": volatility_label(code),
            "previous_trend": trend_label(previous),
            "previous_volatility": volatility_label(previous),
        }
        self.rec.regime(event.bar, self.ctx.times(event.bar), change)
