"""``tradeloom warm [FILE ...]``: compile the kernels strategies need into the kernel cache.

A first run compiles the numba kernels its strategy uses and caches them
(`tradeloom.kernels.cache`); every later run loads them. ``warm`` makes that first run
ahead of time, for an image, a CI cache or a machine about to run many sweeps: it
backtests each file (the README's strategy by default) into a temporary folder that
it removes, prints what each compiled and how long that took, and where the cache is.
A kernel cache that cannot be written fails it (exit 1): the warming would be lost.

``--portable`` compiles them for this architecture's portable target instead of this
machine's CPU (`tradeloom.kernels.targets`), so that any machine with that target's
features loads them: an image built on one machine and run on others, or a wheel that
ships them (hatch_build.py). It warms in a process of its own, whose numba targets it
(numba reads its target when it is imported), and then writes the folder's manifest
(`tradeloom.kernels.manifest`). A machine that lacks a feature of the target cannot build
for it (the warming runs the code it compiles): exit 1.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradeloom.kernels.targets import Target

__all__ = ["warm_kernels", "warm_portable", "write_portable_manifest"]


def warm_kernels(files: Sequence[Path], run: Callable[[Path, Path], object]) -> int:
    """Run each file's backtest with ``run(file, out)``; print what it compiled; exit code.

    Args:
        files: Strategy or portfolio files.
        run: Backtests ``file`` into the new folder ``out`` (its summary on stdout is
            dropped).

    Returns:
        0, or 1 when the kernel cache could not be written.
    """
    from tradeloom.kernels.cache import kernel_cache_root, unwritable
    from tradeloom.kernels.compiles import compiled

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


def warm_portable(argv: Sequence[str]) -> int:
    """Run ``tradeloom ARGV`` (a ``warm`` command) with numba compiling for the portable
    target of this machine's architecture; write the manifest; return the exit code.

    Args:
        argv: The command line of the warming, ``warm`` and its files included.

    Returns:
        The warming's exit code; 1 when this machine cannot build for the target.
    """
    from numba.core.registry import cpu_target

    from tradeloom.kernels.targets import portable_target

    host = cpu_target.target_context.codegen().magic_tuple()
    target = portable_target(host[0])
    if target is None:
        print(f"no portable kernel target for this machine ({host[0]})", file=sys.stderr)
        return 1
    missing = target.missing(host)
    if missing:
        lacks = ", ".join(missing)
        print(f"this machine cannot build kernels for {target.name}: its CPU lacks {lacks}, "
              "and the warming runs what it compiles", file=sys.stderr)  # fmt: skip
        return 1
    # NUMBA_CACHE_DIR would take the kernels where the manifest is not
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | target.build_env()
    argv = [sys.executable, "-m", "tradeloom.cli.main", *argv]
    code = subprocess.run(argv, env=env, check=False).returncode
    if code != 0:
        return code
    from tradeloom.kernels.cache import kernel_cache_root

    written = write_portable_manifest(target, host[0], kernel_cache_root())
    needs = ", ".join(target.features) or "nothing beyond the architecture"
    print(f"compiled for {target.name} (a CPU with {needs}): {written}")
    return 0


def write_portable_manifest(target: Target, triple: str, root: Path) -> Path:
    """Write the manifest of the kernels compiled for ``target`` on ``triple`` into the
    folder of this stamp of the kernel cache ``root`` (`tradeloom.kernels.manifest`);
    return its path."""
    import numba

    # spelt so: a module naming the jit module by its dotted path is in `jit.package_stamp`
    from tradeloom.kernels import jit
    from tradeloom.kernels.manifest import write_manifest

    return write_manifest(
        root / jit.package_stamp()[:24],
        stamp=jit.package_stamp(),
        sources=jit.sources_digest(),
        numba=numba.__version__,
        triple=triple,
        target=target.name,
        cpu=target.cpu,
        features=target.feature_string(),
    )
