"""The fields of a ``parity_checked`` row but its bar, from a window's figures: the one
rule of its verdict and message, read by the whole replay's summary
(`tradeloom.diagnostics.live_parity.window_summary`) and by the check that follows the
run bar by bar (`tradeloom.live.lifecycle.parity_follow`)."""

from __future__ import annotations

from typing import Any

__all__ = ["window_fields"]


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
