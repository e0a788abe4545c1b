"""Declared latency: the milliseconds an order, a cancel or a fill report takes, and the
bar an order decided at a close reaches the market in.

One rule for every driver: the compiled bar (`tradeloom.core.orders.send_order`,
`tradeloom.core.bar`) and any Python caller (a paper run's venue, parity, the tests)
call these functions, so the same order draws the same latency in every mode.

A distribution's draw is counter-based: the k-th order's latency is a hash of the
declared ``seed``, the order's sequence number and the leg (send, cancel, report), never
a generator's state. A backtest, its paper run, a restart and a replay draw the same
milliseconds for the same order whatever else they drew before it. The hash runs on
31-bit integers inside int64, so Python and numba compute it to the same bits.
"""

from __future__ import annotations

import math

from tradeloom.kernels.jit import kernel

__all__ = [
    "ARRIVE_BAR_OPEN",
    "ARRIVE_NEXT_OPEN",
    "LAT_FIXED",
    "LAT_LOGNORMAL",
    "LAT_NONE",
    "LAT_UNIFORM",
    "LEG_CANCEL",
    "LEG_REPORT",
    "LEG_SEND",
    "arrival_delay",
    "latency_ms",
    "unit_draw",
]

LAT_NONE, LAT_FIXED, LAT_UNIFORM, LAT_LOGNORMAL = 0, 1, 2, 3
"""A latency's kind: none (0 ms), a fixed value, uniform(low, high), lognormal(median,
sigma)."""

LEG_SEND, LEG_CANCEL, LEG_REPORT = 0, 1, 2
"""Which leg of an order a draw is for: decision to exchange, a cancel's, the fill
report's."""

ARRIVE_BAR_OPEN, ARRIVE_NEXT_OPEN = 0, 1
"""Where an order that reaches the market inside a bar fills on bars: at the open of the
bar it arrives in (``bar_open``, the default: below one bar period, the next bar's open
as without latency), or at the first open at or after its arrival (``next_open``: never
at a price quoted before it arrived)."""

_M31 = 0x7FFFFFFF
_TWO31 = 2147483648.0


@kernel
def unit_draw(seed: int, n: int, stream: int) -> float:
    """Return a number in (0, 1), a hash of ``seed``, ``n`` and ``stream`` (no state)."""
    h = ((seed & _M31) * 0x9E3779B1 + (n & _M31) * 0x85EBCA77 + (stream & _M31) * 0xC2B2AE3D) & _M31
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & _M31
    h ^= h >> 12
    h = (h * 0x297A2D39) & _M31
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & _M31
    h ^= h >> 16
    return (h + 0.5) / _TWO31


@kernel
def latency_ms(kind: int, a: float, b: float, seed: int, n: int, leg: int) -> float:
    """Return the latency (ms) of leg ``leg`` of the ``n``-th order.

    Args:
        kind: `LAT_NONE`, `LAT_FIXED` (``a`` ms), `LAT_UNIFORM` (between ``a`` and ``b``
            ms) or `LAT_LOGNORMAL` (median ``a`` ms, ``b`` the log's standard deviation).
        a, b: The declared parameters.
        seed: The declared seed.
        n: The order's sequence number (its client order id's).
        leg: `LEG_SEND`, `LEG_CANCEL` or `LEG_REPORT`.
    """
    if kind == LAT_FIXED:
        return a
    if kind == LAT_UNIFORM:
        return a + (b - a) * unit_draw(seed, n, 2 * leg)
    if kind == LAT_LOGNORMAL:
        # Box-Muller on two draws of the order's leg
        u1 = unit_draw(seed, n, 2 * leg)
        u2 = unit_draw(seed, n, 2 * leg + 1)
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        return a * math.exp(b * z)
    return 0.0


@kernel
def arrival_delay(latency: float, period_ms: float, rule: int) -> int:
    """Return the bars after the next one at whose open an order ``latency`` ms late fills.

    An order decided at a bar's close with no latency fills at the next bar's open
    (0). Under `ARRIVE_BAR_OPEN` it fills at the open of the bar it arrives in:
    ``floor(latency / period)`` bars later; under `ARRIVE_NEXT_OPEN` at the first open
    at or after its arrival: ``ceil(latency / period)``.
    """
    if latency <= 0.0 or period_ms <= 0.0:
        return 0
    bars = latency / period_ms
    if rule == ARRIVE_NEXT_OPEN:
        return math.ceil(bars)
    return math.floor(bars)
