"""The CPU a kernel's machine code is compiled for, and which cached machine code may run here.

numba compiles a kernel for the machine it runs on, LLVM's name of its CPU and every
feature the CPU has, and keys each cache entry by that target (numba's ``magic_tuple``:
the target triple, the CPU name, the features). An entry compiled on one model of CPU
is never used on another, even where its code would run there.

A *portable* entry is compiled for a baseline instead: the architecture's generic CPU
(LLVM's ``x86-64``) plus a list of features named one by one, those of a level most
machines have: on x86-64 the psABI's x86-64-v3 (AVX2, FMA, BMI1 and 2, ...: Intel since
Haswell, 2013; AMD since Excavator, 2015, and every Zen). Its key names those features,
so whether this machine can run it is read off the key alone (`runs_here`): the same
triple, a generic CPU, and every feature the key enables is one this process compiles
for (numba's own list, which honours ``NUMBA_CPU_NAME``, ``NUMBA_CPU_FEATURES`` and
``NUMBA_ENABLE_AVX``). Code for a feature the machine lacks is never loaded; a CPU name
other than the generic one is used only by a machine of that exact target.

numba compiles nothing but scalar IEEE arithmetic differently for the two targets (the
kernels have no ``fastmath``: no contraction into FMA, no reordered sums), so a
portable entry computes the same numbers as the host's; the compiled core ran as fast
from either (docs/performance.md).

``tradeloom warm --portable`` compiles portable entries, in a process of its own whose
numba targets the baseline (`build_env`); a wheel can carry them
(`tradeloom.kernels.cache`, hatch_build.py).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BASELINE_CPUS", "PORTABLE", "Target", "enabled", "portable_target", "runs_here"]


@dataclass(frozen=True)
class Target:
    """A portable compilation target: LLVM's generic CPU plus named features."""

    name: str
    """What users call it (the psABI level on x86-64)."""
    cpu: str
    """LLVM's CPU name: always the architecture's generic one (`BASELINE_CPUS`)."""
    features: tuple[str, ...]
    """LLVM's names of the features the code may use beyond the generic CPU's."""

    def feature_string(self) -> str:
        """Return the features as LLVM (and ``NUMBA_CPU_FEATURES``) spell them."""
        return ",".join(f"+{name}" for name in self.features)

    def build_env(self) -> dict[str, str]:
        """Return the environment in which numba compiles for this target."""
        return {"NUMBA_CPU_NAME": self.cpu, "NUMBA_CPU_FEATURES": self.feature_string()}

    def missing(self, host: tuple[str, str, str]) -> list[str]:
        """Return the features of this target that ``host`` (numba's magic tuple) lacks."""
        have = enabled(host[2])
        return [name for name in self.features if name not in have]


BASELINE_CPUS = frozenset({"generic", "x86-64"})
"""LLVM's CPU names that add nothing to the architecture's baseline: an entry compiled
for one of them needs no feature its key does not name."""

# The psABI's levels beyond LLVM's x86-64 CPU (the baseline: SSE2, cmov, cx8, fxsr, mmx),
# in LLVM's names (crc32 comes with SSE4.2, sahf is lahf-lm)
_X86_64_V2 = ("cx16", "sahf", "crc32", "popcnt", "sse3", "ssse3", "sse4.1", "sse4.2")
_X86_64_V3 = (*_X86_64_V2, "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")

PORTABLE: dict[str, Target] = {
    "x86_64": Target(name="x86-64-v3", cpu="x86-64", features=_X86_64_V3),
}
"""The portable target of each architecture (the first part of LLVM's target triple).
Only x86-64's, the one the suite runs on: an Arm machine compiles for itself."""


def portable_target(triple: str) -> Target | None:
    """Return the portable target of the architecture of LLVM's ``triple``, if there is one."""
    return PORTABLE.get(triple.split("-", 1)[0])


def enabled(features: str) -> frozenset[str]:
    """Return the features LLVM's feature string enables (``+avx2,-avx512f`` gives avx2)."""
    return frozenset(part[1:] for part in features.split(",") if part.startswith("+"))


def runs_here(entry: tuple[str, str, str], host: tuple[str, str, str]) -> bool:
    """Return whether machine code compiled for ``entry`` may run where ``host`` compiles.

    Both are numba's magic tuples (triple, CPU name, features). Either they are equal
    (the same target), or ``entry`` is portable: the same triple, a generic CPU, and no
    feature that ``host`` does not enable.
    """
    if entry == host:
        return True
    triple, cpu, features = entry
    return triple == host[0] and cpu in BASELINE_CPUS and enabled(features) <= enabled(host[2])
