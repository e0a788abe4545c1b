"""How this process's C allocator keeps the memory a run frees, set once per process.

A run over a million bars makes and drops many arrays of a few megabytes (a column of
the equity curve is 8 MB): each pass of the metrics, each table's columns. glibc's
malloc hands back to the kernel the free memory at its heap's top once it exceeds a
threshold that starts at 128 kB and follows the largest block freed (twice it, so
16 MB after an 8 MB column), and serves each block of more than a threshold (128 kB,
following the largest freed up to 32 MB) with a mapping of its own, unmapped when
freed. The run's next array then takes fresh pages from the kernel, each a page fault
that zeroes 4 kB: a 1M-bar run took ~16,000 of them, 0.10-0.15 s of system time, a
sixth of its CPU, and ~2,000 (0.05-0.07 s) once the memory it freed is kept
(``benchmarks/bench_run.py``; measured with ``resource.getrusage``).

`keep_freed_memory` sets, once per process: blocks of up to `MAPPED_ABOVE` (32 MB)
come from the heap, and the heap keeps up to `KEPT_FREE` (512 MB) free at its top
before handing it back. A larger array is still mapped and unmapped on its own, and a
process's peak memory does not change: only what it gives back between its peaks.
Nothing is set outside glibc (macOS, musl), nor where the environment sets glibc's
own (``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
``MALLOC_MMAP_MAX_``, or ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``): a process
that chose how its allocator behaves keeps its choice (``MALLOC_TRIM_THRESHOLD_=131072``
gives glibc's defaults back).
"""

from __future__ import annotations

import os
import sys

__all__ = ["KEPT_FREE", "MAPPED_ABOVE", "keep_freed_memory"]

MAPPED_ABOVE = 32 << 20
"""Blocks larger than this are mapped on their own (glibc's ``M_MMAP_THRESHOLD``; its
largest allowed value on a 64-bit machine)."""

KEPT_FREE = 512 << 20
"""Free memory the heap keeps at its top before handing it back (``M_TRIM_THRESHOLD``)."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_CHOSEN = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)
_set = False


def keep_freed_memory() -> bool:
    """Keep the memory this process frees for its next arrays (see the module); return
    whether glibc's settings were changed, by this call or an earlier one."""
    global _set
    if _set:
        return True
    if any(name in os.environ for name in _CHOSEN):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (ValueError, OSError):  # not glibc's C library (musl)
        return False
    import ctypes

    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _set = bool(mallopt(_M_MMAP_THRESHOLD, MAPPED_ABOVE) and mallopt(_M_TRIM_THRESHOLD, KEPT_FREE))
    return _set
