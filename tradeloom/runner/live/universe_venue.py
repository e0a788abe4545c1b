"""The live venue of a run over a universe: each symbol's orders through its own market.

`UniverseVenue` is the engine's `Venue` over N symbols of one exchange account. Each
symbol has its own `ExchangeVenue` (its own `CcxtVenue`: its orders, its trades polled
by symbol, journaled with the symbol on every row), all on one ccxt client:

- ``submit`` sends an order through its symbol's market (the symbol the engine
  journaled the order with; client order ids come from one counter across the
  symbols, so each is unique on the account);
- ``cancel`` goes to the market that tracks the order;
- at ``open`` every market resolves its unknown orders and polls; the fills and
  cancellations are reported in the universe's symbol order, and the engine books
  each to its own order's symbol;
- buys are sized with the largest taker fee of the markets (a buy never costs more
  than its notional), and a position within its own market's lot of zero is flat for
  the engine's decisions (what a sell rounded down to the lot leaves).

`open_universe_venue` opens the markets; `MarketAtStart` rows hold what a restart
reconciles each market against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.errors import UserError
from tradeloom.journal import MarketAtStart
from tradeloom.plugins.execution.ccxt_venue import CcxtVenue
from tradeloom.plugins.execution.order_events import RefusedFill
from tradeloom.runner.live.exchange_venue import ExchangeVenue
from tradeloom.runner.live.venues import market_venue, starting_capital, trading_client, trouble

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner

__all__ = ["UniverseVenue", "open_universe_venue"]


class UniverseVenue:
    """Trade each symbol of a universe through its own `ExchangeVenue`, with shared cash.

    Args:
        markets: Each symbol's exchange venue, in the universe's order.
        initial_cash: The quote capital the strategy trades with.
        symbol_of: The symbol an order was decided for, by client order id (None: not
            known).

    Attributes:
        allow_short: Always False: spot.
        fee_rate: The largest taker fee of the markets (sizes buys).
        dusts: Each market's lot, in the universe's order: a position within its
            market's lot of zero is flat.
        dust: The smallest of them.
    """

    allow_short = False

    def __init__(
        self,
        markets: Mapping[str, ExchangeVenue],
        *,
        initial_cash: float,
        symbol_of: Callable[[str], str | None],
    ) -> None:
        self.markets = dict(markets)
        self.initial_cash = initial_cash
        self._symbol_of = symbol_of
        self.fee_rate = max(m.fee_rate for m in self.markets.values())
        self.dusts = tuple(m.dust for m in self.markets.values())
        self.dust = min(self.dusts)
        self._refused: list[RefusedFill] = []

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price`` with the largest taker fee."""
        return notional / (price * (1.0 + self.fee_rate))

    def submit(self, order: Order) -> None:
        """Check, journal and send ``order`` once, through its symbol's market.

        Raises:
            KeyError: The engine journaled the order with no symbol of the universe.
        """
        symbol = self._symbol_of(order.id)
        if symbol not in self.markets:
            raise KeyError(f"order {order.id}: no market of the universe for symbol {symbol!r}")
        self.markets[symbol].submit(order)

    def pending(self) -> list[Order]:
        """Return every market's orders not finished for the engine."""
        return [order for market in self.markets.values() for order in market.pending()]

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Cancel ``order_id`` in the market that tracks it (`ExchangeVenue.cancel`)."""
        market = self.market_of(order_id)
        return None if market is None else market.cancel(order_id, bar, reason)

    def market_of(self, order_id: str) -> ExchangeVenue | None:
        """Return the market that works or holds ``order_id`` (None: none does)."""
        for market in self.markets.values():
            if any(order.id == order_id for order in market.pending()):
                return market
        symbol = self._symbol_of(order_id)
        return self.markets.get(symbol) if symbol is not None else None

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Return every market's report of this phase, in the universe's symbol order."""
        return [event for market in self.markets.values() for event in market.match(bar, phase)]

    @property
    def refused(self) -> list[RefusedFill]:
        """Fills refused as impossible (overfills), each message led by its symbol.

        The markets' refusals move here when read: the live runner halts on the first
        and clears the list, as with one market.
        """
        for symbol, market in self.markets.items():
            self._refused.extend(
                replace(r, message=f"{symbol}: {r.message}") for r in market.refused
            )
            market.refused.clear()
        return self._refused


