"""The emulated venue's value objects: markets and their rules, orders, trades, balances.

All frozen: the exchange replaces an order's record when it changes, so a record
handed to a caller never moves under its feet.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from tradeloom.testing.emulator.bars import BarSeries

__all__ = [
    "ASSET_PRECISION",
    "LIMIT_TYPES",
    "OPEN_STATUSES",
    "STOP_TYPES",
    "Balance",
    "BookProfile",
    "Kline",
    "Market",
    "MarketRules",
    "Order",
    "OrderStatus",
    "OrderType",
    "PerpPosition",
    "Reason",
    "Rejected",
    "Side",
    "Trade",
    "kline_of",
]

Side = Literal["BUY", "SELL"]
OrderType = Literal[
    "MARKET",
    "LIMIT",
    "LIMIT_MAKER",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
OrderStatus = Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"]

ASSET_PRECISION = Decimal("0.00000001")
"""Binance keeps balances, costs and commissions to 8 decimals."""

OPEN_STATUSES: tuple[OrderStatus, ...] = ("NEW", "PARTIALLY_FILLED")
"""Statuses of an order still working."""

STOP_TYPES: frozenset[str] = frozenset(
    {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
)
"""Order types held off the book until the price reaches their ``stopPrice``."""

LIMIT_TYPES: frozenset[str] = frozenset(
    {"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}
)
"""Order types with a limit price."""


class Reason(StrEnum):
    """Why the venue refused a request; `binance_wire.py` maps each to Binance's code."""

    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    PRICE_FILTER = "PRICE_FILTER"
    LOT_SIZE = "LOT_SIZE"
    NOTIONAL = "NOTIONAL"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    MARKET_CLOSED = "MARKET_CLOSED"
    NO_SUCH_ORDER = "NO_SUCH_ORDER"
    NOT_CANCELABLE = "NOT_CANCELABLE"
    WOULD_TAKE = "WOULD_TAKE"
    WOULD_TRIGGER = "WOULD_TRIGGER"
    MARGIN_INSUFFICIENT = "MARGIN_INSUFFICIENT"
    REDUCE_ONLY = "REDUCE_ONLY"
    BAD_LEVERAGE = "BAD_LEVERAGE"


class Rejected(Exception):
    """The venue refused a request; nothing changed.

    Attributes:
        reason: Which rule refused it.
        detail: The values involved, for test failure messages.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class MarketRules:
    """A market's trading rules: Binance's PRICE_FILTER, LOT_SIZE and NOTIONAL filters.

    The defaults are those of Binance's BTCUSDT. Bar prices are not held to
    ``tick_size`` (synthetic bars rarely sit on a tick); order prices are.
    """

    tick_size: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")

    def __post_init__(self) -> None:
        for name in ("tick_size", "min_price", "step_size", "min_qty", "min_notional"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or value <= 0:
                raise ValueError(f"MarketRules.{name} must be a positive Decimal, was {value!r}")


@dataclass(frozen=True)
class BookProfile:
    """The shape of the order book a venue quotes around its current price.

    The book is a deterministic function of the price now (the open of the bar in
    progress) and this profile, so a test knows what it holds at any bar: the best
    bid and ask sit ``spread_bps / 2`` below and above the price, each further level
    ``level_gap_bps`` beyond the one before, level ``k`` (from 0) holding
    ``size * growth ** k`` of the base asset. Prices are rounded away from the price
    to the market's tick (bids down, asks up) and quantities down to its lot step.

    Attributes:
        spread_bps: Best ask minus best bid, in basis points of the price (> 0).
        levels: Levels on each side (1 .. 5000, Binance's deepest depth request).
        level_gap_bps: Distance between consecutive levels, in basis points (> 0).
        size: Base quantity at the best level (> 0).
        growth: Each level holds this multiple of the one before (> 0; 1: flat).
        tilt: Lean of the book, in (-1, 1): bid sizes are multiplied by ``1 + tilt``
            and ask sizes by ``1 - tilt`` (0: as many buyers as sellers queue).
    """

    spread_bps: Decimal = Decimal(2)
    levels: int = 20
    level_gap_bps: Decimal = Decimal(1)
    size: Decimal = Decimal(1)
    growth: Decimal = Decimal("1.5")
    tilt: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for name in ("spread_bps", "level_gap_bps", "size", "growth"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value > 0:
                raise ValueError(f"BookProfile.{name} must be a positive Decimal, was {value!r}")
        if not isinstance(self.levels, int) or not 1 <= self.levels <= 5000:
            raise ValueError(f"BookProfile.levels must be an int in [1, 5000], was {self.levels!r}")
        if not isinstance(self.tilt, Decimal) or not -1 < self.tilt < 1:
            raise ValueError(f"BookProfile.tilt must be a Decimal in (-1, 1), was {self.tilt!r}")


@dataclass(frozen=True)
class Market:
    """One tradable pair and the bars it replays.

    Attributes:
        symbol: Unified symbol, ``BASE/QUOTE`` (``BTC/USDT``), or ``BASE/QUOTE:QUOTE``
            for a perpetual swap (``BTC/USDT:USDT``).
        base: Base asset (``BTC``).
        quote: Quote asset (``USDT``).
        bars: The series replayed.
        rules: Price, quantity and notional filters.
    """

    symbol: str
    base: str
    quote: str
    bars: BarSeries
    rules: MarketRules

    @property
    def id(self) -> str:
        """Binance's market id: base and quote run together (``BTCUSDT``)."""
        return self.base + self.quote

    @property
    def swap(self) -> bool:
        """Whether it is a perpetual swap settled in its quote (``BTC/USDT:USDT``), served
        by the USD-M futures endpoints (``/fapi``)."""
        return ":" in self.symbol


@dataclass(frozen=True)
class Balance:
    """One asset's balance: ``free`` to trade, ``locked`` by working orders."""

    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        """Free plus locked."""
        return self.free + self.locked


@dataclass(frozen=True)
class Order:
    """The venue's record of an order at one moment; the exchange replaces it on change.

    Attributes:
        order_id: The venue's id, unique across markets, increasing from 1.
        client_order_id: The caller's id (``newClientOrderId``), or one the venue made.
        market_id: Binance market id (``BTCUSDT``).
        side: ``BUY`` or ``SELL``.
        type: Binance's order type (``MARKET``, ``LIMIT``, ``LIMIT_MAKER``,
            ``STOP_LOSS``, ``STOP_LOSS_LIMIT``, ``TAKE_PROFIT``, ``TAKE_PROFIT_LIMIT``).
        quantity: Ordered base quantity (for a ``quoteOrderQty`` market order, what
            that quote amount bought at the price when it arrived, rounded down to
            the lot step).
        price: Limit price; None for a market order.
        quote_order_qty: The quote amount a market order was sent with, else 0.
        fill_fraction: Most of ``quantity`` it may fill per bar.
        status: Binance's order status.
        executed_qty: Base quantity filled so far.
        cumulative_quote_qty: Quote value of the fills so far.
        locked: Balance it still holds locked (quote for a limit buy, base for a sell).
        created_ms: Market time it arrived, epoch milliseconds.
        updated_ms: Market time of its last change.
        trade_ids: Its fills, in order.
        stop_price: The trigger price of a stop or take-profit order, else None.
        triggered: A stop or take-profit order whose trigger price was reached: it
            now works as a market or limit order (Binance's ``isWorking``).
        time_in_force: A limit order's ``GTC``, ``IOC`` (fills what it can on arrival,
            the rest expires) or ``FOK`` (fills whole on arrival or expires whole).
    """

    order_id: int
    client_order_id: str
    market_id: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    quote_order_qty: Decimal
    fill_fraction: Decimal
    created_ms: int
    updated_ms: int
    status: OrderStatus = "NEW"
    executed_qty: Decimal = Decimal(0)
    cumulative_quote_qty: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)
    trade_ids: tuple[int, ...] = ()
    stop_price: Decimal | None = None
    triggered: bool = False
    time_in_force: str = "GTC"

    @property
    def is_stop(self) -> bool:
        """A stop-loss or take-profit order (triggered or not)."""
        return self.type in STOP_TYPES

    @property
    def is_working(self) -> bool:
        """On the book or filling: not a stop still waiting for its trigger price."""
        return not self.is_stop or self.triggered

    @property
    def is_open(self) -> bool:
        """Still working: new or partially filled."""
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        """Quantity not filled yet."""
        return self.quantity - self.executed_qty


