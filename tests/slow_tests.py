"""Which ``slow`` tests a run leaves out: a plain ``pytest`` (the README's, CI's) runs
without them, so that the suite keeps its 15-minute budget on 2 cores; they are kept, and
run by choice (`left_in`).

A test is marked ``slow`` when it is end-to-end or long (whole CLI runs and their
replays, browsers, the benchmarks' smallest runs, fresh interpreters, child processes
killed and restarted). The end-to-end tests a change must never land without are not
marked: every shipped strategy file's run through the CLI (tests/cli/test_cli.py), the
kill -9 fault schedules' fixed examples (tests/live/test_fault_schedules.py) and the
order's crash points (tests/live/test_crash.py).
"""

from __future__ import annotations

import os

import pytest

__all__ = ["left_in"]


def left_in(config: pytest.Config, items: list[pytest.Item]) -> list[pytest.Item]:
    """Leave out the ``slow`` tests unless the run asked for them; return
    the tests left in.

    A run asks for them by choosing tests by marker (``-m slow``, ``-m "slow or not
    slow"``), by naming a test's file or node id (``pytest tests/live/test_crash.py``
    runs its slow tests; ``pytest tests/live`` does not), or with ``TRADELOOM_SLOW=1``
    (``scripts/hunt.sh`` sets it). Each worker of a parallel run leaves out the same tests:
    the choice reads only the command line and the environment.
    """
    if config.option.markexpr or os.environ.get("TRADELOOM_SLOW"):
        return items
    named = {
        (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        for arg in config.args
        if arg.split("::", 1)[0].endswith(".py")
    }
    kept, left = [], []
    for item in items:
        slow = item.get_closest_marker("slow") is not None
        (left if slow and item.path.resolve() not in named else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
    return kept
