"""How a portfolio file shares the account between its strategies, bar by bar.

Each strategy sizes against its share of the account's equity: a sizing of ``f``
becomes ``f x weight`` of the account. The weights a decision at bar ``t`` uses are
fixed for the bar and read nothing after bar ``t - 1``'s close:

- ``fixed``: each strategy's ``weight`` (normalized if asked), at every bar.
- ``inverse_volatility``: each strategy's return at a bar is its books' P&L over the
  bar divided by its allocated capital at the previous bar (its weight times the
  account's equity then). Once ``window`` returns are known, a strategy's weight is
  proportional to 1 / the standard deviation (``ddof=1``) of its last ``window``
  returns. A strategy whose returns have no volatility yet (it never traded in the
  window) keeps the equal share ``1 / K``; the others share the rest in proportion to
  their inverse volatilities. Before the window fills, every weight is ``1 / K``. The
  weights sum to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["FixedWeights", "InverseVolatility", "inverse_volatility_weights"]


class FixedWeights:
    """The same weights at every bar."""

    moves = False
    """Whether the weights depend on the returns (the engine books them as it goes)."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = np.asarray(weights, np.float64)

    def push(self, returns: npt.NDArray[np.float64]) -> None:
        """Take one bar's returns (ignored: the weights are fixed)."""


class InverseVolatility:
    """Weights from the trailing volatility of each strategy's returns (see the module).

    Args:
        strategies: How many strategies share the account.
        window: The returns in the trailing window.
    """

    moves = True

    def __init__(self, strategies: int, window: int) -> None:
        self.window = window
        self._ring = np.zeros((window, strategies))
        self._count = 0
        self.weights = np.full(strategies, 1.0 / strategies)

    def push(self, returns: npt.NDArray[np.float64]) -> None:
        """Take one bar's returns (one per strategy); the weights then apply to the next bar."""
        self._ring[self._count % self.window] = returns
        self._count += 1
        if self._count >= self.window:
            self.weights = inverse_volatility_weights(self._ring)


def inverse_volatility_weights(returns: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the weights for a full window of returns (``[window, strategies]``).

    A strategy with no volatility (a zero or non-finite standard deviation) gets
    ``1 / K``; the others share what is left in proportion to ``1 / volatility``.
    """
    k = returns.shape[1]
    volatility = returns.std(axis=0, ddof=1)
    known = np.isfinite(volatility) & (volatility > 0.0)
    weights = np.full(k, 1.0 / k)
    if known.any():
        inverse = 1.0 / volatility[known]
        weights[known] = inverse / inverse.sum() * (known.sum() / k)
    return weights
