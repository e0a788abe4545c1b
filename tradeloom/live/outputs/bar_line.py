"""The one line a live run prints for each bar it processed (``tradeloom run`` without
``--quiet``): what the bar signalled, decided, sent and filled, the position and equity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tradeloom.core import layout as L
from tradeloom.core.codes import refusal_stage

if TYPE_CHECKING:
    from tradeloom.engine.events import Recorder
    from tradeloom.live.tick.session import LiveSession

__all__ = ["Counts", "bar_line"]

_SIDES = {1: "buy", -1: "sell"}


@dataclass(frozen=True)
class Counts:
    """What the recorder had counted before a bar (its line shows what the bar added)."""

    signals: int
    decisions: int
    orders: int
    fills: int
    cancels: int

    @classmethod
    def of(cls, rec: Recorder) -> Counts:
        return cls(
            rec.signals, rec.decision_count, len(rec.orders), len(rec.fills), len(rec.cancellations)
        )


def bar_line(session: LiveSession, rec: Recorder, t: int, before: Counts) -> str:
    """Return the one line printed for clock bar ``t``: one market's time, close,
    signal, decision, position, equity and state; a universe's symbols with a bar,
    signals, orders and fills, each symbol held, equity and state."""
    history = session.history
    symbols = history.symbols
    new_orders = rec.orders[before.orders :]
    orders = ", ".join(f"{_SIDES[o.side]} {o.quantity:.8g}" for o in new_orders)
    fills = ", ".join(
        f"{_SIDES[f.side]} {f.quantity:.8g}@{f.price:.8g}" for f in rec.fills[before.fills :]
    )
    # what the bar sent, what filled and what was refused short (a router's NO_ROUTE, a
    # venue's refusal, a cut: `tradeloom.reporting.refusals`), after the decision
    refused = ", ".join(
        f"{c.remaining:.8g} {c.reason} ({rec.purpose_of(c.order_id)})"
        for c in rec.cancellations[before.cancels :]
        if refusal_stage(c.reason, cancelled=True) is not None
    )
    sent = (
        (f" order {orders}" if orders else "")
        + (f" | filled {fills}" if fills else "")
        + (f" | refused {refused}" if refused else "")
    )
    book = session.engine.portfolio
    state = session.state
    if len(symbols) > 1:
        prices = history.prices(t)
        present = int((~np.isnan(prices[:, 3])).sum())
        held = [
            f"{symbol} {book.position_of(s):.8g}"
            for s, symbol in enumerate(symbols)
            if book.position_of(s) != 0.0
        ]
        equity = float(session.engine.state.acct[L.A_EQUITY])
        return (
            f"{history.time(t):%Y-%m-%d %H:%M}Z bar {t} | {present}/{len(symbols)} symbols "
            f"| signals {rec.signals - before.signals}"
            + (" |" if orders else "")  # set apart from the signals count
            + sent
            + f" | held {', '.join(held) or '-'} | equity {equity:.2f} | {state}"
        )
    bar = history.bar(t)
    signal = "-"
    if rec.signals > before.signals:
        last = rec.signal_events[-1]
        side = {1: "long", -1: "short"}.get(last.direction, "flat")
        signal = f"{side} p={last.probability:.3f}"
    decision = rec.last_decision if rec.decision_count > before.decisions else "-"
    if decision == "-" and new_orders:  # an exit (a signal's, a stop's): no risk decision
        decision = new_orders[0].reason
    if session.engine.halted and state != "HALTED":
        state += f" halted:{session.engine.halt_code}"
    return (
        f"{bar.timestamp:%Y-%m-%d %H:%M}Z bar {bar.index} close {bar.close:.8g} "
        f"| signal {signal} | decision {decision}{sent}"
        f" | position {book.position:.8g} | equity {book.equity(bar.close):.2f} | {state}"
    )
