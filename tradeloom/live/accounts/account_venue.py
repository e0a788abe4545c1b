"""The live venue of a run: each symbol's orders through its own market of the account.

`AccountVenue` is the engine's `Venue` over the symbols a live run trades (one market is
the universe of one). Each symbol has its own market venue, journaled with the symbol on
every row, a `tradeloom.live.accounts.market.Market`: an `ExchangeMarket` (its own `CcxtVenue` on
the account's ccxt client: its orders, its trades polled by symbol) or, with
``execution: {kind: router}``, a `RouterVenue` splitting its orders over several
exchanges.

- ``submit`` sends an order through its symbol's market (the symbol the engine
  journaled the order with; client order ids come from one counter across the
  symbols, so each is unique on the account);
- ``cancel`` goes to the market that tracks the order;
- at ``open`` every market resolves its unknown orders and polls; the fills and
  cancellations are reported in the symbols' order, and the engine books each to its
  own order's symbol;
- buys are sized with the largest taker fee of the markets (a buy never costs more
  than its notional), and a position within its own market's lot of zero is flat for
  the engine's decisions (what a sell rounded down to the lot leaves);
- after each bar, each market's new position gets its stops rested at the exchange
  (`protect`), and the kill switch cancels them (`cancel_stops`).

`open_account_venue` opens the markets; `MarketAtStart` rows (a router's
`VenueAtStart` rows) hold what a restart reconciles each market against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tradeloom.core.accounting import flat_within
from tradeloom.core.costs import VenueCosts
from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.engine.account import SEPARATOR
from tradeloom.errors import UserError
from tradeloom.journal import MarketAtStart
from tradeloom.live.accounts.exchange_market import ExchangeMarket
from tradeloom.live.accounts.venues import (
    market_venue,
    resting_stops,
    starting_capital,
    trading_client,
    trouble_of,
)
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.exchange_venue import ExchangeVenue
from tradeloom.live.orders.order_batch import OrderBatch, batch_size
from tradeloom.live.recovery.reconcile import Standing
from tradeloom.plugins.protocols import OrderKeys
from tradeloom.plugins.protocols_orders.order_events import RefusedFill

if TYPE_CHECKING:
    from tradeloom.engine.book import Book
    from tradeloom.journal import Event
    from tradeloom.live.accounts.market import Market
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.history import MarketHistory
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["AccountVenue", "open_account_venue"]


class AccountVenue:
    """Trade each symbol through its own market venue, with shared cash.

    Args:
        markets: Each symbol's market venue, in the symbols' order.
        initial_cash: The quote capital the strategy trades with.
        symbol_of: The symbol an order was decided for, by client order id (None: not
            known).

    Attributes:
        allow_short: Whether every market is a perpetual swap (spot: no shorts).
        costs: The largest taker fee of the markets, which sizes buys.
        dusts: Each market's lot, in the symbols' order: a position within its
            market's lot of zero is flat.
        dust: The smallest of them.
        min_costs: Each market's minimum order cost (``limits.cost.min``; a router's: 0,
            its venues' are the routing's), in the symbols' order: the core refuses an
            order of a symbol worth less (``BELOW_MINIMUM``) before it is journaled as
            sent, and counts a position worth less as flat.
        min_notional: The smallest of them, the minimum every market asks (the core
            holds each symbol to its own, the larger of this and its ``min_costs``).
        at_start: What a new run journals after its ``run_started`` row (each market's
            ``market_at_start``, or a router's ``venue_at_start`` rows).
        started: What a new run's ``run_started`` row records of the account (a router's
            base balance in all; each market's fee and lot).
    """

    def __init__(
        self,
        markets: Mapping[str, Market],
        *,
        initial_cash: float,
        symbol_of: Callable[[str], str | None],
    ) -> None:
        self.markets = dict(markets)
        self.allow_short = all(getattr(m, "swap", False) for m in self.markets.values())
        self.initial_cash = initial_cash
        self._symbol_of = symbol_of
        self.costs = VenueCosts.of(max(m.costs.taker for m in self.markets.values()))
        self.dusts = tuple(m.dust for m in self.markets.values())
        self.dust = min(self.dusts)
        self.min_costs = tuple(m.min_notional for m in self.markets.values())
        self.min_notional = min(self.min_costs, default=0.0)
        self.at_start: list[Event] = []
        self.started: dict[str, Any] = {}
        self._refused: list[RefusedFill] = []
        self._exchanges = tuple(
            (s, symbol, one)
            for s, (symbol, market) in enumerate(self.markets.items())
            if (one := market.one_exchange) is not None
        )
        self._quiet: tuple[Callable[[], bool] | None, ...] = tuple(
            getattr(market, "quiet_at_open", None) for market in self.markets.values()
        )
        """Each market's `ExchangeVenue.quiet_at_open` (None: a router's, which cannot tell)."""

    @property
    def exchanges(self) -> tuple[tuple[int, str, ExchangeVenue], ...]:
        """Each market that is one exchange's (not a router's): ``(index, symbol, venue)``
        (found once: a tick asks three times, and the markets are the account's for good)."""
        return self._exchanges

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price`` with the largest taker fee."""
        return self.costs.quantity_for(notional, price)

    def submit(self, order: Order) -> None:
        """Check, journal and send ``order`` once, through its symbol's market.

        Raises:
            KeyError: The engine journaled the order with no symbol of the account.
        """
        self.market_for(order.id).submit(order)

    def market_for(self, order_id: str) -> Market:
        """Return the market of the symbol the engine decided ``order_id`` for.

        Raises:
            KeyError: No market of the account has that symbol.
        """
        if len(self.markets) == 1:
            return next(iter(self.markets.values()))
        symbol = self._symbol_of(order_id)
        if symbol not in self.markets:
            raise KeyError(f"order {order_id}: no market of the account for symbol {symbol!r}")
        return self.markets[symbol]

    def pending(self) -> list[Order]:
        """Return every market's orders not finished for the engine."""
        return [order for market in self.markets.values() for order in market.pending()]

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Cancel ``order_id`` in the market that tracks it."""
        market = self.market_of(order_id)
        return None if market is None else market.cancel(order_id, bar, reason)

    def market_of(self, order_id: str) -> Market | None:
        """Return the market that works or holds ``order_id`` (None: none does)."""
        for market in self.markets.values():
            if any(order.id == order_id for order in market.pending()):
                return market
        try:
            return self.market_for(order_id)
        except KeyError:
            return None

    def quiet_at_open(self) -> bool:
        """Return whether no market has anything for the engine at the open
        (`tradeloom.plugins.protocols.QuietAtOpen`): each can tell, and says so."""
        for quiet in self._quiet:  # noqa: SIM110 (`all` of a generator: three calls more)
            if quiet is None or not quiet():
                return False
        return True

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Return every market's report of this phase, in the symbols' order."""
        return [event for market in self.markets.values() for event in market.match(bar, phase)]

    def cancel_fills(self, order_ids: list[str], bar: Bar) -> list[Fill | Cancellation]:
        """Return the fills of ``order_ids`` their cancels turned up, each exchange
        market's in the symbols' order (`ExchangeVenue.cancel_fills`; a router's market
        reports them at the next bar)."""
        markets = [market for _, _, market in self.exchanges]
        return [event for market in markets for event in market.cancel_fills(order_ids, bar)]

    def cancel_together(self, order_ids: list[str], reason: str) -> None:
        """Cancel ``order_ids``, each market's in one request where it can, ahead of the
        engine's `cancel` of each (`ExchangeVenue.cancel_together`)."""
        grouped: dict[int, tuple[ExchangeVenue, list[str]]] = {}
        for order_id in order_ids:
            market = self.market_of(order_id)
            one = None if market is None else market.one_exchange
            if one is not None:
                grouped.setdefault(id(one), (one, []))[1].append(order_id)
        for one, ids in grouped.values():
            one.cancel_together(ids, reason)

    def flush(self) -> None:
        """Send the orders of the bar's batch (``execution.orders.batch``) and take each
        market's answers (`ExchangeVenue.flush`)."""
        for _, _, market in self.exchanges:
            market.flush()

    def protect(self, book: Book, history: MarketHistory, bar: int, *, trading: bool) -> None:
        """Send the bar's batch (`flush`), then rest each exchange market's new
        position's stops (`ExchangeVenue.protect`)."""
        self.flush()
        for s, _, market in self.exchanges:
            if not market.protects:
                continue  # nothing to read for it
            market.protect(
                book.position_of(s),
                book.entry_of(s)[1],
                history.bar(bar, s),
                trading=trading,
                resting=book.stop_of(s),
            )

    def cancel_stops(self, reason: str) -> None:
        """Cancel the stops resting at every exchange market (the kill switch)."""
        for _, _, market in self.exchanges:
            market.cancel_stops(reason)

    def stops_traded(self, bar: Bar) -> list[str]:
        """Return the symbols whose stop resting at the exchange traded with no exit booked
        to it (`tradeloom.plugins.protocols.StopsResting`)."""
        return [symbol for _, symbol, market in self.exchanges if market.stop_traded()]

    def bind_stop(self, order: Order) -> None:
        """Book the exit ``order`` to its market's resting stop that traded, sending
        nothing (`ExchangeVenue.bind_stop`; a router's market has no resting stop: its
        exit is sent as any)."""
        market = self.market_for(order.id)
        one = market.one_exchange
        if one is None:
            market.submit(order)
        else:
            one.bind_stop(order)

    def time_sends(self, told: Callable[[str, float], None]) -> None:
        """Tell ``told`` ``("send", seconds)`` of each order an exchange market sends."""
        for _, _, market in self.exchanges:
            market.on_send = told

    def rest_stops_at(self, config: StrategyConfig) -> None:
        """Rest the next position's stops of each exchange market at ``config``'s levels
        (a reloaded strategy's; a stop resting already stays where it is)."""
        for _, _, market in self.exchanges:
            if market.stops is not None:
                market.stops.stop_loss = config.stop_loss
                market.stops.take_profit = config.take_profit
                market.stops.follows = (
                    config.trailing_stop is not None or config.break_even is not None
                )

    def take_refused(self) -> RefusedFill | None:
        """Return the first fill refused (`refused`) and forget the others (None: none)."""
        refused = self.refused
        if not refused:
            return None
        first = refused[0]
        refused.clear()
        return first

    @property
    def refused(self) -> list[RefusedFill]:
        """Fills refused as impossible (overfills); over several symbols each message is
        led by its symbol.

        The markets' refusals move here when read: the live runner halts on the first
        and clears the list.
        """
        several = len(self.markets) > 1
        for symbol, market in self.markets.items():
            if not market.refused:
                continue  # a tick reads them: most find none
            self._refused.extend(
                replace(r, message=f"{symbol}: {r.message}") if several else r
                for r in market.refused
            )
            market.refused.clear()
        return self._refused


def open_account_venue(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    symbols: tuple[str, ...],
    state: JournalState | None,
) -> AccountVenue:
    """Open each symbol's market on the run's account; return the account venue.

    A new run (``state`` None) takes ``live.capital``, or the quote balance, as its
    capital and keeps each market's base balance, lot and fee (`AccountVenue.at_start`)
    for the caller to journal. A restart takes the capital and the markets' rows from
    the journal (a journal of one market from before ``market_at_start`` rows: its
    ``run_started`` row), and polls each market's trades after the last one the
    journal counted there.

    With ``execution: {kind: router}`` the one symbol's market is a `RouterVenue` over
    the router's venues (`open_router_venue`).

    Raises:
        ConfigError: The account has no keys.
        UserError: The exchange has no market of a symbol, ``execution.orders.batch`` is
            set for an exchange ccxt cannot batch orders of, the markets do not share one
            quote asset, two share a base asset (their balances could not be told apart),
            or the account holds less quote than ``live.capital``.
    """
    books = link.recorder_or_fail.order_symbols

    def symbol_of(order_id: str) -> str | None:
        symbol = books.get(order_id)
        if symbol is None or markets.portfolio is None:
            return symbol
        return symbol.split(SEPARATOR, 1)[1]  # a portfolio's book: its market

    if markets.p.router is not None:  # one symbol (live_problems)
        from tradeloom.live.accounts.router_venue import open_router_venue

        router, extra = open_router_venue(files, link, markets, state)
        account = AccountVenue(
            {symbols[0]: router},
            initial_cash=router.initial_cash,
            symbol_of=symbol_of,
        )
        account.at_start = list(router.at_start)
        account.started = extra
        return account
    client = trading_client(files, markets)
    bar_clock = markets.bar_in_progress
    at_start = None if state is None else markets_at_start(state, symbols)
    venue_keys = markets.p.venue
    orders = venue_keys.order_keys if isinstance(venue_keys, OrderKeys) else None
    # one batch for the account: a bar's orders over its symbols leave together
    batch = OrderBatch(batch_size(client)) if orders is not None and orders.batch else None
    if batch is not None and not client.has.get("createOrders"):
        where = "execution.orders.batch"
        raise UserError(
            f"{files.config.locate(where)} {where}: ccxt's {client.id} cannot send orders in "
            "batches (it has no createOrders); remove orders.batch"
        )
    venues: dict[str, Any] = {}
    described: dict[str, dict[str, Any]] = {}
    for symbol in symbols:
        after = None if state is None else state.max_trade_id_of(symbol)
        venues[symbol], described[symbol] = market_venue(
            files, link, markets, client, symbol, bar_clock, after, batch=batch
        )
    _check_assets(files, described)
    if state is None or state.started is None:
        balance = next(iter(venues.values())).balance()
        quote = str(next(iter(described.values()))["quote"])
        capital = starting_capital(files, markets, balance, quote)
    else:
        capital = state.started.capital
    for symbol, venue in venues.items():
        if described[symbol].get("swap"):
            _open_swap(files, markets, venue, fresh=state is None)
    opened: dict[str, Market] = {}
    rows: list[Event] = []
    for m, (symbol, venue) in enumerate(venues.items()):
        fee_rate = float(described[symbol].get("taker") or 0.0)
        if at_start is not None and not math.isnan(at_start[symbol].fee_rate):
            fee_rate = at_start[symbol].fee_rate
        opened[symbol] = exchange = ExchangeMarket(
            venue,
            initial_cash=capital,
            costs=VenueCosts.of(fee_rate),  # ccxt's taker fee; execution.fee_bps is not read
            on_trouble=trouble_of(link, symbol if len(symbols) > 1 else ""),
            orders=orders,
            stops=resting_stops(markets, venue, orders),
        )
        if at_start is None:
            row = MarketAtStart(
                symbol=symbol,
                base=exchange.base,
                # a swap's position is the exchange's (it starts flat): no balance
                base_at_start=0.0 if exchange.swap else balance.get(exchange.base, 0.0),
                dust=exchange.dust,
                fee_rate=fee_rate,
            )
            rows.append(row)
        else:
            row = at_start[symbol]
        # an order due to end ORDER_LOST is reconciled with the account at once
        exchange.standing = Standing(
            row.base_at_start, files.config.live.position_tolerance, _held_in(markets, m)
        )
    account = AccountVenue(opened, initial_cash=capital, symbol_of=symbol_of)
    account.at_start = rows
    account.started = {"fee_rate": account.costs.taker, "dust": account.dust}
    return account


def _held_in(markets: Markets, market: int) -> Callable[[], tuple[float, float]]:
    """Return what reads the engine's position in the account's ``market`` and the band
    around zero its core counts as flat there (`Standing.held`)."""

    def held() -> tuple[float, float]:
        session = markets.session_or_fail
        position, row = session.held_in(market)
        state = session.engine.state
        return position, flat_within(state.sym, state.prm, row)

    return held


def markets_at_start(state: JournalState, symbols: tuple[str, ...]) -> dict[str, MarketAtStart]:
    """Return each symbol's ``market_at_start`` row of a restarted live run.

    A journal of one market written before those rows existed records its market in
    its ``run_started`` row: that row stands for it.

    Raises:
        RestartRefused: The journal records no market of a symbol.
    """
    from tradeloom.live.recovery.reconcile import RestartRefused

    markets = dict(state.markets)
    started = state.started
    if not markets and len(symbols) == 1 and started is not None:
        markets[symbols[0]] = MarketAtStart(
            symbol=symbols[0],
            base="",
            base_at_start=started.base_at_start,
            dust=started.dust,
            fee_rate=started.fee_rate,
        )
    missing = [s for s in symbols if s not in markets]
    if missing:
        raise RestartRefused(
            f"the journal records no market_at_start of {', '.join(missing)}: not the "
            "markets this live run started with"
        )
    return markets


def _open_swap(files: RunFiles, markets: Markets, venue: CcxtVenue, *, fresh: bool) -> None:
    """Set a perpetual swap's leverage and cross margin at the exchange: the leverage that
    allows the file's initial margin (``ceil(1 / execution.margin.initial)``, 1 to 125);
    the core holds each order to the file's own margin rule. A new run starts flat.

    Raises:
        UserError: A new run on an account that holds a position in the swap.
    """
    margin = getattr(markets.p.venue, "margin", None)
    initial = margin.initial if margin is not None else 1.0
    venue.set_swap_margin(min(125, max(1, math.ceil(1.0 / initial - 1e-9))))
    if not fresh:
        return
    held = venue.position()
    if held != 0.0:
        base = venue.client.market(venue.symbol).get("base")
        raise UserError(
            f"{files.run_dir}: the account holds a position of {held:.8g} {base} in "
            f"{venue.symbol}; a new live run starts flat: close it (or trade another "
            "account) before starting"
        )


def _check_assets(files: RunFiles, described: Mapping[str, Mapping[str, object]]) -> None:
    if len(described) < 2:
        return
    config = files.config
    where = f"{config.data.path}.symbols"
    quotes = sorted({str(m["quote"]) for m in described.values()})
    if len(quotes) > 1:
        raise UserError(
            f"{config.locate(where)} {where}: --mode live trades one account's cash; "
            f"the symbols are quoted in {', '.join(quotes)}: list symbols of one quote asset"
        )
    seen: dict[str, str] = {}
    for symbol, market in described.items():
        base = str(market["base"])
        if base in seen:
            raise UserError(
                f"{config.locate(where)} {where}: {seen[base]} and {symbol} both trade "
                f"{base}; --mode live reconciles each base asset's balance with one symbol's "
                "position: list one symbol per base asset"
            )
        seen[base] = symbol
