"""The stage that runs a first run's kernels compiled once the background compile has
cached them (`tradeloom.kernels.first_run`): a paper or live run started on a kernel cache
that did not hold its kernels runs their Python form, and does not stay on it for the
months it may last."""

from __future__ import annotations

from tradeloom.kernels.first_run import boundary
from tradeloom.live.tick.services import Stage

__all__ = ["KernelForms"]


class KernelForms(Stage):
    """At each bar boundary, switch the kernels the run calls as Python to their compiled
    form once the cache holds them (`tradeloom.kernels.first_run.boundary`); nothing to do,
    and nothing done, where every kernel runs compiled."""

    def before_bars(self) -> None:
        """Switch, before the tick's bars, the kernels the background compile cached."""
        boundary()
