"""What the model said about a bar: computed live, or read back from the journal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BarInput", "Verdicts"]


@dataclass(frozen=True)
class BarInput:
    """What the model said about one bar (computed live, or read back from the journal)."""

    probability: float
    anomalous: bool
    anomaly_score: float


Verdicts = Sequence[BarInput | None]
"""Per symbol, the model's verdict on its bar (None: no bar)."""
