"""Give the free memory of the process's heap back to the operating system.

A paper or live run allocates and frees in cycles that grow with the run (each refresh
of its files copies its curve; the report reads its journal): glibc's allocator keeps
what was freed in its arenas, the writer thread's among them, and the resident size
grew with every bar although the memory in use did not (a 40-symbol universe: +93 KB a
bar). `release_free_heap` asks glibc (``malloc_trim``) to return it; elsewhere (macOS,
musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

__all__ = ["release_free_heap"]

_trim: Callable[[int], int] | None = None
_looked = False


def release_free_heap() -> None:
    """Return the heap's free pages to the operating system (glibc; a no-op elsewhere).

    ctypes releases the GIL for the call: other threads run meanwhile.
    """
    global _trim, _looked
    if not _looked:
        _looked = True
        if sys.platform.startswith("linux"):
            try:
                _trim = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):  # not glibc
                _trim = None
    if _trim is not None:
        _trim(0)
