"""The simulated venue's orders: sending, market and limit fills, slicing into children.

Every order the core sends goes through `send_order`; every fill of the simulated
venue through `execute`. The rules (``execution.orders``, documented on the
execution reference page) are written here once, for the batch and per-bar drivers
and the paper run, which all call `tradeloom.core.bar.run_bars`:

- `choose_order`: a signal's order is a market or a limit order (``type: auto``: a
  limit unless the signal is urgent or the bar's range, the spread's proxy, is wide);
- a limit order *arrives* where a market order would fill (`limit_arrives`): if the
  price there is at or through the limit it is marketable and fills as a taker at that
  price, never worse than the limit (post-only: refused; IOC: the rest cancelled; FOK:
  whole or nothing); otherwise it *rests* (GTC) and a later bar fills it at the limit
  as a maker when the bar trades through it (or touches it: ``queue: touch``), or it
  falls back to market or expires after its bars (`limit_at_open`);
- slicing: a parent order is sent as children (`start_parent`, `next_child`), each an
  order of its own with the parent's sequence number; a child goes out when it is due
  and the one before it is done.

The limit and slicing paths are compiled as functions of their own (`core_loop`), not
inlined into the bar's step: a market-order strategy's step stays as small as before.
"""

from __future__ import annotations

import math

from tradeloom.core import codes
from tradeloom.core.accounting import minimum
from tradeloom.core.context import FillCosts, FillReport, Order, State
from tradeloom.core.feed import feed_fill
from tradeloom.core.kernels.fills import (
    CUT_MINIMUM,
    CUT_NONE,
    DONE_FRACTION,
    FillTerms,
    Offer,
    fill_order,
)
from tradeloom.core.latency import arrival_bar
from tradeloom.core.layout import (
    A_CASH,
    A_SEQ,
    LIQ_MAKER,
    LIQ_TAKER,
    ORDER_AUTO,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_STOP,
    P_AUTO_SPREAD,
    P_AUTO_URGENT,
    P_EXPIRE_BARS,
    P_FALLBACK_BARS,
    P_FEE,
    P_LIMIT_OFFSET,
    P_MAKER_FEE,
    P_MARGIN,
    P_ORDER_TYPE,
    P_POST_ONLY,
    P_QUEUE_TOUCH,
    P_SLICE_CHILDREN,
    P_SLICE_EVERY,
    P_SLICE_FRACTION,
    P_SLICE_KIND,
    P_SLIPPAGE,
    P_TIF,
    S_PA_DIR,
    S_PA_KIND,
    S_PA_NEXT,
    S_PA_QTY,
    S_PA_REASON,
    S_PA_REST,
    S_PA_SENT,
    S_PA_SEQ,
    S_PA_SIDE,
    S_W_ACTIVE,
    S_W_ARRIVE,
    S_W_BAR,
    S_W_FIRST,
    S_W_LIMIT,
    S_W_PARENT,
    S_W_QTY,
    S_W_REASON,
    S_W_REMAINING,
    S_W_SEQ,
    S_W_SIDE,
    S_W_STOP,
    S_W_TYPE,
    SLICE_TWAP,
    TIF_FOK,
    TIF_GTC,
    TIF_IOC,
)
from tradeloom.core.rows import emit_cancel, emit_order, emit_sliced_order
from tradeloom.kernels.jit import core_kernel, core_loop
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "cancel_working",
    "choose_order",
    "execute",
    "limit_arrives",
    "limit_at_open",
    "limit_price",
    "next_child",
    "send_order",
    "signal_reason",
    "start_parent",
]


@core_kernel
def signal_reason(reason: int) -> bool:
    """Return whether an order of ``reason`` is a signal's, or a rebalance's (the others
    are market orders)."""
    return (
        reason == codes.ENTRY
        or reason == codes.REVERSE
        or reason == codes.EXIT_SIGNAL
        or reason == codes.SCALE_IN
        or reason == codes.REBALANCE
    )


