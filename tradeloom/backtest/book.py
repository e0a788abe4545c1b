"""The book backtest's venue from a strategy's declarations: a realism profile and a feed.

`book_state` makes the state of `tradeloom.core.kernels.book` from L2 events
(`tradeloom.plugins.data.book_events`) and the ``execution.realism`` profile the bars
use: the same latency legs and seed (so an order draws the same milliseconds on bars
and on books), the profile's fee tier (else the strategy's ``fee_bps`` and
``maker_fee_bps``) and its queue model (else risk-averse).
"""

from __future__ import annotations

from tradeloom.core.kernels.book import BookState, new_state
from tradeloom.core.kernels.queue import QUEUE_RISK_AVERSE
from tradeloom.plugins.data.book_events import BookEvents
from tradeloom.plugins.protocols_orders.realism import RealismProfile

__all__ = ["book_state"]


def book_state(
    events: BookEvents,
    *,
    tick_size: float,
    lot_size: float,
    profile: RealismProfile | None = None,
    fee_bps: float = 0.0,
    maker_fee_bps: float | None = None,
    max_orders: int = 100_000,
    max_fills: int = 400_000,
) -> BookState:
    """Return a fresh book backtest over ``events`` under ``profile``.

    Args:
        events: The market's L2 events.
        tick_size, lot_size: The market's price and quantity steps.
        profile: The strategy's realism profile (None: no latency, risk-averse queue).
        fee_bps, maker_fee_bps: The venue's fees when the profile declares none
            (``maker_fee_bps`` None: the taker's).
        max_orders, max_fills: The state's capacities.
    """
    taker = fee_bps
    maker = fee_bps if maker_fee_bps is None else maker_fee_bps
    send = cancel = report = (0, 0.0, 0.0)
    seed = 0
    queue, n = QUEUE_RISK_AVERSE, 3.0
    if profile is not None:
        if profile.fees is not None:
            taker = profile.fees.taker_bps
            maker = taker if profile.fees.maker_bps is None else profile.fees.maker_bps
        latency = profile.latency
        send, cancel, report = latency.send.spec(), latency.cancel.spec(), latency.report.spec()
        seed = latency.seed
        if profile.queue is not None:
            queue, n = profile.queue.kernel()
    return new_state(
        *events.columns(),
        tick_size=tick_size,
        lot_size=lot_size,
        maker_fee=maker / 10_000.0,
        taker_fee=taker / 10_000.0,
        queue=queue,
        queue_n=n,
        send=send,
        cancel=cancel,
        report=report,
        seed=seed,
        max_orders=max_orders,
        max_fills=max_fills,
    )
