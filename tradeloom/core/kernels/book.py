"""Fills against a recorded order book: an L2 replay with latency, queues and depth.

The book backtest's venue, written once as steps over explicit state (`BookState`): a
batch driver loops over them in compiled code, and a Python caller (the tests, a paper
run) calls the same steps one at a time.

**The feed.** One market's L2 events in time order, as hftbacktest records them
(`tradeloom.plugins.data.book_events`): a bid or ask level's new quantity
(`EV_BID_DEPTH`, `EV_ASK_DEPTH`: a snapshot is its levels, a delta one level) or a
trade with its aggressor's side (`EV_BUY_TRADE`, `EV_SELL_TRADE`), each stamped when the
exchange made it (``exch_ts``) and when the strategy saw it (``local_ts``, ns).

**Two books.** The exchange's book moves at ``exch_ts`` and fills orders; the
strategy's (local) book moves at ``local_ts`` and is all a decision may read. Orders
travel between them on two first-in-first-out buses: a request reaches the exchange
its send latency after the decision (a cancel: its cancel latency), a report reaches
the strategy its report latency after the exchange made it; neither bus lets a message
overtake the one before (`tradeloom.core.kernels.latency` draws each leg, the same
draw as on bars). At one instant the strategy's data comes first, then its reports,
then the exchange's data, then requests arriving at the exchange: **a cancel that
reaches the exchange at the instant of a trade that fills its order is too late**
(`RSP_CANCEL_REJECTED`, journaled ``CANCEL_TOO_LATE``), as on bars a cancel that does
not arrive strictly before its order is.

**Fills (at the exchange).** A market order walks the visible levels from the best
(each level a fill at its price and its taker fee; what the visible book cannot fill
expires). A limit order that crosses the book is refused when post-only (``GTX``),
fills completely from the levels up to its price or not at all (``FOK``), fills what
those levels hold and expires the rest (``IOC``), or (``GTC``) fills what they hold and
rests the rest at its price first in its queue. A limit order that does not cross rests
(``IOC``/``FOK``: expires) with the whole visible level ahead of it, and fills, at its
price and the maker fee, by the rules of the queue model (`tradeloom.core.kernels.queue`)
when trades at its price pass its queue position (whole lots; partial fills), completely
when a trade prints through its price, and completely when the opposite best moves onto
it. The recorded book is replayed as it was: the strategy's own fills take nothing
from it (an order small beside the book, as hftbacktest assumes).

Prices are tick indices ``round(price / tick_size) - base`` on a dense ladder that
covers the feed's prices with a margin; an order priced off the ladder is refused
(``EXPIRED``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tradeloom.core.kernels.latency import LEG_CANCEL, LEG_REPORT, LEG_SEND, latency_ms
from tradeloom.core.kernels.queue import (
    lots,
    queue_depth,
    queue_filled,
    queue_trade,
)
from tradeloom.kernels.jit import core_kernel, core_loop
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "END",
    "EV_ASK_DEPTH",
    "EV_BID_DEPTH",
    "EV_BUY_TRADE",
    "EV_SELL_TRADE",
    "LIMIT",
    "MARKET",
    "TIF_FOK",
    "TIF_GTC",
    "TIF_GTX",
    "TIF_IOC",
    "BookState",
    "advance",
    "cancel_order",
    "new_state",
    "submit_order",
]

EV_BID_DEPTH, EV_ASK_DEPTH, EV_BUY_TRADE, EV_SELL_TRADE = 0, 1, 2, 3
"""A feed row's kind: a bid level's quantity, an ask level's, a trade whose aggressor
bought (it printed at the asks), one whose aggressor sold."""

SEEN_EXCH, SEEN_LOCAL = 1, 2
"""Bits of a feed row's ``seen``: the exchange processes it, the strategy sees it."""

LIMIT, MARKET = 0, 1
TIF_GTC, TIF_GTX, TIF_IOC, TIF_FOK = 0, 1, 2, 3
"""Order types and times in force (``GTX``: post-only)."""

