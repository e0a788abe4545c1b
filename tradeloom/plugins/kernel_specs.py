"""What a component hands the compiled batch driver: the parameters of its step kernel.

A component whose per-bar methods are built on one of tradeloom's step kernels
also offers ``kernel_spec()`` returning one of these. When every sequential layer
(signal, sizing, risk rules, venue) offers one, a backtest runs them all inside
one compiled loop; otherwise the engine drives them bar by bar through their
protocols. Both paths call the same kernels, so they journal the same events.
A third-party component simply does not implement ``kernel_spec``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "CompiledComponent",
    "DrawdownKernel",
    "KernelSpec",
    "MarginKernel",
    "SizingKernel",
    "ThresholdKernel",
    "VenueKernel",
]


@dataclass(frozen=True)
class ThresholdKernel:
    """The ``threshold`` signal rule: `tradeloom.plugins.signal.threshold.threshold_step`."""

    threshold: float
    min_interval: int


@dataclass(frozen=True)
class SizingKernel:
    """A sizing kernel: fixed fraction, or fractional Kelly capped at ``max_position``."""

    kind: Literal["fixed_fraction", "kelly"]
    fraction: float
    payoff: float = 1.0
    max_position: float = 1.0


@dataclass(frozen=True)
class DrawdownKernel:
    """The ``drawdown_halt`` rule: halt when the drawdown reaches ``limit``."""

    limit: float


@dataclass(frozen=True)
class MarginKernel:
    """A margin account: initial and maintenance margin fractions, leverage, liquidation fee."""

    initial: float = 1.0
    maintenance: float = 0.0
    leverage: float = 1.0
    liquidation_fee: float = 0.0


@dataclass(frozen=True)
class VenueKernel:
    """The simulated venue: fill convention, costs, volume participation, account.

    ``margin`` None is a spot cash account (long-only: buys are limited by the cash);
    a venue that allows shorts without margin settings borrows with the defaults of
    `MarginKernel`.
    """

    fill_at_close: bool
    slippage: float
    fee_rate: float
    allow_short: bool
    initial_cash: float
    max_volume_fraction: float | None
    margin: MarginKernel | None = None


KernelSpec = ThresholdKernel | SizingKernel | DrawdownKernel | VenueKernel


@runtime_checkable
class CompiledComponent(Protocol):
    """A component the compiled batch driver can run without calling back into Python."""

    def kernel_spec(self) -> KernelSpec:
        """Return the parameters of the step kernel this component is built on."""
        ...
