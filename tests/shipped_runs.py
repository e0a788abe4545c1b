"""The shipped strategy files' shortened runs through the real CLI, each made once a session.

tests/kernels/test_first_run.py runs every file of ``strategies/`` (but a portfolio's)
twice, with each kernel's Python form and compiled, and compares the two run folders;
tests/cli/test_cli.py's every-shipped-file test ran the same files through the same
command again, compiled, only to check what the run printed and wrote. Both now read one
compiled run of each file (`ShippedRuns`, the ``shipped_runs`` fixture): the tests that
read it share the `SHIPPED_GROUP` xdist group, so that one worker makes each run once.

A run is shortened to `BARS` bars (folds of a third of them): what either test checks (the
two kernel forms give the same bytes; a run writes consistent files and its summary) holds
at any length that trains a fold and trades.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests import forkserver
from tradeloom.kernels.first_run import ENV

__all__ = ["BARS", "SHIPPED_GROUP", "STRATEGIES", "ShippedRuns", "cli_run", "shortened"]

ROOT = Path(__file__).resolve().parents[1]
BARS = 600
"""A shortened synthetic file's bars."""
SHIPPED_GROUP = "shipped_runs"
"""The xdist group of the tests that read `ShippedRuns`."""

STRATEGIES = sorted(
    p
    for p in (ROOT / "strategies").glob("*.yaml")
    if "strategies" not in yaml.safe_load(p.read_text(encoding="utf-8"))  # not a portfolio
)
"""The files of ``strategies/`` but the portfolios (their members run through them)."""


def shortened(path: Path) -> list[str]:
    """Return the ``--set=...`` words that shorten ``path`` to `BARS` bars."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    overrides = [f"data.bars={BARS}"] if doc["data"]["kind"] == "synthetic" else []
    model = doc.get("model", {})
    if model.get("kind") == "sklearn":
        window = BARS // 3
        overrides += [f"model.walk_forward.train_window={window}",
                      f"model.walk_forward.retrain_every={window}"]  # fmt: skip
        if "min_train_rows" in model["walk_forward"]:
            overrides.append(f"model.walk_forward.min_train_rows={window}")
        if "calibration" in model:
            overrides.append(f"model.calibration.holdout={window // 3}")
        if "n_jobs" in model.get("params", {}):
            overrides.append("model.params.n_jobs=1")
    return [f"--set={o}" for o in overrides]


def cli_run(path: Path, out: Path, mode: str, *extra: str, **env: str) -> Any:
    """Run ``tradeloom -q run PATH --out OUT EXTRA`` with ``TRADELOOM_FIRST_RUN=mode``."""
    environment = {**os.environ, ENV: mode, **env}
    argv = [sys.executable, "-m", "tradeloom.cli.main", "-q", "run", str(path), "--out", str(out)]
    return forkserver.run([*argv, *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env=environment)  # fmt: skip


class ShippedRuns:
    """Each shipped file's shortened run (`shortened`) in one kernel form, made once.

    A run goes to ``FOLDER/STEM/MODE/run``: the two forms' folders share their last name,
    which the journal holds.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._done: dict[tuple[Path, str], subprocess.CompletedProcess[str]] = {}

    def run(self, path: Path, mode: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        """Return ``path``'s shortened run with ``TRADELOOM_FIRST_RUN=mode`` (``python`` or
        ``compile``) and its run folder, running it the first time it is asked for."""
        out = self.folder / path.stem / mode / "run"
        if (path, mode) not in self._done:
            self._done[path, mode] = cli_run(path, out, mode, *shortened(path))
        return self._done[path, mode], out