ST_NONE, ST_NEW, ST_PARTIAL, ST_FILLED, ST_CANCELED, ST_EXPIRED = 0, 1, 2, 3, 4, 5
"""An order's status (at the exchange, and as the strategy last heard it)."""

REQ_NONE, REQ_NEW, REQ_CANCEL = 0, 1, 2
"""A request on its way to the exchange."""

RSP_ACK, RSP_FILL, RSP_CANCELED, RSP_CANCEL_REJECTED = 0, 1, 2, 3
"""A report on its way to the strategy: the answer to a new order (its status after the
exchange took it), a fill, a cancel done, a cancel too late (the order was gone)."""

END = 1
"""What `advance` returns when the feed and both buses are exhausted."""

# the scalar state (int64)
S_BB, S_BA, S_LOWB, S_HIGHA = 0, 1, 2, 3  # exchange book; local book at +4
S_LOCAL = 4
S_EX_ROW, S_LO_ROW, S_NOW = 8, 9, 10
S_ORDERS, S_ACTIVE = 11, 12
S_REQ_HEAD, S_REQ_TAIL, S_RSP_HEAD, S_RSP_TAIL = 13, 14, 15, 16
S_FILLS, S_STARTED = 17, 18
S_FULL = 19  # 1 once an order or a fill did not fit: the run is void (make the state larger)
S_SIZE = 20

# the configuration (float64)
C_TICK, C_LOT, C_MAKER, C_TAKER, C_QUEUE, C_QUEUE_N = 0, 1, 2, 3, 4, 5
C_SEND_KIND, C_SEND_A, C_SEND_B = 6, 7, 8
C_CANCEL_KIND, C_CANCEL_A, C_CANCEL_B = 9, 10, 11
C_REPORT_KIND, C_REPORT_A, C_REPORT_B = 12, 13, 14
C_SEED, C_BASE = 15, 16
C_SIZE = 17

# the accounts (float64): the exchange's, and the strategy's (as its reports said)
A_POSITION, A_BALANCE, A_FEE, A_TRADES, A_VOLUME, A_VALUE = 0, 1, 2, 3, 4, 5
A_LOCAL = 6
A_SIZE = 12

# an order's integers
O_SIDE, O_PRICE, O_TYPE, O_TIF, O_STATUS, O_LSTATUS, O_LREQ, O_SENT, O_ARRIVED = range(9)
O_ISIZE = 9
# an order's floats
F_QTY, F_LEAVES, F_FRONT, F_CUM, F_LLEAVES = range(5)
F_SIZE = 5

# a request's / a report's integers
B_TS, B_SLOT, B_KIND, B_FILL = 0, 1, 2, 3
B_SIZE = 4

# a fill's integers and floats
L_EXCH_TS, L_LOCAL_TS, L_SLOT, L_MAKER = 0, 1, 2, 3
L_PRICE, L_QTY, L_FEE = 0, 1, 2

_NS_PER_MS = 1_000_000.0


class BookState(NamedTuple):
    """Everything a book backtest holds, as arrays (numba passes it as one tuple)."""

    kind: np.ndarray  # int64, a feed row's EV_*
    seen: np.ndarray  # int64, SEEN_* bits
    exch_ts: np.ndarray  # int64 ns
    local_ts: np.ndarray  # int64 ns
    tick: np.ndarray  # int64, the row's price on the ladder
    qty: np.ndarray  # float64
    cfg: np.ndarray  # float64[C_SIZE]
    s: np.ndarray  # int64[S_SIZE]
    depth: np.ndarray  # float64[4, ladder]: exchange bid, ask; local bid, ask
    acct: np.ndarray  # float64[A_SIZE]
    oi: np.ndarray  # int64[orders, O_ISIZE]
    of: np.ndarray  # float64[orders, F_SIZE]
    active: np.ndarray  # int64[orders]: the slots resting at the exchange
    req: np.ndarray  # int64[2 * orders, B_SIZE]
    rsp: np.ndarray  # int64[reports, B_SIZE]
    fi: np.ndarray  # int64[fills, 4]
    ff: np.ndarray  # float64[fills, 3]


