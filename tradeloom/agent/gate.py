"""What an agent may promote to paper: the declared gate, and the evidence it reads.

The evidence of a strategy is kept by the content hash of its text
(``WORKSPACE/.tradeloom-mcp/evidence/<sha256>.json``): check-lookahead's verdict and the
figures of the last sweep of that very text (its best row's trades and deflated Sharpe
ratio, the sweep's probability of backtest overfitting). An edit is a new text with no
evidence yet. `Gate.refusal` answers one line with every figure that falls short.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Evidence", "Gate"]


@dataclass(frozen=True)
class Gate:
    """The figures a strategy's sweep must reach before an agent may start it on paper.

    Attributes:
        min_trades: The best variant's trades, at least.
        max_pbo: The sweep's probability of backtest overfitting, at most.
        min_dsr: The best variant's deflated Sharpe ratio, at least.
    """

    min_trades: int = 20
    max_pbo: float = 0.5
    min_dsr: float = 0.5

    def refusal(self, figures: dict[str, Any] | None) -> str | None:
        """Return why ``figures`` (a sweep's, `Evidence.sweep`) do not pass, or None."""
        if figures is None:
            return "no sweep of this version of the strategy: sweep it first"
        short = []
        trades, pbo, dsr = (_number(figures.get(k)) for k in ("trades", "pbo", "dsr"))
        if trades is None or trades < self.min_trades:
            short.append(f"trades {_shown(trades)} < min_trades {self.min_trades}")
        if pbo is None or pbo > self.max_pbo:
            short.append(f"pbo {_shown(pbo)} > max_pbo {self.max_pbo:g}")
        if dsr is None or dsr < self.min_dsr:
            short.append(f"dsr {_shown(dsr)} < min_dsr {self.min_dsr:g}")
        return "; ".join(short) or None

    def to_json(self) -> dict[str, Any]:
        """Return the gate as the ``gate`` tool shows it."""
        return {"min_trades": self.min_trades, "max_pbo": self.max_pbo, "min_dsr": self.min_dsr}


def _number(value: Any) -> float | None:
    """Return a finite figure as a float; None for anything else (unknown)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _shown(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"


class Evidence:
    """What the checks found about each text of a strategy, by its content hash."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def read(self, digest: str) -> dict[str, Any]:
        """Return the evidence of the text of SHA-256 ``digest`` (empty: none yet)."""
        path = self.folder / f"{digest}.json"
        if not path.is_file():
            return {}
        found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return found

    def add(self, digest: str, key: str, value: Any) -> None:
        """Record ``value`` as the evidence ``key`` (``lookahead``, ``sweep``)."""
        found = self.read(digest)
        found[key] = value
        path = self.folder / f"{digest}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(found, sort_keys=True), encoding="utf-8")
        temporary.replace(path)