@core_kernel
def choose_order(
    prm: np.ndarray, reason: int, confidence: float, high: float, low: float, close: float
) -> int:
    """Return the type of the order a decision sends: `ORDER_MARKET` or `ORDER_LIMIT`.

    Args:
        prm: The parameters (``execution.orders``).
        reason: The order's reason: only a signal's order may be a limit order.
        confidence: The signal's confidence (``type: auto``: urgent at
            ``urgent_confidence`` and above).
        high, low, close: The decision bar (``type: auto``: its range in bps of the
            close stands for the spread).
    """
    kind = int(prm[P_ORDER_TYPE])
    if kind == ORDER_MARKET or not signal_reason(reason):
        return ORDER_MARKET
    if kind == ORDER_AUTO:
        urgent = prm[P_AUTO_URGENT]
        if not math.isnan(urgent) and confidence >= urgent:
            return ORDER_MARKET
        if not (high - low) / close <= prm[P_AUTO_SPREAD]:
            return ORDER_MARKET
    return ORDER_LIMIT


@core_kernel
def limit_price(side: int, reference: float, offset: float) -> float:
    """Return the limit price ``offset`` (a fraction) to the passive side of ``reference``."""
    return reference * (1.0 - side * offset)


@core_kernel
def send_order(st: State, t: int, s: int, order: Order) -> None:
    """Record ``order`` for symbol ``s`` at bar ``t`` and make it the symbol's working order."""
    acct, sym = st.acct, st.sym
    kind = order.type
    seq = acct[A_SEQ] + 1.0
    acct[A_SEQ] = seq
    emit_order(st.ev, st.cur, t, s, seq, order)
    sym[s, S_W_ACTIVE] = 1.0
    sym[s, S_W_SEQ] = seq
    sym[s, S_W_BAR] = t
    sym[s, S_W_ARRIVE] = arrival_bar(st.prm, t, seq)
    sym[s, S_W_SIDE] = order.side
    sym[s, S_W_REMAINING] = order.quantity
    sym[s, S_W_QTY] = order.quantity
    sym[s, S_W_STOP] = 1.0 if kind == ORDER_STOP else 0.0
    sym[s, S_W_TYPE] = kind
    sym[s, S_W_LIMIT] = order.price if kind == ORDER_LIMIT else math.nan
    sym[s, S_W_FIRST] = -1.0
    sym[s, S_W_PARENT] = order.parent
    sym[s, S_W_REASON] = order.reason


@core_kernel
def cancel_working(
    ev: np.ndarray, cur: np.ndarray, sym: np.ndarray, t: int, s: int, reason: int
) -> None:
    """Stop the simulated venue working the symbol's order."""
    if sym[s, S_W_ACTIVE] != 0.0:
        emit_cancel(ev, cur, t, s, sym[s, S_W_SEQ], sym[s, S_W_REMAINING], reason, sym[s, S_W_BAR])
        sym[s, S_W_ACTIVE] = 0.0


@core_kernel
def execute(
    st: State, t: int, s: int, price_now: float, volume: float, cap: float, costs: FillCosts
) -> None:
    """Fill what the simulated venue can of the symbol's working order, now.

    Args:
        st: The state, the parameters, the event rows, and scratch for a closed trade.
        t, s: The bar and the symbol.
        price_now: The price before slippage (the open, the close, a stop's, a limit's).
        volume, cap: The bar's volume and the share of it the fill may take (<= 0: all).
        costs: The fill's slippage, fee rate and liquidity (`FillCosts`).
    """
    acct, sym, prm, ev, cur = st.acct, st.sym, st.prm, st.ev, st.cur
    side = int(sym[s, S_W_SIDE])
    terms = FillTerms(costs.slippage, costs.fee, minimum(sym, prm, s), prm[P_MARGIN] == 0.0)
    offer = Offer(price_now, volume, cap)
    quantity, price, fee, slipped, cut = fill_order(
        side, sym[s, S_W_REMAINING], offer, terms, acct[A_CASH]
    )
    if quantity > 0.0:
        fill = FillReport(
            int(sym[s, S_W_SEQ]), side, quantity, price, fee, slipped, int(sym[s, S_W_BAR]),
            costs.liquidity,
        )  # fmt: skip
        feed_fill(st, t, s, fill)
        sym[s, S_W_REMAINING] -= quantity
    if sym[s, S_W_REMAINING] <= sym[s, S_W_QTY] * DONE_FRACTION:
        sym[s, S_W_ACTIVE] = 0.0
    elif cut != CUT_NONE:
        reason = codes.BELOW_MINIMUM if cut == CUT_MINIMUM else codes.INSUFFICIENT_CASH
        emit_cancel(ev, cur, t, s, sym[s, S_W_SEQ], sym[s, S_W_REMAINING], reason, sym[s, S_W_BAR])
        sym[s, S_W_ACTIVE] = 0.0
        sym[s, S_PA_SEQ] = 0.0  # a parent short of cash sends no more children