@dataclass(frozen=True)
class Trade:
    """One fill.

    Attributes:
        trade_id: Unique across the venue, increasing from 1.
        order_id: The order filled.
        market_id: Binance market id.
        side: The order's side.
        price: Fill price.
        qty: Base quantity.
        quote_qty: ``price * qty`` rounded to 8 decimals: what changed hands in quote.
        commission: Fee charged, in ``commission_asset``.
        commission_asset: Base for a buy, quote for a sell (a swap's: always quote).
        time_ms: Market time of the fill.
        is_maker: True when a resting limit order filled.
        realized_pnl: A swap's profit realized by the part that reduced its position.
    """

    trade_id: int
    order_id: int
    market_id: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool
    realized_pnl: Decimal = Decimal(0)


@dataclass(frozen=True)
class PerpPosition:
    """A perpetual swap's position (one-way mode: one signed amount per market).

    Attributes:
        market_id: Binance market id.
        amount: Signed contracts (a contract is one unit of the base): > 0 long, < 0 short.
        entry_price: The average price of the open amount (0 when flat).
        leverage: The market's leverage setting (initial margin = notional / leverage).
        margin_type: ``CROSSED`` or ``ISOLATED`` (a setting only: margin is the wallet's).
        updated_ms: Market time of the last change.
    """

    market_id: str
    amount: Decimal = Decimal(0)
    entry_price: Decimal = Decimal(0)
    leverage: int = 20
    margin_type: Literal["CROSSED", "ISOLATED"] = "CROSSED"
    updated_ms: int = 0


@dataclass(frozen=True)
class Kline:
    """One bar as the venue shows it now; the bar in progress shows only its open."""

    open_ms: int
    close_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool


def kline_of(bars: BarSeries, i: int, *, closed: bool) -> Kline:
    """Return bar ``i`` as a kline: whole once ``closed``, else its open alone (in progress)."""
    close_ms = bars.open_ms[i] + bars.interval_ms - 1
    if closed:
        return Kline(
            bars.open_ms[i],
            close_ms,
            bars.open[i],
            bars.high[i],
            bars.low[i],
            bars.close[i],
            bars.volume[i],
            True,
        )
    price = bars.open[i]
    return Kline(bars.open_ms[i], close_ms, price, price, price, price, Decimal(0), False)
