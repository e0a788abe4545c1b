"""The HTTP plumbing: start, stop (even under a hanging request), internal errors."""

from __future__ import annotations

import threading

import ccxt
import pandas as pd
import pytest

from tests.testing.emulator_series import SYMBOL
from tradeloom.testing import ExchangeEmulator, Timeout


def test_stop_ends_a_request_held_by_a_timeout_fault(bars: pd.DataFrame) -> None:
    emulator = ExchangeEmulator({SYMBOL: bars}, {"USDT": 1000}).start()
    client = emulator.client(timeout=60_000)
    emulator.faults.next("GET /api/v3/time", Timeout(max_seconds=60))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.fetch_time()
        except BaseException as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    assert emulator.wait_for_request("GET /api/v3/time")
    emulator.stop()
    caller.join(timeout=30)
    assert not caller.is_alive()
    [error] = outcome
    assert isinstance(error, ccxt.NetworkError)


def test_the_server_is_gone_after_the_context_exits(bars: pd.DataFrame) -> None:
    with ExchangeEmulator({SYMBOL: bars}, {"USDT": 1000}) as emulator:
        client = emulator.client(timeout=2000)
        assert client.fetch_time() > 0
    with pytest.raises(ccxt.NetworkError):
        client.fetch_time()


def test_an_emulator_bug_is_a_500_and_is_recorded(bars: pd.DataFrame) -> None:
    with ExchangeEmulator({SYMBOL: bars}, {"USDT": 1000}) as emulator:
        client = emulator.client()

        def broken(market_id: str) -> object:
            raise RuntimeError("boom")

        emulator.exchange.current_price = broken  # type: ignore[method-assign]
        with pytest.raises(ccxt.OperationFailed, match=r'"code": -1000'):
            client.fetch_ticker(SYMBOL)
        assert [str(e) for e in emulator.errors] == ["boom"]


def test_two_emulators_run_side_by_side(bars: pd.DataFrame) -> None:
    with (
        ExchangeEmulator({SYMBOL: bars}, {"USDT": 1}) as one,
        ExchangeEmulator({SYMBOL: bars}, {"USDT": 2}) as two,
    ):
        assert one.url != two.url
        assert one.client().fetch_balance()["USDT"]["free"] == 1.0
        assert two.client().fetch_balance()["USDT"]["free"] == 2.0


def test_a_long_run_keeps_only_its_last_requests(bars: pd.DataFrame) -> None:
    """A simulated run of any length keeps the last requests (its memory does not grow
    with the bars); each is still numbered among all."""
    with ExchangeEmulator({SYMBOL: bars}, {"USDT": 1}, keep_requests=3) as emulator:
        client = emulator.client()
        client.load_markets()
        loading = len(emulator.requests())
        for _ in range(5):
            client.fetch_time()
        client.fetch_ticker(SYMBOL)
        kept = emulator.requests()
        assert [r.seq for r in kept] == [loading + 4, loading + 5, loading + 6]
        assert [r.path for r in kept] == ["/api/v3/time"] * 2 + ["/api/v3/ticker/24hr"]
        assert emulator.log.wait_for("/api/v3/time", 2, timeout=0.1)
