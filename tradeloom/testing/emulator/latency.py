"""The emulator's declared latency: the bar a market order reaches it in.

The compiled bar's rule (`tradeloom.core.kernels.latency`), drawn for the order's
sequence number: the last ``-NNNNNN`` of its client id (`tradeloom.plugins.
protocols_orders.client_ids.client_order_id`), the venue's id otherwise. An order a paper
run sends at a bar's close fills at the open of the bar it reaches the venue in, as a
backtest with the same ``execution.realism`` fills it.
"""

from __future__ import annotations

from tradeloom.core.kernels.latency import LEG_SEND, arrival_delay, latency_ms
from tradeloom.core.kernels.specs import LatencyKernel

__all__ = ["arrival_bars"]


def arrival_bars(
    latency: LatencyKernel | None, interval_ms: int, order_id: int, client_order_id: str | None
) -> int:
    """Return how many bars after the one in progress a market order fills (0: now)."""
    if latency is None or latency.kind == 0:
        return 0
    tail = (client_order_id or "").rpartition("-")[2]
    seq = int(tail) if tail.isdigit() else order_id
    ms = latency_ms(latency.kind, latency.a, latency.b, latency.seed, seq, LEG_SEND)
    return int(arrival_delay(ms, float(interval_ms), latency.rule))
