"""Queue position of a resting limit order on a market-by-price (L2) book.

An L2 book shows the quantity at each price, not the orders that make it up, so where a
resting order stands in its level's queue is an estimate. Each model keeps ``front``, the
quantity ahead of the order, and ``cum``, the quantity traded at its price since the
level's last depth update. It is set when the venue accepts the order (`queue_new`: the
whole visible level is ahead of it), moved by trades at its price (`queue_trade`) and by
changes of its level's quantity (`queue_depth`); `queue_filled` says how much of the
order the queue has reached. The rules are hftbacktest's (``RiskAdverseQueueModel`` and
``ProbQueueModel`` with its probability functions, ``hftbacktest/src/backtest/models/
queue.rs``), so a book backtest's queue agrees with it to the last lot:

- `QUEUE_RISK_AVERSE`: only trades advance the order; a level that shrinks without a
  trade lost orders behind it, except that the queue ahead can never exceed the level.
- `QUEUE_POWER`, `QUEUE_POWER3`, `QUEUE_LOG`: a shrink that no trade explains is
  split between the queue ahead and behind with probability ``p`` of being behind
  (Rigtorp's estimator): ``f(back) / (f(back) + f(front))`` with ``f(x) = x ** n``
  (power) or ``log(1 + x)`` (log), or ``1 - (front / (front + back)) ** n`` (power3).
  One departure: where hftbacktest's estimate would put the order past the front of its
  queue (a level emptied by cancels alone), it stops at the front, so that a trade at
  the order's price never fills more than it traded.

Every model moves the queue ahead by trades and never lets it exceed the level, so a
risk-averse estimate is never ahead of a probabilistic one on the same events, and an
order under it fills no earlier.

Written over plain floats so that the book kernel (`tradeloom.core.kernels.book`) and
the tests call the same functions.
"""

from __future__ import annotations

import math

from tradeloom.kernels.jit import core_kernel

__all__ = [
    "QUEUE_LOG",
    "QUEUE_POWER",
    "QUEUE_POWER3",
    "QUEUE_RISK_AVERSE",
    "behind_probability",
    "lots",
    "queue_depth",
    "queue_filled",
    "queue_trade",
]

QUEUE_RISK_AVERSE, QUEUE_POWER, QUEUE_POWER3, QUEUE_LOG = 0, 1, 2, 3
"""The queue models (``execution.realism.queue.model``: risk_averse, power, power3, log)."""


@core_kernel
def lots(qty: float, lot: float) -> float:
    """Return ``qty / lot`` rounded half away from zero (Rust's ``f64::round``)."""
    x = qty / lot
    if x >= 0.0:
        return math.floor(x + 0.5)
    return -math.floor(-x + 0.5)


@core_kernel
def behind_probability(model: int, n: float, front: float, back: float) -> float:
    """Return the probability that a decrease of the level came from behind the order."""
    if model == QUEUE_POWER:
        fb = back**n
        p = fb / (fb + front**n)
    elif model == QUEUE_POWER3:
        p = 1.0 - (front / (front + back)) ** n
    else:
        fb = math.log(1.0 + back)
        p = fb / (fb + math.log(1.0 + front))
    if math.isinf(p):
        return 1.0
    return float(p)


@core_kernel
def queue_trade(front: float, cum: float, qty: float) -> tuple[float, float]:
    """Return ``(front, cum)`` after ``qty`` traded at the order's price."""
    return front - qty, cum + qty


@core_kernel
def queue_depth(
    model: int, n: float, front: float, cum: float, prev_qty: float, new_qty: float
) -> tuple[float, float]:
    """Return ``(front, cum)`` after the order's level went from ``prev_qty`` to ``new_qty``.

    The trades at the level since its last update (``cum``) already moved the order and
    are taken out of the change, so a trade and the depth update that reports it count
    once.
    """
    if model == QUEUE_RISK_AVERSE:
        return min(front, new_qty), 0.0
    chg = prev_qty - new_qty - cum
    if chg < 0.0:  # the level grew: what joined stands behind the order
        return min(front, new_qty), 0.0
    back = prev_qty - front
    p = behind_probability(model, n, front, back)
    est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
    if math.isnan(est):  # an empty level on both sides of the order (0 / 0): Rust's
        return new_qty, 0.0  # f64::min returns the number, the level's quantity
    # hftbacktest's estimate can pass the front of the queue (a level emptied by cancels:
    # front 8, back 2, n 3, all 10 gone: -1.8), and the next trade would then fill more
    # than it traded; the order stops at the front instead
    est = max(est, min(front, 0.0))
    return min(est, new_qty), 0.0


@core_kernel
def queue_filled(front: float, lot: float) -> tuple[float, float]:
    """Return ``(quantity the queue reached, front)``: whole lots traded past the order."""
    exec_lots = lots(-front, lot)
    if exec_lots > 0.0:
        return exec_lots * lot, 0.0
    return 0.0, front
