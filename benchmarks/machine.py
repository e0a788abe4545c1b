"""The machine line every benchmark prints: platform, CPU, cores, Python and library versions.

Benchmarks are run as scripts (``python benchmarks/bench_x.py``), so this module is
imported by name from the benchmarks folder.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from tradeloom.plugins.model.estimator_checks import installed_distribution

__all__ = ["describe"]


def cpu_model() -> str:
    """Return the CPU's model name (``/proc/cpuinfo`` on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(*distributions: str) -> str:
    """Return one line naming the machine and the versions of ``distributions``.

    A name may be installed under another distribution (``xgboost`` by
    ``xgboost-cpu``): the one installed is named (`installed_distribution`).
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    versions = []
    for name in distributions:
        installed = installed_distribution(name)
        versions.append(f"{name} (not installed)" if installed is None else " ".join(installed))
    return "; ".join(
        [
            platform.platform(),
            cpu_model(),
            f"{os.cpu_count()} logical CPUs ({usable} usable)",
            f"Python {platform.python_version()}",
            *versions,
        ]
    )
