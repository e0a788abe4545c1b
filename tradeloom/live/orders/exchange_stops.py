"""A live position's stops and take-profit, resting at the exchange as stop orders.

With ``execution.orders.stops: exchange`` the live runner protects each position at
the exchange, so that a stop fills while the runner sleeps between bars, or is down:

- **Placed after the entry.** Once the entry has filled, the position's stop-loss
  (take-profit) goes to the exchange as a ``stop_loss`` (``take_profit``) order at
  the level the core computes for every mode (`tradeloom.core.exits.stop_levels`),
  under the client id ``{entry}-sl`` (``{entry}-tp``, `derived_client_id`), journaled
  before it is sent (`CcxtVenue.submit`). The trigger is rounded to the market's tick
  away from the position (a stop-loss down, a take-profit up), so that a stop the
  exchange triggers is one the bar's prices show reached. A restart finds them by
  that id; they are never placed twice.
- **One at a time on spot.** A resting spot stop holds the position's base balance,
  so a second one would be refused for want of balance. With both levels set, the
  stop-loss rests at the exchange and the take-profit is journaled as a
  ``stop_fallback`` (``STOP_UNSUPPORTED``): the bar-close exit guards it, as it
  guards a stop the exchange cannot take or refuses.
- **Booked as the engine's exit.** The trades of a resting stop are held until the
  engine exits the position (the stop-loss the bar reached, or any other exit);
  that exit is then bound to the stop (``stop_bound``, journaled) and the stop's
  trades are its fills: nothing more is sent for it.
- **Following the position.** With a trailing or break-even stop, the stop-loss leg
  rests at the stop the core has under the position (`tradeloom.core.exits.resting_stop`:
  the tightest of the stop-loss, the break-even and the trailing stop). After each bar,
  when that level moved in the position's favour by at least a tick, the leg is
  cancelled (its ``order_state`` rows) and a new one is placed at the new level under
  ``{entry}-sl2``, ``{entry}-sl3``... (journaled before it is sent); a restart finds the
  working one by its id and moves it on from there. A leg that traded,
  or whose cancel the exchange did not confirm, is left to bind to the engine's exit:
  nothing is placed over it.
- **Anchored anew by each leg** (``risk.scaling``). ``{entry}`` above is the anchor:
  the order that last changed what is held, i.e. the entry, then each add
  (``SCALE_IN``) or partial take-profit (``TAKE_PROFIT_PARTIAL``) once it has filled
  (`tradeloom.live.orders.exchange_venue.ExchangeVenue`). An add cancels the resting legs
  before it buys, a partial before it sells; once it has filled, the legs are placed
  again under ``{anchor}-sl`` for the whole position, at the levels from the average
  entry price the add moved (the core's stop, with a trailing or break-even stop),
  and follow from there as ``{anchor}-sl2``... Only a new anchor places a leg lower
  (a DCA add lowers a long's stop-loss); under one anchor a leg only moves up.
- **Cancelled with the position.** Before any other exit of the position is sent
  (a signal, a halt, the kill switch, the take-profit's bar-close exit), the resting
  stops are cancelled (OCO done by the runner; each cancel journaled as an
  ``order_state`` row).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import pandas as pd

from tradeloom.core.exits import stop_levels
from tradeloom.domain import Order
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.plugins.protocols_orders.client_ids import derived_client_id
from tradeloom.plugins.protocols_orders.order_events import (
    StopBinding,
    StopFallback,
    TradeFill,
    VenueOrder,
    VenueReport,
)
from tradeloom.plugins.protocols_orders.order_state import TERMINAL
from tradeloom.plugins.protocols_orders.order_terms import OrderTerms, OrderTypeName
from tradeloom.runtime.lazy import logger

__all__ = ["ExchangeStops", "StopLeg"]

_log = logger("tradeloom.execution")

_SUFFIX = {"stop_loss": "sl", "take_profit": "tp"}
_REASON = {"stop_loss": "EXIT_STOP_LOSS", "take_profit": "EXIT_TAKE_PROFIT"}


@dataclass
class StopLeg:
    """One stop order resting at the exchange for the position.

    Attributes:
        client_id: Its client order id (``{entry}-sl`` or ``{entry}-tp``; a moved stop's
            ``{entry}-sl2``...).
        type: ``stop_loss`` or ``take_profit``.
        level: Its trigger price (NaN: not known).
        entry: The client id of the entry it protects (None: not known).
        bound_to: The engine's exit its fills are booked to (None: not yet).
        held: Its trades counted before it was bound, for the engine's exit.
    """

    client_id: str
    type: str
    level: float = math.nan
    entry: str | None = None
    bound_to: str | None = None
    held: list[TradeFill] = field(default_factory=list)


class ExchangeStops:
    """Place, hold, bind and cancel one market's resting stops on ``venue``.

    Args:
        venue: The market's ccxt order layer (it journals and sends).
        stop_loss: The strategy's stop-loss fraction (None: none).
        take_profit: The strategy's take-profit fraction (None: none).
        follows: A trailing or break-even stop is set: the stop-loss leg rests at the
            core's stop and follows it.
    """

    def __init__(
        self,
        venue: CcxtVenue,
        *,
        stop_loss: float | None,
        take_profit: float | None,
        follows: bool = False,
    ) -> None:
        self.venue = venue
        self.stop_loss = stop_loss
        self.take_profit = take_profit
        self.follows = follows
        self.legs: dict[str, StopLeg] = {}
        self.placed_for: set[str] = set()

    @property
    def enabled(self) -> bool:
        """Whether the strategy has a level to protect."""
        return self.stop_loss is not None or self.take_profit is not None or self.follows

    def leg(self, client_id: str) -> StopLeg | None:
        """Return the leg of ``client_id`` (None: not a resting stop of this market)."""
        return self.legs.get(client_id)

    def working(self) -> list[StopLeg]:
        """Return the legs the exchange still works (or that are unknown)."""
        return [
            leg
            for leg in self.legs.values()
            if self.venue.order(leg.client_id).state not in TERMINAL
        ]

    def held_fills(self) -> list[TradeFill]:
        """Return the trades of legs not bound to an exit yet."""
        return [trade for leg in self.legs.values() if leg.bound_to is None for trade in leg.held]

    def place(
        self,
        entry_id: str,
        bar: int,
        timestamp: pd.Timestamp,
        quantity: float,
        entry_price: float,
        resting: tuple[str, float] | None = None,
    ) -> VenueReport:
        """Rest the long position's stops at the exchange (once per entry).

        Args:
            entry_id: The client id of the order that opened the position.
            bar: The bar in progress (stamped on the orders).
            timestamp: Its time.
            quantity: The position, in base.
            entry_price: The position's average entry price (the core's).
            resting: With ``follows``: the core's stop under the position (its exit
                reason and level; None: none yet, an ATR stop waiting for its bars).

        Returns:
            What the sends reported (a stop refused or not supported: its fallback).
        """
        if self.follows and resting is None:
            return VenueReport()  # an ATR stop waiting for its bars: placed once it rests
        self.placed_for.add(entry_id)
        stop, target = stop_levels(1, entry_price, _nan(self.stop_loss), _nan(self.take_profit))
        reason = _REASON["stop_loss"]
        wanted: list[tuple[OrderTypeName, float]] = []
        if self.follows:
            if resting is not None:
                reason, level = resting
                wanted.append(("stop_loss", self._tick(level, down=True)))
        elif self.stop_loss is not None:
            wanted.append(("stop_loss", self._tick(stop, down=True)))
        if self.take_profit is not None:
            wanted.append(("take_profit", self._tick(target, down=False)))
        reports: list[VenueReport] = []
        for number, (kind, level) in enumerate(wanted):
            client_id = derived_client_id(entry_id, _SUFFIX[kind])
            if number > 0 or (kind == "take_profit" and self.follows):
                reports.append(self._spot_fallback(client_id, kind, level))
                continue
            why = reason if kind == "stop_loss" else _REASON[kind]
            reports.append(
                self._send(client_id, entry_id, kind, why, bar, timestamp, quantity, level)
            )
        return _joined(reports)

    def follow(
        self, bar: int, timestamp: pd.Timestamp, quantity: float, resting: tuple[str, float]
    ) -> VenueReport:
        """Move the resting stop-loss leg to the core's stop when it rose by a tick or more.

        Args:
            bar: The bar in progress (stamped on the orders).
            timestamp: Its time.
            quantity: The position, in base.
            resting: The core's stop under the position: its exit reason and level.

        Returns:
            What the cancel and the send reported (nothing: the leg stays).
        """
        reason, level = resting
        legs = [
            leg
            for leg in self.working()
            if leg.type == "stop_loss" and leg.bound_to is None and leg.entry is not None
        ]
        if len(legs) != 1 or legs[0].held:
            return VenueReport()
        leg = legs[0]
        moved = self._tick(level, down=True)
        if not moved > leg.level:  # a level that did not move up by a tick stays
            return VenueReport()
        cancelled = self.venue.cancel(leg.client_id, reason="STOP_MOVED")
        view = self.venue.order(leg.client_id)
        if view.state not in TERMINAL or view.filled > 0.0 or leg.held:
            return cancelled  # traded, or not confirmed: it binds to the engine's exit
        entry = leg.entry
        assert entry is not None
        # the next number after the leg's own (a restart knows only the working leg)
        last = leg.client_id.rsplit("-", 1)[-1]
        number = int(last[2:]) + 1 if last[2:].isdigit() else 2
        client_id = derived_client_id(entry, f"sl{number}")
        sent = self._send(client_id, entry, "stop_loss", reason, bar, timestamp, quantity, moved)
        return _joined([cancelled, sent])

    def _send(
        self,
        client_id: str,
        entry_id: str,
        kind: OrderTypeName,
        reason: str,
        bar: int,
        timestamp: pd.Timestamp,
        quantity: float,
        level: float,
    ) -> VenueReport:
        order = Order(
            id=client_id,
            bar=bar,
            timestamp=timestamp,
            side=-1,
            quantity=quantity,
            reason=reason,
            reference_price=level,
            kind="stop",
            stop_price=level,
            parent_id=entry_id,
        )
        report = self.venue.submit(order, terms=OrderTerms(kind, trigger_price=level))
        if not report.stop_fallbacks:
            self.legs[client_id] = StopLeg(client_id, kind, level, entry_id)
        return report

    def take(self, trade: TradeFill) -> str | None:
        """Route a counted trade of a leg: the engine id to book it to, or None (held)."""
        leg = self.legs[trade.fill.order_id]
        if leg.bound_to is not None:
            return leg.bound_to
        leg.held.append(trade)
        return None

    def bind(self, order_id: str) -> tuple[StopLeg, list[TradeFill]] | None:
        """Book the first leg with trades to the engine's exit ``order_id`` (journaled).

        Returns:
            The leg and its held trades, or None when no leg has traded.
        """
        for leg in self.legs.values():
            if leg.bound_to is None and leg.held:
                leg.bound_to = order_id
                view = self.venue.order(leg.client_id)
                binding = StopBinding(leg.client_id, order_id, str(view.state))
                self.venue.journal.record(binding)
                _log.info("stop_bound", client_id=leg.client_id, order_id=order_id)
                held, leg.held = leg.held, []
                return leg, held
        return None

    def cancel(self, reason: str) -> VenueReport:
        """Cancel every working leg (the position is being closed another way)."""
        reports = [self.venue.cancel(leg.client_id, reason=reason) for leg in self.working()]
        return _joined(reports)

    def recover(
        self,
        request: VenueOrder,
        *,
        sent_at: float,
        venue_id: str | None,
        counted: Iterable[tuple[str, float]],
        held: Iterable[TradeFill] = (),
        journaled: str | None = None,
    ) -> VenueReport:
        """Track a leg the journal has sent and not bound (a restart); never sent again.

        ``held``: its trades the journal counted before the process died; they wait
        for the engine's exit as they did. ``journaled``: its state in the journal's last
        row of it (`CcxtVenue.recover`).
        """
        entry = request.order.parent_id
        if entry is not None:
            self.placed_for.add(entry)
        level = request.trigger_price
        leg = StopLeg(
            request.client_id,
            request.type,
            math.nan if level is None else float(level),
            entry,
            held=list(held),
        )
        self.legs[request.client_id] = leg
        return self.venue.recover(
            request, sent_at=sent_at, venue_id=venue_id, counted=counted, journaled=journaled
        )

    def _spot_fallback(self, client_id: str, kind: str, level: float) -> VenueReport:
        reason = (
            f"spot: the stop-loss holds the position's {self.venue.symbol} base balance; "
            f"the {kind} is watched at the bar close"
        )
        fallback = StopFallback(client_id, kind, level, "STOP_UNSUPPORTED", reason)
        _log.warning("stop_fallback", client_id=client_id, code=fallback.code, reason=reason)
        self.venue.journal.record(fallback)
        return VenueReport(stop_fallbacks=(fallback,))

    def _tick(self, level: float, *, down: bool) -> float:
        market = self.venue.client.market(self.venue.symbol)
        tick = (market.get("precision") or {}).get("price")
        if not tick or not math.isfinite(level):
            return level
        tick = float(tick)
        steps = level / tick
        whole = math.floor(steps + 1e-9) if down else math.ceil(steps - 1e-9)
        return float(round(whole * tick, 12))


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _joined(reports: list[VenueReport]) -> VenueReport:
    if not reports:
        return VenueReport()
    parts = zip(*(_parts(r) for r in reports), strict=True)
    return VenueReport(*(sum(part, ()) for part in parts))


def _parts(report: VenueReport) -> tuple[tuple[object, ...], ...]:
    return tuple(getattr(report, f.name) for f in fields(report))
