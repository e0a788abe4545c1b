"""How this process's C allocator keeps the memory a run frees, set once per process.

A run over a million bars makes and drops many arrays of a few megabytes (a column of
the equity curve is 8 MB): each pass of the metrics, each table's columns. glibc's
malloc hands back to the kernel the free memory at its heap's top once it exceeds a
threshold that starts at 128 kB and follows the largest block freed (twice it, so
16 MB after an 8 MB column), and serves each block of more than a threshold (128 kB,
following the largest freed up to 32 MB) with a mapping of its own, unmapped when
freed. The run's next array then takes fresh pages from the kernel, each a page fault
that zeroes 4 kB: a 1M-bar run in a process that ran one before took 17,000-21,000 of
them and 0.12-0.15 s of system time, and 1,400-1,900 (0.06-0.07 s) once the memory freed
is kept; a process's first run faults about 10% less (docs/performance.md, "Freed memory
kept").

`keep_freed_memory` sets, once per process: blocks of up to `MAPPED_ABOVE` (32 MB)
come from the heap, and the heap keeps up to `KEPT_FREE` (512 MB) free at its top
before handing it back. A larger array is still mapped and unmapped on its own. A
run's peak memory stays what it was (a 1M-bar run: 750-800 MiB either way); between
runs, a process may hold up to `KEPT_FREE` more than it would have.

Nothing is set outside glibc (macOS, musl), where ``TRADELOOM_KEEP_FREED_MEMORY`` is
``0`` (glibc's own behaviour, its thresholds following the blocks freed), or where the
environment sets glibc's settings itself (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_``, or ``glibc.malloc``
tunables in ``GLIBC_TUNABLES``): a process that chose how its allocator behaves keeps
its choice.
"""

from __future__ import annotations

import functools
import os
import sys

__all__ = [
    "ENV",
    "KEPT_FREE",
    "MAPPED_ABOVE",
    "UNIVERSE_MAPPED_ABOVE",
    "UNIVERSE_TRIMMED_ABOVE",
    "keep_freed_memory",
    "release_arrow_pool",
    "return_freed_memory",
]

ENV = "TRADELOOM_KEEP_FREED_MEMORY"
"""``0``: leave glibc's allocator as it is (`keep_freed_memory` sets nothing)."""

MAPPED_ABOVE = 32 << 20
"""Blocks larger than this are mapped on their own (glibc's ``M_MMAP_THRESHOLD``; its
largest allowed value on a 64-bit machine)."""

KEPT_FREE = 512 << 20
"""Free memory the heap keeps at its top before handing it back (``M_TRIM_THRESHOLD``)."""

UNIVERSE_MAPPED_ABOVE = 128 << 10
"""A universe's blocks larger than this are mapped on their own (`return_freed_memory`):
glibc's default, fixed (not following the blocks freed)."""

UNIVERSE_TRIMMED_ABOVE = 1 << 20
"""A universe's heap hands back its free top past this (`return_freed_memory`)."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_CHOSEN = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)


@functools.cache
def keep_freed_memory() -> bool:
    """Keep the memory this process frees for its next arrays (see the module); return
    whether glibc's settings are this module's. Asks glibc once per process."""
    if not (_wanted() and _glibc()):
        return False
    import ctypes

    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the trim threshold first: where the mapping one is refused (a 32-bit build), the
    # heap still keeps what it frees
    trimmed = bool(mallopt(_M_TRIM_THRESHOLD, KEPT_FREE))
    return trimmed and bool(mallopt(_M_MMAP_THRESHOLD, MAPPED_ABOVE))


def return_freed_memory() -> bool:
    """Hand the memory a universe's run frees back to the operating system, instead of
    keeping it for the next arrays (`keep_freed_memory`, whose setting a later run of
    one market in the process makes again); return whether glibc's settings are this
    module's.

    A universe makes and drops its arrays a symbol at a time (each 80 kB at 10k bars)
    beside its ``[bars, symbols]`` arrays, each as large as one market's 5M-bar column:
    kept free, the heaps of its threads held memory that no later block fitted (500
    symbols x 10k bars: a peak of 1,474 MiB, 1,215 MiB with blocks past
    `UNIVERSE_MAPPED_ABOVE` mapped and free tops past `UNIVERSE_TRIMMED_ABOVE` handed
    back, the run's time within noise). Nothing is set where `keep_freed_memory` would
    set nothing (outside glibc, or glibc's settings chosen by the environment).
    """
    if not (_wanted() and _glibc()):
        return False
    import ctypes

    keep_freed_memory.cache_clear()  # a later run of one market keeps its freed memory
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trimmed = bool(mallopt(_M_TRIM_THRESHOLD, UNIVERSE_TRIMMED_ABOVE))
    return trimmed and bool(mallopt(_M_MMAP_THRESHOLD, UNIVERSE_MAPPED_ABOVE))


def _wanted() -> bool:
    if os.environ.get(ENV, "").strip() == "0":
        return False
    if any(name in os.environ for name in _CHOSEN):
        return False
    return "glibc.malloc" not in os.environ.get("GLIBC_TUNABLES", "")


def _glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):  # not glibc's C library (musl)
        return False


def release_arrow_pool() -> None:
    """Hand back to the operating system the memory Arrow's pool keeps free.

    Reading a file through Arrow (``pd.read_parquet``) allocates its table from Arrow's
    own pool (mimalloc or jemalloc), which keeps the pages of a table freed once it is
    made into pandas columns: 500 symbols x 10k bars read from one long Parquet file
    left 410 MB resident and unused through the whole run, the largest part of its peak.
    Nothing is imported: a process that never read through Arrow has no pool to release.
    """
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
