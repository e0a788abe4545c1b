"""Run every shipped strategy and portfolio file as a backtest, each into its own folder.

With `compare_runs.py`, the check that a change moved no number: capture the folders
of a reference checkout's interpreter, then of yours, and compare them value by value.

    cd /tmp && /work/ref/.venv/bin/python /work/wt/benchmarks/run_folders.py \
        --root /work/ref --out /tmp/before
    python benchmarks/run_folders.py --out /tmp/after [--smoke]
    python benchmarks/compare_runs.py /tmp/before /tmp/after --roots /work/ref .

Each file runs as ``PYTHON -m tradeloom.cli run FILE --out OUT/<stem> -q`` from a
temporary working directory, so the interpreter imports its own checkout's
``tradeloom`` (the one its venv installed), never the current directory's. Files
whose data is downloaded (``data.kind: ccxt``) are skipped: they need a network.
A file that runs longer than ``--timeout`` seconds (default 1,800) is stopped, counted as
failed and reported as a timeout; the next file runs. ``--smoke`` runs
strategies/btc_rf.yaml alone, made small (`smoke.SMALL_RF`), into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml
from smoke import SMALL_RF, add_smoke, parse_args

ROOT = Path(__file__).resolve().parents[1]


def shipped_files(root: Path) -> list[Path]:
    """Return ``strategies/*.yaml`` and ``examples/*.yaml`` under ``root``, sorted."""
    return sorted((root / "strategies").glob("*.yaml")) + sorted((root / "examples").glob("*.yaml"))


def downloads(path: Path) -> bool:
    """Return whether ``path``'s data comes from an exchange (needs a network)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    data = document.get("data") if isinstance(document, dict) else None
    return isinstance(data, dict) and data.get("kind") == "ccxt"


def run_folders(
    root: Path,
    out: Path,
    python: str,
    stems: Sequence[str] = (),
    overrides: Sequence[str] = (),
    timeout: float = 1800.0,
) -> int:
    """Run each shipped file of ``root`` (those named by ``stems``, or all) into
    ``out/<stem>``, with ``overrides`` as ``--set``, each stopped after ``timeout`` seconds;
    print each; return how many failed (a timeout counts)."""
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    sets = [word for override in overrides for word in ("--set", override)]
    with tempfile.TemporaryDirectory() as cwd:
        for path in shipped_files(root.resolve()):
            if (stems and path.stem not in stems) or downloads(path):
                continue
            target = out.resolve() / path.stem
            command = [python, "-m", "tradeloom.cli", "run", str(path), "--out", str(target)]
            start = time.perf_counter()
            proc = subprocess.Popen(
                [*command, *sets, "-q"],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a timeout stops what the run started too
            )
            try:
                _, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                _, stderr = proc.communicate()
                failed += 1
                print(f"{path.stem:<24} timeout after {timeout:.0f} s", flush=True)
                print(stderr[-2000:], file=sys.stderr)
                continue
            seconds = time.perf_counter() - start
            print(f"{path.stem:<24} exit {proc.returncode}  {seconds:6.1f} s", flush=True)
            if proc.returncode != 0:
                failed += 1
                print(stderr[-2000:], file=sys.stderr)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose files run")
    parser.add_argument("--out", type=Path, help="folder of run folders (required)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run with")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds a file may run (1,800)"
    )
    parser.add_argument("files", nargs="*", help="stems to run (default: every file)")
    add_smoke(parser, files=["btc_rf"])
    args = parse_args(parser)
    if args.timeout <= 0:
        parser.error(f"--timeout: {args.timeout:g} is not a number of seconds above 0")
    if args.smoke:
        with tempfile.TemporaryDirectory() as out:
            failed = run_folders(
                args.root, Path(out), args.python, args.files, SMALL_RF, args.timeout
            )
        sys.exit(1 if failed else 0)
    if args.out is None:
        parser.error("the following arguments are required: --out")
    failed = run_folders(args.root, args.out, args.python, args.files, (), args.timeout)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
