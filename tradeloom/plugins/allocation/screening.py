"""Screening: a convex allocator's program solved over the symbols it may hold, proven
optimal over all of them.

A long-only optimum at universe scale holds few symbols (minimum variance on 500
one-factor assets holds 44, on 2,000 holds 69): the interior-point solver's cost grows
with the cube of the symbols it is given, most of which end at a weight of 0. So the
program (`tradeloom.plugins.allocation.program.solve_program`) is solved over a
*working set*, every other weight fixed at 0, and the answer is checked against the
whole problem's optimality (Karush-Kuhn-Tucker) conditions: with ``g`` the gradient of
the objective at the answer (``2 S w`` for the variance, ``2 risk_aversion S w - mu``
for the utility; for a ratio, ``2 S w`` against ``lambda a``), the multipliers of the
budget (and of the ratio's numerator) are read off the working set's free weights,
where the gradient equals them exactly, and each symbol left out must have a reduced
cost ``g_i - lambda a_i - nu >= 0``: raising its weight from 0 cannot improve the
objective. A symbol that fails it joins the working set and the program is solved
again; when none fails, the answer is the whole problem's optimum (the same optimum,
within the solver's tolerance, as the program over every symbol: the weights left out
are exactly 0, the others the program's).

It applies where a weight fixed at 0 sits on its lower bound and touches no other
constraint (`screenable`): every lower bound 0 or more (a symbol with a positive one
is always in the set), no group caps, no gross exposure cap, and neither a turnover
limit nor a transaction cost in force (both read every held weight). Otherwise, and
whenever a round cannot decide (the program's answer over the set is not ``ok``, no
weight to read the multipliers off, `MAX_ROUNDS` rounds), the program runs over every
symbol, so every
answer and message is the program's.

The first working set: the symbols held before (the warm start from the previous
rebalance), then the best of the unconstrained optimum (``S^-1 a``, a the objective's
linear term: ones for the variance) until the set can hold the exposure under its
bounds: those with a positive guess, at most the larger of `FIRST_SET` and a tenth of
the symbols (an optimum holds far fewer than the unconstrained one's positive weights).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "FIRST_SET",
    "MAX_ROUNDS",
    "MIN_SYMBOLS",
    "REDUCED_COST_TOLERANCE",
    "first_working_set",
    "violators",
]

MIN_SYMBOLS = 100
"""Below this many symbols the program runs over every symbol: screening saves nothing."""

FIRST_SET = 40
"""The least size of the first working set."""

MAX_ROUNDS = 12
"""Rounds of screening before the program runs over every symbol instead."""

REDUCED_COST_TOLERANCE = 1e-9
"""How negative a left-out symbol's reduced cost may be, relative to ``S_ii`` (its
curvature): a symbol within it would enter at a weight below 1e-9."""


def first_working_set(
    guess: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    lower: npt.NDArray[np.float64],
    net: float,
    previous: npt.NDArray[np.float64] | None,
) -> npt.NDArray[np.intp]:
    """Return the first working set's symbols, sorted (see the module).

    Args:
        guess: Each symbol's standing, larger first (the unconstrained optimum).
        upper: Each symbol's largest weight; ``lower`` its least (>= 0).
        net: The net exposure the set must be able to hold.
        previous: The weights held (their holders start in the set), or None.
    """
    n = guess.shape[0]
    chosen = np.zeros(n, dtype=bool)
    chosen |= lower > 0.0
    if previous is not None:
        chosen |= np.abs(previous) > 1e-9
    ranked = np.argsort(-guess, kind="stable")
    want = min(int(np.sum(guess > 0.0)), max(FIRST_SET, n // 10))
    for k in ranked:
        if int(chosen.sum()) >= want and float(upper[chosen].sum()) > net * (1.0 + 1e-9):
            break
        chosen[k] = True
    return np.flatnonzero(chosen)


def violators(
    gradient: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    inside: npt.NDArray[np.bool_],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    curvature: npt.NDArray[np.float64],
    linear: npt.NDArray[np.float64] | None = None,
    margin: float = 1e-9,
) -> npt.NDArray[np.intp] | None:
    """Return the left-out symbols whose reduced cost is negative, worst first (empty:
    the answer is optimal over every symbol), or None when it cannot be decided.

    With ``h = gradient - lambda linear`` (a ratio's ``lambda = w'g / a'w``, by Euler's
    identity and the homogenising scale's condition; 0 for the other goals), every free
    weight has ``h_i = nu``, every weight at its upper bound ``h_i <= nu``, and a symbol
    left out (at its lower bound 0) is optimal there when ``h_i >= nu``. ``nu`` is the
    free weights' ``h``, or without one the least the capped weights admit.

    Args:
        gradient: The objective's gradient at the answer, per symbol (``g``).
        weights: The answer (0 outside the working set).
        inside: The working set.
        lower: Each symbol's least weight (>= 0); ``upper`` its largest.
        curvature: Each symbol's ``S_ii`` times the objective's factor (the tolerance's
            scale).
        linear: The ratio's numerator coefficients ``a``, or None.
        margin: How near a bound a weight is at it.
    """
    h = gradient
    if linear is not None:
        scale = float(weights @ linear)
        if scale <= 0.0:
            return None
        lam = float(weights @ gradient) / scale
        if lam <= 0.0:
            return None  # a ratio's numerator binds with a positive multiplier
        h = gradient - lam * linear
    capped = inside & (weights >= upper - margin)
    free = inside & (weights > lower + margin) & ~capped
    if free.any():
        nu = float(np.median(h[free]))
    elif capped.any():
        nu = float(h[capped].max())
    else:
        return None
    residual = h - nu
    out = ~inside & (upper > 0.0) & (residual < -REDUCED_COST_TOLERANCE * curvature)
    found = np.flatnonzero(out)
    return found[np.argsort(residual[found], kind="stable")]
