"""Run every task with one thread for BLAS and OpenMP, in every process that runs one.

A library's threaded reduction (OpenBLAS's dot product, an OpenMP sum) splits its work by
its thread count, and the sum of the parts differs in the last bits from one count to
another. A task run in this process, in a pool worker or on a Dask worker (whose nanny
sets ``OMP_NUM_THREADS=1``) would otherwise get numbers that depend on where it ran. One
thread is also the right count when the sweep's parallelism is its tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["call_single_threaded", "single_threaded"]

_limited = False  # whether this worker process has been limited


@contextmanager
def single_threaded() -> Iterator[None]:
    """Limit BLAS and OpenMP to one thread while the block runs (in this process)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def call_single_threaded(function: Callable[..., Any], *args: Any) -> Any:
    """Return ``function(*args)`` in a worker process limited to one thread.

    The limit is set at the process's first task and kept (threadpoolctl takes a few
    milliseconds to find the libraries, too long to pay per task); so are glibc's heap
    thresholds where the worker's launcher changed them
    (`tradeloom.sweep.worker_memory`).
    """
    global _limited
    if not _limited:
        from threadpoolctl import threadpool_limits

        from tradeloom.sweep.worker_memory import restore_heap_thresholds

        threadpool_limits(limits=1)
        restore_heap_thresholds()
        _limited = True
    return function(*args)
