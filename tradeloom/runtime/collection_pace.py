"""How often the garbage collector runs while a run starts up and builds its results.

A backtest decodes its events into objects (an Order, a Fill, a Timestamp per event:
about 100,000 of them over a million one-minute bars) that live until its files are
written. With CPython's default pace (a young collection every 700 allocations, an old
one every 100 young ones) the collector walks those survivors again and again: about
a fifth of a million-bar run's CPU time. They hold few cycles, so the run collects
every 100,000 allocations instead, and the caller's pace is restored after it.

A backtest command's start-up makes objects that live as long as its process (modules,
classes, the plugins' models, the kernels' dispatchers: about 200,000): the collector
gains nothing walking them, so until the run starts it hardly runs (`start_up`), and
then takes them out of its sight for good (`settle`, ``gc.freeze``), as CPython's
documentation advises for a process's long-lived start-up objects.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fewer_collections", "settle", "start_up"]

RUN_THRESHOLD = 100_000
"""Allocations between two young collections while a run builds its results."""

START_UP_THRESHOLD = 1_000_000
"""Allocations between two young collections while a command starts up: a backtest's
imports and validation make about 270,000 objects, so none runs before `settle`, yet
a start-up that makes garbage without end is still collected."""

_settling: list[int] = []
"""The young threshold `settle` collects at, while a `start_up` block runs."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect every `RUN_THRESHOLD` allocations inside the block, then as before."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, RUN_THRESHOLD), middle, old)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


@contextmanager
def start_up() -> Iterator[None]:
    """Collect every `START_UP_THRESHOLD` allocations until `settle`, then every
    `RUN_THRESHOLD`; after the block, collect as before, what the block made (the settled
    objects included) in the oldest generation (`_aged`).

    For a command's own process (`tradeloom.cli.main`): an embedding program that calls
    the command gets its collector back as it was, nothing left frozen.
    """
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, START_UP_THRESHOLD), middle, old)
    _settling.append(max(young, RUN_THRESHOLD))
    try:
        yield
    finally:
        _settling.pop()
        _aged()
        gc.set_threshold(young, middle, old)


def _aged() -> None:
    """Move every object the collector tracks, the frozen ones included, into its oldest
    generation without walking them (``gc.freeze`` then ``gc.unfreeze``: two list splices).

    A `start_up` block collects hardly at all, so its young generation holds everything
    it made: restoring the caller's pace as it was, the next allocation walked them all
    (13 ms of a ``validate``'s 0.19 s of CPU, in `tradeloom.cli.main`, right before the
    process leaves). Aged, they are walked at the next full collection, as long-lived
    objects are.
    """
    gc.freeze()
    gc.unfreeze()


def settle() -> None:
    """End the `start_up` block's start-up: what it made so far (imports, the validated
    strategy, the built pipeline) is never walked again, and the run collects every
    `RUN_THRESHOLD` allocations. Outside a `start_up` block, do nothing."""
    if not _settling:
        return
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_settling[-1], middle, old)
