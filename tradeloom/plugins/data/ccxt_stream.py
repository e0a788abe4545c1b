"""Closed bars from a ccxt.pro websocket, for the synchronous live runner.

ccxt's ``watch_ohlcv`` answers with candles as they change, the bar in progress
included, whose values move until it closes. `ClosedBarStream` runs that watch in a
background thread (its own asyncio loop) and keeps only closed bars, each given out
once, with its final values. The runner stays synchronous:

1. ``make = pro_client_factory("binance", settings)``: None when ccxt.pro has no such
   exchange or the exchange has no ``watchOHLCV`` (poll REST only; with ``live.stream:
   websocket`` that is the runner's error to raise).
2. ``stream = ClosedBarStream(make, "BTC/USDT", "1h", policy=..., grace_seconds=...)``,
   then ``stream.start()``; ``stream.stop()`` at the end of the run (it closes the
   client and joins the thread, waiting at most twice ``stop_timeout`` seconds).
3. At each bar close, and every few seconds between: ``rows =
   stream.closed_since(last_ms)``, ``last_ms`` being the open time (epoch ms) of the
   newest bar the runner has. A list (possibly empty): the closed bars opening after
   ``last_ms``, ascending, as ccxt rows ``[timestamp_ms, open, high, low, close,
   volume]`` (`tradeloom.plugins.data.ccxt_fetch.check_page` and ``bars_frame`` turn
   them into the frame the REST path returns). None: the stream cannot vouch for
   those bars; poll REST (`tradeloom.plugins.data.ccxt_fetch.poll_closed_bars`)
   instead, and ask the stream again next time.

When a bar is closed: when a candle opening later has been seen, or when the stream's
clock has passed its close by ``grace_seconds`` (for quiet markets whose exchange only
sends a candle on a trade; the grace lets the last update, sent at the close, cross
the network and absorbs a small skew between the local clock and the exchange's). An
update of a bar after it was given out is ignored: a bar never comes out twice.

When `closed_since` says None:

- the stream is not `healthy`: not started, no candle yet, reconnecting, silent for
  ``stale_after`` seconds (2 timeframes by default), stopped, or given up;
- the bars asked for go back before what the stream has seen without a break: a
  reconnect loses the bars that closed while it was down (and the bar that was in
  progress, whose final values it never saw), and the buffer keeps only the last
  ``capacity`` closed bars. Once the runner has caught up by REST past the break, the
  stream serves again.

Failures: any error of ``watch_ohlcv`` (ccxt's ``NetworkError``, a closed connection,
an exchange error, a malformed candle) counts one; the next call reconnects (ccxt.pro
dials a new connection for a watch whose connection failed) after the wait
`tradeloom.runtime.retrying.RetryPolicy.delay` gives. An answer resets the count. After
``policy.max_attempts`` consecutive failures the stream gives up for good: it logs
once, closes the client, and `healthy` stays False, so the runner polls REST. The
thread, the reconnects and the give-up are `tradeloom.plugins.data.pro_watch.ProWatcher`'s,
shared with the order book's stream.

Tests swap the client in with `use_pro_client_factory`, as `ccxt_client.use_client_factory`
does for REST clients; a run against the loopback REST emulator passes None there, or the
runner would dial the real exchange's websocket.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tradeloom.plugins.data.ccxt_client import check_exchange_id
from tradeloom.plugins.data.pro_watch import ProWatcher
from tradeloom.runtime.exchange_clients import use_websocket_stand_in, websocket_stand_in
from tradeloom.runtime.redaction import guard_client
from tradeloom.runtime.retrying import RetryPolicy
from tradeloom.time.timeframes import parse_timeframe

__all__ = [
    "ClosedBarBuffer",
    "ClosedBarStream",
    "ProClientFactory",
    "pro_client_factory",
    "use_pro_client_factory",
]

ProClientFactory = Callable[[Mapping[str, Any]], Any]
"""Make a ccxt.pro client from ccxt constructor settings (a stand-in, in tests)."""

_FIELDS = 6  # timestamp, open, high, low, close, volume
_DEFAULT_POLICY = RetryPolicy()


def pro_client_factory(
    exchange_id: str, settings: Mapping[str, Any], *, needs: str = "watchOHLCV"
) -> Callable[[], Any] | None:
    """Return a maker of ccxt.pro clients of ``exchange_id``, or None if it has no stream
    ``needs`` (``watchOHLCV``: bars; ``watchOrderBook``: the order book).

    Each call of the maker returns a new client (``ccxt.pro.<exchange_id>(settings)``,
    ``enableRateLimit`` on by default), its ``verbose`` output routed to the redacted
    logs (`tradeloom.runtime.redaction.guard_client`). Nothing is sent.

    Raises:
        ValueError: ``exchange_id`` is not a ccxt exchange id.
    """
    check_exchange_id(exchange_id)
    merged = {"enableRateLimit": True, **settings}
    overridden, stand_in = websocket_stand_in(exchange_id)
    if overridden:
        if stand_in is None:
            return None
        return lambda: guard_client(stand_in(dict(merged)))
    import ccxt.pro  # here, not at import: a run that streams nothing never loads it (0.3 s)

    if exchange_id not in ccxt.pro.exchanges:
        return None
    exchange_class = getattr(ccxt.pro, exchange_id)
    # ``has`` is filled from describe() when a client is made; making one sends nothing.
    if not exchange_class().has.get(needs):
        return None
    return lambda: guard_client(exchange_class(dict(merged)))


@contextmanager
def use_pro_client_factory(exchange_id: str, factory: ProClientFactory | None) -> Iterator[None]:
    """Make the ccxt.pro clients of ``exchange_id`` with ``factory`` inside the ``with`` block.

    ``factory`` gets the settings `pro_client_factory` would have used. None makes the
    exchange streamless, so a run against the loopback REST emulator polls it instead of
    dialing the real exchange's websocket. Blocks nest.

    Raises:
        ValueError: ``exchange_id`` is not a ccxt exchange id.
    """
    check_exchange_id(exchange_id)
    with use_websocket_stand_in(exchange_id, factory):
        yield


class ClosedBarBuffer:
    """Turn successive ``watch_ohlcv`` answers into closed bars, each given out once.

    Holds no clock and does no I/O; `ClosedBarStream` feeds it under its lock.

    Args:
        timeframe_ms: Bar length in milliseconds.
        grace_ms: How long after its close a bar still in progress is closed by time.
        capacity: Closed bars kept (the oldest are dropped).

    Raises:
        ValueError: A timeframe or capacity below 1, or a negative grace.
    """

    def __init__(self, timeframe_ms: int, *, grace_ms: int = 0, capacity: int = 1000) -> None:
        if timeframe_ms < 1 or capacity < 1 or grace_ms < 0:
            raise ValueError(
                "need timeframe_ms >= 1, capacity >= 1 and grace_ms >= 0, was "
                f"{timeframe_ms}, {capacity} and {grace_ms}"
            )
        self._step = timeframe_ms
        self._grace = grace_ms
        self._capacity = capacity
        self._closed: deque[list[float]] = deque()
        self._current: list[float] | None = None
        self._last_closed: int | None = None
        # Every bar opening at or after this has been seen (None: nothing seen yet).
        self._complete_from: int | None = None
        self._fresh = True

    @property
    def last_closed_ms(self) -> int | None:
        """Open time of the newest closed bar given out (None: none yet)."""
        return self._last_closed

    def add(self, candles: Sequence[Sequence[Any]], now_ms: int) -> None:
        """Take one ``watch_ohlcv`` answer; close what it and ``now_ms`` close.

        Args:
            candles: ccxt rows ``[timestamp_ms, open, high, low, close, volume]``: the
                ones that changed, or ccxt's whole cache; the last one may be in progress.
            now_ms: The time (epoch ms) that decides which bars are closed by time.

        Raises:
            ValueError: A candle is not such a row; nothing is taken from the answer.
        """
        rows = sorted((_candle(raw) for raw in candles), key=lambda row: row[0])
        if rows and self._fresh:
            self._resume_from(int(rows[0][0]))
        for row in rows:
            stamp = int(row[0])
            if self._last_closed is not None and stamp <= self._last_closed:
                continue  # given out already, or older than a bar given out
            current = self._current
            if current is None or stamp == current[0]:
                self._current = row
            elif stamp > current[0]:
                self._emit(current)
                self._current = row
            else:
                self._emit(row)  # a late, older bar: one opening later has been seen
        self.close_due(now_ms)

    def close_due(self, now_ms: int) -> None:
        """Close the bar in progress if ``now_ms`` is past its close by the grace."""
        current = self._current
        if current is not None and current[0] + self._step + self._grace <= now_ms:
            self._emit(current)
            self._current = None

    def break_continuity(self) -> None:
        """Forget the bar in progress: the connection dropped and updates may be lost."""
        self._current = None
        self._fresh = True

    def since(self, after_ms: int) -> list[list[float]] | None:
        """Return the closed bars opening after ``after_ms``, ascending, as new lists.

        Returns:
            None if bars opening after ``after_ms`` may be missing: nothing seen since
            the start or the last break, a gap at a break, or bars dropped from the
            buffer.
        """
        if (
            self._fresh
            or self._complete_from is None
            or after_ms + self._step < self._complete_from
        ):
            return None
        found: list[list[float]] = []
        for row in reversed(self._closed):
            if row[0] <= after_ms:
                break
            found.append(list(row))
        found.reverse()
        return found

    def _resume_from(self, first: int) -> None:
        # The first answer of a connection: every bar from ``first`` on is coming. It
        # continues what is held unless it starts after the next bar wanted.
        self._fresh = False
        if self._complete_from is not None:
            wanted = (
                self._complete_from if self._last_closed is None else self._last_closed + self._step
            )
            if first <= wanted:
                return
        self._complete_from = first

    def _emit(self, row: list[float]) -> None:
        self._closed.append(row)
        self._last_closed = int(row[0])
        if len(self._closed) > self._capacity:
            dropped = int(self._closed.popleft()[0])
            self._complete_from = max(self._complete_from or 0, dropped + 1)


class ClosedBarStream(ProWatcher):
    """Closed OHLCV bars of one symbol and timeframe from a ccxt.pro websocket.

    The watch runs in a daemon thread with its own asyncio loop
    (`tradeloom.plugins.data.pro_watch.ProWatcher`); the other methods are called
    from the runner's thread. See the module docstring for the rules.

    Args:
        client_factory: Makes the ccxt.pro client (`pro_client_factory`), called once
            in the stream's thread; None: the exchange has no stream (`supported` is
            False and `closed_since` always None).
        symbol: Unified symbol (``BTC/USDT``).
        timeframe: ccxt timeframe (``1h``).
        policy: Consecutive failures before giving up, and the waits between them.
        clock: Epoch seconds (the exchange's time, if the local clock is off); decides
            which bars are closed by time and whether the stream is fresh.
        grace_seconds: How long after its close a bar with no later candle is closed.
        stale_after: Seconds without a message after which the stream is not healthy;
            None: two timeframes.
        capacity: Closed bars kept.
        sleep: Waits between reconnects (tests record the waits instead).
        draw: Uniform draws in [0, 1) for the jitter of the waits.
        stop_timeout: Longest wait, in seconds, for the client to close; `stop` waits
            at most twice this for the thread to end.

    Raises:
        ValueError: A bad timeframe, a negative grace, or ``stale_after`` or
            ``capacity`` not positive.
    """

    capability = "watchOHLCV"
    _events = "stream"
    _fallback = "REST polling"

    def __init__(
        self,
        client_factory: Callable[[], Any] | None,
        symbol: str,
        timeframe: str,
        *,
        policy: RetryPolicy = _DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        grace_seconds: float = 2.0,
        stale_after: float | None = None,
        capacity: int = 1000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        draw: Callable[[], float] = random.random,
        stop_timeout: float = 5.0,
    ) -> None:
        step_seconds = parse_timeframe(timeframe)
        if grace_seconds < 0:
            raise ValueError(f"grace_seconds must be >= 0, was {grace_seconds}")
        super().__init__(
            client_factory,
            label=f"{symbol} {timeframe} stream",
            thread_name=f"tradeloom-stream-{symbol}-{timeframe}",
            stale_after=2.0 * step_seconds if stale_after is None else stale_after,
            policy=policy,
            clock=clock,
            sleep=sleep,
            draw=draw,
            stop_timeout=stop_timeout,
        )
        self.symbol = symbol
        self.timeframe = timeframe
        self._buffer = ClosedBarBuffer(
            step_seconds * 1000, grace_ms=round(grace_seconds * 1000), capacity=capacity
        )

    def closed_since(self, after_ms: int) -> list[list[float]] | None:
        """Return the closed bars opening after ``after_ms`` (epoch ms), ascending.

        Returns:
            ccxt rows ``[timestamp_ms, open, high, low, close, volume]``, possibly none;
            None when the stream is not healthy or cannot vouch for every bar after
            ``after_ms`` (then poll REST).
        """
        with self._lock:
            if not self._is_healthy():
                return None
            self._buffer.close_due(int(self._clock() * 1000))
            return self._buffer.since(after_ms)

    async def _next(self, client: Any) -> Any:
        return await client.watch_ohlcv(self.symbol, self.timeframe)

    def _take(self, update: Any, now: float) -> None:
        self._buffer.add(update, int(now * 1000))

    def _broken(self) -> None:
        self._buffer.break_continuity()

    def _fields(self) -> dict[str, str]:
        return {"exchange": self._exchange, "symbol": self.symbol, "timeframe": self.timeframe}


def _candle(raw: Any) -> list[float]:
    if not isinstance(raw, list | tuple) or len(raw) < _FIELDS:
        raise ValueError(
            f"expected a candle [timestamp, open, high, low, close, volume], got {raw!r:.80}"
        )
    stamp = raw[0]
    if (
        isinstance(stamp, bool)
        or not isinstance(stamp, int | float)
        or not math.isfinite(stamp)
        or stamp != int(stamp)
    ):
        raise ValueError(f"expected a candle timestamp in epoch ms, got {stamp!r:.40}")
    try:
        values = [math.nan if value is None else float(value) for value in raw[1:_FIELDS]]
    except (TypeError, ValueError):
        raise ValueError(
            f"expected numbers in the candle at {int(stamp)}, got {raw!r:.80}"
        ) from None
    return [int(stamp), *values]
