"""Each test's phases as they end, one line each, in the file ``TRADELOOM_TEST_TIMES``
names: the suite's budget is read from a whole run's lines (``--durations`` prints only at
the end, and only the slowest).

A line is ``seconds<TAB>phase<TAB>worker<TAB>node id``; every worker appends to the same
file (lines shorter than the pipe's atomic size, opened for append).
"""

from __future__ import annotations

import os

import pytest

__all__ = ["record"]


def record(report: pytest.TestReport) -> None:
    """Append ``report``'s duration to the file ``TRADELOOM_TEST_TIMES`` names, if any."""
    path = os.environ.get("TRADELOOM_TEST_TIMES")
    if not path:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    line = f"{report.duration:.3f}\t{report.when}\t{worker}\t{report.nodeid}\n"
    with open(path, "a", encoding="utf-8") as out:
        out.write(line)
