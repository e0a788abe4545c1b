"""Work other threads compute beside the caller's, which the caller takes back when it
needs a piece none of them has started.

A run's metrics hand the figures that need no other (the account's, the predictions',
the tails of its returns) to one thread while the caller computes the tearsheet. A
piece the caller waits for while that thread is still busy with another is computed by
the caller itself: it takes it back from the queue (`concurrent.futures.Future.cancel`
succeeds only for work not started), so no thread waits while work is queued. A run's
table workers likewise make the equity rows its report draws, after the tables they write.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Generic, TypeVar

from tradeloom.runtime.stage_times import WORKER, stage

__all__ = ["Beside", "Piece"]

_T = TypeVar("_T")


class Piece(Generic[_T]):
    """A piece of work handed to the thread beside (`Beside.submit`)."""

    def __init__(self, future: Future[_T], work: Callable[[], _T]) -> None:
        self._future = future
        self._work = work
        self._taking = threading.Lock()
        self._taken: Future[_T] | None = None  # the piece as a caller computed it

    def result(self) -> _T:
        """Return the piece's result: computed here if no thread beside has started it
        (its time counted in the caller's stage), else awaited; computed once, its error
        raised by every call."""
        with self._taking:  # (a second caller waits for the first's)
            if self._taken is None and self._future.cancel():
                self._taken = Future()
                try:
                    self._taken.set_result(self._work())
                except BaseException as exc:
                    self._taken.set_exception(exc)
        return (self._future if self._taken is None else self._taken).result()


class Beside:
    """Hands pieces of work to ``executor``'s threads, beside the caller's."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def submit(self, name: str, work: Callable[..., _T], *args: Any) -> Piece[_T]:
        """Queue ``work(*args)``, timed as the stage ``worker: name`` where a thread
        beside runs it (`tradeloom.runtime.stage_times`)."""
        piece = functools.partial(work, *args)

        def beside() -> _T:
            with stage(f"{WORKER}{name}"):
                return piece()

        return Piece(self._executor.submit(beside), piece)
