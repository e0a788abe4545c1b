"""Binance spot's REST API, the subset ccxt's ``binance`` class calls for spot trading,
and USD-M futures' (``/fapi``), the subset it calls to trade a perpetual swap.

Turns an `HttpRequest` into a call on the `Exchange` and its answer into Binance's
JSON: request parsing, the API key and HMAC-SHA256 signature, ``timestamp`` and
``recvWindow``, parameter checks, response shapes and error codes. The shapes
follow Binance's documentation and the fields ccxt's parsers read; the error
codes and messages are Binance's verbatim, because ccxt maps some by message and
the others by code.

A USD-M swap is served as Binance serves it, refusals included: its orders only on
``/fapi`` (a spot route answers -1121 Invalid symbol), its order and trade lists over 7
days at most (spot's: 24 hours; -1127), ``fromId`` never with a time window (-1128), its
positions in one-way mode only (-4061). What ccxt's ``binance`` itself refuses for a swap
never reaches the server: ``fetchOrderTrades`` raises "supports spot markets only" in
the client (`tradeloom.live.orders.ccxt_capabilities` knows it and reads the
order's trades from ``/fapi/v1/userTrades`` instead).

`BinanceApi` reads a request, checks its key and signature and routes it (`ROUTES`);
its bases answer: spot's routes and what USD-M's share with them
(`tradeloom.testing.emulator.binance_spot.SpotRoutes`), USD-M's own
(`tradeloom.testing.emulator.binance_futures.FuturesRoutes`).

Two clocks. Market data, orders and trades carry market time, the bar clock of
the `Exchange`. The signature window (``timestamp`` within ``recvWindow``) and
``GET /api/v3/time`` use the wall clock, because ccxt signs with the local wall
clock: a replay of 2021 bars must still accept a request signed now.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from urllib.parse import parse_qsl

from tradeloom.testing.emulator.binance_futures import FuturesRoutes
from tradeloom.testing.emulator.binance_routes import ROUTES
from tradeloom.testing.emulator.binance_wire import (
    _REJECTIONS,
    ORDER_TYPES,
    _ApiError,
    _integer,
    _mandatory,
    _unique,
    _unsigned,
)
from tradeloom.testing.emulator.exchange import Exchange
from tradeloom.testing.emulator.faults import BatchFault
from tradeloom.testing.emulator.records import Rejected
from tradeloom.testing.emulator.server import HttpReply, HttpRequest

__all__ = ["ORDER_TYPES", "ROUTES", "BinanceApi", "error_reply", "parse_params"]


_MAX_RECV_WINDOW = 60_000
_JSON = (("Content-Type", "application/json;charset=UTF-8"),)


def parse_params(request: HttpRequest) -> list[tuple[str, str]]:
    """Return the query's and the form body's parameters, in the order sent."""
    pairs = parse_qsl(request.query, keep_blank_values=True)
    if request.body:
        pairs += parse_qsl(request.body, keep_blank_values=True)
    return pairs


def error_reply(
    status: int, code: int, msg: str, headers: tuple[tuple[str, str], ...] = ()
) -> HttpReply:
    """Return Binance's error body ``{"code": ..., "msg": ...}`` with ``status``."""
    body = json.dumps({"code": code, "msg": msg}).encode()
    return HttpReply(status, body, _JSON + headers)


class BinanceApi(FuturesRoutes):
    """Answer Binance spot (and USD-M futures) REST requests from an `Exchange`.

    Args:
        exchange: The venue state.
        api_key: The one API key accepted (``X-MBX-APIKEY``).
        secret: Its HMAC-SHA256 secret.
        wall_clock: Seconds since the epoch, for the signature window and ``/time``.
        include_open_kline: Serve the kline in progress, as Binance does.
    """

    def __init__(
        self,
        exchange: Exchange,
        *,
        api_key: str,
        secret: str,
        wall_clock: Callable[[], float] = time.time,
        include_open_kline: bool = True,
    ) -> None:
        self._exchange = exchange
        self._api_key = api_key
        self._secret = secret.encode()
        self._wall_clock = wall_clock
        self._include_open = include_open_kline

    def handle(
        self,
        request: HttpRequest,
        pairs: list[tuple[str, str]],
        *,
        fill_fraction: Decimal | None = None,
        batch: BatchFault | None = None,
    ) -> HttpReply:
        """Answer one request.

        Args:
            request: The request.
            pairs: Its parameters (`parse_params`).
            fill_fraction: Per-bar fill fraction for an order this request creates.
            batch: What goes wrong between a batch request's children (None: nothing).
        """
        route = ROUTES.get(f"{request.method} {request.path}")
        if route is None:
            body = b"<html><body><h1>404 Not Found</h1></body></html>"
            return HttpReply(404, body, (("Content-Type", "text/html"),))
        try:
            params = _unique(pairs)
            unread = [name for name in params if name not in route.params]
            if unread:
                raise _ApiError(
                    400,
                    -1104,
                    f"Not all sent parameters were read; read '{len(params) - len(unread)}' "
                    f"parameter(s) but was sent '{len(params)}'.",
                )
            if route.signed:
                self._authenticate(request, params)
            handler: Callable[..., object] = getattr(self, route.handler)
            if route.batch:
                payload = handler(params, fill_fraction, batch or BatchFault())
            elif route.creates_order:
                payload = handler(params, fill_fraction)
            else:
                payload = handler(params)
        except _ApiError as error:
            return error_reply(error.status, error.code, error.msg)
        except Rejected as rejection:
            return error_reply(*_REJECTIONS[rejection.reason])
        return HttpReply(200, json.dumps(payload).encode(), _JSON)

    # --- authentication -------------------------------------------------------------

    def _authenticate(self, request: HttpRequest, params: Mapping[str, str]) -> None:
        key = request.headers.get("x-mbx-apikey")
        if not key:
            raise _ApiError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key, self._api_key):
            raise _ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signature = params.get("signature")
        if not signature:
            raise _mandatory("signature")
        # Binance signs totalParams: the query string followed by the request body.
        payload = _unsigned(request.query) + _unsigned(request.body)
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise _ApiError(400, -1022, "Signature for this request is not valid.")
        timestamp = _integer(params, "timestamp", required=True)
        recv_window = _integer(params, "recvWindow") or 5000
        if recv_window > _MAX_RECV_WINDOW:
            raise _ApiError(400, -1131, "recvWindow must be less than 60000")
        now = int(self._wall_clock() * 1000)
        assert timestamp is not None
        if timestamp >= now + 1000:
            raise _ApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - timestamp > recv_window:
            raise _ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
