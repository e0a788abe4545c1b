"""The clock of a paper or live run: each symbol's closed bars, run one clock bar at a time.

Each tick of the clock (`BarTicker`) asks every symbol for its closed bars (its websocket
stream with ``live.stream``, else REST; a symbol behind the newest bar another one
returned is asked once more) and runs the clock bar ``T`` (the earliest bar not run yet)
once every symbol has a bar at or after ``T``, or once ``live.close_delay_seconds`` have
passed since ``T`` closed: a symbol whose bar has not arrived by then has no bar at ``T``
(no signal, no fill) and a bar of it that arrives later is dropped. One market's clock is
its own bars: each one runs as it closes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import OHLCV
from tradeloom.plugins.protocols import BarStream, LiveFeed
from tradeloom.plugins.protocols_bars import unsound_bars
from tradeloom.runtime.lazy import logger

__all__ = ["BarTicker", "ClosedRows"]

_log = logger("tradeloom.live")


@runtime_checkable
class ClosedRows(Protocol):
    """A feed that gives a tick its closed bars as arrays (the ccxt source does).

    The same bars as its one market's `LiveFeed.closed_bars_of`, without the frame: a
    tick of one market polled by REST builds none.
    """

    def closed_rows(
        self, last_seen_ns: int, now_ns: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Return the open times (ns, UTC) and OHLCV rows of the bars opened after
        ``last_seen_ns`` and closed by ``now_ns``."""
        ...


