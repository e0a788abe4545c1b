"""Words the core's reason codes use: regime labels and the drawdown halt's message.

`tradeloom.core.codes` words every rejection and halt with these, and the plugins that
own the rules (``regime`` signals, the ``drawdown_halt`` risk rule) use the same.
"""

from __future__ import annotations

__all__ = [
    "HIGH_VOLATILITY",
    "LOW_VOLATILITY",
    "RANGING",
    "TRENDING",
    "UNKNOWN",
    "halt_message",
    "trend_label",
    "volatility_label",
]


TRENDING, RANGING, HIGH_VOLATILITY, LOW_VOLATILITY = 1, 2, 4, 8
"""Bits of a regime code; a code holds at most one trend bit and one volatility bit."""


UNKNOWN = "unknown"
"""The label of a dimension whose window has not filled yet."""


def trend_label(code: int) -> str:
    """Return the trend label of a regime code."""
    if code & TRENDING:
        return "trending"
    return "ranging" if code & RANGING else UNKNOWN


def volatility_label(code: int) -> str:
    """Return the volatility label of a regime code."""
    if code & HIGH_VOLATILITY:
        return "high_volatility"
    return "low_volatility" if code & LOW_VOLATILITY else UNKNOWN


def halt_message(drawdown: float, limit: float) -> str:
    """Return the message of a MAX_DRAWDOWN_HALT (the compiled core's codes use it too)."""
    return f"drawdown={drawdown:.4f}, limit={limit}"
