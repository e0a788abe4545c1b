"""Play the emulator's bars at the pace of a live run that polls it (for end-to-end tests).

A live run on the wall clock sees every bar the emulator has played as closed. To have
it meet the market one bar at a time, as on an exchange, `bars_closing` plays the next
bar only once the run has asked for the newest closed bar (or later ones) and then sent
nothing for a moment (it has acted on it): the emulator never plays its bars away during
a slow start-up, each tick finds one new bar, and an order fills at the next bar's open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradeloom.testing.emulator.emulator import ExchangeEmulator

__all__ = ["bars_closing"]

_KLINES = "GET /api/v3/klines"
_QUIET_SECONDS = 0.02


@contextmanager
def bars_closing(emulator: ExchangeEmulator) -> Iterator[None]:
    """Close the bar in progress each time the run has caught up with the market."""
    stop = threading.Event()

    def play() -> None:
        read, caught_up, last = 0, False, time.monotonic()
        while not stop.wait(0.002):
            market = emulator.exchange
            arrived = emulator.requests()[read:]
            read += len(arrived)
            if arrived:
                last = time.monotonic()
                newest = market.now_ms() - market.interval_ms  # the last closed bar's open
                caught_up |= any(
                    r.route == _KLINES and int(r.params.get("startTime", -1)) >= newest
                    for r in arrived
                )
            elif (
                caught_up
                and time.monotonic() - last > _QUIET_SECONDS
                and market.position < market.length
            ):
                emulator.advance()
                caught_up = False

    thread = threading.Thread(target=play, name="bars-closing", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
