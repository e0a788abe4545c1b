"""Position sizing: fractional Kelly, and the quantity a notional buys after costs."""

from __future__ import annotations

from tradeloom.jit import kernel

__all__ = ["kelly_fraction", "kelly_size", "no_edge_message", "sizing_quantity"]


@kernel
def kelly_fraction(p_win: float, payoff: float) -> float:
    """Return the full Kelly fraction ``p - (1 - p) / b`` for win probability and payoff ratio."""
    return p_win - (1.0 - p_win) / payoff


@kernel
def kelly_size(
    probability: float, direction: int, fraction: float, payoff: float, max_position: float
) -> tuple[float, float, float]:
    """Size a signal: ``fraction`` of the Kelly bet, capped at ``max_position``.

    Args:
        probability: The model's probability of an up move.
        direction: The signal's direction; a short wins with probability ``1 - p``.
        fraction: Share of the full Kelly bet to take, in (0, 1].
        payoff: Average win over average loss.
        max_position: Cap on the position, as a fraction of equity.

    Returns:
        ``(size, full_kelly, p_win)``; ``size`` is 0 when there is no edge (``full <= 0``).
    """
    p_win = probability if direction > 0 else 1.0 - probability
    full = kelly_fraction(p_win, payoff)
    if not full > 0:
        return 0.0, full, p_win
    return min(fraction * full, max_position), full, p_win


def no_edge_message(kelly: float, p_win: float, payoff: float) -> str:
    """Return the message of a KELLY_NO_EDGE rejection (the compiled core's codes use it too)."""
    return f"kelly={kelly:.4f} <= 0 (p_win={p_win:.4f}, payoff={payoff:.4f})"


@kernel
def sizing_quantity(notional: float, price: float, slippage: float, fee_rate: float) -> float:
    """Return the quantity that ``notional`` buys at ``price`` after slippage and fee."""
    return notional / (price * (1.0 + slippage) * (1.0 + fee_rate))
