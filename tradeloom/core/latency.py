"""Declared latency in the bar: the bar an order reaches the venue in, and whether a
cancel reaches it before the order it cancels (``execution.realism``).

Written once, over ``prm`` (`tradeloom.core.layout` ``P_LAT_*``): the compiled bar calls
it when it sends an order (`tradeloom.core.orders.send_order`) and when a decision
replaces an order still on its way (`tradeloom.core.bar`); every driver runs that bar.
Without a realism setting (``P_LAT_KIND`` `LAT_NONE`, ``P_CANCEL_KIND`` `LAT_NONE`) an
order reaches the venue at the next bar's open and a cancel is in time, as always.

Time is counted in bar periods of the strategy's timeframe from the decision bar's close.
"""

from __future__ import annotations

from tradeloom.core.kernels.latency import LEG_CANCEL, LEG_SEND, arrival_delay, latency_ms
from tradeloom.core.layout import (
    P_CANCEL_A,
    P_CANCEL_B,
    P_CANCEL_KIND,
    P_LAT_A,
    P_LAT_B,
    P_LAT_KIND,
    P_LAT_RULE,
    P_LAT_SEED,
    P_TIMEFRAME_NS,
)
from tradeloom.kernels.jit import core_kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = ["arrival_bar", "cancel_ms", "cancel_too_late", "send_ms"]


@core_kernel
def send_ms(prm: np.ndarray, seq: float) -> float:
    """Return the milliseconds order ``seq`` takes from the decision to the venue."""
    return latency_ms(
        int(prm[P_LAT_KIND]), prm[P_LAT_A], prm[P_LAT_B], int(prm[P_LAT_SEED]), int(seq), LEG_SEND
    )


@core_kernel
def cancel_ms(prm: np.ndarray, seq: float) -> float:
    """Return the milliseconds a cancel of order ``seq`` takes to reach the venue."""
    return latency_ms(
        int(prm[P_CANCEL_KIND]),
        prm[P_CANCEL_A],
        prm[P_CANCEL_B],
        int(prm[P_LAT_SEED]),
        int(seq),
        LEG_CANCEL,
    )


@core_kernel
def arrival_bar(prm: np.ndarray, t: int, seq: float) -> float:
    """Return the bar at whose open order ``seq``, decided at bar ``t``'s close, may fill.

    ``t + 1`` without latency; later by the declared rule
    (`tradeloom.core.kernels.latency.arrival_delay`).
    """
    if prm[P_LAT_KIND] == 0.0:
        return t + 1.0
    period = prm[P_TIMEFRAME_NS] / 1e6
    return t + 1.0 + arrival_delay(send_ms(prm, seq), period, int(prm[P_LAT_RULE]))


@core_kernel
def cancel_too_late(prm: np.ndarray, t: int, sent: float, arrive: float, seq: float) -> bool:
    """Return whether a cancel sent at bar ``t``'s close reaches the venue too late.

    The order ``seq`` was decided at bar ``sent``'s close and fills from bar ``arrive``'s
    open. An order already at the venue (``arrive <= t``) is cancelled at once, as
    without latency. One still on its way reaches the venue ``(sent - t)`` periods plus
    its send latency after this close; the cancel, its cancel latency after it: a cancel
    that does not arrive strictly before the order is too late (the venue takes the
    order first), and the order fills as it would have.
    """
    if arrive <= t or (prm[P_LAT_KIND] == 0.0 and prm[P_CANCEL_KIND] == 0.0):
        return False
    period = prm[P_TIMEFRAME_NS] / 1e6
    order_at = (sent - t) * period + send_ms(prm, seq)
    return not cancel_ms(prm, seq) < order_at
