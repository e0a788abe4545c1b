"""The sweep's progress line: variants done of the total, time left, best objective so far.

Drawn by `tradeloom.runtime.progress` (rich, on stderr), so it is shown only where that module
shows bars: a terminal, not CI, not ``--quiet``; elsewhere it costs a few comparisons per
variant and the best objective is still tracked.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from types import TracebackType

from tradeloom.runtime import progress

__all__ = ["SweepProgress"]


class SweepProgress:
    """Count finished variants and show the best objective; use it as a context manager.

    Args:
        total: Variants this run will finish (a resumed sweep: those left to run).
        objective: The objective's name, as the line shows it (``sharpe``).
        higher_is_better: Whether a larger objective is a better variant.

    Example:
        >>> with SweepProgress(len(tasks), "sharpe") as bar:
        ...     execute(tasks, on_result=lambda task, result: bar.advance(result.sharpe))
    """

    def __init__(self, total: int, objective: str, *, higher_is_better: bool = True) -> None:
        self.total = total
        self.objective = objective
        self.higher_is_better = higher_is_better
        self.done = 0
        self.best: float | None = None
        self._stack = ExitStack()
        self._line = progress.Task()

    def __enter__(self) -> SweepProgress:
        self._line = self._stack.enter_context(progress.task(self._describe(), total=self.total))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()

    def advance(self, objective: float | None) -> None:
        """Count one more variant done; ``objective`` None or NaN never counts as best."""
        self.done += 1
        if objective is not None and not math.isnan(objective) and self._better(objective):
            self.best = objective
            self._line.describe(self._describe())
        self._line.advance()

    def _better(self, objective: float) -> bool:
        if self.best is None:
            return True
        return objective > self.best if self.higher_is_better else objective < self.best

    def _describe(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4g}"
        return f"sweep, best {self.objective} {best}"
