"""Pre-trade checks in front of a paper or live venue.

Every order the engine sends passes `PreTradeChecks` first: the trading state
(HALTED refuses everything, REDUCING anything that grows or flips the
position), the order rate, notional, position, price collar and daily loss
limits. A refused order is journaled as a ``risk_decision`` with the check's
code and reported to the engine at the next bar as a cancellation of the whole
quantity (``REJECTED <code>``), so the engine's books stay those of a venue that
never filled it. Cancels always pass.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.plugins import protocols
from tradeloom.runner.events import Recorder
from tradeloom.runner.live.session import trading_state_row
from tradeloom.runner.pretrade import PreTradeChecks, PreTradeContext

__all__ = ["GuardedVenue"]


class GuardedVenue:
    """``venue`` behind ``checks``.

    Args:
        venue: The paper (simulated) or live venue.
        checks: The pre-trade checks and the trading state.
        recorder: Journals refusals.
        clock: The time now (UTC).
        portfolio: Returns ``(position, last_price, equity)`` as the engine sees them.
        on_delivery: Told ``(bar, phase, refused, events)`` whenever a phase reports
            something: the refusals it puts first and the inner venue's events after
            them (a live run journals it; a restart's replay reads it back).
    """

    def __init__(
        self,
        venue: protocols.Venue,
        checks: PreTradeChecks,
        recorder: Recorder,
        clock: Callable[[], pd.Timestamp],
        portfolio: Callable[[], tuple[float, float, float]],
        on_delivery: Callable[[int, str, int, int], None] | None = None,
    ) -> None:
        self.inner = venue
        self.checks = checks
        self.rec = recorder
        self.clock = clock
        self.portfolio = portfolio
        self.on_delivery = on_delivery
        self.initial_cash = venue.initial_cash
        self.allow_short = venue.allow_short
        self.dust = float(getattr(venue, "dust", 0.0))
        self._refused: dict[str, tuple[Order, str]] = {}

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the inner venue's quantity for ``notional`` at ``price``."""
        return self.inner.quantity_for(notional, price)

    def submit(self, order: Order) -> None:
        """Check ``order``; send it to the inner venue, or journal why not."""
        position, price, equity = self.portfolio()
        now = self.clock()
        before = self.checks.state.last_change
        refusal = self.checks.check(order, PreTradeContext(now, position, price, equity))
        change = self.checks.state.last_change
        if change is not None and change is not before:  # the daily loss limit tripped
            self.rec.note("trading_state", trading_state_row(change), bar=order.bar)
        if refusal is None:
            self.inner.submit(order)
            self.checks.record_sent(order, now)
            return
        self.rec.rejection(refusal)
        self._refused[order.id] = (order, f"REJECTED {refusal.code}")

    def pending(self) -> list[Order]:
        """Return the inner venue's pending orders, then refused ones not yet reported."""
        return self.inner.pending() + [order for order, _ in self._refused.values()]

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Cancel at the inner venue (a refused order is simply dropped)."""
        refused = self._refused.pop(order_id, None)
        if refused is not None:
            return Cancellation(order_id, bar.index, bar.timestamp, refused[0].quantity, reason)
        return self.inner.cancel(order_id, bar, reason)

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Report the inner venue's events; at ``open`` first the refusals since the last bar."""
        events = self.inner.match(bar, phase)
        refused: list[Fill | Cancellation] = []
        if phase == "open" and self._refused:
            refused = [
                Cancellation(order.id, bar.index, bar.timestamp, order.quantity, reason)
                for order, reason in self._refused.values()
            ]
            self._refused.clear()
        if self.on_delivery is not None and (refused or events):
            self.on_delivery(bar.index, phase, len(refused), len(events))
        return refused + events
