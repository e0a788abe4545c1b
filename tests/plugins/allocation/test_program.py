"""The convex allocators on real prices (skfolio's 20 S&P 500 stocks, daily, 1995-2021),
against references they share no code with.

- Unconstrained (bounds far away), each has a closed form: minimum variance
  ``S^-1 1 / 1'S^-1 1``, the utility ``S^-1 (mu - nu 1) / (2 risk_aversion)`` with the
  ``nu`` that meets the budget, the maximum Sharpe ratio ``S^-1 mu`` and the maximum
  diversification ``S^-1 s``, each scaled to the budget. The documented bound is
  `SOLVER_TOLERANCE` (1e-6); they agree to 1e-9 (measured: 4e-15, 3e-10, 4e-15, 7e-14).
- Constrained, PyPortfolioOpt's ``EfficientFrontier`` (its own cvxpy programs, its
  sector constraints for group caps, its ``transaction_cost`` objective), and for what
  it has no key for (a long-short gross exposure, a turnover limit) a program written
  here on split variables ``w = u - v``: to 1e-6, the documented bound (measured: 5e-9
  at most, minimum variance under group caps).
- A window without an answer is ``infeasible`` with its cause in the file's words.

Both references are given the covariance and returns divided by the mean variance, which
moves no optimum and lets Clarabel reach them: unscaled, a per-bar variance of 1e-4 sits
below its gap tolerance.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from pypfopt import EfficientFrontier, objective_functions

from tradeloom.plugins.allocation.covariance import covariance
from tradeloom.plugins.allocation.optimised import (
    MaximumDiversification,
    MaximumDiversificationParams,
    MeanVariance,
    MeanVarianceParams,
    MinimumVariance,
    MinimumVarianceParams,
)
from tradeloom.plugins.allocation.program import SOLVER_TOLERANCE, Objective, solve_program
from tradeloom.plugins.protocols_allocation import GroupCap, WeightConstraints

N = 20
WIDE = WeightConstraints((-10.0,) * N, (10.0,) * N, 1.0)
CLOSED_FORM = 1e-9
TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}
# banks and energy: JPM, BAC, CVX, XOM (columns 8, 2, 4, 19)
SECTORS = (GroupCap("banks", (2, 8), 0.12), GroupCap("energy", (4, 19), 0.1))
LONG = WeightConstraints((0.0,) * N, (0.15,) * N, 1.0, groups=SECTORS)


def _moments(window: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    cov = covariance(window, "ledoit_wolf")
    return window.mean(axis=0), cov, float(np.mean(np.diag(cov)))


def _frontier(window: np.ndarray, constraints: WeightConstraints) -> EfficientFrontier:
    mu, cov, scale = _moments(window)
    frontier = EfficientFrontier(
        mu / scale,
        cov / scale,
        weight_bounds=list(zip(constraints.min_weight, constraints.max_weight, strict=True)),
        solver="CLARABEL",
        solver_options=TIGHT,
    )
    if constraints.groups:
        mapper = {k: g.name for g in constraints.groups for k in g.members}
        mapper.update({k: f"own{k}" for k in range(N) if k not in mapper})
        caps = {g.name: g.cap for g in constraints.groups}
        frontier.add_sector_constraints(
            mapper,
            {name: -1.0 for name in set(mapper.values())},
            {name: caps.get(name, 1.0) for name in set(mapper.values())},
        )
    return frontier


def test_unconstrained_optima_are_their_closed_forms(sp500_windows: list[np.ndarray]) -> None:
    utility = MeanVariance(MeanVarianceParams(objective="utility", risk_aversion=5.0))
    sharpe_checked = 0
    for window in sp500_windows:
        mu, cov, _ = _moments(window)
        inverse = np.linalg.inv(cov)
        ones = inverse.sum(axis=1)
        least = MinimumVariance(MinimumVarianceParams()).allocate(window, WIDE).weights
        assert least is not None
        np.testing.assert_allclose(least, ones / ones.sum(), atol=CLOSED_FORM)
        nu = (ones @ mu - 2 * 5.0) / ones.sum()
        best = utility.allocate(window, WIDE).weights
        assert best is not None
        np.testing.assert_allclose(best, inverse @ (mu - nu) / (2 * 5.0), atol=CLOSED_FORM)
        volatility = np.sqrt(np.diag(cov))
        spread = MaximumDiversification(MaximumDiversificationParams()).allocate(window, WIDE)
        assert spread.weights is not None
        direction = inverse @ volatility
        np.testing.assert_allclose(spread.weights, direction / direction.sum(), atol=CLOSED_FORM)
        tangency = inverse @ mu
        if tangency.sum() <= 0 or np.abs(tangency / tangency.sum()).max() > 10:
            continue  # the tangency portfolio is short the budget, or past the bounds
        sharpe = MeanVariance(MeanVarianceParams()).allocate(window, WIDE).weights
        assert sharpe is not None
        np.testing.assert_allclose(sharpe, tangency / tangency.sum(), atol=CLOSED_FORM)
        sharpe_checked += 1
    assert sharpe_checked >= 3


def test_constrained_optima_equal_pyportfolioopt(sp500_windows: list[np.ndarray]) -> None:
    for window in sp500_windows:
        ours = MinimumVariance(MinimumVarianceParams()).allocate(window, LONG)
        theirs = _frontier(window, LONG)
        theirs.min_volatility()
        assert ours.weights is not None, ours.message
        np.testing.assert_allclose(ours.weights, theirs.weights, atol=SOLVER_TOLERANCE)

        params = MeanVarianceParams(objective="utility", risk_aversion=4.0)
        ours = MeanVariance(params).allocate(window, LONG)
        theirs = _frontier(window, LONG)
        theirs.max_quadratic_utility(risk_aversion=2 * 4.0)  # PyPortfolioOpt's is delta / 2
        assert ours.weights is not None, ours.message
        np.testing.assert_allclose(ours.weights, theirs.weights, atol=SOLVER_TOLERANCE)

        mu = window.mean(axis=0)
        if mu.max() <= 0:
            continue
        ours = MeanVariance(MeanVarianceParams()).allocate(window, LONG)
        theirs = _frontier(window, LONG)
        theirs.max_sharpe(risk_free_rate=0.0)
        assert ours.weights is not None, ours.message
        np.testing.assert_allclose(ours.weights, theirs.weights, atol=SOLVER_TOLERANCE)
        assert abs(ours.weights.sum() - 1.0) < SOLVER_TOLERANCE


def test_a_transaction_cost_equals_pyportfolioopt_s(sp500_windows: list[np.ndarray]) -> None:
    """The cost per bar times the turnover, charged against the expected return per bar
    (PyPortfolioOpt's ``transaction_cost`` objective, in the same scaled units)."""
    held = np.full(N, 1.0 / N)
    per_bar = 0.002 / 252  # 20 bp amortised over a year of trading days
    costly = WeightConstraints(LONG.min_weight, LONG.max_weight, 1.0, transaction_cost=per_bar)
    params = MeanVarianceParams(objective="utility", risk_aversion=4.0)
    for window in sp500_windows:
        _, _, scale = _moments(window)
        ours = MeanVariance(params).allocate(window, costly, previous=held)
        theirs = _frontier(window, WeightConstraints(LONG.min_weight, LONG.max_weight, 1.0))
        theirs.add_objective(objective_functions.transaction_cost, w_prev=held, k=per_bar / scale)
        theirs.max_quadratic_utility(risk_aversion=2 * 4.0)
        assert ours.weights is not None, ours.message
        np.testing.assert_allclose(ours.weights, theirs.weights, atol=SOLVER_TOLERANCE)
        plain = WeightConstraints(LONG.min_weight, LONG.max_weight, 1.0)
        free = MeanVariance(params).allocate(window, plain, previous=held).weights
        assert free is not None
        # the cost holds some weights where they were: less is traded than without it
        assert np.abs(ours.weights - held).sum() < np.abs(free - held).sum()


def _split_program(
    window: np.ndarray, constraints: WeightConstraints, held: np.ndarray
) -> np.ndarray:
    """Minimum variance written without norm1: ``w = u - v``, ``u, v >= 0``, the gross
    exposure ``sum(u + v)``, the turnover ``sum(t)`` with ``t >= |w - held|``."""
    _, cov, scale = _moments(window)
    u, v, t = cp.Variable(N, nonneg=True), cp.Variable(N, nonneg=True), cp.Variable(N)
    w = u - v
    rows = [
        w >= np.array(constraints.min_weight),
        w <= np.array(constraints.max_weight),
        cp.sum(w) == constraints.net_exposure,
        t >= w - held,
        t >= held - w,
    ]
    if constraints.gross_exposure is not None:
        rows.append(cp.sum(u + v) <= constraints.gross_exposure)
    if constraints.max_turnover is not None:
        rows.append(cp.sum(t) <= constraints.max_turnover)
    problem = cp.Problem(cp.Minimize(cp.quad_form(w, cov / scale)), rows)
    problem.solve(solver="CLARABEL", **TIGHT)
    return np.asarray(w.value)


def test_gross_exposure_and_turnover_equal_an_independent_program(
    sp500_windows: list[np.ndarray],
) -> None:
    short = WeightConstraints((-0.2,) * N, (0.3,) * N, 1.0, gross_exposure=1.2)
    binding = 0
    held = np.zeros(N)
    held[:5] = 0.2  # five stocks held equally
    limited = WeightConstraints((0.0,) * N, (0.3,) * N, 1.0, max_turnover=0.4)
    for window in sp500_windows:
        ours = MinimumVariance(MinimumVarianceParams()).allocate(window, short)
        assert ours.weights is not None, ours.message
        np.testing.assert_allclose(
            ours.weights, _split_program(window, short, held), atol=SOLVER_TOLERANCE
        )
        assert np.abs(ours.weights).sum() <= 1.2 + SOLVER_TOLERANCE
        binding += int(np.abs(ours.weights).sum() > 1.2 - SOLVER_TOLERANCE)
        ours = MinimumVariance(MinimumVarianceParams()).allocate(window, limited, previous=held)
        assert ours.weights is not None, ours.message
        np.testing.assert_allclose(
            ours.weights, _split_program(window, limited, held), atol=SOLVER_TOLERANCE
        )
        assert np.abs(ours.weights - held).sum() == pytest.approx(0.4, abs=SOLVER_TOLERANCE)
    assert binding >= 3  # the gross exposure binds: the shorts are capped by it


def test_a_window_with_no_positive_return_has_no_maximum_sharpe(sp500: object) -> None:
    """120 days to 2008-10-27: every one of the 20 stocks lost money on average."""
    returns = np.asarray(sp500.to_numpy())  # type: ignore[attr-defined]
    window = returns[4745 - 120 : 4745]
    assert window.mean(axis=0).max() < 0
    result = MeanVariance(MeanVarianceParams()).allocate(window, WeightConstraints.long_only(N))
    assert result.status == "infeasible" and result.weights is None
    best = window.mean(axis=0).max()  # long-only, the best is all in the best stock
    assert result.message == (
        "mean_variance: no weights the constraints admit have a positive expected return "
        f"over the window (the best: {best:.3g} a bar), so the ratio has no maximum; use "
        "objective: utility, or a longer window"
    )
    utility = MeanVariance(MeanVarianceParams(objective="utility"))
    assert utility.allocate(window, WeightConstraints.long_only(N)).status == "ok"


def test_held_weights_a_turnover_limit_cannot_bring_back_are_named(
    sp500_windows: list[np.ndarray],
) -> None:
    held = np.zeros(N)
    held[:2] = 0.6, 0.4  # two stocks, far above max_weight 0.1
    limited = WeightConstraints((0.0,) * N, (0.1,) * N, 1.0, max_turnover=0.3)
    result = MinimumVariance(MinimumVarianceParams()).allocate(
        sp500_windows[0], limited, previous=held
    )
    # the nearest admissible weights sell 0.5 + 0.3 and buy 0.8 elsewhere: 1.6
    assert (result.status, result.message) == (
        "infeasible",
        "minimum_variance: max_turnover: the weights held are 1.6 of turnover from the "
        "nearest weights the other constraints admit, above the limit 0.3: no rebalance "
        "within it meets them; raise max_turnover",
    )


def test_caps_that_admit_no_weights_together_are_named(sp500_windows: list[np.ndarray]) -> None:
    """Two overlapping groups: the sums of caps leave room (1.0), the caps together none
    (w0 + w1 <= 0.5 and w1 + w2 <= 0.5 with w0, w2 <= 0.45 cannot reach 1)."""
    window = sp500_windows[0][:, :3]
    caps = (GroupCap("a", (0, 1), 0.5), GroupCap("b", (1, 2), 0.5))
    overlapping = WeightConstraints((0.0,) * 3, (0.45,) * 3, 1.0, groups=caps)
    result = MinimumVariance(MinimumVarianceParams()).allocate(window, overlapping)
    assert (result.status, result.message) == (
        "infeasible",
        "minimum_variance: the bounds, exposures and group caps admit no weights together: "
        "widen max_weight, bounds or group_caps",
    )


def test_a_solver_that_stops_is_a_failure_with_a_remedy(
    sp500_windows: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tradeloom.plugins.allocation.program as program

    monkeypatch.setattr(program, "_solve", lambda problem: "solver_error")
    cov = covariance(sp500_windows[0], "ledoit_wolf")
    result = solve_program(
        "minimum_variance", Objective("variance"), cov, WeightConstraints.long_only(N), None
    )
    assert (result.status, result.message) == (
        "failed",
        "minimum_variance: the solver stopped without weights (solver_error): the window's "
        "covariance is too ill-conditioned to solve; lengthen the window or use covariance: "
        "ledoit_wolf",
    )
