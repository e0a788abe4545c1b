"""Work handed beside the caller (`tradeloom.backtest.beside`): a piece no thread has
started is computed by the caller when it needs it, once; one started is awaited."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tradeloom.backtest.beside import Beside


def _busy(pool: ThreadPoolExecutor) -> threading.Event:
    """Hold the pool's one thread until the returned event is set (or for 2 s: a caller
    that waited instead of computing gets the piece from the pool, and fails the test
    rather than hanging it)."""
    release = threading.Event()
    pool.submit(release.wait, 2.0)
    return release


def _recording(ran: list[int], value: int) -> int:
    ran.append(threading.get_ident())
    return value


def test_a_piece_not_started_is_computed_by_the_caller_once() -> None:
    ran: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        release = _busy(pool)
        piece = Beside(pool).submit("piece", _recording, ran, 7)
        assert piece.result() == 7
        assert piece.result() == 7  # not computed again
        release.set()
    assert ran == [threading.get_ident()]  # by the caller; the pool never ran it


def test_a_piece_started_beside_is_awaited() -> None:
    ran: list[int] = []
    started, finish = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        finish.wait()
        return _recording(ran, 3)

    with ThreadPoolExecutor(1) as pool:
        piece = Beside(pool).submit("piece", slow)
        started.wait()
        threading.Timer(0.05, finish.set).start()
        assert piece.result() == 3
    assert len(ran) == 1 and ran[0] != threading.get_ident()


@pytest.mark.parametrize("started", [False, True])
def test_a_pieces_error_is_raised_by_its_result_every_time(started: bool) -> None:
    calls: list[str] = []

    def fail() -> None:
        calls.append("ran")
        raise ValueError("piece broke")

    with ThreadPoolExecutor(1) as pool:
        release = threading.Event() if started else _busy(pool)
        piece = Beside(pool).submit("piece", fail)
        if started:
            while not calls:  # the pool's thread ran it
                threading.Event().wait(0.001)
        for _ in range(2):
            with pytest.raises(ValueError, match=r"^piece broke$"):
                piece.result()
        release.set()
    assert calls == ["ran"]


def test_a_piece_taken_back_by_two_callers_at_once_is_computed_once() -> None:
    ran: list[int] = []
    entered = threading.Event()

    def slow() -> int:
        ran.append(1)
        entered.set()
        threading.Event().wait(0.05)  # the second caller asks meanwhile
        return 5

    with ThreadPoolExecutor(1) as pool:
        release = _busy(pool)
        piece = Beside(pool).submit("piece", slow)
        other: list[int] = []
        caller = threading.Thread(target=lambda: other.append(piece.result()))
        caller.start()
        entered.wait()
        assert piece.result() == 5
        caller.join()
        release.set()
    assert other == [5] and ran == [1]


def test_a_piece_cancelled_by_its_pools_shutdown_is_computed_by_the_caller() -> None:
    ran: list[int] = []
    pool = ThreadPoolExecutor(1)
    release = _busy(pool)
    piece = Beside(pool).submit("piece", _recording, ran, 2)
    pool.shutdown(wait=False, cancel_futures=True)
    assert piece.result() == 2
    release.set()
    assert ran == [threading.get_ident()]
