"""One policy for the native libraries' threads (OpenMP, BLAS), set once per process.

tradeloom's own parallelism is processes (a sweep's ``--workers``, Dask workers) and
fold threads (``model.walk_forward.n_jobs``). The native libraries start pools of their
own on top: HistGradientBoosting fits with OpenMP, numpy's BLAS with its threads, one
per core by default, inside every worker and every fold thread. On a shared machine
their threads spin while they wait for a core, and a run that takes 9.4 s with one
thread took 43.6 s with the default (issue 27; ``benchmarks/bench_threads.py``
measures it).

The policy: each process runs the native libraries on ``threads`` threads, from
``tradeloom --threads N``, else the ``TRADELOOM_THREADS`` environment variable, else 1.
One is the default because tradeloom's parallelism is elsewhere (workers x threads
never exceeds the cores a sweep was given), because small fits (a fold of a few
thousand rows) are faster on one thread than paying a pool's synchronisation, and
because a threaded reduction sums in an order that depends on the thread count:
with one thread, ``tradeloom run`` and a sweep's worker give the same numbers on any
machine. Raise it for one large model on an otherwise idle machine.

The count is exported to the environment (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``), so that the libraries read it when they load and every process
this one starts (a sweep's pool, a check's runs) inherits it, and applied with
threadpoolctl to the libraries already loaded. The command line sets it for its whole
process (`apply_native_threads`); the Python API for each of its calls (`native_threads_in`),
so that a notebook's backtest gives the command's numbers at the command's cost (a
HistGradientBoosting walk-forward of 2,148 daily bars: 10 s of CPU on a loaded 2-core
machine with OpenMP's default of a thread per core, 0.4 s with one), and the notebook's
own work is as it was afterwards.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "ENV",
    "apply_native_threads",
    "native_threads",
    "native_threads_in",
    "openmp_threads",
]

ENV = "TRADELOOM_THREADS"
"""The environment variable that sets the native thread count when ``--threads`` is not given."""

_EXPORTED = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_NATIVE = ("numpy", "scipy", "sklearn")  # modules that load a thread pool


def native_threads(option: int | None = None) -> int:
    """Return the native thread count: ``option``, else ``TRADELOOM_THREADS``, else 1.

    Raises:
        ValueError: ``TRADELOOM_THREADS`` is not an integer >= 1 (the message names it).
    """
    if option is not None:
        return option
    text = os.environ.get(ENV, "").strip()
    if not text:
        return 1
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{ENV}: expected an integer >= 1, was '{text}'") from None
    if value < 1:
        raise ValueError(f"{ENV}: expected an integer >= 1, was {value}")
    return value


def apply_native_threads(threads: int) -> None:
    """Run this process's native libraries, and those of the processes it starts, on
    ``threads`` threads."""
    for name in _EXPORTED:
        os.environ[name] = str(threads)
    if any(name in sys.modules for name in _NATIVE):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)


@contextmanager
def native_threads_in(threads: int) -> Iterator[None]:
    """Run the native libraries on ``threads`` threads inside the block (`apply_native_threads`),
    and as they were outside it: the environment's variables and the loaded libraries'
    limits restored, and a library first loaded inside set to what it would have loaded
    with outside (its variable as the caller had it, else a thread per usable core).

    threadpoolctl finds the loaded libraries by reading ``/proc/self/maps`` (6 ms in a
    notebook's process, which numba's and pyarrow's mappings fill: twice a call, 7% of a
    1,000,000-bar backtest's); its controller is kept while the process loads no other
    shared object (`_loaded_objects`, 0.1 ms), and looked for again when one is loaded.
    """
    saved = {name: os.environ.get(name) for name in _EXPORTED}
    loaded = _loaded_objects()
    controller = _controller(loaded)
    before = {lib.filepath for lib in controller.lib_controllers}
    for name in _EXPORTED:
        os.environ[name] = str(threads)
    try:
        with controller.limit(limits=threads):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        after = _loaded_objects()
        if after is None or after != loaded:  # a library may have been loaded inside
            for lib in _controller(after).lib_controllers:
                if lib.filepath not in before:
                    lib.set_num_threads(_outside(lib.user_api, lib.internal_api, saved))


_KEPT: dict[str, tuple[tuple[bytes, ...], Any]] = {}
"""threadpoolctl's controller, by the shared objects loaded when it was made."""


def _controller(loaded: tuple[bytes, ...] | None) -> Any:
    """Return threadpoolctl's controller of the libraries ``loaded`` (None: not known, a
    new one)."""
    from threadpoolctl import ThreadpoolController

    kept = _KEPT.get("controller")
    if loaded is not None and kept is not None and kept[0] == loaded:
        return kept[1]
    controller = ThreadpoolController()
    if loaded is not None:
        _KEPT["controller"] = (loaded, controller)
    return controller


def _loaded_objects() -> tuple[bytes, ...] | None:
    """Return the paths of the shared objects the process has loaded, in load order, by
    the C library's ``dl_iterate_phdr``; None where it has none (not Linux's or a BSD's)."""
    found = _iterator()
    if found is None:
        return None
    iterate, callback = found
    names: list[bytes] = []

    def seen(info: Any, _size: int, _data: Any) -> int:
        names.append(info.contents.name or b"")
        return 0

    iterate(callback(seen), None)
    return tuple(names)


@functools.cache
def _iterator() -> tuple[Any, Any] | None:
    """``dl_iterate_phdr`` and the type of its callback (None: the C library has none)."""
    import ctypes

    try:
        iterate = ctypes.CDLL(None).dl_iterate_phdr
    except (OSError, AttributeError):
        return None

    class ObjectInfo(ctypes.Structure):  # dl_phdr_info's first two fields
        _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p)]

    seen = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ObjectInfo), ctypes.c_size_t, ctypes.c_void_p
    )
    return iterate, seen


def _outside(user_api: str, internal_api: str, saved: dict[str, str | None]) -> int:
    """Return the threads a library loads with under the caller's variables ``saved``."""
    names = ["OMP_NUM_THREADS"]
    if user_api == "blas":
        names.insert(0, "MKL_NUM_THREADS" if internal_api == "mkl" else "OPENBLAS_NUM_THREADS")
    for name in names:
        text = (saved.get(name) or "").split(",")[0].strip()
        if text.isdigit() and int(text) >= 1:
            return int(text)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def openmp_threads() -> int:
    """Return the OpenMP threads a native library may use from the calling thread.

    What scikit-learn's own OpenMP code (HistGradientBoosting) uses there: the policy's
    count in this process (``OMP_NUM_THREADS``, which `apply_native_threads` exported),
    or the limit threadpoolctl set for this thread (one in a fold thread or a sweep
    task). For a library that does not read them itself (LightGBM's ``n_jobs=None``
    takes every physical core), to pass on as its thread count.
    """
    try:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    except ImportError:  # a scikit-learn that moved it: the process's count
        return native_threads()
    return int(_openmp_effective_n_threads())
