"""The fields of a ``parity_checked`` row but its bar, from a window's figures: the one
rule of its verdict and message, and the file that holds the last check
(``parity/live.json``), written by the whole replay's check
(`tradeloom.diagnostics.live_parity.window_parity`) and by the check that follows the
run bar by bar (`tradeloom.live.lifecycle.parity_follow`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tradeloom.reporting.outputs import atomic_bytes

__all__ = ["LIVE_FILE", "window_fields", "write_live"]

LIVE_FILE = Path("parity") / "live.json"
"""Where the last check's result goes, in the run folder."""


def write_live(run_dir: Path, fields: dict[str, Any]) -> None:
    """Write a check's ``fields`` to `LIVE_FILE` in ``run_dir`` (atomically)."""
    (run_dir / LIVE_FILE).parent.mkdir(exist_ok=True)
    atomic_bytes(run_dir / LIVE_FILE, (json.dumps(fields, indent=2) + "\n").encode())


def window_fields(
    first_bar: int,
    last_bar: int,
    *,
    equity_gap: float,
    window_gap: float,
    unexplained: float,
    first: str,
    max_unexplained: float,
) -> dict[str, Any]:
    """Return the row's fields of the window ``first_bar..last_bar``: the equity gap at
    its last bar, the gap and the unexplained P&L that arose inside it, its first
    difference (``first``, '' for none); ``diverged`` when that P&L is beyond
    ``max_unexplained``."""
    diverged = abs(unexplained) > max_unexplained
    span = f"bars {first_bar}..{last_bar}"
    if diverged:
        message = (
            f"{span}: unexplained P&L {unexplained:+,.2f} beyond {max_unexplained:g}"
            f" (first: {first or 'the equity'}); run tradeloom parity RUN_DIR for the table"
        )
    elif first:
        message = f"{span}: every difference explained (first: {first})"
    else:
        message = f"{span}: no unexplained divergence"
    return {
        "first_bar": first_bar,
        "last_bar": last_bar,
        "equity_gap": equity_gap,
        "window_gap": window_gap,
        "unexplained_pnl": unexplained,
        "max_unexplained": float(max_unexplained),
        "first_divergence": first,
        "verdict": "diverged" if diverged else "ok",
        "message": message,
    }
