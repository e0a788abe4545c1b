"""Where a run's time goes: its stages, timed only while someone records them.

A run's code wraps each stage in `stage` (``with stage("equity.csv"): ...``); outside
`recording` that costs one global lookup. ``benchmarks/bench_run.py`` records a whole
run's stages to print where a user's wait goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["WORKER", "recording", "stage"]

WORKER = "worker: "
"""The prefix of a stage that a worker thread runs beside the stages of the run's own
thread (its time overlaps theirs)."""

_stages: list[tuple[str, float]] | None = None
_clock: Callable[[], float] = time.perf_counter


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as the stage ``name`` when `recording` (a stage inside another is
    recorded too, and its time counted in both)."""
    if _stages is None:
        yield
        return
    clock = _clock
    start = clock()
    try:
        yield
    finally:
        if _stages is not None:
            _stages.append((name, clock() - start))


@contextmanager
def recording(
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[list[tuple[str, float]]]:
    """Yield the list that each `stage` finished inside the block appends ``(name,
    seconds)`` to, in the order they finished.

    Args:
        clock: What a stage's seconds are: the wall clock, or ``time.thread_time`` for
            the CPU time of the thread that ran it (on a shared machine, its own work
            without the waits the other processes cause).
    """
    global _stages, _clock
    previous, _stages = _stages, []
    previous_clock, _clock = _clock, clock
    try:
        yield _stages
    finally:
        _stages, _clock = previous, previous_clock
