"""What a folder of portable kernels was built for: ``warm --portable`` writes it, a wheel reads it.

``tradeloom warm --portable`` compiles the kernels of some strategies for this
architecture's portable target (`tradeloom.kernels.targets`) into the cache folder of
the kernels' stamp, and writes `MANIFEST` there: the stamp, the digest of the kernel
modules' sources, numba's and Python's versions, the target. A wheel's build
(hatch_build.py, with ``TRADELOOM_WHEEL_KERNELS`` naming the cache folder) ships the one
stamp folder whose manifest matches the sources it packs and the Python it builds
with, as ``tradeloom/_kernels/<stamp>/`` (`SHIPPED`).

Imports nothing beyond the standard library: the build loads this file by its path,
in an environment that may have none of tradeloom's dependencies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "SHIPPED", "find_shipped", "python_version", "write_manifest"]

SHIPPED = "_kernels"
"""The package's folder of the portable kernels a wheel ships: ``<package>/_kernels/<stamp>/``,
laid out as the user's cache (`tradeloom.kernels.cache.kernel_cache_root`)."""

MANIFEST = "portable.json"
"""The file, in a stamp's cache folder, that says what its portable kernels were built for."""


def python_version() -> str:
    """Return this Python's minor version (numba's cache files are per minor: ``3.11``)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def write_manifest(folder: Path, **facts: Any) -> Path:
    """Write `MANIFEST` into the stamp's cache ``folder``; return its path.

    Args:
        folder: The stamp's cache folder, which holds the portable kernels.
        **facts: ``stamp``, ``sources``, ``numba``, ``triple``, ``target``, ``cpu``,
            ``features``; this Python's version is added.
    """
    path = folder / MANIFEST
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**facts, "python": python_version()}, indent=2) + "\n")
    return path


def find_shipped(kernels: Path, sources: str) -> tuple[Path, dict[str, Any]]:
    """Return the stamp folder under ``kernels`` built from ``sources`` by this Python.

    Args:
        kernels: A kernel cache root (``TRADELOOM_KERNEL_CACHE`` of ``warm --portable``).
        sources: The jit module's `sources_digest` of the package being built.

    Raises:
        ValueError: No such folder, or more than one (a line that says what to do).
    """
    found = []
    for path in sorted(kernels.glob(f"*/{MANIFEST}")):
        try:
            facts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if facts.get("sources") == sources and facts.get("python") == python_version():
            found.append((path.parent, facts))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError(
            f"{kernels}: no portable kernels of these sources for Python {python_version()}; "
            f"build them with: TRADELOOM_KERNEL_CACHE={kernels} tradeloom warm --portable"
        )
    folders = ", ".join(str(folder) for folder, _ in found)
    raise ValueError(f"{kernels}: portable kernels of these sources in several folders "
                     f"({folders}, one per numba version): keep one")  # fmt: skip
