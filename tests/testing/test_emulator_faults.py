"""Injected faults, and the ccxt exception each one becomes.

The table in `test_fault_maps_to_ccxt_exception` is the documented mapping: it
asserts the exact exception class ccxt raises, so a ccxt upgrade that changes one
fails here first.
"""

from __future__ import annotations

import ccxt
import pytest

from tests.testing.emulator_series import SYMBOL
from tradeloom.testing import (
    DropConnection,
    ExchangeEmulator,
    Fault,
    Latency,
    PartialFill,
    RateLimited,
    Reject,
    ServerError,
    Timeout,
)

ORDER = "POST /api/v3/order"

MAPPING: list[tuple[Fault, type[Exception], bool]] = [
    (Timeout(), ccxt.RequestTimeout, False),
    (Timeout(after_accept=True), ccxt.RequestTimeout, True),
    (DropConnection(), ccxt.NetworkError, False),
    (DropConnection(after_accept=True), ccxt.NetworkError, True),
    (RateLimited(), ccxt.DDoSProtection, False),
    (ServerError(500), ccxt.ExchangeNotAvailable, False),
    (ServerError(502), ccxt.ExchangeNotAvailable, False),
    (ServerError(503), ccxt.ExchangeNotAvailable, False),
    (ServerError(503, after_accept=True), ccxt.ExchangeNotAvailable, True),
    (ServerError(504), ccxt.RequestTimeout, False),
    (
        ServerError(500, code=-1001, msg="Internal error; unable to process your request."),
        ccxt.OperationFailed,
        False,
    ),
    (
        ServerError(503, code=-1008, msg="Server is currently overloaded with other requests."),
        ccxt.OperationFailed,
        False,
    ),
    (
        Reject(-2010, "Account has insufficient balance for requested action."),
        ccxt.InsufficientFunds,
        False,
    ),
    (Reject(-2010, "Duplicate order sent."), ccxt.InvalidOrder, False),
    (
        Reject(-2010, "Order would immediately match and take."),
        ccxt.OrderImmediatelyFillable,
        False,
    ),
    (Reject(-1013, "Filter failure: LOT_SIZE"), ccxt.InvalidOrder, False),
    (Reject(-1013, "Filter failure: NOTIONAL"), ccxt.BadRequest, False),
    (Reject(-1013, "Market is closed."), ccxt.MarketClosed, False),
    (
        Reject(-1021, "Timestamp for this request is outside of the recvWindow."),
        ccxt.InvalidNonce,
        False,
    ),
    (Reject(-1022, "Signature for this request is not valid."), ccxt.AuthenticationError, False),
    (
        Reject(-2015, "Invalid API-key, IP, or permissions for action.", 401),
        ccxt.AuthenticationError,
        False,
    ),
    (
        Reject(-1003, "Way too much request weight used; IP banned.", 418),
        ccxt.DDoSProtection,
        False,
    ),
    (
        Reject(-1015, "Too many new orders; current limit is 100 orders per 10 SECOND."),
        ccxt.RateLimitExceeded,
        False,
    ),
]


@pytest.mark.parametrize(("fault", "error", "accepted"), MAPPING, ids=lambda v: repr(v)[:60])
def test_fault_maps_to_ccxt_exception(
    emulator: ExchangeEmulator, fault: Fault, error: type[Exception], accepted: bool
) -> None:
    client = emulator.client(timeout=200)
    client.load_markets()
    emulator.faults.next(ORDER, fault)
    with pytest.raises(error) as caught:
        client.create_order(SYMBOL, "market", "buy", 0.1, params={"clientOrderId": "intent-1"})
    assert type(caught.value) is error
    assert emulator.wait_idle()
    assert len(emulator.exchange.orders()) == (1 if accepted else 0)
    [record] = emulator.requests(ORDER)
    assert (record.dispatched, record.faults) == (accepted, (repr(fault),))


def test_timeout_after_accept_leaves_an_order_found_by_its_client_id(
    emulator: ExchangeEmulator,
) -> None:
    client = emulator.client(timeout=200)
    client.load_markets()
    emulator.faults.next(ORDER, Timeout(after_accept=True))
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order(SYMBOL, "market", "buy", 0.1, params={"clientOrderId": "intent-7"})
    assert emulator.wait_idle()
    found = client.fetch_order(None, SYMBOL, {"clientOrderId": "intent-7"})
    assert (found["status"], found["filled"], found["clientOrderId"]) == ("closed", 0.1, "intent-7")
    assert len(emulator.requests(ORDER)) == 1


