"""SIGINT and SIGTERM during a paper or live run's start-up: remembered, not fatal.

The CLI calls `catch_stop_signals_early` first thing for ``--mode paper|live``, before
the heavy imports and the validation (this module imports nothing else of tradeloom), so
that a signal during start-up stops the run cleanly once it has started, with a
journaled ``stopped`` row, instead of killing the process (exit 143) before its journal
says so. `tradeloom.runner.live.loop.stop_on_signals` then takes over the same event.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["catch_stop_signals_early", "take_early_stop"]

_early: tuple[threading.Event, dict[Any, Any]] | None = None


def catch_stop_signals_early() -> None:
    """Have SIGINT and SIGTERM set a stop event from now on (main thread only)."""
    global _early
    if _early is not None or threading.current_thread() is not threading.main_thread():
        return
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only the event: see tradeloom.runner.live.loop

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _early = (stop, previous)


def take_early_stop() -> tuple[threading.Event, dict[Any, Any]] | None:
    """Return the early event and the handlers it replaced, once; None if not caught."""
    global _early
    taken, _early = _early, None
    return taken