@core_kernel
def _taker_price(side: int, price: float, limit: float, slippage: float) -> float:
    """Return the price before slippage at which a marketable limit fills (never past it)."""
    if side > 0 and price * (1.0 + slippage) > limit:
        return limit / (1.0 + slippage)
    if side < 0 and price * (1.0 - slippage) < limit:
        return limit / (1.0 - slippage)
    return price


@core_loop
def limit_arrives(
    st: State, t: int, s: int, price: float, volume: float, cap: float, first: int
) -> bool:
    """Take the symbol's limit order at the venue, where the market is at ``price``.

    A marketable order fills now as a taker, up to its limit; a post-only one is
    refused; an IOC's rest and an FOK that cannot fill whole are cancelled; a GTC
    order's rest rests from bar ``first`` on.

    Returns:
        Whether the order now rests untouched this bar (the bar may still fill it).
    """
    acct, sym, prm, ev, cur = st.acct, st.sym, st.prm, st.ev, st.cur
    side = int(sym[s, S_W_SIDE])
    limit = sym[s, S_W_LIMIT]
    tif = int(prm[P_TIF])
    marketable = price <= limit if side > 0 else price >= limit
    if marketable:
        if prm[P_POST_ONLY] != 0.0:
            cancel_working(ev, cur, sym, t, s, codes.POST_ONLY_WOULD_CROSS)
            return False
        slippage = prm[P_SLIPPAGE]
        at = _taker_price(side, price, limit, slippage)
        if tif == TIF_FOK:
            terms = FillTerms(slippage, prm[P_FEE], minimum(sym, prm, s), prm[P_MARGIN] == 0.0)
            whole, _, _, _, _ = fill_order(
                side, sym[s, S_W_REMAINING], Offer(at, volume, cap), terms, acct[A_CASH]
            )
            if whole < sym[s, S_W_REMAINING] * (1.0 - DONE_FRACTION):
                cancel_working(ev, cur, sym, t, s, codes.UNFILLED_FOK)
                return False
        execute(st, t, s, at, volume, cap, FillCosts(slippage, prm[P_FEE], LIQ_TAKER))
        if sym[s, S_W_ACTIVE] != 0.0:
            if tif == TIF_IOC:
                cancel_working(ev, cur, sym, t, s, codes.UNFILLED_IOC)
            else:
                sym[s, S_W_FIRST] = first
        return False
    if tif == TIF_GTC:
        sym[s, S_W_FIRST] = first
        return True
    cancel_working(ev, cur, sym, t, s, codes.UNFILLED_IOC if tif == TIF_IOC else codes.UNFILLED_FOK)
    return False


@core_loop
def limit_at_open(
    st: State, t: int, s: int, open_: float, high: float, low: float, volume: float, cap: float
) -> bool:
    """Work the symbol's limit order during bar ``t``, from its open.

    It arrives at the open (``fill: next_open``), or, resting, falls back to market
    or expires when its bars are up, or fills at its limit as a maker if the bar
    trades through it (touches it, with ``queue: touch``).

    Returns:
        Whether it fell back: a market order for the rest was sent (the caller counts
        the send); it has filled at the open as far as it could.
    """
    sym, prm, ev, cur = st.sym, st.prm, st.ev, st.cur
    first = sym[s, S_W_FIRST]
    if first < 0.0:
        if not limit_arrives(st, t, s, open_, volume, cap, t):
            return False
    else:
        fallback = prm[P_FALLBACK_BARS]
        if fallback > 0.0 and t - first >= fallback:
            side = int(sym[s, S_W_SIDE])
            rest = sym[s, S_W_REMAINING]
            cancel_working(ev, cur, sym, t, s, codes.LIMIT_FALLBACK)
            reason = int(sym[s, S_W_REASON])
            parent = sym[s, S_W_PARENT]
            send_order(st, t, s, Order(side, rest, reason, open_, ORDER_MARKET, math.nan, parent))
            execute(st, t, s, open_, volume, cap, FillCosts(prm[P_SLIPPAGE], prm[P_FEE], LIQ_TAKER))
            return True
        expire = prm[P_EXPIRE_BARS]
        if expire > 0.0 and t - first >= expire:
            cancel_working(ev, cur, sym, t, s, codes.LIMIT_EXPIRED)
            return False
    side = int(sym[s, S_W_SIDE])
    limit = sym[s, S_W_LIMIT]
    touch = prm[P_QUEUE_TOUCH] != 0.0
    if side > 0:
        reached = low <= limit if touch else low < limit
    else:
        reached = high >= limit if touch else high > limit
    if reached:
        execute(st, t, s, limit, volume, cap, FillCosts(0.0, prm[P_MAKER_FEE], LIQ_MAKER))
    return False


