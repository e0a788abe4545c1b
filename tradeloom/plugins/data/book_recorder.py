"""Record order-book snapshots at a steady cadence (``tradeloom data record-book``).

`record_books` calls a snapshot reader every ``every`` seconds on a fixed schedule
(a slow answer does not push later snapshots back; one that overruns a slot skips
the wait), until ``duration`` has passed, ``count`` snapshots are taken, or the
user interrupts; what was recorded is returned either way, so Ctrl-C never loses
a recording. The clock and the wait are injected, so tests step a simulated clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tradeloom.plugins.data.book_snapshots import BookSnapshot

__all__ = ["Recording", "record_books"]


@dataclass(frozen=True)
class Recording:
    """What `record_books` took.

    Attributes:
        snapshots: In the order read.
        interrupted: The user stopped it (Ctrl-C) before its end.
    """

    snapshots: tuple[BookSnapshot, ...]
    interrupted: bool


def record_books(
    read: Callable[[], BookSnapshot],
    *,
    every: float,
    duration: float | None = None,
    count: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_snapshot: Callable[[BookSnapshot], None] | None = None,
) -> Recording:
    """Take snapshots at ``0, every, 2 * every, ...`` seconds from the first.

    Args:
        read: Returns the next snapshot (`tradeloom.plugins.data.book_snapshots.fetch_book`).
        every: Seconds between snapshots (0: back to back).
        duration: Stop before a snapshot due at or after this many seconds (None: no limit).
        count: Stop after this many snapshots (None: no limit).
        clock: Seconds on a monotonic clock.
        sleep: Waits that many seconds.
        on_snapshot: Told of each snapshot as it is taken (a progress bar).

    Raises:
        ValueError: ``every`` < 0, ``duration`` <= 0 or ``count`` < 1.
    """
    if every < 0 or (duration is not None and duration <= 0) or (count is not None and count < 1):
        raise ValueError(
            f"every must be >= 0, duration > 0 and count >= 1; were {every}, {duration}, {count}"
        )
    taken: list[BookSnapshot] = []
    start = clock()
    try:
        while True:
            snapshot = read()
            taken.append(snapshot)
            if on_snapshot is not None:
                on_snapshot(snapshot)
            if count is not None and len(taken) >= count:
                break
            due = len(taken) * every
            if duration is not None and due >= duration:
                break
            sleep(max(0.0, start + due - clock()))
    except KeyboardInterrupt:
        return Recording(tuple(taken), interrupted=True)
    return Recording(tuple(taken), interrupted=False)
