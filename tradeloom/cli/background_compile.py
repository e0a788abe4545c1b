"""The background compile a small first run starts (`tradeloom.kernels.first_run`).

``python -m tradeloom.cli.background_compile WARM_ARGS...`` runs ``tradeloom warm
WARM_ARGS`` at the lowest priority (``nice 19``), holding the kernel cache's lock
(`tradeloom.kernels.first_run.LOCK`, handed over by the run that started it as the descriptor
``TRADELOOM_COMPILE_LOCK_FD``) until it ends, and writes what it compiled
(`tradeloom.kernels.first_run.RECORD`, JSON): its pid and command, its exit code, its wall and
CPU seconds, the seconds compiling took and the seconds of each kernel it compiled.
Its output goes to ``background-compile.log`` beside the lock. The folder of its inputs
that the Python API wrote for it (`tradeloom.kernels.first_run.INPUTS`: a DataFrame's bars,
a mapping's strategy file), if any, is removed when it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    """Compile, at the lowest priority, what ``tradeloom warm ARGV`` runs; record it."""
    from tradeloom.kernels.first_run import INPUTS

    inputs = os.environ.pop(INPUTS, None)
    try:
        return _compile(argv)
    finally:
        if inputs:
            shutil.rmtree(inputs, ignore_errors=True)


def _compile(argv: Sequence[str]) -> int:
    os.nice(19)
    started = time.perf_counter(), time.process_time()
    from tradeloom.cli.main import main as tradeloom
    from tradeloom.kernels.cache import kernel_cache_root
    from tradeloom.kernels.first_run import RECORD

    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid {os.getpid()}: warm {' '.join(argv)}",
          flush=True)  # fmt: skip
    code = tradeloom(["-q", "warm", *argv])
    from tradeloom.kernels.compiles import compiled

    done = compiled()
    record = {
        "pid": os.getpid(),
        "warm": list(argv),
        "exit": code,
        "seconds": round(time.perf_counter() - started[0], 2),
        "cpu_seconds": round(time.process_time() - started[1], 2),
        "kernels": done.kernels,
        "compile_seconds": round(done.seconds, 2),
        "compile_cpu_seconds": round(done.cpu_seconds, 2),
        "by_kernel": {name: round(seconds, 2) for name, seconds in done.by_kernel.items()},
    }
    path = kernel_cache_root() / RECORD
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(temporary, path)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
