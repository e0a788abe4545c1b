"""What every built-in allocator that reads the window does before its own objective,
written once (skfolio's ``BaseOptimization`` composes its prior the same way).

`WindowAllocator.allocate` takes the trailing returns and, in order:

1. refuses returns it cannot read (`returns_problem`: their shape, fewer than 2 bars, a
   missing value): ``failed``;
2. refuses a **flat series**, a column whose returns never vary over the window
   (`flat_symbol`): ``failed``, naming it (``ETH/USDT has no volatility over the
   window``; over a portfolio's sleeves, the strategy's name). Its risk is unknown, not
   nil: any weight given to it would be a guess no risk model made (a shrunk or
   exponential covariance would even lend it a variance it does not have). The engine
   journals the answer and keeps the weights in force, in both uses of an allocator: a
   strategy's symbols keep their last feasible targets, a portfolio's strategies their
   shares (equal until a first answer). That is the one convention for a flat series;
   the user sees the line in ``allocation_decided`` and may shorten the window, drop the
   series, or use ``equal_weight``, which reads no returns;
3. answers ``infeasible`` for bounds that cannot reach the exposure
   (`tradeloom.plugins.protocols_allocation.infeasibility`);
4. estimates the declared covariance (`tradeloom.plugins.allocation.covariance`), carried
   from the previous rebalance's where the window only slid
   (`tradeloom.plugins.allocation.rolling`: the engine shows the allocator every
   rebalance's window, `WindowAllocator.observe`);

and hands what is left to the allocator's own `WindowAllocator.weigh`. Whether the answer
meets the constraints is checked once, by the engine, for every allocator
(`tradeloom.engine.allocating.allocate_checked`), never by the allocator itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tradeloom.plugins.allocation.covariance import CovarianceParams
from tradeloom.plugins.allocation.rolling import CarriedCovariance
from tradeloom.plugins.protocols_allocation import (
    AllocationResult,
    WeightConstraints,
    infeasibility,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["Window", "WindowAllocator", "flat_symbol", "returns_problem", "window_problem"]


def returns_problem(returns: npt.NDArray[np.float64], constraints: WeightConstraints) -> str | None:
    """Return why ``returns`` cannot be allocated over (shape, too few rows, NaN), or None."""
    if returns.ndim != 2 or returns.shape[1] != constraints.symbols:
        return (
            f"returns: expected [bars, {constraints.symbols}] for {constraints.symbols} "
            f"symbols, was {list(returns.shape)}"
        )
    if returns.shape[0] < 2:
        return f"returns: a covariance needs at least 2 bars, the window has {returns.shape[0]}"
    if not np.all(np.isfinite(returns)):
        bad = np.argwhere(~np.isfinite(returns))[0]
        return f"returns: bar {int(bad[0])} of the window has no return for symbol {int(bad[1])}"
    return None


def flat_symbol(
    returns: npt.NDArray[np.float64], constraints: WeightConstraints | None = None
) -> str | None:
    """Return why a series whose returns never vary over the window cannot be weighed by
    its risk, naming the first such series, or None."""
    flat = np.flatnonzero(np.ptp(returns, axis=0) == 0)
    if not flat.size:
        return None
    k = int(flat[0])
    who = constraints.name(k) if constraints is not None else f"symbol {k}"
    return f"{who} has no volatility over the window"


def window_problem(
    kind: str, returns: npt.NDArray[np.float64], constraints: WeightConstraints
) -> AllocationResult | None:
    """Return the answer when one is known from the window and the constraints alone
    (steps 1 to 3 of the module), or None."""
    problem = returns_problem(returns, constraints)
    if problem is not None:
        return AllocationResult.failed(problem)
    flat = flat_symbol(returns, constraints)
    if flat is not None:
        return AllocationResult.failed(f"{kind}: {flat}")
    impossible = infeasibility(constraints)
    if impossible:
        key, message = impossible[0]
        return AllocationResult.infeasible(f"{kind}: {key}: {message}")
    return None


@dataclass(frozen=True)
class Window:
    """What the prologue hands an allocator's own objective (`WindowAllocator.weigh`).

    Attributes:
        returns: The window's returns, ``[bars, symbols]``, oldest first, checked.
        cov: Their declared covariance.
        constraints: The constraints, resolved over the symbols.
        probabilities: The model's probability per symbol (None: none).
        horizon: The label's horizon in bars (0: unknown).
        previous: The weights held before the rebalance (None at the first).
        factor: The lower Cholesky factor of ``cov`` (less a floor:
            `tradeloom.plugins.allocation.optimised.well_conditioned_factor`), computed
            once by the allocators that solve and shared by every step that needs it
            (None: not computed, or none).
    """

    returns: npt.NDArray[np.float64]
    cov: npt.NDArray[np.float64]
    constraints: WeightConstraints
    probabilities: npt.NDArray[np.float64] | None
    horizon: int
    previous: npt.NDArray[np.float64] | None
    factor: npt.NDArray[np.float64] | None = None


class WindowAllocator(ABC):
    """An allocator of the window's returns: the shared prologue (see the module), then
    its own `weigh`.

    Args:
        params: Its keys (the covariance estimator among them).
    """

    kind: ClassVar[str] = ""
    """The allocator's kind: its messages start with it."""

    def __init__(self, params: CovarianceParams) -> None:
        self.params = params
        self.carried = CarriedCovariance(params.covariance, params.halflife)
        """The covariance carried over the run's rebalances."""

    def observe(self, returns: npt.NDArray[np.float64]) -> None:
        """Take a rebalance's window, in bar order, whether it is then solved or not
        (`tradeloom.plugins.protocols_allocation.RollingAllocator`)."""
        self.carried.observe(returns)

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return the weights of `weigh` after the prologue, or the prologue's answer."""
        returns = np.asarray(returns, dtype=np.float64)
        known = window_problem(self.kind, returns, constraints)
        if known is not None:
            return known
        cov = self.carried.covariance(returns)
        return self.weigh(Window(returns, cov, constraints, probabilities, horizon, previous))

    @abstractmethod
    def weigh(self, window: Window) -> AllocationResult:
        """Return the weights of a window that passed the prologue; the allocator's own
        objective."""
