"""Who answers a paper or live run's rebalance: a worker with a deadline, or the journal.

A backtest solves each rebalance on the bar's path (`tradeloom.engine.allocating`). A
paper or live run must not let an optimiser hold a bar past its close:

- `DeadlineSolver` solves in a worker thread and waits for it at most
  ``live.allocation_deadline_seconds``. Past the deadline the rebalance is ``late``: its
  row says so, the last feasible targets hold and nothing is traded; the worker's
  answer, when it comes, is dropped (the next rebalance the schedule asks for solves
  afresh). While a late solve still runs, a rebalance that comes due is ``late`` too,
  without a second worker: one allocator is never called from two threads at once.
  A worker is a daemon thread, so an allocator that never returns does not keep the
  process from ending.
- `JournaledSolver` answers a restart's replay with each decision the journal holds
  (``allocation_decided``), so a restart continues with the weights the run had and
  never solves a journaled rebalance again: a solve late or not, its outcome is a fact
  of the journal. A bar the journal holds no decision of (the last one, cut short by the
  kill before its decision was committed) is solved as it would have been.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tradeloom.engine.allocating import LATE, AllocationRequest, Solution, Solver
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    from tradeloom.journal import AllocationDecided

__all__ = ["DeadlineSolver", "JournaledSolver"]


class DeadlineSolver:
    """Solve each rebalance in a worker thread, waiting at most ``seconds`` for it.

    Args:
        solve: The solve itself (`tradeloom.engine.allocating.Rebalancer.solve`).
        seconds: The deadline (``live.allocation_deadline_seconds``).
    """

    def __init__(self, solve: Solver, seconds: float) -> None:
        self.solve = solve
        self.seconds = seconds
        self._running: tuple[int, threading.Thread] | None = None
        """The late solve still running: its bar and its worker."""

    def __call__(self, request: AllocationRequest) -> Solution:
        """Return the solve's answer, or ``late`` past the deadline."""
        if self._running is not None:
            bar, worker = self._running
            if worker.is_alive():
                return (
                    LATE,
                    f"the solve of bar {bar} still runs, past its deadline: the last weights hold",
                    None,
                )
            self._running = None
        answer: list[Solution] = []

        def work() -> None:
            try:
                answer.append(self.solve(request))
            except BaseException as exc:  # journaled as the solve's error, never a crash
                text = " ".join(str(exc).split()) or type(exc).__name__
                answer.append(("error", f"the solve raised {type(exc).__name__}: {text}", None))

        worker = threading.Thread(
            target=work, name=f"tradeloom-allocation-{request.bar}", daemon=True
        )
        worker.start()
        worker.join(self.seconds)
        if worker.is_alive():
            self._running = (request.bar, worker)
            return (
                LATE,
                f"the solve took longer than live.allocation_deadline_seconds "
                f"({self.seconds:g} s): the last weights hold",
                None,
            )
        return answer[0]


class JournaledSolver:
    """Answer a restart's replay with the journal's decisions, by bar.

    Args:
        decisions: The journal's ``allocation_decided`` rows, by bar.
        fallback: Who solves a bar the journal holds no decision of.
    """

    def __init__(self, decisions: Mapping[int, AllocationDecided], fallback: Solver) -> None:
        self.decisions = decisions
        self.fallback = fallback

    def __call__(self, request: AllocationRequest) -> Solution:
        """Return the journal's decision at the request's bar (its weights when ``ok``)."""
        row = self.decisions.get(request.bar)
        if row is None:
            return self.fallback(request)
        weights = np.array(row.weights, dtype=np.float64) if row.status == "ok" else None
        return row.status, row.message, weights