def new_state(
    kind: np.ndarray,
    seen: np.ndarray,
    exch_ts: np.ndarray,
    local_ts: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    *,
    tick_size: float,
    lot_size: float,
    maker_fee: float,
    taker_fee: float,
    queue: int,
    queue_n: float = 3.0,
    send: tuple[int, float, float] = (0, 0.0, 0.0),
    cancel: tuple[int, float, float] = (0, 0.0, 0.0),
    report: tuple[int, float, float] = (0, 0.0, 0.0),
    seed: int = 0,
    max_orders: int = 100_000,
    max_fills: int = 400_000,
    margin_ticks: int = 10_000,
) -> BookState:
    """Return a fresh book backtest over a feed.

    Args:
        kind, seen, exch_ts, local_ts, price, qty: The feed's columns (``EV_*``,
            ``SEEN_*`` bits, ns, ns, price, quantity), sorted by both times.
        tick_size, lot_size: The market's.
        maker_fee, taker_fee: Fractions of the filled notional (negative: a rebate).
        queue: The queue model (`tradeloom.core.kernels.queue` ``QUEUE_*``), ``queue_n``
            its exponent.
        send, cancel, report: Each leg's latency ``(LAT_*, a, b)`` in ms
            (`tradeloom.core.kernels.latency.latency_ms`); ``seed`` their draws'.
        max_orders, max_fills: Capacities: an order beyond them is refused (`submit_order`
            says -1), a fill beyond them goes unreported; either sets ``s[S_FULL]``, and
            such a run is void.
        margin_ticks: Ticks of ladder beyond the feed's lowest and highest price.
    """
    ticks = np.floor(np.asarray(price, dtype=np.float64) / tick_size + 0.5).astype(np.int64)
    low, high = (int(ticks.min()), int(ticks.max())) if len(ticks) else (0, 0)
    base = low - margin_ticks
    width = high - low + 1 + 2 * margin_ticks
    cfg = np.zeros(C_SIZE)
    cfg[C_TICK], cfg[C_LOT], cfg[C_MAKER], cfg[C_TAKER] = tick_size, lot_size, maker_fee, taker_fee
    cfg[C_QUEUE], cfg[C_QUEUE_N] = queue, queue_n
    cfg[C_SEND_KIND], cfg[C_SEND_A], cfg[C_SEND_B] = send
    cfg[C_CANCEL_KIND], cfg[C_CANCEL_A], cfg[C_CANCEL_B] = cancel
    cfg[C_REPORT_KIND], cfg[C_REPORT_A], cfg[C_REPORT_B] = report
    cfg[C_SEED], cfg[C_BASE] = seed, base
    s = np.zeros(S_SIZE, dtype=np.int64)
    for off in (0, S_LOCAL):
        s[off + S_BB], s[off + S_BA] = -1, width
        s[off + S_LOWB], s[off + S_HIGHA] = width, -1
    return BookState(
        np.ascontiguousarray(kind, dtype=np.int64),
        np.ascontiguousarray(seen, dtype=np.int64),
        np.ascontiguousarray(exch_ts, dtype=np.int64),
        np.ascontiguousarray(local_ts, dtype=np.int64),
        ticks - base,
        np.ascontiguousarray(qty, dtype=np.float64),
        cfg,
        s,
        np.zeros((4, width)),
        np.zeros(A_SIZE),
        np.zeros((max_orders, O_ISIZE), dtype=np.int64),
        np.zeros((max_orders, F_SIZE)),
        np.zeros(max_orders, dtype=np.int64),
        np.zeros((2 * max_orders, B_SIZE), dtype=np.int64),
        np.zeros((2 * max_orders + max_fills, B_SIZE), dtype=np.int64),
        np.zeros((max_fills, 4), dtype=np.int64),
        np.zeros((max_fills, 3)),
    )


# --- the ladder -------------------------------------------------------------------


