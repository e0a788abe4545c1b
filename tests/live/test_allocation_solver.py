"""Who answers a paper or live rebalance: a worker whose error is an answer, never a
crash, and a replay that takes the journal's decision of a bar, solving only a bar the
journal does not hold (`tradeloom.live.tick.allocation_solver`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeloom.engine.allocating import AllocationRequest, Solution
from tradeloom.journal import AllocationDecided
from tradeloom.live.tick.allocation_solver import DeadlineSolver, JournaledSolver


def _request(bar: int) -> AllocationRequest:
    closes = np.array([[1.0, 2.0], [1.1, 2.2], [1.2, 2.1]])
    returns = closes[1:] / closes[:-1] - 1.0
    held = np.zeros(2)
    return AllocationRequest(bar, closes, returns, np.full(2, np.nan), held, None, "h")


def _decided(bar: int, status: str, weights: list[float], message: str = "") -> AllocationDecided:
    return AllocationDecided(
        bar=bar,
        timestamp=pd.Timestamp("2024-01-01", tz="UTC"),
        symbol="",
        correlation_id=bar,
        allocator="risk_parity",
        status=status,
        message=message,
        weights=weights,
        held=[0.0, 0.0],
        symbols=["X", "Y"],
        inputs_hash="h",
        window=2,
    )


def test_a_worker_answers_within_its_deadline_and_its_crash_is_an_error() -> None:
    solved: list[int] = []

    def solve(request: AllocationRequest) -> Solution:
        solved.append(request.bar)
        return "ok", "", np.array([0.4, 0.6])

    status, message, weights = DeadlineSolver(solve, 60.0)(_request(7))
    assert (status, message, solved) == ("ok", "", [7])
    assert weights is not None and weights.tolist() == [0.4, 0.6]

    def broken(request: AllocationRequest) -> Solution:
        raise MemoryError("no room\nat all")

    assert DeadlineSolver(broken, 60.0)(_request(8)) == (
        "error",
        "the solve raised MemoryError: no room at all",
        None,
    )


def test_a_replay_takes_the_journals_decision_and_solves_only_a_bar_it_lacks() -> None:
    solved: list[int] = []

    def solve(request: AllocationRequest) -> Solution:
        solved.append(request.bar)
        return "ok", "", np.array([0.5, 0.5])

    journal = {
        3: _decided(3, "ok", [0.25, 0.75]),
        5: _decided(5, "late", [0.25, 0.75], "the solve took longer"),
    }
    replay = JournaledSolver(journal, solve)
    status, _, weights = replay(_request(3))
    assert status == "ok" and weights is not None and weights.tolist() == [0.25, 0.75]
    assert replay(_request(5)) == ("late", "the solve took longer", None)  # the last hold
    assert solved == []
    status, _, weights = replay(_request(9))  # cut short by the kill: solved now
    assert status == "ok" and solved == [9]
