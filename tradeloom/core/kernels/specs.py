"""What a component hands the compiled batch driver: the parameters of its step kernel.

A component whose per-bar methods are built on one of tradeloom's step kernels
also offers ``kernel_spec()`` returning one of these. When every sequential layer
(signal, sizing, risk rules, venue) offers one, a backtest runs them all inside
one compiled loop; otherwise the engine drives them bar by bar through their
protocols. Both paths call the same kernels, so they journal the same events.
A third-party component simply does not implement ``kernel_spec``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from tradeloom.core.costs import VenueCosts

__all__ = [
    "CompiledComponent",
    "DrawdownKernel",
    "KernelSpec",
    "LatencyKernel",
    "MarginKernel",
    "OrdersKernel",
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
    """A sizing kernel (`tradeloom.core.sizing`), capped at ``max_position``.

    ``fraction`` is the fixed fraction, Kelly's share, the target annual volatility
    (``volatility_target``) or the equity risked per trade (``risk_per_trade``);
    ``window`` and ``periods_per_year`` are the volatility estimator's (0: the data
    calendar's year, `tradeloom.core.params.CoreSpec.periods_per_year`).
    """

    kind: Literal["fixed_fraction", "kelly", "volatility_target", "risk_per_trade"]
    fraction: float
    payoff: float = 1.0
    max_position: float = 1.0
    window: int = 0
    periods_per_year: float = 0.0


@dataclass(frozen=True)
class DrawdownKernel:
    """The ``drawdown_halt`` rule: halt when the drawdown reaches ``limit``."""

    limit: float


@dataclass(frozen=True)
class MarginKernel:
    """A margin account: initial and maintenance margin fractions, leverage, liquidation fee.

    ``source`` says where the account's rule comes from, for the messages a user reads:
    `MARGIN_SET` (``execution.margin``), `MARGIN_SHORTS` (a venue that allows shorts
    without ``execution.margin`` borrows at these defaults) or `MARGIN_PERPETUAL` (a
    perpetual without ``execution.margin``).
    """

    initial: float = 1.0
    maintenance: float = 0.0
    leverage: float = 1.0
    liquidation_fee: float = 0.0
    source: int = 1


MARGIN_SET, MARGIN_SHORTS, MARGIN_PERPETUAL = 1, 2, 3
"""`MarginKernel.source`: ``execution.margin``, allow_short's defaults, a perpetual's."""


@dataclass(frozen=True)
class OrdersKernel:
    """The order types a strategy sends (``execution.orders``; its defaults: market orders).

    Rates are fractions (``offset_bps / 10_000``); 0 bars: off; NaN: none.
    """

    order_type: Literal["market", "limit", "auto"] = "market"
    limit_offset: float = 0.0
    post_only: bool = False
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"
    fallback_after_bars: int = 0
    fallback_after_seconds: float | None = None
    expire_after_bars: int = 0
    auto_max_spread: float = 0.0008
    auto_urgent_confidence: float | None = None
    queue_touch: bool = False
    stops_at_close: bool = False
    slicing: Literal["none", "twap", "participation"] = "none"
    slice_children: int = 0
    slice_every_bars: int = 1
    slice_volume_fraction: float = 0.0

    def fallback_bars(self, timeframe_seconds: int) -> int:
        """Return the fallback in bars (``fallback_after_seconds`` rounded up; 0: none)."""
        if self.fallback_after_seconds is not None and timeframe_seconds > 0:
            return max(1, math.ceil(self.fallback_after_seconds / timeframe_seconds))
        return self.fallback_after_bars


@dataclass(frozen=True)
class LatencyKernel:
    """A declared latency (``execution.realism``; `tradeloom.core.kernels.latency`).

    Attributes:
        kind, a, b: The order's way to the venue: ``LAT_*`` and its two parameters (ms).
        cancel_kind, cancel_a, cancel_b: A cancel's.
        seed: The draws' seed.
        rule: Where an order arriving inside a bar fills (``ARRIVE_*``).
    """

    kind: int = 0
    a: float = 0.0
    b: float = 0.0
    cancel_kind: int = 0
    cancel_a: float = 0.0
    cancel_b: float = 0.0
    seed: int = 0
    rule: int = 0


@dataclass(frozen=True)
class VenueKernel:
    """The simulated venue: fill convention, costs, volume participation, account, orders.

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
    maker_fee_rate: float | None = None
    orders: OrdersKernel = OrdersKernel()
    min_notional: float = 0.0
    latency: LatencyKernel = LatencyKernel()

    @property
    def costs(self) -> VenueCosts:
        """Return the venue's fee rates and slippage (`VenueCosts`)."""
        return VenueCosts.of(self.fee_rate, self.maker_fee_rate, self.slippage)

    @property
    def maker_fee(self) -> float:
        """Return the fee rate of a resting limit order's fill (the taker fee if unset)."""
        return self.costs.maker


KernelSpec = ThresholdKernel | SizingKernel | DrawdownKernel | VenueKernel


@runtime_checkable
class CompiledComponent(Protocol):
    """A component the compiled batch driver can run without calling back into Python."""

    def kernel_spec(self) -> KernelSpec:
        """Return the parameters of the step kernel this component is built on."""
        ...
