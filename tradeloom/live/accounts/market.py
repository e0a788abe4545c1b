"""The market of one symbol of a live account: one exchange, or a router over several.

`tradeloom.live.accounts.account_venue.AccountVenue` trades each of its symbols through a
`Market`: an `ExchangeMarket` (`tradeloom.live.accounts.exchange_market`: the symbol's market on
the account's exchange) or a `RouterVenue` (`tradeloom.live.accounts.router_venue`: its orders
split over several exchanges). A restart hands each market what the replay left it and
checks each market's balances against the journal through this protocol, never by
asking which kind of market it is. The runner asks the account itself through
`ExchangeAccount`, never by its class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tradeloom.core.costs import VenueCosts
    from tradeloom.domain import Bar, Cancellation, Fill, Order
    from tradeloom.live.orders.exchange_venue import ExchangeVenue
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.recovery.reconcile import HeldPosition, Reconciling
    from tradeloom.live.recovery.replay_venue import ReplayVenue
    from tradeloom.live.tick.services import JournalLink, RunFiles
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.protocols_orders.order_events import RefusedFill
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["ExchangeAccount", "Market"]


class Market(Protocol):
    """One symbol's market of a live account, as its account and a restart use it.

    Attributes:
        costs: Its fees: the taker fee sizes buys.
        dust: Its smallest tradable amount: a position within it is flat.
        min_notional: The smallest order cost the core lets through to it (0: none; a
            router's venues' minimums are the routing's).
    """

    costs: VenueCosts
    dust: float
    min_notional: float

    @property
    def refused(self) -> list[RefusedFill]:
        """Fills refused as impossible (overfills), until the account reads them."""
        ...

    @property
    def one_exchange(self) -> ExchangeVenue | None:
        """The one exchange venue this market is, which rests its position's stops at
        the exchange and times its sends (None: a router, its orders split over several
        exchanges, its protective exits the engine's)."""
        ...

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price`` (the taker fee included)."""
        ...

    def submit(self, order: Order) -> None:
        """Check, journal and send ``order`` once."""
        ...

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Cancel ``order_id``; return its cancellation, or None."""
        ...

    def pending(self) -> list[Order]:
        """Return the orders not finished for the engine."""
        ...

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Return what the market reported for this phase of ``bar``."""
        ...

    def look_up_lost(
        self,
        files: RunFiles,
        link: JournalLink,
        session: LiveSession,
        state: JournalState,
        *,
        name: str,
    ) -> None:
        """Adopt what the market has of the run beyond a journal that lost its tail.

        Called for the one market of a run of one strategy (``name``: the name its client
        order ids start with), before `recover`, with the session the replay rebuilt.
        """
        ...

    def recover(
        self, state: JournalState, replayed: ReplayVenue, *, owns: Callable[[str], bool]
    ) -> None:
        """Track again the orders still pending after the replay that are this market's.

        Args:
            state: The journal, read.
            replayed: The replay's venue, at the end of the replay.
            owns: Whether an order (by client order id) is this market's.
        """
        ...

    def reconcile(self, run: Reconciling, held: HeldPosition) -> None:
        """Refuse to trade when the market's balances are not the journal's position.

        Args:
            run: The restarted run.
            held: The journal's position in the market.

        Raises:
            RestartRefused: A balance differs from the journal's position.
        """
        ...


@runtime_checkable
class ExchangeAccount(Protocol):
    """A live run's venue over its exchange account's markets
    (`tradeloom.live.accounts.account_venue.AccountVenue`), as the runner asks it.

    A paper run's venue and a restart's replay of the journal are not one: the runner
    asks ``provides(venue, ExchangeAccount)`` and leaves them be.
    """

    def time_sends(self, told: Callable[[str, float], None]) -> None:
        """Tell ``told`` ``("send", seconds)`` of each order an exchange market sends."""
        ...

    def rest_stops_at(self, config: StrategyConfig) -> None:
        """Rest the next position's stops of each exchange market at ``config``'s levels
        (a reloaded strategy's; a stop resting already stays where it is)."""
        ...

    def take_refused(self) -> RefusedFill | None:
        """Return the first fill refused as impossible (an overfill) since the last call
        and forget the others (the runner halts on it; a later refusal halts again);
        None: none was."""
        ...
