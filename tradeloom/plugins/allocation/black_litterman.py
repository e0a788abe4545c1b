"""Black-Litterman with the model's calibrated probabilities as the views.

The prior is the equilibrium: the expected returns ``risk_aversion * S w_eq`` that make
equal weights ``w_eq`` optimal, with the covariance ``S`` of the trailing window. Each
symbol the model predicts adds one absolute view on its expected return per bar,
blended with the prior by Idzorek's method (skfolio's ``BlackLitterman`` with
``view_confidences``), and the posterior is optimised as mean-variance (maximum Sharpe
or utility) under the declared constraints.

The mapping from a probability to a view (`probability_views`): a calibrated ``p`` is the
probability that the return over the label's horizon ``h`` is positive. Taking that
return as normal with the symbol's trailing volatility ``s`` per bar (so ``s * sqrt(h)``
over the horizon), ``P(R_h > 0) = Phi(mu_h / (s sqrt(h)))`` gives

    mu_h = s * sqrt(h) * Phi^-1(p),   per bar: mu = s * Phi^-1(p) / sqrt(h)

and the view is ``mu``. Its confidence is what calibration makes of ``p``: the model is
right about the direction with probability ``max(p, 1 - p)``, better than a coin by
``|2p - 1|``, which is the view's Idzorek confidence (0: the prior holds; 1: the view
does). ``p`` is clipped to ``[0.001, 0.999]`` and the confidence to ``max_confidence``
(a view held with certainty makes the blend singular). A symbol with no probability
(NaN, or none given) has no view; with no view at all the posterior is the prior.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING

from pydantic import Field

from tradeloom.plugins.allocation.covariance import covariance
from tradeloom.plugins.allocation.optimised import (
    MeanVarianceParams,
    asset_names,
    needs_skfolio,
    objective_function,
    prior,
    skfolio_constraints,
    solve,
)
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols_allocation import AllocationResult, WeightConstraints
from tradeloom.runtime.extras import require
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "PROBABILITY_CLIP",
    "BlackLitterman",
    "BlackLittermanParams",
    "build_black_litterman",
    "probability_views",
    "view_equations",
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


def view_equations(symbols: npt.NDArray[np.intp], expected: npt.NDArray[np.float64]) -> list[str]:
    """Return the views as skfolio's equations (``a3 == 0.000123456789``)."""
    names = asset_names(int(symbols.max()) + 1 if symbols.size else 0)
    return [
        f"{names[k]} == {mu:.15f}"
        for k, mu in zip(symbols.tolist(), expected.tolist(), strict=True)
    ]


class BlackLitterman:
    """Mean-variance on the Black-Litterman posterior of the equilibrium and the model's
    views."""

    def __init__(self, params: BlackLittermanParams) -> None:
        self.params = params

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return the weights of the posterior's mean-variance optimum."""
        require("skfolio", "allocation kind black_litterman")  # installed, not importable
        from skfolio.moments import EquilibriumMu
        from skfolio.optimization import MeanRisk
        from skfolio.prior import BlackLitterman as SkfolioBlackLitterman

        params = self.params
        returns = np.asarray(returns, dtype=np.float64)
        equilibrium = prior(params, EquilibriumMu(risk_aversion=params.risk_aversion))
        views: list[str] = []
        confidence = np.empty(0)
        if probabilities is not None and returns.ndim == 2 and returns.shape[0] >= 2:
            cov = covariance(returns, params.covariance, params.halflife)
            volatility = np.sqrt(np.maximum(np.diag(cov), 0.0))
            symbols, expected, confidence = probability_views(
                probabilities, volatility, horizon, params.max_confidence
            )
            views = view_equations(symbols, expected)
        posterior = (
            SkfolioBlackLitterman(
                views=views,
                prior_estimator=equilibrium,
                tau=params.tau,
                view_confidences=confidence.tolist(),
            )
            if views
            else equilibrium
        )
        estimator = MeanRisk(
            objective_function=objective_function(params.objective),
            risk_aversion=params.risk_aversion,
            prior_estimator=posterior,
            **skfolio_constraints(constraints, previous),
        )
        return solve(estimator, returns, constraints, previous, "black_litterman", params)


def build_black_litterman(params: BlackLittermanParams, ctx: BuildContext) -> BlackLitterman:
    """Build the Black-Litterman allocator (needs the ``allocation`` extra)."""
    needs_skfolio("black_litterman")
    return BlackLitterman(params)
