"""Portable kernels for the tests: `rsi_step`'s and the two it calls, compiled for this
architecture's portable target (`tradeloom.kernels.targets`), as ``tradeloom warm
--portable`` compiles a strategy's, in a kernel cache of their own with its manifest.

The probe calls one kernel and prints its values and numba's cache statistics for it:
``misses`` 0 means it was loaded, 1 that it was compiled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tradeloom.kernels.targets import Target, portable_target

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tradeloom"

PROBE = textwrap.dedent(
    """
    import json
    from tradeloom.engine.logs import configure_logging
    configure_logging("warning", json=True)
    from tradeloom.plugins.features import rsi
    state = rsi.new_rsi_state()
    values = [rsi.rsi_step(state, c, 3) for c in (1.0, 2.0, 3.0, 2.5, 4.0)]
    stats = rsi.rsi_step.stats
    print(json.dumps({"values": repr(values), "misses": sum(stats.cache_misses.values())}))
    """
)

REFERENCE = "[nan, nan, nan, 80.0, 89.47368421052632]"


def host_target() -> tuple[tuple[str, str, str], Target | None]:
    """Return numba's target of this process and the portable target it can build for."""
    from numba.core.registry import cpu_target

    host = cpu_target.target_context.codegen().magic_tuple()
    target = portable_target(host[0])
    return host, None if target is None or target.missing(host) else target


def probe(
    cwd: Path, *, python: str = sys.executable, path: Path | None = ROOT, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the probe (``path`` first on ``PYTHONPATH``: the package it imports)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NUMBA_", "TRADELOOM_K", "PYTHON"))}  # fmt: skip
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return subprocess.run(
        [python, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env | env_extra,
        cwd=cwd,
    )


def result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Return the probe's output, having checked that it ran and gave the reference values."""
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["values"] == REFERENCE
    return dict(out)


def build_portable(cache: Path, target: Target, triple: str) -> Path:
    """Compile the probe's kernels for ``target`` into the kernel cache ``cache``, write
    its manifest; return the stamp's folder."""
    from tradeloom.cli.warm import write_portable_manifest

    done = probe(cache.parent, TRADELOOM_KERNEL_CACHE=str(cache), **target.build_env())
    assert result(done)["misses"] == 1 and done.stderr == "", done.stderr
    return write_portable_manifest(target, triple, cache).parent
