"""A loopback Binance spot exchange for tests: replays bars, matches orders, injects faults."""

from __future__ import annotations

from tradeloom.testing.emulator.bars import BarSeries
from tradeloom.testing.emulator.book import Level, OrderBook, book_levels
from tradeloom.testing.emulator.client import CLIENT_OPTIONS, LoopbackBinance, loopback_client
from tradeloom.testing.emulator.emulator import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    ExchangeEmulator,
)
from tradeloom.testing.emulator.exchange import Exchange
from tradeloom.testing.emulator.faults import (
    BatchFault,
    DoubledTrade,
    DropConnection,
    Fault,
    FaultSchedule,
    Latency,
    PartialFill,
    RateLimited,
    Reject,
    ServerError,
    Timeout,
)
from tradeloom.testing.emulator.pacing import bars_closing
from tradeloom.testing.emulator.records import (
    Balance,
    BookProfile,
    Kline,
    Market,
    MarketRules,
    Order,
    PerpPosition,
    Reason,
    Rejected,
    Trade,
)
from tradeloom.testing.emulator.requestlog import RequestLog, RequestRecord
from tradeloom.testing.emulator.venues import EmulatedVenues, VenueSpec

__all__ = [
    "CLIENT_OPTIONS",
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "Balance",
    "BarSeries",
    "BatchFault",
    "BookProfile",
    "DoubledTrade",
    "DropConnection",
    "EmulatedVenues",
    "Exchange",
    "ExchangeEmulator",
    "Fault",
    "FaultSchedule",
    "Kline",
    "Latency",
    "Level",
    "LoopbackBinance",
    "Market",
    "MarketRules",
    "Order",
    "OrderBook",
    "PartialFill",
    "PerpPosition",
    "RateLimited",
    "Reason",
    "Reject",
    "Rejected",
    "RequestLog",
    "RequestRecord",
    "ServerError",
    "Timeout",
    "Trade",
    "VenueSpec",
    "bars_closing",
    "book_levels",
    "loopback_client",
]