class BarTicker:
    """Each symbol's closed bars, held until the clock bar they belong to is run.

    With `watch`, each symbol's bars come from its websocket stream; a symbol whose
    stream cannot vouch for every bar since the last one it gave is asked by REST. The
    bars held are ``(open time in ns, OHLCV row)`` pairs in a queue per symbol: a tick
    costs no frame work, and taking its bar costs no array copied.

    Args:
        source: The data source (one market is the universe of one).
        symbols: The universe's symbols, in order.
        timeframe_seconds: The common timeframe.
        grace_seconds: How long after a bar's close the tick waits for a symbol's bar.
    """

    def __init__(
        self,
        source: LiveFeed,
        symbols: tuple[str, ...],
        timeframe_seconds: int,
        grace_seconds: float,
    ) -> None:
        self.source = source
        self.symbols = symbols
        self.bar = pd.Timedelta(seconds=timeframe_seconds)
        self.grace = pd.Timedelta(seconds=grace_seconds)
        self._bar_ns = int(timeframe_seconds * 1_000_000_000)
        self._grace_ns = int(self.grace.value)
        self._held: list[deque[tuple[int, npt.NDArray[np.float64]]]] = [deque() for _ in symbols]
        """Per symbol, the bars held: open time (ns, UTC) and OHLCV row, ascending."""
        self.streams: list[BarStream] = []
        one = self._one = len(symbols) == 1
        self._rows = source.closed_rows if one and isinstance(source, ClosedRows) else None
        """One market's closed bars as arrays (`ClosedRows`; None: as frames)."""

    def watch(self, choice: str, clock: Callable[[], pd.Timestamp]) -> bool:
        """Start each symbol's websocket stream for ``live.stream`` = ``choice``.

        Returns:
            Whether the symbols are watched: False with ``poll``, or with ``auto`` when
            the source has no stream; the ticks then poll REST.
        """
        if choice == "poll":
            return False
        grace = self.grace.total_seconds()

        def now() -> float:
            return float(clock().timestamp())

        streams = [
            self.source.bar_stream_of(symbol, grace_seconds=grace, clock=now)
            for symbol in self.symbols
        ]
        if any(stream is None for stream in streams):
            return False
        self.streams = [stream for stream in streams if stream is not None]
        for stream in self.streams:
            stream.start()
        return True

    def stop(self) -> None:
        """Stop every symbol's stream."""
        for stream in self.streams:
            stream.stop()

    def poll(self, last: pd.Timestamp, now: pd.Timestamp) -> None:
        """Ask each symbol for its bars closed since ``last`` (the clock's newest bar).

        Raises:
            RetriesExhausted: The exchange did not answer for a symbol (the bars
                fetched before it are kept).
        """
        if self._one:  # its one market (the symbols' lengths, asked once)
            self._ask(0, last, now)
            return
        for s in range(len(self.symbols)):
            self._ask(s, last, now)
        # The symbols answer one after the other: one asked before a bar closed at the
        # exchange lags one asked after. A symbol behind the newest bar held is asked
        # once more, so that a bar is missing only when the exchange had none.
        newest = max((held[-1][0] for held in self._held if held), default=last.value)
        for s, held in enumerate(self._held):
            if (held[-1][0] if held else last.value) < newest:
                self._ask(s, last, now)

    def _ask(self, s: int, last: pd.Timestamp, now: pd.Timestamp) -> None:
        held = self._held[s]
        if self._rows is not None and not self.streams:  # one market's REST: arrays
            fresh, rows = self._rows(
                held[-1][0] if held else last.value, now.value - self._grace_ns
            )
            self._hold(s, fresh, rows)
            return
        seen = pd.Timestamp(held[-1][0], tz=UTC) if held else last
        frame = self.streams[s].closed_since(seen) if self.streams else None
        if frame is None:
            frame = self.source.closed_bars_of(self.symbols[s], seen, now - self.grace)
        if len(frame):
            index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ns")
            ohlcv = frame if frame.columns.tolist() == list(OHLCV) else frame[list(OHLCV)]
            rows = ohlcv.to_numpy(np.float64, copy=True)  # held past the frame's life
            self._hold(s, index.asi8, rows)

    def _hold(self, s: int, times: npt.NDArray[np.int64], rows: npt.NDArray[np.float64]) -> None:
        """Hold symbol ``s``'s new bars, but a bar that the data validation would not
        keep (a price missing, <= 0 or inconsistent: `unsound_bars`): no order is sized
        on it. It is dropped with a warning, as a bar the exchange did not give."""
        found = unsound_bars(rows) if len(rows) else []
        for time, row, problem in zip(times.tolist(), rows, found, strict=True):
            if problem is None:
                self._held[s].append((time, row))
            else:
                _log.warning(
                    "bad_bar_dropped",
                    symbol=self.symbols[s],
                    bar=pd.Timestamp(time, tz="UTC").isoformat(),
                    problem=problem,
                    ohlcv=row.tolist(),
                )

    def due(
        self, last: pd.Timestamp, clock: Callable[[], pd.Timestamp]
    ) -> tuple[pd.Timestamp, np.ndarray] | None:
        """Return the next clock bar to run and its ``[symbols, OHLCV]``, or None (wait).

        Bars at or before ``last`` (arrived after their tick) are dropped first.
        ``clock`` (the time now) is asked only when a symbol has no bar held: whether
        its grace has passed.
        """
        last_ns = last.value
        if len(self._held) == 1:  # one market: its next bar runs as it is (no waiting)
            return self._next_of_one(last_ns)
        firsts: list[int | None] = []
        for s, held in enumerate(self._held):
            self._drop_late(s, last_ns)
            firsts.append(held[0][0] if held else None)
        known = [f for f in firsts if f is not None]
        if not known:
            return None
        time = min(known)
        if len(known) < len(firsts) and clock().value < time + self._bar_ns + self._grace_ns:
            return None  # a symbol's bar may still come
        prices = np.empty((len(self.symbols), len(OHLCV)))
        prices.fill(np.nan)
        for s, first in enumerate(firsts):
            if first == time:
                prices[s] = self._held[s].popleft()[1]
        return pd.Timestamp(time, tz=UTC), prices

    def _next_of_one(self, last_ns: int) -> tuple[pd.Timestamp, np.ndarray] | None:
        """`due` of one market: its first bar held after ``last_ns`` (None: none)."""
        held = self._held[0]
        self._drop_late(0, last_ns)
        if not held:
            return None
        time, row = held.popleft()
        prices = np.empty((1, len(OHLCV)))
        prices[0] = row
        return pd.Timestamp(time, tz=UTC), prices

    def _drop_late(self, s: int, last_ns: int) -> None:
        """Drop symbol ``s``'s bars held at or before ``last_ns`` (they came after their tick)."""
        held = self._held[s]
        late = 0
        while held and held[0][0] <= last_ns:
            held.popleft()
            late += 1
        if late:
            _log.warning("bar_after_its_tick", symbol=self.symbols[s], bars=late)