def test_timeout_before_accept_leaves_no_order(emulator: ExchangeEmulator) -> None:
    client = emulator.client(timeout=200)
    client.load_markets()
    emulator.faults.next(ORDER, Timeout())
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order(SYMBOL, "market", "buy", 0.1, params={"clientOrderId": "lost"})
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order(None, SYMBOL, {"clientOrderId": "lost"})


def test_rate_limit_answer_carries_retry_after(emulator: ExchangeEmulator) -> None:
    client = emulator.client()
    emulator.faults.next("GET /api/v3/ticker/24hr", RateLimited(retry_after=7))
    client.load_markets()
    with pytest.raises(ccxt.DDoSProtection, match=r'429 Too Many Requests \{"code": -1003'):
        client.fetch_ticker(SYMBOL)
    assert client.last_response_headers["Retry-After"] == "7"


def test_latency_within_the_timeout_only_delays(emulator: ExchangeEmulator) -> None:
    client = emulator.client(timeout=5000)
    client.load_markets()
    emulator.faults.next("GET /api/v3/ticker/24hr", Latency(0.05))
    assert client.fetch_ticker(SYMBOL)["symbol"] == SYMBOL
    assert emulator.requests("GET /api/v3/ticker/24hr")[0].faults == ("Latency(seconds=0.05)",)


def test_latency_beyond_the_timeout_times_out_yet_the_venue_acts(
    emulator: ExchangeEmulator,
) -> None:
    client = emulator.client(timeout=100)
    client.load_markets()
    emulator.faults.next(ORDER, Latency(0.3))
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order(SYMBOL, "market", "buy", 0.1, params={"clientOrderId": "late"})
    assert emulator.wait_idle()
    assert client.fetch_order(None, SYMBOL, {"clientOrderId": "late"})["status"] == "closed"


def test_latency_and_partial_fill_combine_with_one_answer_fault(
    emulator: ExchangeEmulator,
) -> None:
    client = emulator.client(timeout=2000)
    client.load_markets()
    emulator.faults.next(ORDER, Latency(0.01), PartialFill(0.5), DropConnection(after_accept=True))
    with pytest.raises(ccxt.NetworkError):
        client.create_order(SYMBOL, "market", "buy", 0.2, params={"clientOrderId": "half"})
    order = client.fetch_order(None, SYMBOL, {"clientOrderId": "half"})
    assert (order["status"], order["filled"]) == ("open", 0.1)


def test_schedule_by_call_number_standing_and_clear(emulator: ExchangeEmulator) -> None:
    client = emulator.client()
    client.load_markets()
    route = "GET /api/v3/ticker/24hr"
    emulator.faults.on_call(route, 2, ServerError(503))
    outcomes = []
    for _ in range(3):
        try:
            client.fetch_ticker(SYMBOL)
            outcomes.append("ok")
        except ccxt.ExchangeNotAvailable:
            outcomes.append("503")
    assert outcomes == ["ok", "503", "ok"]
    emulator.faults.always("/api/v3/ticker/24hr", RateLimited())
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection):
            client.fetch_ticker(SYMBOL)
    emulator.faults.clear()
    assert client.fetch_ticker(SYMBOL)["symbol"] == SYMBOL


def test_next_with_times_and_the_wildcard_route(emulator: ExchangeEmulator) -> None:
    client = emulator.client()
    emulator.faults.next("*", ServerError(502), times=2)
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            client.fetch_time()
    assert client.fetch_time() > 0


def test_a_misspelt_route_is_refused_with_suggestions(emulator: ExchangeEmulator) -> None:
    with pytest.raises(
        ValueError,
        match=r"^the emulator serves no route 'POST /api/v3/orders'; did you mean "
        r"'POST /api/v3/order'",
    ):
        emulator.faults.next("POST /api/v3/orders", Timeout())


def test_two_answering_faults_for_one_request_are_refused(emulator: ExchangeEmulator) -> None:
    with pytest.raises(
        ValueError, match=r"^one request can get one of .*; got Timeout, RateLimited$"
    ):
        emulator.faults.next(ORDER, Timeout(), RateLimited())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PartialFill(0), r"^PartialFill\.fraction must be in \(0, 1\], was 0$"),
        (lambda: ServerError(404), r"^ServerError\.status must be 5xx, was 404$"),
        (lambda: Latency(-1), r"^Latency\.seconds must be >= 0, was -1$"),
    ],
)
def test_fault_values_are_checked(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build()
