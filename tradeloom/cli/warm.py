"""``tradeloom warm [FILE ...]``: compile the kernels strategies need into the kernel cache.

A first run compiles the numba kernels its strategy uses and caches them
(`tradeloom.kernel_cache`); every later run loads them. ``warm`` makes that first run
ahead of time, for an image, a CI cache or a machine about to run many sweeps: it
backtests each file (the README's strategy by default) into a temporary folder that
it removes, prints what each compiled and how long that took, and where the cache is.
A kernel cache that cannot be written fails it (exit 1): the warming would be lost.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["warm_kernels"]


def warm_kernels(files: Sequence[Path], run: Callable[[Path, Path], object]) -> int:
    """Run each file's backtest with ``run(file, out)``; print what it compiled; exit code.

    Args:
        files: Strategy or portfolio files.
        run: Backtests ``file`` into the new folder ``out`` (its summary on stdout is
            dropped).

    Returns:
        0, or 1 when the kernel cache could not be written.
    """
    from tradeloom.kernel_cache import kernel_cache_root, unwritable
    from tradeloom.kernel_compiles import compiled

    with tempfile.TemporaryDirectory(prefix="tradeloom-warm-") as folder:
        for k, file in enumerate(files):
            before = compiled()
            with contextlib.redirect_stdout(io.StringIO()):
                run(file, Path(folder) / f"run-{k}")
            after = compiled()
            kernels = after.kernels - before.kernels
            if kernels:
                seconds = after.seconds - before.seconds
                print(f"{file}: compiled {kernels} kernels in {seconds:.1f} s")
            else:
                print(f"{file}: every kernel it needs was cached")
    if unwritable():
        print(f"the kernel cache in {kernel_cache_root()} cannot be written: nothing was kept")
        return 1
    print(f"kernel cache: {kernel_cache_root()}")
    return 0
