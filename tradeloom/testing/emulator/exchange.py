"""The emulated venue's state: markets, balances, working orders, trades and the bar clock.

Pure Python and no HTTP, so the matching rules can be tested on their own; the
Binance layer (`binance.py`) turns requests into calls here and `Rejected` into
Binance error codes. Every public method holds one lock: HTTP handler threads and
the test thread that moves the clock see one consistent state.

The clock. ``position`` runs from 0 to ``len(bars)``. At position ``i`` bars
``0..i-1`` are closed and bar ``i`` has just opened: its open is the current
price and nothing else of it is known yet. `advance` plays bar ``i`` (its range
and volume) and moves to the open of bar ``i + 1``. At position ``len(bars)``
the series is over and the market is closed to new orders.

Fill rules, chosen so a decision taken at bar ``t``'s close fills where the
backtest's ``fill: next_open`` fills it:

- A market order fills at the current price: the open of the bar in progress,
  which is the first open after the last closed bar. A part it cannot fill yet
  (fill fraction, bar volume) fills at the open of each following bar.
- A limit order that is marketable when it arrives (a buy at or above the
  current price, a sell at or below) fills at the current price as a taker.
  Otherwise it rests, and fills as a maker at its limit price during any later
  bar whose range reaches it (a buy when ``low <= price``, a sell when
  ``high >= price``); a resting order keeps its price even through a gap.
  ``LIMIT_MAKER`` (post-only) is a limit order refused when it would be marketable.
- Stop-loss and take-profit orders (``STOP_LOSS``, ``TAKE_PROFIT`` and their
  ``_LIMIT`` variants) wait off the book, holding their balance locked, until a
  played bar reaches ``stop_price``: a sell stop-loss or a buy take-profit when
  ``low <= stop_price``, a buy stop-loss or a sell take-profit when
  ``high >= stop_price``. Each triggers at the first price of the bar at or
  beyond its stop: the open when the bar gaps through it, else the stop price
  (for a stop-loss the worse of the two, as the backtest fills stops). The market
  variants then fill there as takers (a rest at the following opens); the limit
  variants fill there as takers when their limit allows it, else rest at their
  limit from the next bar on. One is refused when it would trigger at once.
- Each order fills at most ``fill_fraction`` of its quantity per bar (at least
  one lot step), and with ``volume_participation`` all orders together take at
  most that share of a bar's volume. Earlier orders fill first.
- Fees are a rate on each fill, charged in the asset received, as Binance does
  without BNB: a buy pays in base, a sell in quote. Amounts of money are rounded
  half-even to 8 decimals (Binance's asset precision) at each fill; the balance
  moves by exactly the rounded amount, so accounts reconcile to the satoshi.
- A limit buy locks ``price * quantity`` of quote, a sell locks its quantity of
  base; a fill releases its share, a cancel the rest. A market buy locks
  nothing: its price is not known in advance, so a part that no longer fits the
  free quote balance when its bar comes is expired (status ``EXPIRED``).

A perpetual swap (``BTC/USDT:USDT``, a market whose `Market.swap` is true) trades
contracts of one base unit each, in Binance's one-way mode: one signed position per
market (`PerpPosition`), longs and shorts alike, settled in the quote balance (one
wallet for spot and swaps, as a unified account):

- An order that adds to the position's size needs its initial margin, the added
  notional at the order's price (the current price for a market order) over the
  market's leverage (`set_leverage`), within the available balance: the free quote
  balance plus the swap positions' unrealized profit less their initial margin.
  Otherwise it is refused (``MARGIN_INSUFFICIENT``); an order that only reduces the
  size is never refused for margin, and a ``reduce_only`` one that would add to it
  is refused (``REDUCE_ONLY``). Swap orders lock nothing.
- A fill pays its fee in quote, realizes ``closed x (price - entry)`` (signed by the
  position) on the part that reduces the position, and moves the entry price to the
  average of what is open (a flip opens the rest at the fill price).
- At each funding time (``funding_rates``) the position held then pays
  ``amount x price x rate`` (a short receives it when the rate is positive) into
  the quote balance, rounded to 8 decimals. The price is the open of the bar whose
  interval holds the funding time, and the payment is made when that bar opens,
  before the market orders still working fill at its open: where the backtest's
  core books it (`tradeloom.core.funding`).
- There is no liquidation: the strategy's core applies the maintenance rule.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

import pandas as pd

from tradeloom.core.kernels.specs import LatencyKernel
from tradeloom.testing.emulator.bars import BarSeries
from tradeloom.testing.emulator.book import OrderBook, book_levels
from tradeloom.testing.emulator.exchange_rules import (
    _ceil8,
    _check_price,
    _check_quantity,
    _check_rate,
    _falls,
    _floor,
    _funding_by_id,
    _reached,
    _round8,
    _rules_for,
)
from tradeloom.testing.emulator.latency import arrival_bars
from tradeloom.testing.emulator.records import (
    LIMIT_TYPES,
    STOP_TYPES,
    Balance,
    BookProfile,
    Kline,
    Market,
    MarketRules,
    Order,
    OrderStatus,
    OrderType,
    PerpPosition,
    Reason,
    Rejected,
    Side,
    Trade,
    kline_of,
)

__all__ = ["Exchange"]

_SYMBOL = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+)(?::\2)?$")  # a swap: settled in the quote


@dataclass
class _BarUse:
    """How much each order, and the market, filled in the current bar."""

    bar: int = -1
    by_order: dict[int, Decimal] = field(default_factory=dict)
    by_market: dict[str, Decimal] = field(default_factory=dict)


class Exchange:
    """An emulated venue replaying bars, with balances, orders and fills (spot and
    perpetual swaps: module docstring).

    Args:
        markets: Bars per unified symbol (``BTC/USDT``): a frame with OHLCV columns and
            a UTC index of bar open times, or a `BarSeries`. All markets must share
            the same timestamps: there is one clock.
        balances: Starting free balance per asset; assets of the markets not named
            start at 0.
        rules: Trading rules for every market, or per symbol.
        maker_fee: Fee rate of resting limit orders that fill.
        taker_fee: Fee rate of market orders and marketable limit orders.
        fill_fraction: Default most of an order's quantity filled per bar (1 = all).
        volume_participation: Most of a bar's volume all fills together may take
            (0.1 = 10%); unlimited when None.
        start: Initial clock position: bars before it are history, already closed.
        timeframe: Bar length (``1h``); inferred from the timestamps when omitted.
        funding_rates: Funding rates per unified symbol of the markets: a float Series
            indexed by UTC funding time (served by ``GET /fapi/v1/fundingRate``, each
            once market time reaches it).
        price_offset_bps: This venue's prices are the bars' times ``1 + offset / 10_000``
            (klines, tickers, book and fills alike): two venues replaying the same
            bars quote different prices. Volumes are kept.
        book: The order book quoted around the price now (`BookProfile`). The
            attribute ``book`` may be replaced between bars (a book that changes over
            time); fills do not walk it: they follow the bar prices above.

    Raises:
        ValueError: Bad bars, symbols, rates or start (the message names the remedy).
    """

    def __init__(
        self,
        markets: Mapping[str, pd.DataFrame | BarSeries],
        balances: Mapping[str, Decimal | int | str],
        *,
        rules: MarketRules | Mapping[str, MarketRules] | None = None,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        fill_fraction: Decimal = Decimal(1),
        volume_participation: Decimal | None = None,
        start: int = 0,
        timeframe: str | None = None,
        funding_rates: Mapping[str, pd.Series] | None = None,
        price_offset_bps: Decimal = Decimal(0),
        book: BookProfile | None = None,
    ) -> None:
        if not markets:
            raise ValueError("the emulator needs at least one market, e.g. {'BTC/USDT': bars}")
        if not isinstance(price_offset_bps, Decimal) or not -10_000 < price_offset_bps < 10_000:
            raise ValueError(
                f"price_offset_bps must be a Decimal in (-10000, 10000), was {price_offset_bps!r}"
            )
        factor = 1 + price_offset_bps / 10_000
        self._markets: dict[str, Market] = {}
        for symbol, bars in markets.items():
            match = _SYMBOL.match(symbol)
            if match is None:
                raise ValueError(
                    "market symbols are BASE/QUOTE in capitals such as BTC/USDT (a perpetual "
                    f"swap: BTC/USDT:USDT); was '{symbol}'"
                )
            series = bars if isinstance(bars, BarSeries) else BarSeries.from_frame(bars, timeframe)
            series = series.scaled(factor)
            market_rules = _rules_for(symbol, rules)
            market = Market(symbol, match.group(1), match.group(2), series, market_rules)
            if market.id in self._markets:
                raise ValueError(
                    f"{self._markets[market.id].symbol} and {symbol} share Binance's market id "
                    f"{market.id}; the emulator serves one of them"
                )
            self._markets[market.id] = market
        first = next(iter(self._markets.values()))
        for market in self._markets.values():
            if market.bars.open_ms != first.bars.open_ms:
                raise ValueError(
                    f"{market.symbol} and {first.symbol} have different bar timestamps; "
                    "the emulator has one clock, so align the series first"
                )
        _check_rate("maker_fee", maker_fee, allow_zero=True)
        _check_rate("taker_fee", taker_fee, allow_zero=True)
        _check_rate("fill_fraction", fill_fraction, allow_zero=False)
        if volume_participation is not None:
            _check_rate("volume_participation", volume_participation, allow_zero=False)
        self._times = first.bars.open_ms
        self._interval_ms = first.bars.interval_ms
        if not 0 <= start <= len(self._times):
            raise ValueError(f"start must be between 0 and {len(self._times)}, was {start}")
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.fill_fraction = fill_fraction
        self.volume_participation = volume_participation
        self.price_offset_bps = price_offset_bps
        self.book = book if book is not None else BookProfile()
        self._position = start
        self._free: dict[str, Decimal] = {}
        self._locked: dict[str, Decimal] = {}
        for market in self._markets.values():
            for asset in (market.base, market.quote):
                self._free.setdefault(asset, Decimal(0))
                self._locked.setdefault(asset, Decimal(0))
        for asset, amount in balances.items():
            value = Decimal(str(amount))
            if value < 0:
                raise ValueError(f"balance of {asset} must be >= 0, was {value}")
            self._free[asset] = value
            self._locked.setdefault(asset, Decimal(0))
        self._funding = _funding_by_id(funding_rates or {}, self._markets)
        self._perps = {m.id: PerpPosition(m.id) for m in self._markets.values() if m.swap}
        self._payments: list[tuple[int, str, Decimal, Decimal]] = []
        self._orders: dict[int, Order] = {}
        self._trades: list[Trade] = []
        self._use = _BarUse()
        self._lock = threading.RLock()
        self._withheld: dict[str, frozenset[int]] = {}
        self._latency: LatencyKernel | None = None
        self._arrives: dict[int, int] = {}  # a market order on its way: the bar it fills at

    def delay_orders(self, latency: LatencyKernel | None) -> None:
        """Hold each market order until the bar the declared ``latency`` brings it in
        (`tradeloom.testing.emulator.latency`); None: they fill at once (the default)."""
        with self._lock:
            self._latency = latency

    # --- markets and the clock -------------------------------------------------

    @property
    def markets(self) -> Mapping[str, Market]:
        """Markets by Binance id (``BTCUSDT``)."""
        return dict(self._markets)

    def market(self, market_id: str) -> Market:
        """Return a market by Binance id.

        Raises:
            Rejected: UNKNOWN_SYMBOL.
        """
        try:
            return self._markets[market_id]
        except KeyError:
            raise Rejected(Reason.UNKNOWN_SYMBOL, f"no market {market_id}") from None

    @property
    def length(self) -> int:
        """Number of bars in the series."""
        return len(self._times)

    @property
    def position(self) -> int:
        """The clock: index of the bar in progress (``length`` once the series is over)."""
        with self._lock:
            return self._position

    @property
    def interval_ms(self) -> int:
        """Bar length in milliseconds."""
        return self._interval_ms

    def now_ms(self) -> int:
        """Market time: the open of the bar in progress, or the last bar's close time."""
        with self._lock:
            return self._time_of(self._position)

    def current_price(self, market_id: str) -> Decimal:
        """The price now: the open of the bar in progress, or the last close at the end."""
        with self._lock:
            bars = self.market(market_id).bars
            if self._position < len(bars):
                return bars.open[self._position]
            return bars.close[-1]

    def order_book(self, market_id: str, limit: int | None = None) -> OrderBook:
        """Return the book quoted now: `book_levels` around `current_price`.

        Args:
            market_id: Binance market id.
            limit: At most this many levels a side.

        Raises:
            Rejected: UNKNOWN_SYMBOL.
        """
        with self._lock:
            market = self.market(market_id)
            price = self.current_price(market_id)
            now = self._time_of(self._position)
        return book_levels(price, market.rules, self.book, now, limit)

    def withhold(self, symbol: str, bars: Iterable[int]) -> None:
        """Publish no kline of ``symbol`` for ``bars`` (positions): a halted market.

        The clock goes on; the other markets publish their bars as before.

        Raises:
            KeyError: No such market.
        """
        market = next((m for m in self._markets.values() if m.symbol == symbol), None)
        if market is None:
            raise KeyError(f"no market {symbol}; the markets are {sorted(self.symbols())}")
        with self._lock:
            self._withheld[market.id] = frozenset(int(b) for b in bars)

    def symbols(self) -> list[str]:
        """Return the unified symbols of the markets."""
        return [m.symbol for m in self._markets.values()]

    def visible_klines(
        self,
        market_id: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
        include_open: bool = True,
    ) -> list[Kline]:
        """Return the bars a client may see now: closed ones, then the one in progress.

        The bar in progress, like Binance's current kline right after it opens, has
        high, low and close equal to its open and no volume: showing more would
        leak the future to a strategy that does not drop the last kline.

        Args:
            market_id: Binance market id.
            start_ms: Only bars opening at or after this time.
            end_ms: Only bars opening at or before this time.
            limit: At most this many: the first ones from ``start_ms`` when it is
                given, else the latest ones (Binance's kline selection).
            include_open: Show the bar in progress.
        """
        with self._lock:
            bars = self.market(market_id).bars
            position = self._position
        visible = position + (1 if include_open and position < len(bars) else 0)
        first = 0 if start_ms is None else bisect.bisect_left(bars.open_ms, start_ms, 0, visible)
        stop = visible if end_ms is None else bisect.bisect_right(bars.open_ms, end_ms, 0, visible)
        if limit is not None and stop - first > limit:
            if start_ms is None:
                first = stop - limit
            else:
                stop = first + limit
        withheld = self._withheld.get(market_id, frozenset())
        return [
            kline_of(bars, i, closed=i < position)
            for i in range(first, max(first, stop))
            if i not in withheld
        ]

    def visible_funding_rates(
        self,
        market_id: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 100,
    ) -> list[tuple[int, Decimal]]:
        """Return the funding rates a client may see now: funding times up to market time.

        Args:
            market_id: Binance market id.
            start_ms: Only rates at or after this time.
            end_ms: Only rates at or before this time.
            limit: At most this many: the first from ``start_ms`` when it is given, else
                the latest (Binance's selection).
        """
        times, rates = self._funding.get(self.market(market_id).id, ([], []))
        now = self.now_ms()
        stop = bisect.bisect_right(times, now if end_ms is None else min(now, end_ms))
        first = 0 if start_ms is None else bisect.bisect_left(times, start_ms, 0, stop)
        if stop - first > limit:
            if start_ms is None:
                first = stop - limit
            else:
                stop = first + limit
        return list(zip(times[first:stop], rates[first:stop], strict=True))

    def advance(self, bars: int = 1) -> None:
        """Play ``bars`` bars: resting limit orders fill within each bar's range, then
        market orders still working fill at the next bar's open.

        Raises:
            ValueError: ``bars`` < 1, or it would move past the end of the series.
        """
        if bars < 1:
            raise ValueError(f"advance() moves forward by at least one bar, was {bars}")
        with self._lock:
            if self._position + bars > len(self._times):
                raise ValueError(
                    f"cannot advance {bars} bars from bar {self._position}: "
                    f"the series has {len(self._times)} bars"
                )
            for _ in range(bars):
                self._play_bar()

    def set_bar(self, index: int) -> None:
        """Move the clock forward to ``index``, playing every bar in between.

        Raises:
            ValueError: ``index`` is behind the clock or past the end.
        """
        with self._lock:
            if index < self._position:
                raise ValueError(
                    f"the clock only moves forward: at bar {self._position}, asked for {index}; "
                    "build a new emulator to replay from an earlier bar"
                )
            if index > self._position:
                self.advance(index - self._position)

    # --- orders -----------------------------------------------------------------

    def check_order(
        self,
        market_id: str,
        side: Side,
        type: OrderType,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        quote_order_qty: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Decimal:
        """Check an order against the market's filters without placing it.

        What Binance's test-order endpoint does: the filters, not the balance. A stop
        or take-profit order's ``stop_price`` is held to the price filter too.

        Returns:
            The base quantity (for a ``quote_order_qty`` market order, what the quote
            amount buys at the current price, rounded down to the lot step).

        Raises:
            Rejected: UNKNOWN_SYMBOL, MARKET_CLOSED, PRICE_FILTER, LOT_SIZE or NOTIONAL.
            ValueError: A combination of arguments no client should send.
        """
        with self._lock:
            rules = self.market(market_id).rules
            if self._position >= len(self._times):
                raise Rejected(Reason.MARKET_CLOSED, f"the series ended at bar {len(self._times)}")
            current = self.current_price(market_id)
        if type in LIMIT_TYPES:
            if price is None or quantity is None or quote_order_qty is not None:
                raise ValueError("a limit order needs price and quantity, and no quote_order_qty")
            _check_price(price, rules)
        elif price is not None:
            raise ValueError("a market order takes no price")
        if (type in STOP_TYPES) != (stop_price is not None):
            raise ValueError("stop and take-profit orders, and only they, need a stop_price")
        if stop_price is not None:
            _check_price(stop_price, rules)
        if type == "MARKET" and quote_order_qty is not None:
            if quantity is not None:
                raise ValueError("give a market order quantity or quote_order_qty, not both")
            quantity = _floor(quote_order_qty / current, rules.step_size)
        if quantity is None:
            raise ValueError("an order needs a quantity")
        _check_quantity(quantity, rules)
        if price is not None:
            notional = price * quantity
        elif stop_price is not None:
            notional = stop_price * quantity
        else:
            notional = quote_order_qty if quote_order_qty is not None else current * quantity
        if notional < rules.min_notional or (type in LIMIT_TYPES and notional > rules.max_notional):
            raise Rejected(
                Reason.NOTIONAL,
                f"notional {notional} outside [{rules.min_notional}, {rules.max_notional}]",
            )
        return quantity

    def place_order(
        self,
        market_id: str,
        side: Side,
        type: OrderType,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        quote_order_qty: Decimal | None = None,
        client_order_id: str | None = None,
        fill_fraction: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: str = "GTC",
        reduce_only: bool = False,
    ) -> Order:
        """Check, accept and match a new order against the bar in progress.

        Args:
            market_id: Binance market id.
            side: ``BUY`` or ``SELL``.
            type: Binance's order type (see `Order.type`).
            quantity: Base quantity (a market order may give ``quote_order_qty`` instead).
            price: Limit price (limit types only).
            quote_order_qty: Quote amount to spend or receive (market orders only).
            client_order_id: Caller's id; the venue makes one when None.
            fill_fraction: Most of the quantity filled per bar; the venue default when None.
            stop_price: Trigger price (stop-loss and take-profit types only).
            time_in_force: A ``LIMIT`` order's: ``GTC`` rests; ``IOC`` fills what it can
                now (its ``fill_fraction`` of the quantity, if marketable) and expires
                the rest; ``FOK`` fills whole now or expires whole (Binance's
                ``EXPIRED``, its balance released).
            reduce_only: A swap's order that may only reduce its position.

        Returns:
            The order after matching at the current price (it may already be filled).

        Raises:
            Rejected: UNKNOWN_SYMBOL, MARKET_CLOSED, PRICE_FILTER, LOT_SIZE, NOTIONAL,
                DUPLICATE_ORDER, INSUFFICIENT_BALANCE, WOULD_TAKE (a ``LIMIT_MAKER``
                that is marketable), WOULD_TRIGGER (a stop already reached), and for a
                swap MARGIN_INSUFFICIENT or REDUCE_ONLY (module docstring).
            ValueError: A combination of arguments no client should send (the Binance
                layer checks parameters before calling).
        """
        with self._lock:
            market = self.market(market_id)
            quantity = self.check_order(
                market_id,
                side,
                type,
                quantity=quantity,
                price=price,
                quote_order_qty=quote_order_qty,
                stop_price=stop_price,
            )
            current = market.bars.open[self._position]
            marketable = type in ("MARKET", "STOP_LOSS", "TAKE_PROFIT") or (
                price is not None and (current <= price if side == "BUY" else current >= price)
            )
            if type == "LIMIT_MAKER" and marketable:
                raise Rejected(
                    Reason.WOULD_TAKE, f"{side} at {price} would match the price now, {current}"
                )
            if stop_price is not None and _reached(type, side, stop_price, current, current):
                raise Rejected(
                    Reason.WOULD_TRIGGER,
                    f"{type} {side} at stop {stop_price} is reached by the price now, {current}",
                )
            if client_order_id is not None:
                for order in self._orders.values():
                    if (
                        order.market_id == market_id
                        and order.client_order_id == client_order_id
                        and order.status != "FILLED"
                    ):
                        raise Rejected(
                            Reason.DUPLICATE_ORDER,
                            f"order {order.order_id} has client id {client_order_id} "
                            f"and is {order.status}",
                        )
            if market.swap:
                asset, need, lock = market.quote, Decimal(0), Decimal(0)
                if reduce_only and not self._reduces(market.id, side, quantity):
                    amount = self._perps[market.id].amount
                    raise Rejected(
                        Reason.REDUCE_ONLY, f"{side} {quantity} would add to a position of {amount}"
                    )
                self._check_margin(market, side, quantity, price or stop_price or current)
            elif side == "BUY":
                asset = market.quote
                if price is not None:
                    need = _ceil8(price * quantity)
                else:
                    need = (
                        quote_order_qty
                        if quote_order_qty is not None
                        else _ceil8((stop_price or current) * quantity)
                    )
                lock = need if price is not None else Decimal(0)
            else:
                asset = market.base
                need = lock = quantity
            if self._free[asset] < need:
                raise Rejected(
                    Reason.INSUFFICIENT_BALANCE,
                    f"needs {need} {asset}, free {self._free[asset]}",
                )
            order_id = len(self._orders) + 1
            now = self._time_of(self._position)
            order = Order(
                order_id=order_id,
                client_order_id=client_order_id or f"emulator-{order_id}",
                market_id=market_id,
                side=side,
                type=type,
                quantity=quantity,
                price=price,
                quote_order_qty=quote_order_qty or Decimal(0),
                fill_fraction=self.fill_fraction if fill_fraction is None else fill_fraction,
                created_ms=now,
                updated_ms=now,
                locked=lock,
                stop_price=stop_price,
                time_in_force=time_in_force,
            )
            _check_rate("fill_fraction", order.fill_fraction, allow_zero=False)
            self._free[asset] -= lock
            self._locked[asset] += lock
            self._orders[order_id] = order
            if time_in_force == "FOK" and marketable:
                whole = self._allowance(order, market) >= order.quantity
                marketable = whole
            delay = 0
            if type == "MARKET":
                delay = arrival_bars(self._latency, self._interval_ms, order_id, client_order_id)
            if delay:  # on its way: it fills at the open of the bar it arrives in
                self._arrives[order_id] = self._position + delay
            elif marketable and stop_price is None:
                self._fill(order_id, current, is_maker=False, time_ms=now)
            if time_in_force in ("IOC", "FOK") and self._orders[order_id].is_open:
                return self._close(self._orders[order_id], "EXPIRED", now)
            return self._orders[order_id]

    def order(
        self, market_id: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        """Look an order up by venue id or client id (the latest order with that client id).

        Raises:
            Rejected: UNKNOWN_SYMBOL or NO_SUCH_ORDER.
        """
        with self._lock:
            self.market(market_id)
            found = self._find(market_id, order_id, client_order_id)
            if found is None:
                what = order_id if order_id is not None else client_order_id
                raise Rejected(Reason.NO_SUCH_ORDER, f"no order {what} in {market_id}")
            return found

    def cancel(
        self, market_id: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        """Cancel a working order and release what it held locked.

        Raises:
            Rejected: UNKNOWN_SYMBOL, or NOT_CANCELABLE when no such order is working
                (unknown, filled, cancelled or expired: Binance does not tell them apart).
        """
        with self._lock:
            self.market(market_id)
            found = self._find(market_id, order_id, client_order_id)
            if found is None or not found.is_open:
                what = order_id if order_id is not None else client_order_id
                state = "unknown" if found is None else found.status
                raise Rejected(Reason.NOT_CANCELABLE, f"order {what} in {market_id} is {state}")
            return self._close(found, "CANCELED", self._time_of(self._position))

    def open_orders(self, market_id: str | None = None) -> list[Order]:
        """Working orders, oldest first, of one market or all."""
        with self._lock:
            if market_id is not None:
                self.market(market_id)
            return [
                o
                for o in self._orders.values()
                if o.is_open and (market_id is None or o.market_id == market_id)
            ]

    def orders(self, market_id: str | None = None) -> list[Order]:
        """Every order ever accepted, oldest first, of one market or all."""
        with self._lock:
            return [
                o for o in self._orders.values() if market_id is None or o.market_id == market_id
            ]

    def trades(self, market_id: str | None = None) -> list[Trade]:
        """Every fill, oldest first, of one market or all."""
        with self._lock:
            return [t for t in self._trades if market_id is None or t.market_id == market_id]

    def balances(self) -> dict[str, Balance]:
        """Balances of every asset the venue knows."""
        with self._lock:
            return {a: Balance(self._free[a], self._locked[a]) for a in sorted(self._free)}

    def balance(self, asset: str) -> Balance:
        """One asset's balance (zero for an asset never held)."""
        with self._lock:
            return Balance(self._free.get(asset, Decimal(0)), self._locked.get(asset, Decimal(0)))

    # --- perpetual swaps ----------------------------------------------------------

    def perp_position(self, market_id: str) -> PerpPosition:
        """Return a swap market's position (flat when never traded).

        Raises:
            Rejected: UNKNOWN_SYMBOL (no such market, or not a swap).
        """
        with self._lock:
            found = self._perps.get(market_id)
            if found is None:
                raise Rejected(Reason.UNKNOWN_SYMBOL, f"no swap market {market_id}")
            return found

    def perp_positions(self) -> list[PerpPosition]:
        """Every swap market's position, flat ones included."""
        with self._lock:
            return list(self._perps.values())

    def set_leverage(self, market_id: str, leverage: int) -> PerpPosition:
        """Set a swap market's leverage (1 to 125), the initial margin of its new orders.

        Raises:
            Rejected: UNKNOWN_SYMBOL, or BAD_LEVERAGE out of range.
        """
        with self._lock:
            found = self.perp_position(market_id)
            if not 1 <= leverage <= 125:
                raise Rejected(Reason.BAD_LEVERAGE, f"leverage {leverage} not in [1, 125]")
            self._perps[market_id] = replace(found, leverage=leverage)
            return self._perps[market_id]

    def set_margin_type(self, market_id: str, margin_type: str) -> PerpPosition:
        """Set a swap market's margin type (``CROSSED`` or ``ISOLATED``).

        Raises:
            Rejected: UNKNOWN_SYMBOL.
            ValueError: Another margin type.
        """
        if margin_type not in ("CROSSED", "ISOLATED"):
            raise ValueError(f"margin type is CROSSED or ISOLATED, was {margin_type!r}")
        with self._lock:
            found = self.perp_position(market_id)
            self._perps[market_id] = replace(found, margin_type=margin_type)  # type: ignore[arg-type]
            return self._perps[market_id]

    def unrealized_pnl(self, market_id: str) -> Decimal:
        """Return a swap position's unrealized profit at the current price (8 decimals)."""
        with self._lock:
            held = self.perp_position(market_id)
            return _round8(held.amount * (self.current_price(market_id) - held.entry_price))

    def initial_margin(self, market_id: str) -> Decimal:
        """Return a swap position's initial margin at the current price (8 decimals)."""
        with self._lock:
            held = self.perp_position(market_id)
            notional = abs(held.amount) * self.current_price(market_id)
            return _round8(notional / held.leverage)

    def available(self, asset: str) -> Decimal:
        """Return what new swap positions settled in ``asset`` may use as margin."""
        with self._lock:
            free = self._free.get(asset, Decimal(0))
            for market_id in self._perps:
                if self._markets[market_id].quote == asset:
                    free += self.unrealized_pnl(market_id) - self.initial_margin(market_id)
            return free

    def funding_payments(self) -> list[tuple[int, str, Decimal, Decimal]]:
        """Every funding payment made: ``(time_ms, market_id, rate, amount)`` (amount
        received, negative when paid), oldest first."""
        with self._lock:
            return list(self._payments)

    def _reduces(self, market_id: str, side: Side, quantity: Decimal) -> bool:
        amount = self._perps[market_id].amount
        signed = quantity if side == "BUY" else -quantity
        return amount * signed < 0 and abs(signed) <= abs(amount)

    def _check_margin(self, market: Market, side: Side, quantity: Decimal, price: Decimal) -> None:
        held = self._perps[market.id]
        signed = quantity if side == "BUY" else -quantity
        added = abs(held.amount + signed) - abs(held.amount)
        if added <= 0:
            return
        need = _ceil8(added * price / held.leverage)
        available = self.available(market.quote)
        if need > available:
            raise Rejected(
                Reason.MARGIN_INSUFFICIENT,
                f"needs {need} {market.quote} of margin at leverage {held.leverage}, "
                f"available {available}",
            )

    def _trade_position(
        self, market_id: str, side: Side, qty: Decimal, price: Decimal, time_ms: int
    ) -> Decimal:
        """Move a swap's position by a fill; return the profit it realized."""
        held = self._perps[market_id]
        amount, entry = held.amount, held.entry_price
        signed = qty if side == "BUY" else -qty
        realized = Decimal(0)
        if amount * signed < 0:
            closed = min(abs(amount), qty)
            direction = 1 if amount > 0 else -1
            realized = _round8(closed * (price - entry) * direction)
        after = amount + signed
        if after == 0:
            entry = Decimal(0)
        elif amount * after < 0 or amount == 0:
            entry = price  # opened (or flipped): the rest opens at the fill price
        elif abs(after) > abs(amount):
            entry = (abs(amount) * entry + qty * price) / abs(after)
        self._perps[market_id] = replace(held, amount=after, entry_price=entry, updated_ms=time_ms)
        return realized

    def _pay_funding(self, bar: int) -> None:
        """Pay the funding of the funding times bar ``bar``'s interval holds (module
        docstring), at its open, on the positions held as it opens."""
        start = self._times[bar]
        end = start + self._interval_ms
        for market_id, held in self._perps.items():
            times, rates = self._funding.get(market_id, ([], []))
            if held.amount == 0 or not times:
                continue
            market = self._markets[market_id]
            price = market.bars.open[bar]
            first = bisect.bisect_left(times, start)
            last = bisect.bisect_left(times, end)
            for at, rate in zip(times[first:last], rates[first:last], strict=True):
                amount = _round8(-held.amount * price * rate)
                self._free[market.quote] += amount
                self._payments.append((at, market_id, rate, amount))

    # --- matching -----------------------------------------------------------------

    def _play_bar(self) -> None:
        bar = self._position
        working = [o for o in self._orders.values() if o.is_open]
        close_ms = self._times[bar] + self._interval_ms - 1
        triggered = {o.order_id for o in working if o.is_stop and not o.triggered}
        for order_id in triggered:
            self._trigger(self._orders[order_id], bar, close_ms)
        for order in working:
            if order.order_id in triggered or order.price is None or not order.is_working:
                continue
            bars = self._markets[order.market_id].bars
            if (order.side == "BUY" and bars.low[bar] <= order.price) or (
                order.side == "SELL" and bars.high[bar] >= order.price
            ):
                self._fill(order.order_id, order.price, is_maker=True, time_ms=close_ms)
        self._position += 1
        if self._position == len(self._times):
            return
        opened = self._time_of(self._position)
        self._pay_funding(self._position)
        for order in working:
            current = self._orders[order.order_id]
            if (
                current.is_open
                and current.is_working
                and current.price is None
                and self._arrives.get(current.order_id, 0) <= self._position
            ):
                price = self._markets[current.market_id].bars.open[self._position]
                self._fill(current.order_id, price, is_maker=False, time_ms=opened)

    def _fill(self, order_id: int, price: Decimal, *, is_maker: bool, time_ms: int) -> None:
        order = self._orders[order_id]
        market = self._markets[order.market_id]
        qty = self._allowance(order, market)
        if qty <= 0:
            return
        rate = self.maker_fee if is_maker else self.taker_fee
        final = qty == order.remaining
        locked = order.locked
        realized = Decimal(0)
        if market.swap:
            cost = _round8(price * qty)
            commission = _round8(cost * rate)
            realized = self._trade_position(market.id, order.side, qty, price, time_ms)
            self._free[market.quote] += realized - commission
            commission_asset = market.quote
        elif order.side == "BUY":
            cost = _round8(price * qty)
            if order.price is not None:
                release = locked if final else min(locked, _round8(order.price * qty))
                locked -= release
                self._locked[market.quote] -= release
                self._free[market.quote] += release
            if self._free[market.quote] < cost:
                # Only a market buy gets here: its price was not known when it arrived.
                self._orders[order_id] = replace(order, locked=locked)
                self._close(self._orders[order_id], "EXPIRED", time_ms)
                return
            commission = _round8(qty * rate)
            self._free[market.quote] -= cost
            self._free[market.base] += qty - commission
            commission_asset = market.base
        else:
            cost = _round8(price * qty)
            commission = _round8(cost * rate)
            locked -= qty
            self._locked[market.base] -= qty
            self._free[market.quote] += cost - commission
            commission_asset = market.quote
        trade = Trade(
            trade_id=len(self._trades) + 1,
            order_id=order_id,
            market_id=order.market_id,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=cost,
            commission=commission,
            commission_asset=commission_asset,
            time_ms=time_ms,
            is_maker=is_maker,
            realized_pnl=realized,
        )
        self._trades.append(trade)
        self._use.by_order[order_id] = self._use.by_order.get(order_id, Decimal(0)) + qty
        self._use.by_market[order.market_id] = (
            self._use.by_market.get(order.market_id, Decimal(0)) + qty
        )
        executed = order.executed_qty + qty
        self._orders[order_id] = replace(
            order,
            executed_qty=executed,
            cumulative_quote_qty=order.cumulative_quote_qty + cost,
            status="FILLED" if executed == order.quantity else "PARTIALLY_FILLED",
            locked=locked,
            updated_ms=time_ms,
            trade_ids=(*order.trade_ids, trade.trade_id),
        )

    def _trigger(self, order: Order, bar: int, close_ms: int) -> None:
        bars = self._markets[order.market_id].bars
        assert order.stop_price is not None
        stop, open_ = order.stop_price, bars.open[bar]
        if not _reached(order.type, order.side, stop, bars.low[bar], bars.high[bar]):
            return
        # The first price of the bar at or beyond the stop: the open if it gapped past.
        falls = _falls(order.type, order.side)
        at = min(open_, stop) if falls else max(open_, stop)
        self._orders[order.order_id] = replace(order, triggered=True, updated_ms=close_ms)
        if order.price is None or (at <= order.price if order.side == "BUY" else at >= order.price):
            self._fill(order.order_id, at, is_maker=False, time_ms=close_ms)

    def _allowance(self, order: Order, market: Market) -> Decimal:
        if self._use.bar != self._position:
            self._use = _BarUse(bar=self._position)
        step = market.rules.step_size
        per_bar = max(step, _floor(order.fill_fraction * order.quantity, step))
        allowed = min(order.remaining, per_bar - self._use.by_order.get(order.order_id, Decimal(0)))
        if self.volume_participation is not None:
            cap = _floor(market.bars.volume[self._position] * self.volume_participation, step)
            allowed = min(allowed, cap - self._use.by_market.get(market.id, Decimal(0)))
        return allowed

    def _close(self, order: Order, status: OrderStatus, time_ms: int) -> Order:
        market = self._markets[order.market_id]
        asset = market.quote if order.side == "BUY" or market.swap else market.base
        self._locked[asset] -= order.locked
        self._free[asset] += order.locked
        closed = replace(order, status=status, locked=Decimal(0), updated_ms=time_ms)
        self._orders[order.order_id] = closed
        return closed

    def _find(
        self, market_id: str, order_id: int | None, client_order_id: str | None
    ) -> Order | None:
        if order_id is not None:
            found = self._orders.get(order_id)
            return found if found is not None and found.market_id == market_id else None
        matches = [
            o
            for o in self._orders.values()
            if o.market_id == market_id and o.client_order_id == client_order_id
        ]
        return matches[-1] if matches else None

    def _time_of(self, position: int) -> int:
        if position < len(self._times):
            return self._times[position]
        return self._times[-1] + self._interval_ms
