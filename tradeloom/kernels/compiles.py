"""What compiling kernels cost this process: how many numba compiled, and for how long.

numba announces each compilation its cache could not serve (``numba:compile``); a
kernel compiles the kernels it calls inside its own announcement. `watch`, which
`tradeloom.kernels.jit` calls when it imports numba, counts the outermost ones and the wall and
CPU time they took (the nested ones are inside them). A run whose kernels all came from
the cache compiled none. The command line logs the totals at the end of a command
(``kernels_compiled``, at info level) and `benchmarks/bench_first_run.py` reads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Compiled", "compiled", "watch"]


@dataclass(frozen=True)
class Compiled:
    """The outermost compilations of this process so far."""

    kernels: int
    seconds: float
    """Wall time."""
    cpu_seconds: float
    """This process's CPU time (user and system) meanwhile."""
    by_kernel: dict[str, float] = field(default_factory=dict)
    """The wall seconds of each outermost compilation, by its kernel's module and name
    (a kernel compiled for two signatures: their sum)."""


_depth = 0
_totals = [0, 0.0, 0.0]  # kernels, wall, CPU
_started = (0.0, 0.0)
_by_kernel: dict[str, float] = {}
_watching = False


def compiled() -> Compiled:
    """Return what compiling kernels cost this process so far."""
    kernels, seconds, cpu = _totals
    return Compiled(int(kernels), seconds, cpu, dict(_by_kernel))


def _name(ev: Any) -> str:
    func = getattr(ev.data.get("dispatcher"), "py_func", None)
    if func is None:
        return "?"
    module = func.__module__ or "?"  # None: a function made by exec, of no module
    return f"{module.removeprefix('tradeloom.')}.{func.__qualname__}"


def watch() -> None:
    """Count numba's compilations from now on (once per process; numba is imported)."""
    global _watching
    if _watching:
        return
    from numba.core import event

    class _Counting(event.Listener):
        # numba compiles under its global lock: one compilation at a time per process
        def on_start(self, ev: Any) -> None:
            global _depth, _started
            if _depth == 0:
                _started = (time.perf_counter(), time.process_time())
            _depth += 1

        def on_end(self, ev: Any) -> None:
            global _depth
            _depth -= 1
            if _depth == 0:
                seconds = time.perf_counter() - _started[0]
                _totals[0] += 1
                _totals[1] += seconds
                _totals[2] += time.process_time() - _started[1]
                name = _name(ev)
                _by_kernel[name] = _by_kernel.get(name, 0.0) + seconds

    event.register("numba:compile", _Counting())
    _watching = True
