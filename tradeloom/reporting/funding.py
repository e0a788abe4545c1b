"""A perpetual's funding over a run, read from its journal (`tradeloom.core.funding`)."""

from __future__ import annotations

from pathlib import Path

from tradeloom.journal.reader import read_frame

__all__ = ["journal_funding"]


def journal_funding(path: Path) -> float:
    """Return the net funding of the journal at ``path``, in quote (+ received, - paid)."""
    frame = read_frame(path, "funding")
    return float(frame["amount"].sum()) if len(frame) else 0.0