@core_loop
def start_parent(st: State, t: int, s: int, order: Order, direction: float) -> None:
    """Record a sliced order (the parent) whose children `next_child` sends from bar ``t``.

    Args:
        st: The state, the parameters and the event rows.
        t, s: The bar and the symbol.
        order: The parent order and its reference price; its ``type`` is the children's
            (`ORDER_MARKET` or `ORDER_LIMIT`); its price and parent are not read.
        direction: The direction the parent works toward.
    """
    acct, sym, prm = st.acct, st.sym, st.prm
    quantity = order.quantity
    seq = acct[A_SEQ] + 1.0
    acct[A_SEQ] = seq
    slicing = prm[P_SLICE_KIND]
    detail = prm[P_SLICE_CHILDREN] if slicing == SLICE_TWAP else prm[P_SLICE_FRACTION]
    emit_sliced_order(st.ev, st.cur, t, s, seq, order, slicing, detail)
    sym[s, S_PA_SEQ] = seq
    sym[s, S_PA_SIDE] = order.side
    sym[s, S_PA_QTY] = quantity
    sym[s, S_PA_REST] = quantity
    sym[s, S_PA_NEXT] = t
    sym[s, S_PA_SENT] = 0.0
    sym[s, S_PA_REASON] = order.reason
    sym[s, S_PA_DIR] = direction
    sym[s, S_PA_KIND] = order.type


@core_loop
def next_child(st: State, t: int, s: int, close: float, volume: float) -> bool:
    """Send the symbol's parent's next child, if one is due at bar ``t``'s close.

    A child is due at its bar once the child before it is done (filled, cancelled,
    expired). A TWAP child is the parent's rest less the planned share of the children
    after it (so what a child left unfilled goes with the next one; the last takes all
    that is left); a participation child is at most ``max_volume_fraction`` of this
    bar's volume. The parent ends when nothing is left to send.

    Returns:
        Whether a child was sent (its ORDER row is the last row).
    """
    sym, prm = st.sym, st.prm
    if sym[s, S_PA_SEQ] == 0.0 or sym[s, S_W_ACTIVE] != 0.0 or t < sym[s, S_PA_NEXT]:
        return False
    total = sym[s, S_PA_QTY]
    rest = sym[s, S_PA_REST]
    sent = sym[s, S_PA_SENT]
    if rest <= total * DONE_FRACTION:
        sym[s, S_PA_SEQ] = 0.0
        return False
    if prm[P_SLICE_KIND] == SLICE_TWAP:
        children = prm[P_SLICE_CHILDREN]
        if sent >= children:
            sym[s, S_PA_SEQ] = 0.0  # the last child is done: its rest was cancelled
            return False
        quantity = rest - total / children * (children - sent - 1.0)
        every = prm[P_SLICE_EVERY]
    else:
        quantity = min(rest, prm[P_SLICE_FRACTION] * volume)
        every = 1.0
    if quantity <= total * DONE_FRACTION:
        sym[s, S_PA_NEXT] = t + 1
        return False
    side = int(sym[s, S_PA_SIDE])
    kind = int(sym[s, S_PA_KIND])
    level = limit_price(side, close, prm[P_LIMIT_OFFSET]) if kind == ORDER_LIMIT else math.nan
    reason = int(sym[s, S_PA_REASON])
    send_order(st, t, s, Order(side, quantity, reason, close, kind, level, sym[s, S_PA_SEQ]))
    sym[s, S_PA_SENT] = sent + 1.0
    sym[s, S_PA_NEXT] = t + every
    return True
