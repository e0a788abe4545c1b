"""A loopback Binance spot exchange for tests: replays bars, matches orders, injects faults."""

from __future__ import annotations

from tradeloom.testing.emulator.bars import BarSeries
from tradeloom.testing.emulator.client import CLIENT_OPTIONS, LoopbackBinance, loopback_client
from tradeloom.testing.emulator.emulator import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    ExchangeEmulator,
)
from tradeloom.testing.emulator.exchange import Exchange
from tradeloom.testing.emulator.faults import (
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
    Kline,
    Market,
    MarketRules,
    Order,
    Reason,
    Rejected,
    Trade,
)
from tradeloom.testing.emulator.requestlog import RequestLog, RequestRecord

__all__ = [
    "CLIENT_OPTIONS",
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "Balance",
    "BarSeries",
    "DropConnection",
    "Exchange",
    "ExchangeEmulator",
    "Fault",
    "FaultSchedule",
    "Kline",
    "Latency",
    "LoopbackBinance",
    "Market",
    "MarketRules",
    "Order",
    "PartialFill",
    "RateLimited",
    "Reason",
    "Reject",
    "Rejected",
    "RequestLog",
    "RequestRecord",
    "ServerError",
    "Timeout",
    "Trade",
    "bars_closing",
    "loopback_client",
]
