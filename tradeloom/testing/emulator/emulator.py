"""The loopback exchange emulator: a Binance-speaking venue on 127.0.0.1 for tests.

`ExchangeEmulator` puts the pieces together: the `Exchange` (state and matching),
the `BinanceApi` (protocol), the `FaultSchedule`, the `RequestLog` and the
`LoopbackServer`; `client()` returns a real ``ccxt.binance`` pointed at it, so a
test exercises ccxt's own request signing, parsing and error mapping.

Example:
    >>> with ExchangeEmulator({"BTC/USDT": bars}, {"USDT": 10_000}) as emulator:  # doctest: +SKIP
    ...     exchange = emulator.client()
    ...     order = exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    ...     emulator.advance()
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any, Self

import ccxt
import pandas as pd

from tradeloom.testing.emulator.bars import BarSeries
from tradeloom.testing.emulator.binance import ROUTES, BinanceApi, error_reply, parse_params
from tradeloom.testing.emulator.client import loopback_client
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
from tradeloom.testing.emulator.lifecycle import Started
from tradeloom.testing.emulator.records import BookProfile, MarketRules
from tradeloom.testing.emulator.requestlog import RequestLog, RequestRecord
from tradeloom.testing.emulator.server import (
    Drop,
    Hang,
    HttpReply,
    HttpRequest,
    LoopbackServer,
    Outcome,
)

__all__ = ["DEFAULT_API_KEY", "DEFAULT_SECRET", "ExchangeEmulator"]

DEFAULT_API_KEY = "emulator-api-key"
"""The API key the emulator accepts unless told otherwise."""

DEFAULT_SECRET = "emulator-secret"
"""Its secret."""

_RATE_LIMIT_MSG = (
    "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)


class ExchangeEmulator(Started):
    """A Binance spot venue on 127.0.0.1 that replays bars and injects faults on demand.

    Use it as a context manager (or `start` / `stop`); the server binds a free
    port, so tests may run in parallel.

    Args:
        markets: Bars per unified symbol (``BTC/USDT``): a frame with OHLCV columns
            and a UTC index of bar open times, or a `BarSeries`.
        balances: Starting free balance per asset.
        api_key: The API key accepted.
        secret: Its secret; requests signed with another are refused (-1022).
        rules: Price, lot and notional filters, for every market or per symbol.
        maker_fee: Fee rate of resting limit orders.
        taker_fee: Fee rate of market and marketable limit orders.
        fill_fraction: Default most of an order's quantity filled per bar.
        volume_participation: Most of a bar's volume fills may take (None: no cap).
        start: Initial bar position; the bars before it are history.
        timeframe: Bar length, inferred from the timestamps when omitted.
        include_open_kline: Serve the kline in progress (open price only), as
            Binance serves its current kline.
        wall_clock: Seconds since the epoch, for the signature window and ``/time``.
        funding_rates: Funding rates per unified symbol: a float Series indexed by UTC
            funding time, served by ``GET /fapi/v1/fundingRate`` (what ccxt's
            ``fetch_funding_rate_history`` calls) once market time reaches each.
        price_offset_bps: Quote the bars' prices times ``1 + offset / 10_000``: another
            venue's prices for the same bars (see `EmulatedVenues`).
        book: Spread and depth of the book served by ``GET /api/v3/depth`` and the
            book ticker (`BookProfile`; its defaults when None).
        keep_requests: Keep only the last this many requests in `log` (None: every
            one, as tests need; a long simulated run keeps a few).

    Attributes:
        exchange: The venue state: clock, balances, orders, trades.
        faults: What the next requests get (`FaultSchedule`).
        log: Every request received (`RequestLog`; the last ``keep_requests``).
        errors: Exceptions raised inside the emulator while serving (a bug, not a
            fault): the client got HTTP 500 for each. Tests should assert it is empty.
    """

    def __init__(
        self,
        markets: Mapping[str, pd.DataFrame | BarSeries],
        balances: Mapping[str, Decimal | int | str],
        *,
        api_key: str = DEFAULT_API_KEY,
        secret: str = DEFAULT_SECRET,
        rules: MarketRules | Mapping[str, MarketRules] | None = None,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        fill_fraction: Decimal = Decimal(1),
        volume_participation: Decimal | None = None,
        start: int = 0,
        timeframe: str | None = None,
        include_open_kline: bool = True,
        wall_clock: Callable[[], float] = time.time,
        funding_rates: Mapping[str, pd.Series] | None = None,
        price_offset_bps: Decimal = Decimal(0),
        book: BookProfile | None = None,
        keep_requests: int | None = None,
    ) -> None:
        self.exchange = Exchange(
            markets,
            balances,
            rules=rules,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
            fill_fraction=fill_fraction,
            volume_participation=volume_participation,
            start=start,
            timeframe=timeframe,
            funding_rates=funding_rates,
            price_offset_bps=price_offset_bps,
            book=book,
        )
        self.api_key = api_key
        self.secret = secret
        self.faults = FaultSchedule(ROUTES)
        self.log = RequestLog(keep_requests)
        self.errors: list[BaseException] = []
        self._api = BinanceApi(
            self.exchange,
            api_key=api_key,
            secret=secret,
            wall_clock=wall_clock,
            include_open_kline=include_open_kline,
        )
        self._server = LoopbackServer(self._handle, self._internal_error)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving on a free port of 127.0.0.1."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and end every connection, hanging ones included."""
        self._server.stop()

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.port}"

    # --- for tests ---------------------------------------------------------------------

    def client(self, **config: Any) -> ccxt.binance:
        """Return a real ``ccxt.binance`` pointed at the emulator.

        Every API URL of the client (spot, sapi, fapi...) points here, so a call
        outside the served subset gets a 404 rather than reaching the internet;
        `CLIENT_OPTIONS` keep ``load_markets`` to spot ``exchangeInfo`` (see
        `loopback_client`).

        Args:
            **config: ccxt settings over the defaults: the emulator's ``apiKey`` and
                ``secret``, ``enableRateLimit=False``, ccxt's ``timeout``; ``options``
                are merged over `CLIENT_OPTIONS`.
        """
        if any(m.swap for m in self.exchange.markets.values()):  # USD-M futures markets too
            options = config.pop("options", {})
            config["options"] = {"fetchMarkets": {"types": ["spot", "linear"]}, **options}
        return loopback_client(
            self.url, **{"apiKey": self.api_key, "secret": self.secret, **config}
        )

    def advance(self, bars: int = 1) -> None:
        """Play ``bars`` bars (see `Exchange.advance`)."""
        self.exchange.advance(bars)

    def set_bar(self, index: int) -> None:
        """Move the clock forward to bar ``index`` (see `Exchange.set_bar`)."""
        self.exchange.set_bar(index)

    def requests(self, route: str | None = None) -> list[RequestRecord]:
        """Requests received, all or of one route (``"POST /api/v3/order"``)."""
        return self.log.records(route)

    def wait_for_request(self, route: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``count`` requests to ``route`` have arrived (see `RequestLog.wait_for`)."""
        return self.log.wait_for(route, count, timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is in progress (after a client timed out on purpose)."""
        return self._server.wait_idle(timeout)

    # --- serving ---------------------------------------------------------------------------

    def _handle(self, request: HttpRequest) -> Outcome:
        pairs = parse_params(request)
        faults = self.faults.take(request.method, request.path)
        terminal = next(
            (
                f
                for f in faults
                if not isinstance(f, Latency | PartialFill | DoubledTrade | BatchFault)
            ),
            None,
        )
        dispatched = terminal is None or (
            isinstance(terminal, Timeout | DropConnection | ServerError) and terminal.after_accept
        )
        self.log.append(
            request.method,
            request.path,
            dict(pairs),
            tuple(repr(f) for f in faults),
            dispatched=dispatched,
        )
        for fault in faults:
            if isinstance(fault, Latency) and not self._server.pause(fault.seconds):
                return Drop()
        reply: HttpReply | None = None
        batch = next((f for f in faults if isinstance(f, BatchFault)), None)
        if dispatched:
            fraction = next((f.decimal for f in faults if isinstance(f, PartialFill)), None)
            reply = self._api.handle(request, pairs, fill_fraction=fraction, batch=batch)
        if batch is not None and batch.cut_after is not None:
            return Drop()  # the first children acted on, the answer never sent
        if terminal is None:
            assert reply is not None
            if any(isinstance(f, DoubledTrade) for f in faults):
                return _doubled_trade(reply)
            return reply
        return _misbehave(terminal)

    def _internal_error(self, error: BaseException) -> HttpReply:
        self.errors.append(error)
        return error_reply(500, -1000, "An unknown error occurred while processing the request.")


def _doubled_trade(reply: HttpReply) -> HttpReply:
    """``reply`` with its last trade again under a new trade id (`DoubledTrade`): a trades
    query's list, or the ``fills`` of an order's answer."""
    answer = json.loads(reply.body) if reply.status == 200 else None
    trades, key = (answer, "id") if isinstance(answer, list) else (None, "tradeId")
    if isinstance(answer, dict) and isinstance(answer.get("fills"), list):
        trades = answer["fills"]
    if not trades:
        return reply  # an error, or no trade to double
    trades.append({**trades[-1], key: max(int(t[key]) for t in trades) + 1_000_000})
    return replace(reply, body=json.dumps(answer).encode())


def _misbehave(fault: Fault) -> Outcome:
    if isinstance(fault, Timeout):
        return Hang(fault.max_seconds)
    if isinstance(fault, DropConnection):
        return Drop()
    if isinstance(fault, RateLimited):
        return error_reply(429, -1003, _RATE_LIMIT_MSG, (("Retry-After", str(fault.retry_after)),))
    if isinstance(fault, ServerError):
        if fault.code is not None:
            return error_reply(fault.status, fault.code, fault.msg)
        body = f"<html><body><h1>{fault.status} Server Error</h1></body></html>".encode()
        return HttpReply(fault.status, body, (("Content-Type", "text/html"),))
    if isinstance(fault, Reject):
        return error_reply(fault.status, fault.code, fault.msg)
    raise TypeError(f"{fault!r} does not answer a request")
