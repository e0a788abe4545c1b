"""Start numba's compiler in the local pool's forkserver, so that no worker pays for it.

The first compiled call in a process initialises numba's compiler and its LLVM target,
1 to 3 s of CPU, even when the kernel comes from the on-disk cache. The pool's
forkserver imports this module before it forks any worker (a preload), and every worker
inherits a compiler that is ready: measured on a 2-core machine, a worker's first call
of a cached kernel took 0.07 s instead of 3.3 s. Forking here is safe: initialising the
compiler starts no thread.

Importing this module is the whole point of it: it compiles one trivial kernel (a
`tradeloom.kernels.jit.kernel`, so that it is cached where the other kernels are, never beside
this file).
"""

from __future__ import annotations

from tradeloom.kernels.jit import kernel

__all__ = ["warm"]


@kernel
def _one(value: int) -> int:  # pragma: no cover - compiled
    return value + 1


def warm() -> None:
    """Initialise numba's compiler in this process (a cached trivial kernel)."""
    _one(1)


warm()
