"""API key, HMAC signature, timestamp window and parameter checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

import ccxt
import pytest

from tests.testing.emulator_series import SYMBOL
from tradeloom.testing import ExchangeEmulator
from tradeloom.testing.emulator.binance import ROUTES


def _raw(
    emulator: ExchangeEmulator, path: str, query: str, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"{emulator.url}{path}?{query}", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _signed(emulator: ExchangeEmulator, query: str) -> str:
    signature = hmac.new(emulator.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


def test_a_wrong_secret_is_refused_by_the_signature_check(emulator: ExchangeEmulator) -> None:
    client = emulator.client(secret="not-the-secret")
    with pytest.raises(
        ccxt.AuthenticationError,
        match=r'^binance \{"code": -1022, "msg": "Signature for this request is not valid\."\}$',
    ):
        client.fetch_balance()


def test_a_wrong_key_is_refused(emulator: ExchangeEmulator) -> None:
    client = emulator.client(apiKey="not-the-key")
    with pytest.raises(ccxt.AuthenticationError, match=r'"code": -2015'):
        client.fetch_balance()


def test_a_key_refused_after_a_successful_call_is_ddos_protection_to_ccxt(
    emulator: ExchangeEmulator,
) -> None:
    # ccxt reads -2015 after an authenticated success as a temporary ban: a NetworkError.
    client = emulator.client()
    client.fetch_balance()
    client.apiKey = "revoked"
    with pytest.raises(ccxt.DDoSProtection, match=r'"code": -2015'):
        client.fetch_balance()


@pytest.mark.parametrize(
    ("skew_ms", "message"),
    [
        (20_000, r"Timestamp for this request is outside of the recvWindow\."),
        (-5_000, r"Timestamp for this request was 1000ms ahead of the server's time\."),
    ],
)
def test_a_timestamp_outside_the_window_is_invalid_nonce(
    emulator: ExchangeEmulator, skew_ms: int, message: str
) -> None:
    client = emulator.client(options={"timeDifference": skew_ms})
    with pytest.raises(ccxt.InvalidNonce, match=message):
        client.fetch_balance()


def test_the_signature_window_uses_the_wall_clock(bars: object) -> None:
    wall = [time.time() + 3600]
    with ExchangeEmulator({SYMBOL: bars}, {"USDT": 1}, wall_clock=lambda: wall[0]) as emu:
        client = emu.client()
        assert client.fetch_time() == int(wall[0] * 1000)
        with pytest.raises(ccxt.InvalidNonce):
            client.fetch_balance()
        client.load_time_difference()
        assert client.fetch_balance()["USDT"]["free"] == 1.0


def test_an_unknown_parameter_is_refused(client: ccxt.binance) -> None:
    with pytest.raises(
        ccxt.BadRequest,
        match=r"Not all sent parameters were read; read '\d+' parameter\(s\) but was sent '\d+'\.",
    ):
        client.create_order(SYMBOL, "market", "buy", 0.01, params={"icebergQty": "1"})


def test_raw_requests_without_key_or_signature(emulator: ExchangeEmulator) -> None:
    now = int(time.time() * 1000)
    assert _raw(emulator, "/api/v3/account", f"timestamp={now}", {}) == (
        401,
        {"code": -2014, "msg": "API-key format invalid."},
    )
    key = {"X-MBX-APIKEY": emulator.api_key}
    assert _raw(emulator, "/api/v3/account", f"timestamp={now}", key) == (
        400,
        {
            "code": -1102,
            "msg": "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        },
    )
    status, body = _raw(emulator, "/api/v3/account", _signed(emulator, f"timestamp={now}"), key)
    assert (status, body["accountType"]) == (200, "SPOT")
    duplicated = _signed(emulator, f"timestamp={now}&timestamp={now}")
    assert _raw(emulator, "/api/v3/account", duplicated, key) == (
        400,
        {"code": -1101, "msg": "Duplicate values for a parameter detected."},
    )


def test_the_request_log_keeps_params_but_not_the_signature(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    client.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "logged"})
    [record] = emulator.requests("POST /api/v3/order")
    assert "signature" not in record.params
    assert record.params["newClientOrderId"] == "logged"
    assert {k: record.params[k] for k in ("symbol", "side", "type", "quantity")} == {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.01",
    }
    assert emulator.api_key not in repr(emulator.requests())


MINIMAL_PARAMS = {
    "GET /api/v3/ping": "",
    "GET /api/v3/time": "",
    "GET /api/v3/exchangeInfo": "symbols=%5B%22BTCUSDT%22%5D",
    "GET /api/v3/klines": "symbol=BTCUSDT&interval=1h&limit=3",
    "GET /api/v3/uiKlines": "symbol=BTCUSDT&interval=1h&limit=3",
    "GET /api/v3/ticker/24hr": "",
    "GET /api/v3/ticker/price": "symbol=BTCUSDT",
    "GET /api/v3/ticker/bookTicker": "",
    "GET /api/v3/depth": "symbol=BTCUSDT&limit=5",
    "POST /api/v3/order": (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000"
    ),
    "POST /api/v3/order/test": "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.01",
    "GET /api/v3/order": "symbol=BTCUSDT&orderId=1",
    "GET /api/v3/openOrders": "",
    "GET /api/v3/allOrders": "symbol=BTCUSDT",
    "GET /api/v3/myTrades": "symbol=BTCUSDT",
    "GET /api/v3/account": "omitZeroBalances=true",
    "DELETE /api/v3/order": "symbol=BTCUSDT&origClientOrderId=emulator-1",
    "DELETE /api/v3/openOrders": "symbol=BTCUSDT",
    "GET /fapi/v1/fundingRate": "symbol=BTCUSDT&limit=3",
    "GET /fapi/v1/exchangeInfo": "",
    "GET /fapi/v1/klines": "symbol=BTCUSDT&interval=1h&limit=3",
    "GET /fapi/v1/openOrders": "",
    "GET /fapi/v2/positionRisk": "",
    "GET /fapi/v3/positionRisk": "",
    "GET /fapi/v1/leverageBracket": "",
    "GET /fapi/v2/balance": "",
    "GET /fapi/v3/balance": "",
    "GET /fapi/v2/account": "",
    "GET /fapi/v3/account": "",
    "GET /fapi/v1/income": "",
    # BTCUSDT is a spot market here: the futures trading routes answer -1121 Invalid symbol
    "POST /fapi/v1/order": "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01",
    "GET /fapi/v1/order": "symbol=BTCUSDT&orderId=1",
    "DELETE /fapi/v1/order": "symbol=BTCUSDT&orderId=1",
    "GET /fapi/v1/allOrders": "symbol=BTCUSDT",
    "GET /fapi/v1/userTrades": "symbol=BTCUSDT",
    "GET /fapi/v1/ticker/24hr": "symbol=BTCUSDT",
    "POST /fapi/v1/batchOrders": "batchOrders=%5B%7B%22symbol%22%3A%22BTCUSDT%22%2C%22side"
    "%22%3A%22BUY%22%2C%22type%22%3A%22MARKET%22%2C%22quantity%22%3A%220.01%22%7D%5D",
    "DELETE /fapi/v1/batchOrders": "symbol=BTCUSDT&orderIdList=%5B1%5D",
    "POST /fapi/v1/leverage": "symbol=BTCUSDT&leverage=3",
    "POST /fapi/v1/marginType": "symbol=BTCUSDT&marginType=CROSSED",
}
_SPOT_ONLY = {
    route: 400
    for route in MINIMAL_PARAMS
    if "/fapi/" in route and "symbol=" in MINIMAL_PARAMS[route]
}
_SPOT_ONLY.pop("GET /fapi/v1/fundingRate")
_SPOT_ONLY.pop("GET /fapi/v1/klines")


def test_every_served_route_answers(emulator: ExchangeEmulator) -> None:
    assert set(MINIMAL_PARAMS) == set(ROUTES)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    statuses = {}
    for route, query in MINIMAL_PARAMS.items():
        method, path = route.split(" ")
        if ROUTES[route].signed:
            stamp = f"timestamp={int(time.time() * 1000)}"
            query = _signed(emulator, f"{query}&{stamp}" if query else stamp)
        request = urllib.request.Request(
            f"{emulator.url}{path}?{query}",
            method=method,
            headers={"X-MBX-APIKEY": emulator.api_key},
        )
        try:
            with opener.open(request, timeout=5) as response:
                statuses[route] = response.status
        except urllib.error.HTTPError as error:
            statuses[route] = error.code
    # The last DELETE finds nothing left to cancel: Binance answers -2011 with 400.
    assert statuses == {route: 200 for route in MINIMAL_PARAMS} | {
        "DELETE /api/v3/openOrders": 400,
        **_SPOT_ONLY,
    }
