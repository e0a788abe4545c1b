"""Market regimes from past bars: a trend label and a volatility label per bar.

The ``regime:`` section of a strategy file configures them and ``signal.regimes``
lists the labels a signal may act in. Both are built in, not a plugin kind: the
runner labels every bar and filters the signals itself.

- **Trend** (Kaufman's efficiency ratio over ``trend_window`` bars):
  ``ER_t = |c_t - c_{t-w}| / sum_{k=t-w+1..t} |c_k - c_{k-1}|`` (0 when the closes did
  not move). ``ER_t >= trend_threshold`` is ``trending``, else ``ranging``. A random walk
  has ``ER`` near ``1 / sqrt(w)`` (0.2 over 24 bars), so the default 0.3 asks for
  clearly more direction than noise.
- **Volatility**: ``s_t``, the sample standard deviation (ddof 1) of the last
  ``volatility_window`` one-bar log returns, ranked against its own previous
  ``volatility_lookback`` values ``s_{t-L} .. s_{t-1}``: the share of them strictly
  below ``s_t`` is at least ``high_volatility_quantile`` -> ``high_volatility``, else
  ``low_volatility``. Ranking against the market's own recent past, rather than a
  fixed level, makes one setting work for any asset and timeframe.

A label is ``unknown`` until its window has filled: the trend from bar
``trend_window``, the volatility from bar ``volatility_window + volatility_lookback``.
Bar t uses the closes of bars <= t only.

Labels are packed into one small int per bar (`TRENDING`, `RANGING`,
`HIGH_VOLATILITY`, `LOW_VOLATILITY` bits; 0 is unknown/unknown) so that the compiled
batch driver can carry them in a uint8 array and test a filter with one ``&``.
`regime_step` is the one computation: `regime_codes` loops it over a history
(the backtest), `RegimeStepper` calls it bar by bar (the per-bar and live drivers).
"""

from __future__ import annotations

import math

from tradeloom.core.kernels.labels import (
    HIGH_VOLATILITY,
    LOW_VOLATILITY,
    RANGING,
    TRENDING,
    UNKNOWN,
    trend_label,
    volatility_label,
)
from tradeloom.core.kernels.window import (
    new_ring,
    ring_back,
    ring_full,
    ring_get,
    ring_mean_std,
    ring_push,
)
from tradeloom.kernels.jit import kernel
from tradeloom.runtime.lazy import numpy as np
from tradeloom.schemas.regime import REGIME_LABELS, RegimeParams, check_regime_label, regime_mask

__all__ = [
    "HIGH_VOLATILITY",
    "LOW_VOLATILITY",
    "RANGING",
    "REGIME_LABELS",
    "TRENDING",
    "UNKNOWN",
    "RegimeParams",
    "RegimeStepper",
    "check_regime_label",
    "new_regime_state",
    "regime_codes",
    "regime_mask",
    "regime_step",
    "trend_label",
    "volatility_label",
]


@kernel
def new_regime_state(
    trend_window: int, volatility_window: int, volatility_lookback: int
) -> np.ndarray:
    """Return the state of a regime that has seen no close.

    Three rings (`tradeloom.core.kernels.window`) one after the other: the last
    ``trend_window + 1`` closes, the last ``volatility_window`` log returns, and the
    last ``volatility_lookback`` standard deviations.
    """
    return np.concatenate(
        (new_ring(trend_window + 1), new_ring(volatility_window), new_ring(volatility_lookback))
    )


@kernel
def regime_step(
    state: np.ndarray,
    close: float,
    trend_window: int,
    trend_threshold: float,
    volatility_window: int,
    high_volatility_quantile: float,
) -> int:
    """Take a close; return this bar's regime code (see the module); update ``state``.

    Args:
        state: `new_regime_state` after the previous bar, updated in place.
        close: This bar's close (> 0).
        trend_window, trend_threshold, volatility_window, high_volatility_quantile:
            As in `RegimeParams`; the windows must be those the state was made for.

    Returns:
        One trend bit (or none while unknown) and one volatility bit (likewise).
    """
    split = trend_window + 3
    closes = state[:split]
    returns = state[split : split + volatility_window + 2]
    past = state[split + volatility_window + 2 :]
    previous = ring_back(closes, 1)
    ring_push(closes, close)
    code = 0
    if ring_full(closes):
        first = ring_get(closes, 0)
        path = 0.0
        before = first
        for k in range(1, trend_window + 1):
            value = ring_get(closes, k)
            path += abs(value - before)
            before = value
        ratio = abs(close - first) / path if path > 0.0 else 0.0
        if ratio >= trend_threshold:
            code |= TRENDING
        elif not math.isnan(ratio):
            code |= RANGING
    if not math.isnan(previous):
        ring_push(returns, math.log(close / previous))
        if ring_full(returns):
            std = ring_mean_std(returns, 1)[1]
            if ring_full(past) and not math.isnan(std):
                lookback = past.size - 2
                below = 0
                for k in range(lookback):  # a count: the order of the slots does not matter
                    if past[2 + k] < std:
                        below += 1
                if below / lookback >= high_volatility_quantile:
                    code |= HIGH_VOLATILITY
                else:
                    code |= LOW_VOLATILITY
            ring_push(past, std)
    return code


@kernel
def _codes(
    close: np.ndarray,
    trend_window: int,
    trend_threshold: float,
    volatility_window: int,
    volatility_lookback: int,
    high_volatility_quantile: float,
) -> np.ndarray:
    state = new_regime_state(trend_window, volatility_window, volatility_lookback)
    out = np.zeros(len(close), np.uint8)
    for t in range(len(close)):
        out[t] = regime_step(
            state, close[t], trend_window, trend_threshold, volatility_window,
            high_volatility_quantile,
        )  # fmt: skip
    return out


def regime_codes(close: np.ndarray, params: RegimeParams) -> np.ndarray:
    """Return the regime code of every bar of ``close`` (uint8), as `RegimeStepper` steps it."""
    return _codes(
        np.ascontiguousarray(close, dtype=np.float64),
        params.trend_window,
        params.trend_threshold,
        params.volatility_window,
        params.volatility_lookback,
        params.high_volatility_quantile,
    )


class RegimeStepper:
    """Label bars one at a time, as live trading sees them.

    Args:
        params: The regime settings.

    Attributes:
        code: The code of the last bar stepped (0 before the first).
    """

    __slots__ = ("_args", "_state", "code")

    def __init__(self, params: RegimeParams) -> None:
        self._state = new_regime_state(
            params.trend_window, params.volatility_window, params.volatility_lookback
        )
        self._args = (
            params.trend_window,
            params.trend_threshold,
            params.volatility_window,
            params.high_volatility_quantile,
        )
        self.code = 0

    def step(self, close: float) -> int:
        """Take the next bar's close; return its regime code."""
        self.code = regime_step(self._state, close, *self._args)
        return self.code
