"""SIGINT and SIGTERM during a paper or live run's start-up: remembered, not fatal.

The CLI calls `catch_stop_signals_early` first thing for ``--mode paper|live``
(`trades_live`), before the heavy imports and the validation: the ``tradeloom``
command's process as soon as it imports the CLI module, before that module's own
imports (this module imports nothing else of tradeloom), so
that a signal during start-up stops the run cleanly once it has started, with a
journaled ``stopped`` row, instead of killing the process (exit 143) before its journal
says so. `tradeloom.live.tick.loop.stop_on_signals` then takes over the same event.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

__all__ = ["catch_stop_signals_early", "take_early_stop", "trades_live"]

_early: tuple[threading.Event, dict[Any, Any]] | None = None


def trades_live(words: Sequence[str]) -> bool:
    """Return whether command-line ``words`` are ``run ... --mode paper|live`` (no parser)."""
    if "run" not in words:
        return False
    for k, word in enumerate(words):
        if word in ("--mode=paper", "--mode=live"):
            return True
        if word == "--mode" and k + 1 < len(words) and words[k + 1] in ("paper", "live"):
            return True
    return False


def catch_stop_signals_early() -> None:
    """Have SIGINT and SIGTERM set a stop event from now on (main thread only)."""
    global _early
    if _early is not None or threading.current_thread() is not threading.main_thread():
        return
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only the event: see tradeloom.live.tick.loop

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _early = (stop, previous)


def take_early_stop() -> tuple[threading.Event, dict[Any, Any]] | None:
    """Return the early event and the handlers it replaced, once; None if not caught."""
    global _early
    taken, _early = _early, None
    return taken
