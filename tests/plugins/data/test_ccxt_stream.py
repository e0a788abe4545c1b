"""Closed bars from a ccxt.pro websocket: a scripted stand-in client, no network.

The stand-in answers each ``watch_ohlcv`` with the next answer of its script (or
raises it) and, once the script is used up, stays silent until cancelled; it sets
``drained`` then, which is when the stream has taken every answer. The clock and the
waits between reconnects are injected, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ccxt
import ccxt.pro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.hunting import examples
from tradeloom.plugins.data.ccxt_stream import (
    ClosedBarBuffer,
    ClosedBarStream,
    pro_client_factory,
    use_pro_client_factory,
)
from tradeloom.runtime.retrying import RetryPolicy

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
STEP = 60_000  # 1m
WAIT = 5.0  # seconds; a bound on waiting for the stream's thread, never reached
# With the draw fixed at 0.5 and jitter 0.5 every wait is 3/4 of the backoff.
POLICY = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=30.0, jitter=0.5)


def bar(i: int, price: float) -> list[float]:
    return [T0 + i * STEP, price, price + 1, price - 1, price, 10 * price]


class Clock:
    def __init__(self, ms: int) -> None:
        self.now = ms / 1000

    def __call__(self) -> float:
        return self.now


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


class FakeProClient:
    """A ccxt.pro client whose ``watch_ohlcv`` answers are scripted."""

    id = "fakex"

    def __init__(self, script: Sequence[Any], *, streams: bool = True) -> None:
        self.has = {"watchOHLCV": streams}
        self.script = deque(script)
        self.calls: list[tuple[str, str]] = []
        self.drained = threading.Event()
        self.closed = threading.Event()

    async def watch_ohlcv(self, symbol: str, timeframe: str) -> list[list[float]]:
        self.calls.append((symbol, timeframe))
        if not self.script:
            self.drained.set()
            await asyncio.Event().wait()  # no more messages, until cancelled
        answer = self.script.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return [list(row) for row in answer]

    async def close(self) -> None:
        self.closed.set()


def make_stream(
    client: FakeProClient, clock: Clock, waits: Waits, **kwargs: Any
) -> ClosedBarStream:
    return ClosedBarStream(
        lambda: client,
        "BTC/USDT",
        "1m",
        policy=POLICY,
        clock=clock,
        sleep=waits,
        draw=lambda: 0.5,
        **kwargs,
    )


@contextmanager
def streaming(
    script: Sequence[Any], clock: Clock, waits: Waits | None = None
) -> Iterator[tuple[ClosedBarStream, FakeProClient]]:
    client = FakeProClient(script)
    stream = make_stream(client, clock, waits or Waits())
    stream.start()
    try:
        assert client.drained.wait(WAIT)
        yield stream, client
    finally:
        stream.stop()


def stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tradeloom-stream-BTC/USDT-1m"]


# The stream, through its thread


def test_the_bar_in_progress_never_comes_out_and_a_closed_bar_has_its_final_values() -> None:
    clock = Clock(T0 + STEP + 1_000)  # bar 0 has closed, within the grace
    script = [[bar(0, 1)], [bar(0, 2)], [bar(0, 3), bar(1, 1)], [bar(1, 2)]]
    with streaming(script, clock) as (stream, client):
        assert stream.healthy
        assert stream.closed_since(T0 - STEP) == [bar(0, 3)]
        assert stream.closed_since(T0) == []
        assert client.calls == [("BTC/USDT", "1m")] * 5


def test_a_bar_with_no_later_candle_closes_when_the_clock_passes_its_close_and_grace() -> None:
    clock = Clock(T0 + 30_000)
    with streaming([[bar(0, 1)], [bar(0, 2)]], clock) as (stream, _):
        assert stream.closed_since(T0 - STEP) == []
        clock.now = (T0 + STEP + 1_999) / 1000  # the grace is 2 s
        assert stream.closed_since(T0 - STEP) == []
        clock.now = (T0 + STEP + 2_000) / 1000
        assert stream.closed_since(T0 - STEP) == [bar(0, 2)]
        assert stream.closed_since(T0) == []


def test_errors_reconnect_after_the_policy_waits_which_restart_after_a_message() -> None:
    clock, waits = Clock(T0 + 10_000), Waits()
    script = [
        ccxt.NetworkError("down"),
        RuntimeError("connection closed"),
        [bar(0, 1)],
        ccxt.ExchangeError("subscription refused"),
        [bar(0, 2)],
        [bar(1, 1)],
    ]
    with capture_logs() as logs, streaming(script, clock, waits) as (stream, client):
        assert stream.healthy
        assert stream.closed_since(T0 - STEP) == [bar(0, 2)]

    assert waits.seconds == [0.75, 1.5, 0.75]
    reconnects = [e for e in logs if e["event"] == "stream_reconnect"]
    assert [(e["log_level"], e["attempt"], e["wait_seconds"]) for e in reconnects] == [
        ("warning", 1, 0.75),
        ("warning", 2, 1.5),
        ("warning", 1, 0.75),
    ]
    assert reconnects[1]["error"] == "RuntimeError: connection closed"
    assert reconnects[0]["exchange"] == "fakex" and reconnects[0]["symbol"] == "BTC/USDT"
    assert [e["failures"] for e in logs if e["event"] == "stream_resumed"] == [2, 1]
    assert client.closed.is_set()


def test_after_a_reconnect_the_bars_missed_meanwhile_are_left_to_rest() -> None:
    # Bar 0 was in progress when the connection dropped: its final values were never
    # seen, so the stream neither gives out the stale ones nor claims to cover bar 0.
    clock = Clock(T0 + 2 * STEP + 10_000)
    with streaming([[bar(0, 1)], ccxt.NetworkError("down"), [bar(2, 1)]], clock) as (stream, _):
        assert stream.healthy
        assert stream.closed_since(T0 - STEP) is None
        assert stream.closed_since(T0) is None  # bar 1 closed while disconnected
        assert stream.closed_since(T0 + STEP) == []


def test_gives_up_after_max_attempts_consecutive_failures_and_says_so_once() -> None:
    clock, waits = Clock(T0 + 10_000), Waits()
    error = ccxt.NetworkError("down")
    client = FakeProClient([[bar(0, 1)], error, error, error, [bar(0, 2)]])
    stream = make_stream(client, clock, waits)
    with capture_logs() as logs:
        stream.start()
        assert client.closed.wait(WAIT)
        stream.stop()

    assert waits.seconds == [0.75, 1.5]
    assert len(client.calls) == 4
    assert stream.gave_up and not stream.healthy
    assert stream.closed_since(T0 - STEP) is None
    gave_up = [e for e in logs if e["event"] == "stream_gave_up"]
    assert len(gave_up) == 1
    assert gave_up[0]["log_level"] == "error"
    assert gave_up[0]["reason"] == "3 consecutive failures; last NetworkError: down"


def test_healthy_turns_false_when_no_message_comes_for_two_timeframes() -> None:
    clock = Clock(T0 + 10_000)
    with streaming([[bar(0, 1)]], clock) as (stream, _):
        assert stream.healthy
        clock.now += 2 * STEP / 1000
        assert stream.healthy
        clock.now += 0.001
        assert not stream.healthy
        assert stream.closed_since(T0 - STEP) is None


def test_not_healthy_before_the_first_candle() -> None:
    client = FakeProClient([])
    stream = make_stream(client, Clock(T0), Waits())
    stream.start()
    try:
        assert client.drained.wait(WAIT)
        assert not stream.healthy
        assert stream.closed_since(T0 - STEP) is None
    finally:
        stream.stop()


def test_stop_joins_the_thread_and_closes_the_client() -> None:
    with streaming([[bar(0, 1)]], Clock(T0)) as (stream, client):
        assert len(stream_threads()) == 1
        assert not client.closed.is_set()
        stream.stop()
        assert stream_threads() == []
        assert client.closed.is_set()
        assert not stream.healthy
        assert stream.closed_since(T0 - STEP) is None
    stream.stop()  # again: nothing to do


def test_start_twice_is_an_error() -> None:
    with (
        streaming([], Clock(T0)) as (stream, _),
        pytest.raises(RuntimeError, match=r"^the BTC/USDT 1m stream was started already$"),
    ):
        stream.start()


def test_without_a_client_factory_there_is_no_stream() -> None:
    stream = ClosedBarStream(None, "BTC/USDT", "1m")
    stream.start()
    assert not stream.supported
    assert stream_threads() == []
    assert not stream.healthy
    assert stream.closed_since(T0) is None
    stream.stop()


def test_a_client_without_watch_ohlcv_gives_up_at_once() -> None:
    client = FakeProClient([[bar(0, 1)]], streams=False)
    stream = make_stream(client, Clock(T0), Waits())
    with capture_logs() as logs:
        stream.start()
        assert client.closed.wait(WAIT)
        stream.stop()
    assert client.calls == []
    assert stream.gave_up
    assert [e["reason"] for e in logs if e["event"] == "stream_gave_up"] == [
        "the exchange has no watchOHLCV"
    ]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^grace_seconds must be >= 0, was -1$"):
        ClosedBarStream(None, "BTC/USDT", "1m", grace_seconds=-1)
    with pytest.raises(ValueError, match=r"^stale_after must be > 0, was 0$"):
        ClosedBarStream(None, "BTC/USDT", "1m", stale_after=0)
    with pytest.raises(ValueError, match=r"^timeframe must be a number and a unit"):
        ClosedBarStream(None, "BTC/USDT", "1x")


# The buffer, without a thread


def test_an_update_after_a_bar_closed_by_time_is_ignored() -> None:
    buffer = ClosedBarBuffer(STEP)
    buffer.add([bar(0, 1)], now_ms=T0 + 1_000)
    buffer.close_due(T0 + STEP)
    assert buffer.since(T0 - STEP) == [bar(0, 1)]

    buffer.add([bar(0, 9), bar(1, 1)], now_ms=T0 + STEP + 1_000)
    assert buffer.since(T0 - STEP) == [bar(0, 1)]
    assert buffer.last_closed_ms == T0


def test_a_malformed_answer_is_refused_whole() -> None:
    buffer = ClosedBarBuffer(STEP)
    buffer.add([bar(0, 1)], now_ms=T0)
    with pytest.raises(
        ValueError, match=r"^expected a candle \[timestamp, open, high, low, close, volume\]"
    ):
        buffer.add([bar(0, 5), [T0 + STEP, 1.0]], now_ms=T0)
    with pytest.raises(ValueError, match=rf"^expected numbers in the candle at {T0 + STEP}, "):
        buffer.add([bar(0, 5), [T0 + STEP, "x", 1, 1, 1, 1]], now_ms=T0)
    buffer.add([bar(1, 1)], now_ms=T0)
    assert buffer.since(T0 - STEP) == [bar(0, 1)]


def test_a_reconnect_that_resumes_at_the_bar_in_progress_keeps_the_stream_whole() -> None:
    buffer = ClosedBarBuffer(STEP)
    buffer.add([bar(0, 1), bar(1, 1)], now_ms=T0)
    buffer.break_continuity()
    buffer.add([bar(1, 2)], now_ms=T0)
    buffer.add([bar(2, 1)], now_ms=T0)
    assert buffer.since(T0 - STEP) == [bar(0, 1), bar(1, 2)]


def test_between_a_break_and_the_next_candle_nothing_is_vouched_for() -> None:
    buffer = ClosedBarBuffer(STEP)
    buffer.add([bar(0, 1), bar(1, 1)], now_ms=T0)
    buffer.break_continuity()
    assert buffer.since(T0 - STEP) is None
    buffer.add([], now_ms=T0)
    assert buffer.since(T0 - STEP) is None
    buffer.add([bar(1, 2)], now_ms=T0)
    assert buffer.since(T0 - STEP) == [bar(0, 1)]


def test_the_bar_in_progress_at_a_break_never_comes_out_with_the_values_seen_before() -> None:
    buffer = ClosedBarBuffer(STEP)
    buffer.add([bar(0, 1), bar(1, 1)], now_ms=T0)
    buffer.break_continuity()
    buffer.add([bar(0, 1)], now_ms=T0)  # the exchange resends the last closed bar
    buffer.close_due(T0 + 3 * STEP)
    assert buffer.since(T0) == []


def test_the_buffer_vouches_only_for_bars_it_still_holds() -> None:
    buffer = ClosedBarBuffer(STEP, capacity=3)
    buffer.add([bar(i, i + 1) for i in range(6)], now_ms=T0)  # bars 0-4 closed, 5 in progress
    assert buffer.since(T0) is None  # bar 1 was dropped
    assert buffer.since(T0 + STEP) == [bar(2, 3), bar(3, 4), bar(4, 5)]


def test_bars_before_the_first_candle_seen_are_not_vouched_for() -> None:
    buffer = ClosedBarBuffer(STEP)
    assert buffer.since(T0) is None
    buffer.add([bar(1, 1)], now_ms=T0)
    assert buffer.since(T0 - STEP) is None
    assert buffer.since(T0) == []


@st.composite
def histories(draw: st.DrawFn) -> tuple[bool, list[tuple[int, float, bool]]]:
    """Whole-cache answers or only the changed candles; then (bars ahead, price, answer now)."""
    whole_cache = draw(st.booleans())
    events = draw(
        st.lists(
            st.tuples(
                st.integers(0, 3),
                st.floats(1, 1e6, allow_nan=False, allow_infinity=False),
                st.booleans(),
            ),
            max_size=60,
        )
    )
    return whole_cache, events


@settings(max_examples=examples(300), deadline=None)
@given(histories())
def test_bars_come_out_once_in_time_order_with_the_last_update_seen(
    history: tuple[bool, list[tuple[int, float, bool]]],
) -> None:
    whole_cache, events = history
    buffer = ClosedBarBuffer(STEP)
    latest = {T0: bar(0, 1.0)}  # what the exchange last said about each bar
    changed = {T0}
    current = 0
    last = T0 - STEP
    emitted: list[list[float]] = []

    def answer() -> None:
        nonlocal last
        stamps = sorted(latest if whole_cache else changed)
        changed.clear()
        buffer.add([latest[t] for t in stamps], now_ms=T0)  # never closed by time
        fresh = buffer.since(last)
        assert fresh is not None
        for row in fresh:
            assert row[0] > last
            last = int(row[0])
        emitted.extend(fresh)

    for ahead, price, answer_now in events:
        current += ahead  # 0: an update of the bar in progress; else a new bar
        stamp = T0 + current * STEP
        latest[stamp] = bar(current, price)
        changed.add(stamp)
        if answer_now:
            answer()
    answer()

    newest = max(latest)
    assert emitted == [latest[t] for t in sorted(latest) if t != newest]
    assert buffer.since(T0 - STEP) == emitted


# Making clients


def test_pro_client_factory_makes_guarded_ccxt_pro_clients() -> None:
    make = pro_client_factory("binance", {"timeout": 1234})
    assert make is not None
    client = make()
    assert isinstance(client, ccxt.pro.binance)
    assert client.timeout == 1234 and client.enableRateLimit is True
    with capture_logs() as logs:
        client.log("GET https://api.binance.com/api/v3/order?signature=abc")
    assert logs == [  # ccxt's verbose print becomes a redacted debug event
        {
            "event": "ccxt_verbose",
            "log_level": "debug",
            "exchange": "binance",
            "message": "GET https://api.binance.com/api/v3/order?signature=***",
        }
    ]
    assert make() is not client


def test_pro_client_factory_is_none_without_an_ohlcv_stream() -> None:
    rest_only = next(e for e in ccxt.exchanges if e not in ccxt.pro.exchanges)
    assert pro_client_factory(rest_only, {}) is None
    assert not ccxt.pro.bitstamp().has.get("watchOHLCV")  # the premise of the next line
    assert pro_client_factory("bitstamp", {}) is None


def test_pro_client_factory_refuses_an_unknown_exchange() -> None:
    with pytest.raises(
        ValueError,
        match=r"^must be a ccxt exchange id such as binance, kraken or okx; was 'binanse' "
        r"\(did you mean 'binance'\?\)$",
    ):
        pro_client_factory("binanse", {})


def test_use_pro_client_factory_swaps_in_a_stand_in_or_no_stream() -> None:
    made: list[dict[str, Any]] = []

    def stand_in(settings: Any) -> FakeProClient:
        made.append(dict(settings))
        return FakeProClient([])

    with use_pro_client_factory("binance", stand_in):
        make = pro_client_factory("binance", {"timeout": 1})
        assert make is not None
        assert isinstance(make(), FakeProClient)
        assert made == [{"enableRateLimit": True, "timeout": 1}]
        with use_pro_client_factory("binance", None):
            assert pro_client_factory("binance", {}) is None
        assert pro_client_factory("binance", {}) is not None
    make = pro_client_factory("binance", {})
    assert make is not None and isinstance(make(), ccxt.pro.binance)
