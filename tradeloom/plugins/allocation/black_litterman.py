"""Black-Litterman with the model's calibrated probabilities as the views.

The prior is the equilibrium: the expected returns ``pi = 2 risk_aversion S w_eq`` for
which equal weights ``w_eq`` are the optimum of the utility ``mu'w - risk_aversion w'Sw``
(its gradient ``pi - 2 risk_aversion S w_eq`` is 0; in PyPortfolioOpt's and Black and
Litterman's convention, ``delta S w_eq`` with ``delta = 2 risk_aversion`` for the utility
``mu'w - delta/2 w'Sw``), with ``S`` the declared covariance of the trailing window
(``covariance:``, the same estimate the optimiser weighs the risk by). Each symbol
the model predicts adds one absolute view on its expected return per bar, blended with
the prior by Idzorek's method in Walters' closed form (as skfolio's and
PyPortfolioOpt's ``BlackLitterman``): a view held with confidence ``c`` has the
uncertainty ``omega = tau (1/c - 1) S_kk``, and

    mu = pi + tau S P' (tau P S P' + Omega)^-1 (Q - P pi)
    Sigma = S + tau S - tau S P' (tau P S P' + Omega)^-1 P tau S

(``P`` picks the viewed symbols, ``Q`` their views; with no view, ``mu = pi`` and
``Sigma = S``). The posterior is optimised as mean-variance (maximum Sharpe or utility)
under the declared constraints (`tradeloom.plugins.allocation.program`).

The mapping from a probability to a view (`probability_views`): a calibrated ``p`` is the
probability that the return over the label's horizon ``h`` is positive. Taking that
return as normal with the symbol's trailing volatility ``s`` per bar (so ``s * sqrt(h)``
over the horizon), ``P(R_h > 0) = Phi(mu_h / (s sqrt(h)))`` gives

    mu_h = s * sqrt(h) * Phi^-1(p),   per bar: mu = s * Phi^-1(p) / sqrt(h)

and the view is ``mu``. Its confidence is what calibration makes of ``p``: the model is
right about the direction with probability ``max(p, 1 - p)``, better than a coin by
``|2p - 1|``, which is the view's Idzorek confidence (0: the prior holds, the view is
left out; 1: the view does). ``p`` is clipped to ``[0.001, 0.999]`` and the confidence to
``max_confidence`` (a view held with certainty makes the blend singular). A symbol with no
probability (NaN, or none given) has no view; with no view at all the posterior is the
prior.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING

from pydantic import Field

from tradeloom.plugins.allocation.optimised import (
    ConvexAllocator,
    MeanVarianceParams,
    mean_variance_objective,
    needs_solver,
    unconstrained_guess,
)
from tradeloom.plugins.allocation.program import solve_program
from tradeloom.plugins.allocation.window import Window
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols_allocation import AllocationResult
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "PROBABILITY_CLIP",
    "BlackLitterman",
    "BlackLittermanParams",
    "build_black_litterman",
    "equilibrium",
    "posterior",
    "probability_views",
]

PROBABILITY_CLIP = 0.001
"""A probability is read in ``[0.001, 0.999]``: ``Phi^-1`` of 0 or 1 is infinite."""


class BlackLittermanParams(MeanVarianceParams):
    """Keys of ``allocation`` with ``kind: black_litterman``."""

    tau: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="The uncertainty of the prior relative to the covariance (0 < tau <= 1).",
    )
    max_confidence: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="The largest Idzorek confidence of a view, |2p - 1| at most this "
        "(0 < max_confidence < 1).",
    )


def probability_views(
    probabilities: npt.NDArray[np.float64],
    volatility: npt.NDArray[np.float64],
    horizon: int,
    max_confidence: float,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the views of ``probabilities``: the symbols, their expected return per bar
    and their confidence (see the module's docstring for the mapping).

    Args:
        probabilities: Per symbol, the calibrated probability of an up move over
            ``horizon`` bars (NaN: no view).
        volatility: Per symbol, the trailing standard deviation of a bar's return.
        horizon: The label's horizon in bars (0 or less: read as 1).
        max_confidence: The cap of a view's confidence.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    symbols = np.flatnonzero(np.isfinite(p))
    clipped = np.clip(p[symbols], PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    quantile = np.array([NormalDist().inv_cdf(float(q)) for q in clipped], dtype=np.float64)
    h = max(int(horizon), 1)
    expected = np.asarray(volatility, dtype=np.float64)[symbols] * quantile / np.sqrt(h)
    confidence = np.minimum(np.abs(2.0 * clipped - 1.0), max_confidence)
    return symbols, expected, confidence


def equilibrium(cov: npt.NDArray[np.float64], risk_aversion: float) -> npt.NDArray[np.float64]:
    """Return the equilibrium returns ``2 risk_aversion S w_eq``, ``w_eq`` equal weights:
    those that make ``w_eq`` the optimum of ``mu'w - risk_aversion w'Sw``."""
    n = cov.shape[0]
    return np.asarray(2.0 * risk_aversion * cov @ np.full(n, 1.0 / n), dtype=np.float64)


def posterior(
    prior: npt.NDArray[np.float64],
    cov: npt.NDArray[np.float64],
    symbols: npt.NDArray[np.intp],
    views: npt.NDArray[np.float64],
    confidence: npt.NDArray[np.float64],
    tau: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the posterior expected returns and covariance of absolute ``views`` on
    ``symbols`` held with Idzorek ``confidence`` (in ``(0, 1)``), blended with ``prior``
    (see the module's formulas)."""
    if not symbols.size:
        return prior, cov
    # P picks columns: S P' is S's columns, P x is x's entries (the same numbers as the
    # products with P, without an n x n x k product; laid out in rows as that product
    # was, so that the products below add in the same order)
    spread = np.ascontiguousarray(tau * cov[:, symbols])  # tau S P'
    omega = np.diag(tau * (1.0 / confidence - 1.0) * np.diag(cov)[symbols])
    blend = spread[symbols] + omega  # tau P S P' + Omega
    mu = prior + spread @ np.linalg.solve(blend, views - prior[symbols])
    sigma = cov + tau * cov - spread @ np.linalg.solve(blend, spread.T)
    return np.asarray(mu, dtype=np.float64), np.asarray((sigma + sigma.T) / 2.0)