def open_universe_venue(
    runner: LiveRunner,
    symbols: tuple[str, ...],
    at_start: Mapping[str, MarketAtStart] | None,
    *,
    capital: float | None = None,
    after_trade_ids: Mapping[str, str | None] | None = None,
) -> tuple[UniverseVenue, list[MarketAtStart]]:
    """Open each symbol's market on the run's account; return the venue and, for a new
    run, each market's ``market_at_start`` row.

    A new run (``at_start`` None) takes ``live.capital``, or the quote balance, as its
    capital and records each market's base balance, lot and fee. A restart takes the
    capital and the markets' rows from the journal.

    Raises:
        ConfigError: The account has no keys.
        UserError: The exchange has no market of a symbol, the markets do not share one
            quote asset, two share a base asset (their balances could not be told
            apart), or the account holds less quote than ``live.capital``.
    """
    client = trading_client(runner)

    def bar_clock() -> int:
        session = runner.session
        return len(session.history) if session is not None else 0

    venues: dict[str, CcxtVenue] = {}
    described: dict[str, dict[str, Any]] = {}
    for symbol in symbols:
        after = None if after_trade_ids is None else after_trade_ids.get(symbol)
        venues[symbol], described[symbol] = market_venue(runner, client, symbol, bar_clock, after)
    _check_assets(runner, described)
    rows: list[MarketAtStart] = []
    if at_start is None:
        balance = next(iter(venues.values())).balance()
        quote = str(next(iter(described.values()))["quote"])
        capital = starting_capital(runner, balance, quote)
    assert capital is not None  # a restart passes the journal's
    markets: dict[str, ExchangeVenue] = {}
    for symbol, venue in venues.items():
        market = described[symbol]
        fee_rate = float(market.get("taker") or 0.0)
        if at_start is not None and not math.isnan(at_start[symbol].fee_rate):
            fee_rate = at_start[symbol].fee_rate
        markets[symbol] = exchange = ExchangeVenue(
            venue,
            initial_cash=capital,
            fee_rate=fee_rate,
            on_trouble=_trouble_of(runner, symbol),
            orders=getattr(getattr(runner.p.venue, "params", None), "orders", None),
        )
        if at_start is None:
            rows.append(
                MarketAtStart(
                    symbol=symbol,
                    base=exchange.base,
                    base_at_start=balance.get(exchange.base, 0.0),
                    dust=exchange.dust,
                    fee_rate=fee_rate,
                )
            )
    recorder = runner.recorder_or_fail
    universe = UniverseVenue(markets, initial_cash=capital, symbol_of=recorder.order_symbols.get)
    return universe, rows


def _trouble_of(runner: LiveRunner, symbol: str) -> Callable[[str, str], None]:
    def told(operation: str, message: str) -> None:
        trouble(runner, operation, f"{symbol}: {message}")

    return told


def _check_assets(runner: LiveRunner, described: Mapping[str, Mapping[str, object]]) -> None:
    where = f"{runner.config.data.path}.symbols"
    quotes = sorted({str(m["quote"]) for m in described.values()})
    if len(quotes) > 1:
        raise UserError(
            f"{runner.config.locate(where)} {where}: --mode live trades one account's cash; "
            f"the symbols are quoted in {', '.join(quotes)}: list symbols of one quote asset"
        )
    seen: dict[str, str] = {}
    for symbol, market in described.items():
        base = str(market["base"])
        if base in seen:
            raise UserError(
                f"{runner.config.locate(where)} {where}: {seen[base]} and {symbol} both trade "
                f"{base}; --mode live reconciles each base asset's balance with one symbol's "
                "position: list one symbol per base asset"
            )
        seen[base] = symbol
