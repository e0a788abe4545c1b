"""The risk engine's state and checks: one engine for backtests, paper and live.

- **Trading state**: ``ACTIVE`` (every order may be sent), ``REDUCING`` (only orders
  that bring ``|position|`` toward zero without flipping it), ``HALTED`` (no new
  position; cancels always pass). The kill switch moves to HALTED, latched until
  resume, and sends nothing at all (`kill_holds`) but its own flatten's exits, which no
  kill cancels either (`kill_spares`), and, for a live venue's stop resting at the
  exchange that traded meanwhile, the stop exit its trades are booked to (nothing is
  sent: `tradeloom.core.bar`'s protective exits, ``S_STOP_TRADED``); any other halt
  (a drawdown rule, a health rule, a plugin's rule, zero equity) moves to HALTED for
  the rest of the run, and only that halt's exits, which reduce positions, pass. A
  daily loss moves ACTIVE to REDUCING until the next UTC day.
- **The halt latch** (``acct[A_HALT]``): a drawdown halt, a health rule's halt, a
  plugin rule's halt, zero equity (``NO_EQUITY``) or the kill switch stop new
  positions for the rest of the run; every signal after it is rejected ``HALTED``.
  Only the kill switch's latch is lifted, by resume.
- **Pre-trade checks** (`pretrade_check`), in this order, the first failure wins:
  ``TRADING_HALTED``, ``TRADING_REDUCING``, ``ORDER_RATE``; then, for orders that do
  not reduce the position, ``MAX_ORDER_NOTIONAL``, ``MAX_POSITION_QUANTITY``,
  ``PRICE_COLLAR`` (the order's price, a limit order's limit, further than
  ``price_collar`` from the reference, the bar's close) and, on a margin account,
  ``INSUFFICIENT_MARGIN`` (the initial margin of the account's gross notional after the
  order, every other symbol counted at its position after the exits and reductions the
  bar sent first: a rebalance's sales free their margin before its purchases are
  checked; each entry or increase is checked as the bar's only one). A value
  exactly at a limit passes (the limit is the largest value allowed). Reducing
  orders skip the limits so that no limit can trap a position; the state and the
  rate still apply.
- **The clock** is the bar's: a bar is decided at its close, ``open time +
  timeframe``, in every mode, so a backtest refuses exactly what its paper run
  refuses. The order rate counts orders sent in ``(now - 60 s, now]``; the daily
  loss compares the equity at each close with the equity at the UTC day's first
  close (``daily_loss_limit``: a loss reaching it trips REDUCING).
"""

from __future__ import annotations

import math

from tradeloom.core import codes
from tradeloom.core.context import Order, State
from tradeloom.core.layout import (
    A_DAY,
    A_DAY_EQUITY,
    A_FLATTEN,
    A_HALT,
    A_RATE_COUNT,
    A_RATE_HEAD,
    A_STATE,
    A_STATE_WHY,
    ORDER_LIMIT,
    P_DAILY_LOSS,
    P_INITIAL_MARGIN,
    P_MARGIN,
    P_MAX_ORDER_NOTIONAL,
    P_MAX_ORDERS_PER_MINUTE,
    P_MAX_POSITION_QTY,
    P_PRICE_COLLAR,
    P_RATE_CAPACITY,
)
from tradeloom.core.rows import emit_state
from tradeloom.kernels.jit import core_kernel, core_stage
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "RATE_WINDOW_NS",
    "is_reducing",
    "kill_holds",
    "kill_spares",
    "move_state",
    "observe_day",
    "pretrade_check",
    "record_send",
]

RATE_WINDOW_NS = 60_000_000_000
"""The sliding window of ``max_orders_per_minute``: 60 s."""

_DAY_NS = 86_400_000_000_000
_MARGIN_SLACK = 1.0 + 1e-9
"""Relative rounding allowed in the initial margin check: ``equity / price * price`` may
exceed ``equity`` by an ulp."""


