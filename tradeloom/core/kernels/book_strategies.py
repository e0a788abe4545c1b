"""Two reference strategies over the book kernel: a quoter and a taker.

They decide on the strategy's own (local) book every ``interval`` ns, exactly as their
hftbacktest twins in ``benchmarks/book_vs_hftbacktest.py`` do, so that the two
backtests can be compared fill for fill. Each returns how many decisions it
made; the fills and accounts are in the state (`tradeloom.core.kernels.book.BookState`).
"""

from __future__ import annotations

import math

from tradeloom.core.kernels.book import (
    A_LOCAL,
    A_POSITION,
    C_BASE,
    C_TICK,
    LIMIT,
    MARKET,
    O_LREQ,
    O_LSTATUS,
    O_PRICE,
    REQ_NONE,
    S_BA,
    S_BB,
    S_LOCAL,
    S_NOW,
    ST_CANCELED,
    ST_EXPIRED,
    ST_FILLED,
    ST_NEW,
    ST_PARTIAL,
    TIF_GTC,
    TIF_GTX,
    BookState,
    advance,
    cancel_order,
    mid,
    start_time,
    submit_order,
)
from tradeloom.kernels.jit import core_kernel, core_loop

__all__ = ["quote_touch", "take_momentum"]


@core_kernel
def _done(st: BookState, slot: int) -> bool:
    status = st.oi[slot, O_LSTATUS]
    return bool(status in (ST_FILLED, ST_CANCELED, ST_EXPIRED))


@core_kernel
def _cancellable(st: BookState, slot: int) -> bool:
    status = st.oi[slot, O_LSTATUS]
    return bool(status in (ST_NEW, ST_PARTIAL) and st.oi[slot, O_LREQ] == REQ_NONE)


@core_loop
def quote_touch(st: BookState, interval: int, qty: float, max_position: float) -> int:
    """Quote one post-only order at each side's best price; requote when the best moves.

    Every ``interval`` ns: an order the strategy knows is done is forgotten; a live one
    away from its side's best is cancelled (once its previous request is answered); a
    side without an order gets one at its best, unless the position is at
    ``max_position`` on that side. Return the number of decisions.
    """
    s = st.s
    bid = -1
    ask = -1
    steps = 0
    if s[S_NOW] == 0:
        s[S_NOW] = start_time(st)
    while advance(st, s[S_NOW] + interval) == 0:
        steps += 1
        bb = s[S_LOCAL + S_BB]
        ba = s[S_LOCAL + S_BA]
        if bb < 0 or ba >= st.depth.shape[1]:
            continue
        position = st.acct[A_LOCAL + A_POSITION]
        if bid >= 0:
            if _done(st, bid):
                bid = -1
            elif st.oi[bid, O_PRICE] != bb and _cancellable(st, bid):
                cancel_order(st, bid)
        if ask >= 0:
            if _done(st, ask):
                ask = -1
            elif st.oi[ask, O_PRICE] != ba and _cancellable(st, ask):
                cancel_order(st, ask)
        base = st.cfg[C_BASE]
        tick = st.cfg[C_TICK]
        if bid < 0 and position < max_position:
            bid = submit_order(st, 1, (bb + base) * tick, qty, LIMIT, TIF_GTX)
        if ask < 0 and position > -max_position:
            ask = submit_order(st, -1, (ba + base) * tick, qty, LIMIT, TIF_GTX)
    return steps


@core_loop
def take_momentum(st: BookState, interval: int, qty: float, max_position: float) -> int:
    """Buy at market when the strategy's mid rose over the last ``interval``, sell when it
    fell, within ``max_position`` either side. Return the number of decisions."""
    s = st.s
    steps = 0
    if s[S_NOW] == 0:
        s[S_NOW] = start_time(st)
    last = math.nan
    while advance(st, s[S_NOW] + interval) == 0:
        steps += 1
        now = mid(st, S_LOCAL)
        if math.isnan(now):
            continue
        position = st.acct[A_LOCAL + A_POSITION]
        if not math.isnan(last):
            if now > last and position < max_position:
                submit_order(st, 1, now, qty, MARKET, TIF_GTC)
            elif now < last and position > -max_position:
                submit_order(st, -1, now, qty, MARKET, TIF_GTC)
        last = now
    return steps
