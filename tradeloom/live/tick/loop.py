"""The live clock: APScheduler wakes the runner; one thread trades.

Three jobs wake the trading thread (they only set an event: the venue and
the engine are used from one thread):

- ``bar_close``: at every bar close of the strategy's timeframe, plus
  ``live.close_delay_seconds`` for the exchange to publish the bar;
- ``poll``: every ``live.poll_seconds`` (a bar published late, the kill switch's
  files, an edited strategy file);
- ``health``: every ``live.health_check_seconds`` (the stale-data alarm).

``tradeloom kill`` wakes it at once (SIGUSR2). SIGINT and SIGTERM stop it after
the tick in progress; the journal is committed at every tick, so ``kill -9``
loses nothing a restart cannot rebuild.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

from tradeloom.live.lifecycle.early_stop import take_early_stop
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.tick.services import Ticking

__all__ = ["run_forever", "stop_on_signals"]

_log = logger("tradeloom.live")


def run_forever(run: Ticking, stop: threading.Event, *, max_bars: int | None = None) -> str:
    """Tick ``run`` when a job or a control request wakes it, until ``stop`` is set.

    Args:
        run: A started run's ticks (`LiveRunner.ticking`).
        stop: Set to stop (after the tick in progress).
        max_bars: Stop after this many live bars (None: run until stopped).

    Returns:
        Why it stopped.
    """
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    live = run.live
    seconds = run.timeframe_seconds
    due = threading.Event()
    now = datetime.now(UTC).timestamp()
    first_close = math.ceil(now / seconds) * seconds + live.close_delay_seconds
    scheduler = BackgroundScheduler(timezone=UTC)
    jobs = {
        "bar_close": IntervalTrigger(
            seconds=seconds, start_date=datetime.fromtimestamp(first_close, UTC), timezone=UTC
        ),
        "poll": IntervalTrigger(seconds=live.poll_seconds, timezone=UTC),
        "health": IntervalTrigger(seconds=live.health_check_seconds, timezone=UTC),
    }
    for name, trigger in jobs.items():
        scheduler.add_job(
            due.set,
            trigger,
            id=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(int(seconds), 1),
        )
    scheduler.start()
    wake = run.wake
    due.set()  # a first tick at once: bars closed while the run was down
    try:
        while not stop.is_set():
            if not (due.wait(0.1) or wake.is_set()):
                continue
            due.clear()
            run.tick()
            if max_bars is not None and run.processed() >= max_bars:
                return f"processed {run.processed()} bars (--max-bars)"
        return "stopped by a signal"
    finally:
        scheduler.shutdown(wait=False)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Yield an event SIGINT and SIGTERM set (main thread only); restore the handlers.

    After `tradeloom.live.lifecycle.early_stop.catch_stop_signals_early` it is that call's
    event, set already if a signal came during start-up.
    """
    taken = take_early_stop() if threading.current_thread() is threading.main_thread() else None
    if taken is not None:
        early, previous_early = taken
        try:
            yield early
        finally:
            for sig, old in previous_early.items():
                signal.signal(sig, old)
        return
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        # Only the event: a handler that logs or takes locks can deadlock the thread
        # it interrupted.
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