@core_kernel
def is_reducing(position: float, side: int, quantity: float) -> bool:
    """Return whether an order brings ``|position|`` toward zero without flipping it.

    An order that closes the position exactly reduces it; one larger than the
    position flips it and does not. No order reduces a flat position.
    """
    # Exact comparison is safe: for 0 <= q <= |p| the float p + side*q is rounded
    # monotonically, so it can neither change sign nor exceed |p|.
    return position != 0.0 and side * position < 0.0 and quantity <= abs(position)


@core_kernel
def kill_holds(acct: np.ndarray) -> bool:
    """Return whether the kill switch holds the run HALTED (it sends nothing at all)."""
    return bool(acct[A_STATE] == codes.HALTED_STATE and acct[A_STATE_WHY] == codes.KILL_SWITCH)


@core_kernel
def halt_unwinds(acct: np.ndarray) -> bool:
    """Return whether a latched halt closes, at each bar, a position its exit has not
    closed (refused, cut short, never arrived) with no order working for it.

    A risk halt does while the kill switch does not hold the run (the kill sends
    nothing); the kill switch does once its flatten was carried out (``A_FLATTEN``),
    until resume: the position the operator asked to close is closed whatever ended
    its first exit (``EXIT_FLATTEN``, `tradeloom.core.bar._halts`).
    """
    if acct[A_HALT] == 0.0:
        return False
    return acct[A_FLATTEN] != 0.0 if kill_holds(acct) else True


@core_kernel
def kill_spares(reason: int) -> bool:
    """Return whether the kill switch lets an order of ``reason`` through.

    Only its own flatten's exits (``EXIT_FLATTEN``) pass: the operator's explicit order to
    close. The kill refuses every other order (`pretrade_check`); a kill asked again, in
    any way and however often (the ``RUN_DIR/KILL`` file at every wake-up, the command
    line, the console, the API, a signal, a refused fill), cancels every other working
    order and ends every sliced order (`tradeloom.core.feed.cancel_for_kill`), but never
    these exits: they work until they fill, and the position closes.
    """
    return reason == codes.EXIT_FLATTEN


@core_kernel
def move_state(
    st: State, bar: int, state: int, why: int, v0: float = 0.0, v1: float = 0.0, v2: float = 0.0
) -> None:
    """Move the trading state to ``state`` for reason ``why``, and journal the change.

    Moving to the current state changes nothing (and keeps the earlier reason).
    """
    acct = st.acct
    previous = int(acct[A_STATE])
    if previous == state:
        return
    acct[A_STATE] = state
    acct[A_STATE_WHY] = why
    emit_state(st.ev, st.cur, bar, previous, state, why, (float(v0), float(v1), float(v2)))


@core_stage
def observe_day(st: State, bar: int, now_ns: int, equity: float) -> None:
    """Track the UTC day's starting equity and trip REDUCING on a daily loss.

    On the first close of a UTC day, ``equity`` starts the day and a REDUCING state
    entered for ``DAILY_LOSS`` returns to ACTIVE (``DAY_ROLLOVER``). A loss reaching
    ``daily_loss_limit`` moves ACTIVE to REDUCING (``DAILY_LOSS``, with the values).
    """
    acct = st.acct
    limit = st.prm[P_DAILY_LOSS]
    if math.isnan(limit):
        return
    day = now_ns // _DAY_NS
    if day != acct[A_DAY]:
        acct[A_DAY] = day
        acct[A_DAY_EQUITY] = equity
        if acct[A_STATE] == codes.REDUCING and acct[A_STATE_WHY] == codes.DAILY_LOSS:
            move_state(st, bar, codes.ACTIVE, codes.DAY_ROLLOVER, day)
    start = acct[A_DAY_EQUITY]
    if not start > 0.0 or acct[A_STATE] != codes.ACTIVE:
        return
    loss = (start - equity) / start
    if loss >= limit:
        move_state(st, bar, codes.REDUCING, codes.DAILY_LOSS, loss, limit, start)


@core_kernel
def _orders_in_window(acct: np.ndarray, sent: np.ndarray, now_ns: int) -> int:
    """Drop sends at or before ``now - 60 s`` from the ring; return how many are left."""
    capacity = sent.shape[0]
    count = int(acct[A_RATE_COUNT])
    head = int(acct[A_RATE_HEAD])
    while count > 0 and sent[head] <= now_ns - RATE_WINDOW_NS:
        head = (head + 1) % capacity
        count -= 1
    acct[A_RATE_COUNT] = count
    acct[A_RATE_HEAD] = head
    return count


