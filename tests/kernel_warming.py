"""The kernels' compile before a parallel run's tests (tests/warm_kernels.py), while its
workers start and collect.

The compile used to end before pytest-xdist started its workers, so the workers'
start-up and collection (each imports tradeloom and every test module: about 20 s of CPU
a worker, 3 workers) came after it. On an empty cache the compile's heaviest kernels keep
one core busy for most of a minute (tests/warm_kernels.py compiles the rest on the other
beside them). Now the
controlling process starts the compile when it is configured (`start`), the workers
start and collect beside it, and the controlling process waits for the compile where it
would collect (`wait`): it hands out no test before the compile has ended, so no test
compiles a kernel that the compile is still writing.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

__all__ = ["start", "wait"]

_running: subprocess.Popen[bytes] | None = None


def start(script: Path) -> None:
    """Start ``script``, the compile, in the background."""
    global _running
    _running = subprocess.Popen([sys.executable, str(script)])


def wait() -> None:
    """Wait for the compile `start` started, if any; warn if it did not end with 0."""
    global _running
    if _running is None:
        return
    code = _running.wait()
    _running = None
    if code != 0:
        warnings.warn(
            f"the kernel cache is cold (tests/warm_kernels.py exit code {code}): "
            "each worker compiles its own",
            stacklevel=1,
        )
