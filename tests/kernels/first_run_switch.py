"""A paper run whose background compile ends after a chosen number of bar boundaries.

``python first_run_switch.py TICKS ARGS...`` runs ``tradeloom ARGS`` (``TRADELOOM_FIRST_RUN``
``auto``) with the kernel cache said to hold none of the run's kernels and a background
compile (pid 4242, started by this run, never a process) said to run until the run's
kernel stage has probed it TICKS times; from then on the cache is said to hold every
kernel, and the run loads them from the real cache (warmed by the compiled run it is
compared with). tests/kernels/test_first_run_live.py runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from tradeloom.cli.main import main as tradeloom
from tradeloom.kernels import first_run


def main(argv: Sequence[str]) -> int:
    """Run ``tradeloom ARGV[1:]`` with its background compile ending after ``ARGV[0]``
    probes of the kernel stage."""
    left = [int(argv[0])]
    launched: list[bool] = []
    cached: list[bool] = []

    def launch(rerun: Any) -> tuple[int, bool]:
        launched.append(True)
        return 4242, False

    def compiling() -> bool:
        if not launched:
            return False  # the run's start: no compile running yet
        if left[0] > 0:
            left[0] -= 1
            return True
        cached.append(True)
        return False

    first_run._launch = launch
    first_run._compiling = compiling
    first_run._cache_holds = lambda func: bool(cached)
    return tradeloom(list(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
