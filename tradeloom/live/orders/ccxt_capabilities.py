"""What an exchange can do for one market, asked, not assumed: ccxt's ``has`` and the market's type.

ccxt's ``exchange.has`` says what an exchange class implements, for all its market types
at once. ccxt's ``binance`` says ``fetchOrderTrades: True`` and then raises ``NotSupported:
binance fetchOrderTrades() supports spot markets only`` for a USD-M swap: a live
perpetual that had to count an order's trades (a restart finding an order filled while
it was down) died there. So what a market can do is `Capabilities.of`: the operations
``has`` lists (``True`` or ``"emulated"``), less those `REFUSED` knows the exchange
refuses for the market's type (``spot``, ``swap`` or ``future``), as ccxt's own code
raises them.

Every ccxt call `CcxtVenue` makes on the order and restart paths goes through
`MarketCalls`, which asks the table and calls the method the market has, or its fallback:

=====================  ==================================================================
operation              where the market has not got it
=====================  ==================================================================
``fetchOrderTrades``   ``fetchMyTrades(symbol, since)`` from the order's time at the
                       venue, page after page while a page is full, its trades kept by
                       the order's id (`MarketCalls.order_trades`)
``fetchOrder``         ``fetchOrders(symbol)``, the order of that id or client order id
``fetchOpenOrders``    ``fetchOrders(symbol)``, those still open
``fetchPositions``     ``fetchPosition(symbol)``
``createOrders``       each order of a batch sent alone (``createOrder``), with the same
                       journal rows (`tradeloom.live.orders.order_batch`)
``cancelOrders``       each cancel alone (``cancelOrder``)
``createOrder``,       none: a live run needs each (a swap: ``fetchPositions`` or
``cancelOrder``,       ``fetchPosition``, ``setLeverage`` and ``setMarginMode`` too), and
``fetchMyTrades``,     a market without one is refused at start in one line (`missing`)
``fetchBalance``,
``fetchTicker``
=====================  ==================================================================

``fetchMyTrades`` reads every trade of the market (a tick's poll) and stands in for
``fetchOrderTrades``; a market that has neither could not count a restarted order's
trades, so it is refused at start rather than at the first restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tradeloom.errors import UserError

__all__ = [
    "FALLBACKS",
    "REFUSED",
    "Capabilities",
    "MarketCalls",
    "MarketType",
    "Unsupported",
    "market_type",
]

MarketType = Literal["spot", "swap", "future"]

REFUSED: Mapping[str, Mapping[MarketType, frozenset[str]]] = {
    # ccxt's binance (and its subclasses binanceusdm, binancecoinm, binanceus): "binance
    # fetchOrderTrades() supports spot markets only", "fetchPositions() supports linear and
    # inverse contracts only", "fetchPosition() supports option markets only",
    # "setLeverage() / setMarginMode() support linear and inverse contracts only"
    # "createOrders() does not support spot orders", "cancelOrders is only supported for
    # swap markets"
    "binance": {
        "spot": frozenset(
            {
                "fetchPositions",
                "fetchPosition",
                "setLeverage",
                "setMarginMode",
                "createOrders",
                "cancelOrders",
            }
        ),
        "swap": frozenset({"fetchOrderTrades", "fetchPosition"}),
        "future": frozenset({"fetchOrderTrades", "fetchPosition"}),
    },
}
"""What an exchange's ccxt class refuses for a market type though its ``has`` lists it,
by the class (a subclass inherits its parent's entry)."""

FALLBACKS: Mapping[str, tuple[str, ...]] = {
    "fetchOrderTrades": ("fetchMyTrades",),
    "fetchOrder": ("fetchOrders",),
    "fetchOpenOrders": ("fetchOrders",),
    "fetchPositions": ("fetchPosition",),
}
"""Each operation with a fallback, and what the fallback calls."""

_REQUIRED = ("createOrder", "cancelOrder", "fetchMyTrades", "fetchBalance", "fetchTicker")
_SWAP_REQUIRED = ("setLeverage", "setMarginMode")
_TRADE_PAGE = 1000


class Unsupported(UserError):
    """An operation the market has not got, nor a fallback for (one line: which)."""


def market_type(market: Mapping[str, Any]) -> MarketType:
    """Return a ccxt market's type as the table knows it (a margin market trades as spot)."""
    kind = str(market.get("type") or "")
    if kind in ("swap", "future"):
        return kind  # type: ignore[return-value]
    if market.get("swap"):
        return "swap"
    if market.get("future"):
        return "future"
    return "spot"


@dataclass(frozen=True)
class Capabilities:
    """What one exchange can do for one market type.

    Attributes:
        exchange: The ccxt exchange's id (for messages).
        type: The market's type.
        operations: The operations it can call (ccxt's unified names: ``fetchOrder``...).
    """

    exchange: str
    type: MarketType
    operations: frozenset[str]

    @classmethod
    def of(cls, client: Any, market: Mapping[str, Any]) -> Capabilities:
        """Return what ``client`` can do for ``market`` (``client.market(symbol)``)."""
        kind = market_type(market)
        has = getattr(client, "has", {}) or {}
        listed = {name for name, value in has.items() if value is True or value == "emulated"}
        refused: set[str] = set()
        for klass in type(client).__mro__:
            refused |= REFUSED.get(klass.__name__, {}).get(kind, frozenset())
        return cls(str(getattr(client, "id", "")), kind, frozenset(listed - refused))

    def can(self, operation: str) -> bool:
        """Whether the market has ``operation`` itself."""
        return operation in self.operations

    def can_do(self, operation: str) -> bool:
        """Whether the market has ``operation`` or the fallback `FALLBACKS` names."""
        return self.can(operation) or any(self.can(f) for f in FALLBACKS.get(operation, ()))

    def missing(self) -> list[str]:
        """Return the operations a live run needs that the market has no way to do."""
        wanted = [*_REQUIRED, "fetchOrder", "fetchOpenOrders"]
        if self.type != "spot":
            wanted += ["fetchPositions", *_SWAP_REQUIRED]
        return [op for op in wanted if not self.can_do(op)]

    def describe(self, symbol: str) -> str:
        """Name the market as messages do: ``binance swap BTC/USDT:USDT``."""
        return f"{self.exchange} {self.type} {symbol}"


Read = Callable[..., Any]
"""``read(operation, call, *args)``: a call made with the venue's retries."""


class MarketCalls:
    """One market's ccxt calls on the order and restart paths, each through `Capabilities`.

    Args:
        client: The ccxt client.
        symbol: The market's unified symbol.
        capabilities: What the market can do (`Capabilities.of`).
        read: Makes a read with retries (``CcxtVenue``'s): ``read(operation, call, *args)``.
    """

    def __init__(self, client: Any, symbol: str, capabilities: Capabilities, read: Read) -> None:
        self.client = client
        self.symbol = symbol
        self.capabilities = capabilities
        self._read = read

    def _unsupported(self, operation: str) -> Unsupported:
        fallbacks = FALLBACKS.get(operation, ())
        also = f" nor {' nor '.join(fallbacks)}" if fallbacks else ""
        return Unsupported(
            f"{self.capabilities.describe(self.symbol)}: the exchange has no {operation}{also}"
        )

    def fetch_order(self, venue_id: str | None, client_id: str | None) -> dict[str, Any]:
        """Look an order up by its venue id, or by its client order id.

        Raises:
            ccxt.OrderNotFound: The venue has no such order.
            Unsupported: Neither ``fetchOrder`` nor ``fetchOrders``.
        """
        import ccxt

        if self.capabilities.can("fetchOrder"):
            params = {} if venue_id is not None else {"clientOrderId": client_id}
            found: dict[str, Any] = self._read(
                "fetch_order", self.client.fetch_order, venue_id, self.symbol, params
            )
            return found
        if not self.capabilities.can("fetchOrders"):
            raise self._unsupported("fetchOrder")
        for order in self._read("fetch_orders", self.client.fetch_orders, self.symbol):
            if (venue_id is not None and str(order.get("id")) == venue_id) or (
                venue_id is None and str(order.get("clientOrderId")) == client_id
            ):
                return dict(order)
        raise ccxt.OrderNotFound(f"{self.client.id} has no order {venue_id or client_id}")

    def fetch_open_orders(self) -> list[dict[str, Any]]:
        """Return the market's working orders.

        Raises:
            Unsupported: Neither ``fetchOpenOrders`` nor ``fetchOrders``.
        """
        if self.capabilities.can("fetchOpenOrders"):
            listed: list[dict[str, Any]] = self._read(
                "fetch_open_orders", self.client.fetch_open_orders, self.symbol
            )
            return listed
        if not self.capabilities.can("fetchOrders"):
            raise self._unsupported("fetchOpenOrders")
        every = self._read("fetch_orders", self.client.fetch_orders, self.symbol)
        return [o for o in every if o.get("status") == "open"]

    def order_trades(self, venue_id: str, since: int | None) -> list[dict[str, Any]]:
        """Return the trades of the order ``venue_id``.

        Args:
            venue_id: The venue's id of the order.
            since: When the venue made the order (ms, the venue's clock), where known: the
                fallback reads the market's trades from then on (None: its latest page).

        Raises:
            Unsupported: Neither ``fetchOrderTrades`` nor ``fetchMyTrades``.
        """
        if self.capabilities.can("fetchOrderTrades"):
            trades: list[dict[str, Any]] = self._read(
                "fetch_order_trades",
                self.client.fetch_order_trades,
                venue_id,
                self.symbol,
                None,
                _TRADE_PAGE,
            )
            return trades
        if not self.capabilities.can("fetchMyTrades"):
            raise self._unsupported("fetchOrderTrades")
        found: dict[str, dict[str, Any]] = {}
        start = since
        while True:
            page = self._read(
                "fetch_my_trades", self.client.fetch_my_trades, self.symbol, start, _TRADE_PAGE
            )
            for trade in page:
                if str(trade.get("order")) == venue_id:
                    found[str(trade.get("id"))] = trade
            stamps = [t["timestamp"] for t in page if isinstance(t.get("timestamp"), int)]
            if start is None or len(page) < _TRADE_PAGE or not stamps or max(stamps) <= start:
                return list(found.values())
            start = max(stamps)  # the same millisecond again: its trades are kept by id

    def positions(self) -> list[dict[str, Any]]:
        """Return the market's position rows (``fetchPositions``, else ``fetchPosition``).

        Raises:
            Unsupported: Neither.
        """
        if self.capabilities.can("fetchPositions"):
            listed: list[dict[str, Any]] = self._read(
                "fetch_positions", self.client.fetch_positions, [self.symbol]
            )
            return listed
        if not self.capabilities.can("fetchPosition"):
            raise self._unsupported("fetchPositions")
        one = self._read("fetch_position", self.client.fetch_position, self.symbol)
        return [] if one is None else [one]

    def require(self, operation: str) -> None:
        """Refuse an operation the market has not got (no fallback).

        Raises:
            Unsupported: One line naming the market and the operation.
        """
        if not self.capabilities.can(operation):
            raise self._unsupported(operation)

    def create_order(
        self, kind: str, side: str, amount: float, price: float | None, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Send one order, once: no retry (`CcxtVenue.submit` classifies what it raises)."""
        self.require("createOrder")
        answer: dict[str, Any] = self.client.create_order(
            self.symbol, kind, side, amount, price, params
        )
        return answer

    def create_orders(self, children: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send several orders in one request, once: no retry (`OrderBatch` classifies
        what it raises for each child). Each child is ccxt's ``createOrders`` item:
        ``symbol``, ``type``, ``side``, ``amount``, ``price``, ``params``."""
        self.require("createOrders")
        answers: list[dict[str, Any]] = self.client.create_orders(
            children, {"maxRetriesOnFailure": 0}
        )
        return answers

    def cancel_orders(self, client_ids: list[str]) -> list[dict[str, Any]]:
        """Cancel several of the market's orders by client order id in one request
        (retried: idempotent)."""
        self.require("cancelOrders")
        params = {"clientOrderIds": client_ids}
        answers: list[dict[str, Any]] = self._read(
            "cancel_orders", self.client.cancel_orders, [], self.symbol, params
        )
        return answers

    def cancel_order(self, venue_id: str | None, client_id: str) -> dict[str, Any]:
        """Cancel an order by its venue id, or by its client order id (retried: idempotent)."""
        self.require("cancelOrder")
        params = {} if venue_id is not None else {"clientOrderId": client_id}
        answer: dict[str, Any] = self._read(
            "cancel_order", self.client.cancel_order, venue_id, self.symbol, params
        )
        return answer

    def my_trades(
        self, since: int | None, limit: int, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Return a page of the market's trades (``fetchMyTrades``)."""
        self.require("fetchMyTrades")
        page: list[dict[str, Any]] = self._read(
            "fetch_my_trades", self.client.fetch_my_trades, self.symbol, since, limit, params
        )
        return page

    def balance(self) -> dict[str, Any]:
        """Return the account's balance; a contract market's: its margin account's."""
        self.require("fetchBalance")
        if self.capabilities.type == "spot":
            found: dict[str, Any] = self._read("fetch_balance", self.client.fetch_balance)
        else:
            params = {"type": self.capabilities.type}
            found = self._read("fetch_balance", self.client.fetch_balance, params)
        return found

    def set_leverage(self, leverage: int) -> None:
        """Set a contract market's leverage (idempotent: retried as a read)."""
        self.require("setLeverage")
        self._read("set_leverage", self.client.set_leverage, leverage, self.symbol)

    def set_margin_mode(self, mode: str) -> None:
        """Set a contract market's margin mode (idempotent: retried as a read)."""
        self.require("setMarginMode")
        self._read("set_margin_mode", self.client.set_margin_mode, mode, self.symbol)

    def ticker(self) -> dict[str, Any]:
        """Return the market's ticker."""
        self.require("fetchTicker")
        found: dict[str, Any] = self._read("fetch_ticker", self.client.fetch_ticker, self.symbol)
        return found