@core_kernel
def record_send(acct: np.ndarray, prm: np.ndarray, sent: np.ndarray, now_ns: int) -> None:
    """Count an order sent at ``now_ns`` toward the order rate (a no-op without the limit)."""
    if math.isnan(prm[P_MAX_ORDERS_PER_MINUTE]):
        return
    capacity = int(prm[P_RATE_CAPACITY])
    count = int(acct[A_RATE_COUNT])
    head = int(acct[A_RATE_HEAD])
    if count == capacity:  # the oldest no longer matters: the limit is <= capacity
        head = (head + 1) % capacity
        count -= 1
    sent[(head + count) % capacity] = now_ns
    acct[A_RATE_COUNT] = count + 1
    acct[A_RATE_HEAD] = head


@core_kernel
def pretrade_check(
    st: State, now_ns: int, position: float, order: Order, equity: float, gross_after: float
) -> int:
    """Return the code refusing an order (0: send it), with its values in ``st.out``.

    Args:
        st: The account, the parameters, the order-rate ring, and ``out``, which
            receives the values of the refusal, in `tradeloom.core.codes` order.
        now_ns: The risk clock (the bar's close).
        position: The symbol's signed position.
        order: The order. Its price is a limit order's level, else the price it was
            sized at; the collar measures it from that price, the market's (the bar's
            close), which stands for it when it has none. The kill switch's flatten
            (``EXIT_FLATTEN``) passes the kill, which refuses everything else, when it
            reduces.
        equity: The account's equity at the mark.
        gross_after: The account's gross notional after the order, at the mark, the
            exits and reductions the bar sent first counted as filled (the initial
            margin check of a margin account).
    """
    acct, prm, out = st.acct, st.prm, st.out
    side, quantity, reference = order.side, order.quantity, order.reference_price
    price = order.price if order.type == ORDER_LIMIT else reference
    flatten = kill_spares(order.reason)
    state = int(acct[A_STATE])
    reducing = is_reducing(position, side, quantity)
    after = position + side * quantity
    if state == codes.HALTED_STATE and ((kill_holds(acct) and not flatten) or not reducing):
        out[0], out[1], out[2], out[3] = position, side, quantity, acct[A_STATE_WHY]
        return codes.TRADING_HALTED
    if state == codes.REDUCING and not reducing:
        out[0], out[1], out[2] = position, after, acct[A_STATE_WHY]
        return codes.TRADING_REDUCING
    rate = prm[P_MAX_ORDERS_PER_MINUTE]
    if not math.isnan(rate):
        count = _orders_in_window(acct, st.sent, now_ns)
        if count >= rate:
            out[0], out[1] = count, rate
            return codes.ORDER_RATE
    if reducing:
        return 0
    if not (math.isfinite(price) and price > 0.0):
        price = reference
    notional = quantity * price
    limit = prm[P_MAX_ORDER_NOTIONAL]
    if notional > limit:  # False for NaN: no limit
        out[0], out[1] = notional, limit
        return codes.MAX_ORDER_NOTIONAL
    limit = prm[P_MAX_POSITION_QTY]
    if abs(after) > limit:
        out[0], out[1], out[2] = position, after, limit
        return codes.MAX_POSITION_QUANTITY
    collar = prm[P_PRICE_COLLAR]
    if not math.isnan(collar):
        low, high = reference * (1.0 - collar), reference * (1.0 + collar)
        if not low <= price <= high:
            out[0], out[1], out[2], out[3], out[4] = price, reference, collar, low, high
            return codes.PRICE_COLLAR
    if prm[P_MARGIN] != 0.0:
        required = prm[P_INITIAL_MARGIN] * gross_after
        if required > equity * _MARGIN_SLACK:  # an order sized at the full equity passes
            out[0], out[1], out[2] = required, equity, prm[P_INITIAL_MARGIN]
            out[3] = prm[P_MARGIN]  # where the rule comes from (`MarginKernel.source`)
            return codes.INSUFFICIENT_MARGIN
    return 0
