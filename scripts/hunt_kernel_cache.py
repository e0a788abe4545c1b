"""The hunt for races in the shared kernel cache: N processes at once on one empty cache.

Two shapes, each repeated ``--rounds`` times on a new empty cache
(``TRADELOOM_KERNEL_CACHE=/tmp/cr-<round>``), the processes alternating between this tree
and a copy of it in /tmp whose files have new modification times (same kernel sources:
the same stamp, the same cache folder):

- ``kernels`` (the default, seconds a round): each process compiles, in its own random
  order, callers of `tradeloom.core.rows._row` with 1 to 8 values: a kernel of many
  signatures, each compiled by whichever process first misses it in the cache.
- ``cli``: each process runs a shipped strategy through the real command line
  (``python -m tradeloom.cli.main run FILE --out ...``) with ``TRADELOOM_FIRST_RUN=compile``:
  minutes of CPU a process on an empty cache; keep N and R small.

After each round every index entry of the cache is checked against its data file: the
signature the data file was compiled for must be the key's. A process that exits non-zero
is a failure; its stderr is kept in the round's folder. Prints one line a round and a
summary with ``/proc/loadavg``. Usage::

    python scripts/hunt_kernel_cache.py --processes 5 --rounds 6
    python scripts/hunt_kernel_cache.py --shape cli --processes 4 --rounds 1 \\
        strategies/btc_rf.yaml strategies/portfolio_top3.yaml
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_TREE = Path(__file__).resolve().parents[1]

_KERNELS_WORKER = """
import random, sys, time
import numpy as np
import numba
from tradeloom.core import rows
from tradeloom.kernels import cache

if float(sys.argv[2]):  # --widen: sleep between a save's data file and its index
    save_data = cache._CheckedFiles._save_data

    def slow_save_data(self, name, data):
        save_data(self, name, data)
        time.sleep(random.uniform(0, float(sys.argv[2])))

    cache._CheckedFiles._save_data = slow_save_data

lengths = list(range(1, 9))
random.Random(int(sys.argv[1])).shuffle(lengths)
ev = np.zeros((16, 13))
cur = np.zeros(4, dtype=np.int64)
for m in lengths:
    values = ", ".join(["1.5"] * m) + ","
    scope = {"_row": rows._row, "numba": numba}
    exec(f"@numba.njit\\ndef caller(ev, cur):\\n    _row(ev, cur, 1, 0, 0, ({values}))\\n", scope)
    cur[0] = 0
    scope["caller"](ev, cur)
    assert ev[0, 3 + m - 1] == 1.5, (m, ev[0])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="cli: strategy files (default: btc_rf.yaml)")
    parser.add_argument("--shape", choices=("kernels", "cli"), default="kernels")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--widen",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="kernels: each save sleeps up to this long between its data file and its index "
        "(widens the window of the race; not what a run does)",
    )
    parser.add_argument("--one-tree", action="store_true", help="no copy of the tree")
    parser.add_argument("--keep", action="store_true", help="keep each round's cache")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cr-hunt-"))
    trees = [_TREE] if args.one_tree else [_TREE, _copy_tree(work / "tree-b")]
    files = args.files or ["strategies/btc_rf.yaml"]
    failures = mismatched = 0
    for round_ in range(args.rounds):
        cache = Path(f"/tmp/cr-{os.getpid()}-{round_}")
        shutil.rmtree(cache, ignore_errors=True)
        procs = []
        for i in range(args.processes):
            tree = trees[i % len(trees)]
            env = {**os.environ, "PYTHONPATH": str(tree), "TRADELOOM_KERNEL_CACHE": str(cache),
                   "TRADELOOM_FIRST_RUN": "compile", "NUMBA_CACHE_DIR": ""}  # fmt: skip
            if args.shape == "kernels":
                command = [
                    sys.executable,
                    "-c",
                    _KERNELS_WORKER,
                    str(round_ * 100 + i),
                    str(args.widen),
                ]
            else:
                strategy = tree / files[i % len(files)]
                out = work / f"run-{round_}-{i}"
                command = [sys.executable, "-m", "tradeloom.cli.main", "run", str(strategy),
                           "--out", str(out), "-q"]  # fmt: skip
            stderr = open(work / f"stderr-{round_}-{i}.txt", "wb")  # noqa: SIM115
            procs.append((subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL,
                                           stderr=stderr), stderr, i))  # fmt: skip
        failed = []
        for proc, stderr, i in procs:
            if proc.wait() != 0:
                failed.append(i)
            stderr.close()
        bad, total = _check(cache)
        failures += len(failed)
        mismatched += bad
        typing = [
            i for i in failed if b"TypingError" in (work / f"stderr-{round_}-{i}.txt").read_bytes()
        ]
        print(f"round {round_}: {len(failed)}/{args.processes} failed {failed} (TypingError: "
              f"{typing}); entries {total}, signature != key: {bad}", flush=True)  # fmt: skip
        if not args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    load = Path("/proc/loadavg").read_text().strip()
    print(f"{failures}/{args.processes * args.rounds} processes failed, {mismatched} entries "
          f"named another signature's code; load {load}; stderr in {work}")  # fmt: skip
    return 1 if failures or mismatched else 0


def _copy_tree(to: Path) -> Path:
    """Copy the package and the strategies with new modification times (copy, not copy2)."""
    for part in ("tradeloom", "strategies"):
        shutil.copytree(_TREE / part, to / part, copy_function=shutil.copy,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return to


def _check(cache: Path) -> tuple[int, int]:
    """Return how many index entries of ``cache`` name a data file compiled for another
    signature, and how many entries there are (headers skipped, digests not checked)."""
    from tradeloom.kernels.cache import FORMAT

    header = len(FORMAT) + 32
    bad = total = 0
    for index in cache.rglob("*.nbi"):
        stream = io.BytesIO(index.read_bytes()[header:])
        pickle.load(stream)  # numba's version
        _stamp, overloads = pickle.loads(stream.read())
        for key, name in overloads.items():
            data = index.parent / name
            if not data.exists():
                continue
            total += 1
            signature = pickle.loads(data.read_bytes()[header:])[3]
            if tuple(signature.args) != tuple(key[0]):
                bad += 1
                print(f"  {index.name}: {key[0]} -> {name}, compiled for {signature.args}")
    return bad, total


if __name__ == "__main__":
    sys.exit(main())