@core_kernel
def update_level(
    st: BookState, off: int, bid: bool, tick: int, qty: float
) -> tuple[float, int, int]:
    """Set a level of the exchange's (``off`` 0) or local (`S_LOCAL`) book.

    Return ``(previous quantity, previous best, new best)`` of that side. The best
    follows hftbacktest's ``HashMapMarketDepth``: an emptied best moves to the next
    level holding quantity; a new level beyond the opposite best moves that one away.
    """
    s = st.s
    row = (off // S_LOCAL) * 2 + (0 if bid else 1)
    levels = st.depth[row]
    other = st.depth[row + 1] if bid else st.depth[row - 1]
    width = levels.shape[0]
    prev = levels[tick]
    nonzero = lots(qty, st.cfg[C_LOT]) > 0.0
    levels[tick] = qty if nonzero else 0.0
    if bid:
        before = s[off + S_BB]
        if not nonzero:
            if tick == s[off + S_BB]:
                best = -1
                for t in range(s[off + S_BB] - 1, s[off + S_LOWB] - 1, -1):
                    if levels[t] > 0.0:
                        best = t
                        break
                s[off + S_BB] = best
                if best == -1:
                    s[off + S_LOWB] = width
        else:
            if tick > s[off + S_BB]:
                s[off + S_BB] = tick
                if tick >= s[off + S_BA]:
                    best = width
                    for t in range(tick + 1, s[off + S_HIGHA] + 1):
                        if other[t] > 0.0:
                            best = t
                            break
                    s[off + S_BA] = best
            s[off + S_LOWB] = min(s[off + S_LOWB], tick)
        return prev, before, s[off + S_BB]
    before = s[off + S_BA]
    if not nonzero:
        if tick == s[off + S_BA]:
            best = width
            for t in range(s[off + S_BA] + 1, s[off + S_HIGHA] + 1):
                if levels[t] > 0.0:
                    best = t
                    break
            s[off + S_BA] = best
            if best == width:
                s[off + S_HIGHA] = -1
    else:
        if tick < s[off + S_BA]:
            s[off + S_BA] = tick
            if s[off + S_BB] >= tick:
                best = -1
                for t in range(tick - 1, s[off + S_LOWB] - 1, -1):
                    if other[t] > 0.0:
                        best = t
                        break
                s[off + S_BB] = best
        s[off + S_HIGHA] = max(s[off + S_HIGHA], tick)
    return prev, before, s[off + S_BA]


# --- the buses ----------------------------------------------------------------------


@core_loop
def _leg_ns(st: BookState, at: int, slot: int, leg: int) -> int:
    c = st.cfg
    if leg == LEG_SEND:
        ms = latency_ms(
            int(c[C_SEND_KIND]), c[C_SEND_A], c[C_SEND_B], int(c[C_SEED]), slot, LEG_SEND
        )
    elif leg == LEG_CANCEL:
        ms = latency_ms(
            int(c[C_CANCEL_KIND]), c[C_CANCEL_A], c[C_CANCEL_B], int(c[C_SEED]), slot, LEG_CANCEL
        )
    else:
        ms = latency_ms(
            int(c[C_REPORT_KIND]), c[C_REPORT_A], c[C_REPORT_B], int(c[C_SEED]), slot, LEG_REPORT
        )
    return round(ms * _NS_PER_MS)


@core_kernel
def _push(
    bus: np.ndarray, head_tail: int, s: np.ndarray, ts: int, slot: int, kind: int, fill: int
) -> None:
    tail = s[head_tail + 1]
    if tail > s[head_tail]:  # first in, first out: never before the message ahead
        ts = max(ts, bus[tail - 1, B_TS])
    bus[tail, B_TS] = ts
    bus[tail, B_SLOT] = slot
    bus[tail, B_KIND] = kind
    bus[tail, B_FILL] = fill
    s[head_tail + 1] = tail + 1


@core_loop
def _report(st: BookState, slot: int, kind: int, fill: int) -> None:
    now = st.s[S_NOW]
    at = now + _leg_ns(st, now, slot, LEG_REPORT)
    if fill >= 0:
        st.fi[fill, L_LOCAL_TS] = at
    _push(st.rsp, S_RSP_HEAD, st.s, at, slot, kind, fill)


# --- the strategy's side --------------------------------------------------------------


@core_loop
def submit_order(
    st: BookState, side: int, price: float, qty: float, order_type: int, tif: int
) -> int:
    """Send an order now (``side`` +1 buy, -1 sell); return its slot, -1 when full."""
    s = st.s
    slot = s[S_ORDERS]
    if slot >= st.oi.shape[0]:
        s[S_FULL] = 1
        return -1
    s[S_ORDERS] = slot + 1
    o = st.oi[slot]
    o[O_SIDE] = side
    o[O_PRICE] = int(lots(price, st.cfg[C_TICK])) - int(st.cfg[C_BASE])
    o[O_TYPE] = order_type
    o[O_TIF] = tif
    o[O_STATUS] = ST_NONE
    o[O_LSTATUS] = ST_NONE
    o[O_LREQ] = REQ_NEW
    o[O_SENT] = s[S_NOW]
    f = st.of[slot]
    f[F_QTY] = qty
    f[F_LEAVES] = qty
    f[F_LLEAVES] = qty
    at = s[S_NOW] + _leg_ns(st, s[S_NOW], slot, LEG_SEND)
    _push(st.req, S_REQ_HEAD, s, at, slot, REQ_NEW, -1)
    return int(slot)


@core_loop
def cancel_order(st: BookState, slot: int) -> bool:
    """Send a cancel of order ``slot`` now; False when a request of it is on its way or
    the strategy already knows it is done."""
    o = st.oi[slot]
    if o[O_LREQ] != REQ_NONE or not (o[O_LSTATUS] == ST_NEW or o[O_LSTATUS] == ST_PARTIAL):
        return False
    o[O_LREQ] = REQ_CANCEL
    s = st.s
    at = s[S_NOW] + _leg_ns(st, s[S_NOW], slot, LEG_CANCEL)
    _push(st.req, S_REQ_HEAD, s, at, slot, REQ_CANCEL, -1)
    return True


@core_loop
def _local_report(st: BookState, k: int) -> None:
    slot = st.rsp[k, B_SLOT]
    kind = st.rsp[k, B_KIND]
    o = st.oi[slot]
    f = st.of[slot]
    if kind == RSP_FILL:
        fill = st.rsp[k, B_FILL]
        qty = st.ff[fill, L_QTY]
        price = st.ff[fill, L_PRICE]
        a = st.acct
        a[A_LOCAL + A_POSITION] += o[O_SIDE] * qty
        a[A_LOCAL + A_BALANCE] -= o[O_SIDE] * qty * price
        a[A_LOCAL + A_FEE] += st.ff[fill, L_FEE]
        a[A_LOCAL + A_TRADES] += 1.0
        a[A_LOCAL + A_VOLUME] += qty
        a[A_LOCAL + A_VALUE] += qty * price
        f[F_LLEAVES] -= qty
        if lots(f[F_LLEAVES], st.cfg[C_LOT]) > 0.0:
            o[O_LSTATUS] = ST_PARTIAL
        else:
            o[O_LSTATUS] = ST_FILLED
    elif kind == RSP_ACK:
        o[O_LREQ] = REQ_NONE
        if o[O_LSTATUS] != ST_FILLED:  # fills reported before the answer stand
            st_ex = st.rsp[k, B_FILL]  # the answer's status rides in the fill column
            if st_ex in (ST_EXPIRED, ST_FILLED) or o[O_LSTATUS] != ST_PARTIAL:
                o[O_LSTATUS] = st_ex
    elif kind == RSP_CANCELED:
        o[O_LREQ] = REQ_NONE
        o[O_LSTATUS] = ST_CANCELED
    else:  # RSP_CANCEL_REJECTED: the order was gone (filled) before the cancel came
        o[O_LREQ] = REQ_NONE


# --- the exchange's side --------------------------------------------------------------


@core_loop
def _fill(st: BookState, slot: int, tick: int, qty: float, maker: bool) -> None:
    o = st.oi[slot]
    f = st.of[slot]
    c = st.cfg
    price = (tick + c[C_BASE]) * c[C_TICK]
    fee = price * qty * (c[C_MAKER] if maker else c[C_TAKER])
    a = st.acct
    a[A_POSITION] += o[O_SIDE] * qty
    a[A_BALANCE] -= o[O_SIDE] * qty * price
    a[A_FEE] += fee
    a[A_TRADES] += 1.0
    a[A_VOLUME] += qty
    a[A_VALUE] += qty * price
    f[F_LEAVES] -= qty
    o[O_STATUS] = ST_PARTIAL if lots(f[F_LEAVES], c[C_LOT]) > 0.0 else ST_FILLED
    n = st.s[S_FILLS]
    if n >= st.fi.shape[0]:
        st.s[S_FULL] = 1
    else:
        st.s[S_FILLS] = n + 1
        st.fi[n, L_EXCH_TS] = st.s[S_NOW]
        st.fi[n, L_SLOT] = slot
        st.fi[n, L_MAKER] = 1 if maker else 0
        st.ff[n, L_PRICE] = price
        st.ff[n, L_QTY] = qty
        st.ff[n, L_FEE] = fee
        _report(st, slot, RSP_FILL, n)


@core_kernel
def _rest(st: BookState, slot: int, front: float) -> None:
    if st.oi[slot, O_STATUS] == ST_NONE:
        st.oi[slot, O_STATUS] = ST_NEW
    st.of[slot, F_FRONT] = front
    st.of[slot, F_CUM] = 0.0
    n = st.s[S_ACTIVE]
    st.active[n] = slot
    st.s[S_ACTIVE] = n + 1


@core_loop
def _drop_done(st: BookState) -> None:
    """Take filled orders off the resting list (keeping its order)."""
    kept = 0
    for i in range(st.s[S_ACTIVE]):
        slot = st.active[i]
        if st.oi[slot, O_STATUS] == ST_NEW or st.oi[slot, O_STATUS] == ST_PARTIAL:
            st.active[kept] = slot
            kept += 1
    st.s[S_ACTIVE] = kept


@core_loop
def _walk(st: BookState, slot: int, last: int) -> None:
    """Fill order ``slot`` from the opposite best through level ``last`` (inclusive)."""
    o = st.oi[slot]
    f = st.of[slot]
    lot = st.cfg[C_LOT]
    if o[O_SIDE] > 0:
        levels = st.depth[1]
        for t in range(st.s[S_BA], last + 1):
            q = levels[t]
            if q > 0.0:
                _fill(st, slot, t, min(q, f[F_LEAVES]), False)
                if lots(f[F_LEAVES], lot) <= 0.0:
                    return
    else:
        levels = st.depth[0]
        for t in range(st.s[S_BB], last - 1, -1):
            q = levels[t]
            if q > 0.0:
                _fill(st, slot, t, min(q, f[F_LEAVES]), False)
                if lots(f[F_LEAVES], lot) <= 0.0:
                    return


@core_loop
def _visible(st: BookState, side: int, last: int) -> float:
    total = 0.0
    if side > 0:
        for t in range(st.s[S_BA], last + 1):
            total += st.depth[1, t]
    else:
        for t in range(st.s[S_BB], last - 1, -1):
            total += st.depth[0, t]
    return total


@core_loop
def _accept(st: BookState, slot: int) -> None:
    """The exchange takes a new order: fill, rest or refuse it; answer."""
    o = st.oi[slot]
    f = st.of[slot]
    s = st.s
    width = st.depth.shape[1]
    o[O_ARRIVED] = s[S_NOW]
    side = o[O_SIDE]
    lot = st.cfg[C_LOT]
    if o[O_TYPE] == MARKET:
        if side > 0 and s[S_BA] < width:
            _walk(st, slot, s[S_HIGHA])
        elif side < 0 and s[S_BB] >= 0:
            _walk(st, slot, s[S_LOWB])
        if lots(f[F_LEAVES], lot) > 0.0:
            o[O_STATUS] = ST_EXPIRED
    elif o[O_PRICE] < 0 or o[O_PRICE] >= width:
        o[O_STATUS] = ST_EXPIRED
    else:
        price = o[O_PRICE]
        crosses = price >= s[S_BA] if side > 0 else price <= s[S_BB]
        tif = o[O_TIF]
        if crosses:
            if tif == TIF_GTX:
                o[O_STATUS] = ST_EXPIRED
            elif tif == TIF_FOK:
                if lots(_visible(st, side, price), lot) >= lots(f[F_QTY], lot):
                    _walk(st, slot, price)
                else:
                    o[O_STATUS] = ST_EXPIRED
            else:
                _walk(st, slot, price)
                if lots(f[F_LEAVES], lot) > 0.0:
                    if tif == TIF_IOC:
                        o[O_STATUS] = ST_EXPIRED
                    else:  # GTC: the rest rests at its price, first in its queue
                        _rest(st, slot, 0.0)
        elif tif in (TIF_IOC, TIF_FOK):
            o[O_STATUS] = ST_EXPIRED
        else:
            own = st.depth[0 if side > 0 else 1, price]
            _rest(st, slot, own)
    _report(st, slot, RSP_ACK, o[O_STATUS])


@core_loop
def _cancel_at_exchange(st: BookState, slot: int) -> None:
    status = st.oi[slot, O_STATUS]
    if status in (ST_NEW, ST_PARTIAL):
        st.oi[slot, O_STATUS] = ST_CANCELED
        _drop_done(st)
        _report(st, slot, RSP_CANCELED, -1)
    else:
        _report(st, slot, RSP_CANCEL_REJECTED, -1)


@core_kernel
def _trade(st: BookState, buy: bool, tick: int, qty: float) -> None:
    """A trade printed at ``tick``: fill the resting orders it reached."""
    lot = st.cfg[C_LOT]
    any_done = False
    for i in range(st.s[S_ACTIVE]):
        slot = st.active[i]
        o = st.oi[slot]
        f = st.of[slot]
        if (o[O_SIDE] < 0) != buy:
            continue
        through = o[O_PRICE] < tick if buy else o[O_PRICE] > tick
        if through:
            _fill(st, slot, o[O_PRICE], f[F_LEAVES], True)
            any_done = True
        elif o[O_PRICE] == tick:
            f[F_FRONT], f[F_CUM] = queue_trade(f[F_FRONT], f[F_CUM], qty)
            reached, f[F_FRONT] = queue_filled(f[F_FRONT], lot)
            if reached > 0.0:
                _fill(st, slot, o[O_PRICE], min(reached, f[F_LEAVES]), True)
                any_done = any_done or o[O_STATUS] == ST_FILLED
    if any_done:
        _drop_done(st)


@core_kernel
def _depth(st: BookState, bid: bool, tick: int, qty: float) -> None:
    """A level of the exchange's book changed: move queues, fill what the best reached."""
    prev, before, best = update_level(st, 0, bid, tick, qty)
    model = int(st.cfg[C_QUEUE])
    n = st.cfg[C_QUEUE_N]
    side = 1 if bid else -1
    any_done = False
    for i in range(st.s[S_ACTIVE]):
        slot = st.active[i]
        o = st.oi[slot]
        f = st.of[slot]
        if o[O_SIDE] == side and o[O_PRICE] == tick:
            f[F_FRONT], f[F_CUM] = queue_depth(model, n, f[F_FRONT], f[F_CUM], prev, qty)
    if bid and best > before:
        for i in range(st.s[S_ACTIVE]):
            slot = st.active[i]
            if st.oi[slot, O_SIDE] < 0 and st.oi[slot, O_PRICE] <= best:
                _fill(st, slot, st.oi[slot, O_PRICE], st.of[slot, F_LEAVES], True)
                any_done = True
    elif not bid and best < before:
        for i in range(st.s[S_ACTIVE]):
            slot = st.active[i]
            if st.oi[slot, O_SIDE] > 0 and st.oi[slot, O_PRICE] >= best:
                _fill(st, slot, st.oi[slot, O_PRICE], st.of[slot, F_LEAVES], True)
                any_done = True
    if any_done:
        _drop_done(st)


# --- the clock ----------------------------------------------------------------------


@core_kernel
def _next_seen(st: BookState, row: int, bit: int) -> int:
    n = st.kind.shape[0]
    while row < n and (st.seen[row] & bit) == 0:
        row += 1
    return row


@core_loop
def advance(st: BookState, until: int) -> int:
    """Process everything that happens up to ``until`` (ns, inclusive); return `END` when
    the feed and both buses are exhausted, else 0 (the clock then reads ``until``).

    At one instant: the strategy's data, its reports, the exchange's data, requests
    reaching the exchange (hftbacktest's order).
    """
    s = st.s
    n = st.kind.shape[0]
    never = 9223372036854775807
    if s[S_STARTED] == 0:
        s[S_STARTED] = 1
        s[S_EX_ROW] = _next_seen(st, 0, SEEN_EXCH)
        s[S_LO_ROW] = _next_seen(st, 0, SEEN_LOCAL)
    while True:
        lo = st.local_ts[s[S_LO_ROW]] if s[S_LO_ROW] < n else never
        rs = st.rsp[s[S_RSP_HEAD], B_TS] if s[S_RSP_HEAD] < s[S_RSP_TAIL] else never
        ex = st.exch_ts[s[S_EX_ROW]] if s[S_EX_ROW] < n else never
        rq = st.req[s[S_REQ_HEAD], B_TS] if s[S_REQ_HEAD] < s[S_REQ_TAIL] else never
        first = min(min(lo, rs), min(ex, rq))
        if first == never:
            return END
        if first > until:
            s[S_NOW] = until
            return 0
        s[S_NOW] = first
        if lo == first:
            row = s[S_LO_ROW]
            k = st.kind[row]
            if k in (EV_BID_DEPTH, EV_ASK_DEPTH):
                update_level(st, S_LOCAL, k == EV_BID_DEPTH, st.tick[row], st.qty[row])
            s[S_LO_ROW] = _next_seen(st, row + 1, SEEN_LOCAL)
        elif rs == first:
            head = s[S_RSP_HEAD]
            s[S_RSP_HEAD] = head + 1
            _local_report(st, head)
        elif ex == first:
            row = s[S_EX_ROW]
            k = st.kind[row]
            if k in (EV_BID_DEPTH, EV_ASK_DEPTH):
                _depth(st, k == EV_BID_DEPTH, st.tick[row], st.qty[row])
            else:
                _trade(st, k == EV_BUY_TRADE, st.tick[row], st.qty[row])
            s[S_EX_ROW] = _next_seen(st, row + 1, SEEN_EXCH)
        else:
            head = s[S_REQ_HEAD]
            s[S_REQ_HEAD] = head + 1
            slot = st.req[head, B_SLOT]
            if st.req[head, B_KIND] == REQ_NEW:
                _accept(st, slot)
            else:
                _cancel_at_exchange(st, slot)


@core_kernel
def start_time(st: BookState) -> int:
    """Return the clock's first reading: the earliest time of the feed."""
    n = st.kind.shape[0]
    first = 9223372036854775807
    for i in range(n):
        if st.seen[i] & SEEN_EXCH:
            first = min(first, st.exch_ts[i])
            break
    for i in range(n):
        if st.seen[i] & SEEN_LOCAL:
            first = min(first, st.local_ts[i])
            break
    return first


@core_kernel
def mid(st: BookState, off: int) -> float:
    """Return the book's mid price (``off`` 0: the exchange's, `S_LOCAL`: the strategy's),
    NaN while a side is empty."""
    bb, ba = st.s[off + S_BB], st.s[off + S_BA]
    if bb < 0 or ba >= st.depth.shape[1]:
        return math.nan
    return float((bb + ba + 2.0 * st.cfg[C_BASE]) * st.cfg[C_TICK] / 2.0)