class BlackLitterman(ConvexAllocator):
    """Mean-variance on the Black-Litterman posterior of the equilibrium and the model's
    views."""

    kind = "black_litterman"
    params: BlackLittermanParams

    def solve(self, window: Window) -> AllocationResult:
        """Return the weights of the posterior's mean-variance optimum."""
        params, cov, probabilities = self.params, window.cov, window.probabilities
        prior = equilibrium(cov, params.risk_aversion)
        symbols = np.empty(0, dtype=np.intp)
        views = confidence = np.empty(0)
        if probabilities is not None:
            volatility = np.sqrt(np.diag(cov))
            symbols, views, confidence = probability_views(
                probabilities, volatility, window.horizon, params.max_confidence
            )
            held = confidence > 0.0  # a confidence of 0: the prior holds
            symbols, views, confidence = symbols[held], views[held], confidence[held]
        mu, sigma = posterior(prior, cov, symbols, views, confidence, params.tau)
        objective = mean_variance_objective(params, mu)
        # the screened solve starts from the prior covariance's factor (only where it starts)
        start = unconstrained_guess(window.factor, mu)
        return solve_program(
            self.kind, objective, sigma, window.constraints, window.previous, start
        )


def build_black_litterman(params: BlackLittermanParams, ctx: BuildContext) -> BlackLitterman:
    """Build the Black-Litterman allocator (needs the ``allocation`` extra)."""
    needs_solver("black_litterman")
    return BlackLitterman(params)
