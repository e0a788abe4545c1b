"""Parity of a run that trades on, over its last window of bars (``live.parity``).

The live parity monitor (`tradeloom.live.lifecycle.parity_monitor`) runs this module in a process
of its own every ``every_bars`` bars, through `check_apart`, which the command starting
the run hands down to it (live never names the diagnostics above it): ``python -m
tradeloom.diagnostics.live_parity RUN_DIR UNTIL_BAR WINDOW_BARS MAX_UNEXPLAINED``. It
replays the run's bars up to ``UNTIL_BAR`` as a backtest
(`tradeloom.diagnostics.parity.parity`, into a scratch
folder: a replay needs the run's state from its first live bar, so each check replays
the run so far) and reports the last ``WINDOW_BARS`` of them: the gap that arose inside
the window, the window's unexplained P&L and its first difference. The verdict is
``diverged`` when that unexplained P&L is larger than ``MAX_UNEXPLAINED`` (parity's own
rounding tolerance aside), ``ok`` otherwise. The result is written to
``RUN_DIR/parity/live.json`` (atomically) and printed as one JSON line, the only
line on standard output (the process logs warnings and errors on standard error).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tradeloom.diagnostics.parity import TOLERANCES, ParityResult, parity
from tradeloom.errors import UserError
from tradeloom.live.lifecycle.parity_fields import LIVE_FILE, window_fields, write_live

__all__ = ["LIVE_FILE", "check_apart", "window_parity", "window_summary"]

_MODULE = "tradeloom.diagnostics.live_parity"
"""This module, as ``python -m`` runs it."""


def check_apart(run_dir: Path, until_bar: int, window_bars: int, limit: float) -> dict[str, Any]:
    """Run this module (`window_parity`) in a new Python process; return its result (the
    live parity monitor's `tradeloom.live.lifecycle.parity_monitor.Check`).

    Raises:
        RuntimeError: The process failed: its last line of error output.
    """
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            _MODULE,
            str(run_dir),
            str(until_bar),
            str(window_bars),
            repr(limit),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise RuntimeError(last)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def window_parity(
    run_dir: Path, until_bar: int, window_bars: int, max_unexplained: float
) -> dict[str, Any]:
    """Compare the run in ``run_dir`` up to ``until_bar`` with its replay; return the
    last ``window_bars`` bars' summary (`window_summary`), also written to `LIVE_FILE`.

    Raises:
        UserError: What `parity` refuses (a changed strategy, a portfolio whose weights move).
    """
    with tempfile.TemporaryDirectory(prefix="tradeloom-live-parity-") as scratch:
        result = parity(run_dir, out=Path(scratch), until_bar=until_bar)
        summary = window_summary(result, window_bars, max_unexplained)
    write_live(run_dir, summary)
    return summary


def window_summary(
    result: ParityResult, window_bars: int, max_unexplained: float
) -> dict[str, Any]:
    """Return the last ``window_bars`` bars of ``result``: the fields of a
    ``parity_checked`` row (`tradeloom.journal.ParityChecked`) but its bar."""
    bars = result.bars
    window = bars.iloc[-window_bars:]
    before = bars.iloc[: len(bars) - len(window)]
    first_bar, last_bar = int(window["bar"].iloc[0]), int(window["bar"].iloc[-1])

    def grown(column: str) -> float:
        if column not in bars:
            return 0.0
        start = float(before[column].iloc[-1]) if len(before) else 0.0
        return float(window[column].iloc[-1]) - start

    unexplained = grown("unexplained")
    if not math.isfinite(unexplained):
        raise UserError(f"equity.csv does not reach bar {last_bar} yet; the next check reads it")
    # the two equity curves' rounding is no divergence (parity's ``absolute`` tolerance)
    if abs(unexplained) <= TOLERANCES["absolute"]:
        unexplained = 0.0
    diffs = result.differences
    inside = diffs[(diffs["bar"] >= first_bar) & (diffs["bar"] <= last_bar)]
    first = ""
    if len(inside):
        d = inside.iloc[0]
        symbol = f" {d['symbol']}" if d["symbol"] else ""
        first = f"bar {int(d['bar'])}{symbol} {d['field']}: {d['cause']}"
    gap = float(bars["gap"].iloc[-1])
    return window_fields(
        first_bar,
        last_bar,
        equity_gap=gap if math.isfinite(gap) else 0.0,
        window_gap=grown("gap"),
        unexplained=unexplained,
        first=first,
        max_unexplained=max_unexplained,
    )


def _main(argv: list[str]) -> int:
    from tradeloom.engine.logs import configure_logging

    run_dir, until, window, limit = argv
    # the replay's per-bar lines (debug, unconfigured: on stdout) are nobody's and cost
    # a check a fifth of its CPU; warnings and errors go to stderr, the monitor's
    configure_logging("warning")
    try:
        summary = window_parity(Path(run_dir), int(until), int(window), float(limit))
    except UserError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
