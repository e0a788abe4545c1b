"""A symbol's market on the account's exchange, as a restart sees it.

`ExchangeMarket` is the `ExchangeVenue` of one symbol of a live account with what a
restart asks of any `tradeloom.live.accounts.market.Market`: adopt what the exchange has beyond
a journal that lost its tail (`tradeloom.live.recovery.sent_lookup`), track again the orders
and resting stops the replay left pending (`tradeloom.live.recovery.handover`), and reconcile
the account's balance with the journal's position (`tradeloom.live.recovery.reconcile`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tradeloom.live.orders.exchange_venue import ExchangeVenue
from tradeloom.live.recovery.handover import recover_stops, track_pending
from tradeloom.live.recovery.reconcile import reconcile_market
from tradeloom.live.recovery.sent_lookup import look_up_beyond_journal

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.recovery.reconcile import HeldPosition, Reconciling
    from tradeloom.live.recovery.replay_venue import ReplayVenue
    from tradeloom.live.tick.services import JournalLink, RunFiles
    from tradeloom.live.tick.session import LiveSession

__all__ = ["ExchangeMarket"]


class ExchangeMarket(ExchangeVenue):
    """One symbol's `ExchangeVenue` on the account's exchange: a `Market`."""

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
