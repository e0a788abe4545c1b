"""Tools for testing trading code against tradeloom without a real exchange.

`ExchangeEmulator` is a Binance spot venue on 127.0.0.1: point a real
``ccxt.binance`` at it with `ExchangeEmulator.client`, move its bar clock with
`ExchangeEmulator.advance`, and schedule faults with ``emulator.faults``.
"""

from __future__ import annotations

from tradeloom.testing.emulator import (
    CLIENT_OPTIONS,
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    Balance,
    BarSeries,
    DropConnection,
    Exchange,
    ExchangeEmulator,
    Fault,
    FaultSchedule,
    Kline,
    Latency,
    LoopbackBinance,
    Market,
    MarketRules,
    Order,
    PartialFill,
    RateLimited,
    Reason,
    Reject,
    Rejected,
    RequestLog,
    RequestRecord,
    ServerError,
    Timeout,
    Trade,
    loopback_client,
)

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
    "loopback_client",
]
