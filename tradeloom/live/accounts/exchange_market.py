"""A symbol's market on the account's exchange, as a restart sees it.

`ExchangeMarket` is the `ExchangeVenue` of one symbol of a live account with what a
restart asks of any `tradeloom.live.accounts.market.Market`: adopt what the exchange has beyond
a journal that lost its tail (`tradeloom.live.recovery.sent_lookup`), track again the orders
and resting stops the replay left pending (`tradeloom.live.recovery.handover`), and reconcile
the account's balance with the journal's position (`tradeloom.live.recovery.reconcile`).
The same reconcile runs while the run trades, the moment an order is due to end
``ORDER_LOST`` (`settle_lost`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tradeloom.live.orders.exchange_venue import ExchangeVenue
from tradeloom.live.recovery.handover import recover_stops, track_pending
from tradeloom.live.recovery.reconcile import Standing, reconcile_lost, reconcile_market
from tradeloom.live.recovery.sent_lookup import look_up_beyond_journal
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.recovery.reconcile import HeldPosition, Reconciling
    from tradeloom.live.recovery.replay_venue import ReplayVenue
    from tradeloom.live.tick.services import JournalLink, RunFiles
    from tradeloom.live.tick.session import LiveSession

__all__ = ["ExchangeMarket"]

_log = logger("tradeloom.live")


class ExchangeMarket(ExchangeVenue):
    """One symbol's `ExchangeVenue` on the account's exchange: a `Market`.

    A router's venue is one too (`tradeloom.live.accounts.router_venue`), for its
    `settle_lost` alone: its standing is that venue's account and the engine's position
    there; the router is the `Market` a restart asks.
    """

    standing: Standing | None = None
    """What the account is reconciled against while the run trades (`settle_lost`; set
    when the account is opened); None: an order due to end ``ORDER_LOST`` ends with
    nothing booked, as `ExchangeVenue` ends it."""

    def settle_lost(self, *, polled: bool) -> None:
        """Book what the orders lookups found nowhere filled, from the account, then end
        them ``ORDER_LOST`` (`reconcile_lost`): a restart's rule, at once.

        When the account cannot say (its read failed, another order's fills are not
        known yet, a difference they cannot make), they work on for the engine, which
        sends nothing more for the symbol (``CANCEL_UNCONFIRMED``), and the trouble is
        journaled (``venue_unreachable``, operation ``reconcile``); the next open asks
        again.
        """
        standing = self.standing
        if standing is None:
            super().settle_lost(polled=polled)
            return
        why = reconcile_lost(self, standing, polled=polled)
        if why is not None:
            _log.warning("order_lost_held", symbol=self.venue.symbol, why=why)
            self._on_trouble("reconcile", why)
            return
        super().settle_lost(polled=polled)  # the ones nothing was booked to

    @property
    def one_exchange(self) -> ExchangeVenue:
        """This market's venue: itself."""
        return self

    def look_up_lost(
        self,
        files: RunFiles,
        link: JournalLink,
        session: LiveSession,
        state: JournalState,
        *,
        name: str,
    ) -> None:
        """Adopt the run's orders the exchange has beyond the journal (`look_up_beyond_journal`)."""
        assert link.sent_mark is not None
        look_up_beyond_journal(
            files.run_dir,
            link.journal_or_fail,
            session,
            state,
            self,
            link.sent_mark,
            cut=link.cut,
            name=name,
        )

    def recover(
        self, state: JournalState, replayed: ReplayVenue, *, owns: Callable[[str], bool]
    ) -> None:
        """Track again the stops resting here and the orders of this market the replay
        left pending (`recover_stops`, `track_pending`)."""
        recover_stops(state, self)
        track_pending(state, replayed, lambda order_id: self if owns(order_id) else None)

    def reconcile(self, run: Reconciling, held: HeldPosition) -> None:
        """Refuse to trade when the account's base balance is not the journal's position
        (`reconcile_market`)."""
        assert run.state.started is not None
        reconcile_market(
            run.files,
            run.link,
            run.session,
            self,
            position=held.position,
            base_at_start=held.base_at_start,
            run_key=run.state.started.run_key,
            symbol=held.symbol,
            index=held.index,
        )
