"""Where a run's time goes: its stages, timed only while someone records them.

A run's code wraps each stage in `stage` (``with stage("equity.csv"): ...``); outside
`recording` that costs one global lookup. ``benchmarks/bench_run.py`` records a whole
run's stages to print where a user's wait goes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["WORKER", "recording", "stage"]

WORKER = "worker: "
"""The prefix of a stage that a worker thread runs beside the stages of the run's own
thread (its time overlaps theirs)."""

_stages: list[tuple[str, float]] | None = None


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as the stage ``name`` when `recording` (a stage inside another is
    recorded too, and its time counted in both)."""
    if _stages is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        if _stages is not None:
            _stages.append((name, time.perf_counter() - start))


@contextmanager
def recording() -> Iterator[list[tuple[str, float]]]:
    """Yield the list that each `stage` finished inside the block appends ``(name,
    seconds)`` to, in the order they finished."""
    global _stages
    previous, _stages = _stages, []
    try:
        yield _stages
    finally:
        _stages = previous
