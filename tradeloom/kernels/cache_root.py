"""Where the kernel cache lives, said without importing numba (`tradeloom.kernels.cache`
reads it with numba; `tradeloom.kernels.first_run` looks for a background compile's lock
there in a run that may never import numba)."""

from __future__ import annotations

import os
from pathlib import Path

from tradeloom.runtime.cache_home import cache_home

__all__ = ["kernel_cache_root"]


def kernel_cache_root() -> Path:
    """Return the directory that holds the shared kernel cache, one folder per stamp."""
    named = os.environ.get("TRADELOOM_KERNEL_CACHE")
    if named:
        return Path(named).expanduser()
    return cache_home() / "kernels"
