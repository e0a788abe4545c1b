"""Position sizing: fractional Kelly, volatility targeting, risk per trade, and the
quantity a notional buys after costs."""

from __future__ import annotations

import math

from tradeloom.kernels.jit import kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "kelly_fraction",
    "kelly_size",
    "no_edge_message",
    "no_estimate_message",
    "risk_size",
    "sizing_quantity",
    "stop_distance",
    "volatility_target_size",
    "volatility_update",
]


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


def no_estimate_message(sizing: float, bars: float, window: float) -> str:
    """Return the message of a NO_RISK_ESTIMATE rejection (``sizing``: the layout's kind)."""
    if sizing == 2:  # SIZING_VOL_TARGET
        return (
            f"volatility_target: the volatility needs {int(window)} returns, "
            f"has {int(bars)} (warming up)"
        )
    return (
        f"risk_per_trade: no stop distance yet: the ATR of {int(window)} bars has "
        f"{int(bars)} true ranges and there is no other stop (risk.stop_loss)"
    )


@kernel
def sizing_quantity(notional: float, price: float, slippage: float, fee_rate: float) -> float:
    """Return the quantity that ``notional`` buys at ``price`` after slippage and fee."""
    return notional / (price * (1.0 + slippage) * (1.0 + fee_rate))


@kernel
def volatility_update(state: np.ndarray, close: float, window: int) -> float:
    """Take a bar's close into an EWMA variance of log returns; return it (NaN: warming up).

    The RiskMetrics estimator with a zero mean, as volatility-targeting studies use
    (Moskowitz, Ooi and Pedersen 2012): ``r = ln(close / previous close)``; the first
    ``window`` squared returns are averaged (the seed), then each next one moves the
    variance by ``alpha = 2 / (window + 1)``: ``var += alpha * (r**2 - var)``.

    Args:
        state: 4 floats: 1 once a close was seen, the previous close, the count of
            returns (saturating at ``window``), the running sum then the variance.
        close: The bar's close (> 0).
        window: The estimator's span in returns (>= 2).
    """
    previous = state[1]
    state[1] = close
    if state[0] == 0.0:
        state[0] = 1.0
        return math.nan
    r = math.log(close / previous)
    if state[2] < window:
        state[3] += r * r
        state[2] += 1.0
        if state[2] < window:
            return math.nan
        state[3] = state[3] / window
        return state[3]  # type: ignore[no-any-return]
    state[3] += 2.0 / (window + 1.0) * (r * r - state[3])
    return state[3]  # type: ignore[no-any-return]


@kernel
def volatility_target_size(
    variance: float, periods_per_year: float, target: float, leverage: float, max_position: float
) -> float:
    """Return the size that targets ``target`` annual volatility (NaN: variance unknown).

    The exposure ``target / (sqrt(variance * periods_per_year))`` as a fraction of
    equity, divided by the account's leverage (which the engine multiplies back in),
    capped at ``max_position``; a zero volatility takes the cap.
    """
    if variance != variance:
        return math.nan
    vol = math.sqrt(variance * periods_per_year)
    if not vol > 0.0:
        return max_position
    return min(target / vol / leverage, max_position)


@kernel
def stop_distance(
    price: float, stop_loss: float, trailing: float, atr: float, multiple: float
) -> float:
    """Return the distance, as a fraction of ``price``, to the tightest stop an entry gets.

    The candidates: ``stop_loss`` and a fractional ``trailing`` stop (fractions; NaN:
    none) and an ATR trailing stop ``multiple * atr`` away (``atr`` NaN: none yet).
    NaN when there is none.
    """
    distance = math.inf
    if stop_loss == stop_loss:
        distance = min(distance, stop_loss)
    if trailing == trailing:
        distance = min(distance, trailing)
    if atr == atr and multiple > 0.0:
        distance = min(distance, multiple * atr / price)
    return math.nan if distance == math.inf else distance


@kernel
def risk_size(distance: float, risk: float, leverage: float, max_position: float) -> float:
    """Return the size whose stop ``distance`` (a fraction of price) costs ``risk`` of equity.

    ``risk / distance`` as a fraction of equity, divided by the account's leverage,
    capped at ``max_position``; NaN when there is no stop distance.
    """
    if not distance > 0.0:
        return math.nan
    return min(risk / distance / leverage, max_position)
