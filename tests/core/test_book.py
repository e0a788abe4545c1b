"""The book backtest's venue on hand-built books (`tradeloom.core.kernels.book`).

Prices on a 0.01 tick, quantities in lots of 0.001. Each test builds a feed, steps the
clock with `advance` and reads the state. The kernels run as Python here (tiny books);
`test_compiled_matches_python` runs a stream through the compiled forms too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.core.kernels import book as B
from tradeloom.core.kernels.latency import LAT_FIXED, LAT_UNIFORM, LEG_SEND, latency_ms
from tradeloom.core.kernels.queue import QUEUE_POWER, QUEUE_RISK_AVERSE
from tradeloom.kernels import jit

LOT = 0.001
MS = 1_000_000
BID, ASK, BUY, SELL = B.EV_BID_DEPTH, B.EV_ASK_DEPTH, B.EV_BUY_TRADE, B.EV_SELL_TRADE
BOOK = [(0, BID, 100.00, 5), (0, BID, 99.99, 4), (0, ASK, 100.01, 2), (0, ASK, 100.02, 3),
        (0, ASK, 100.03, 10)]  # fmt: skip


@pytest.fixture(autouse=True)
def _python_forms():
    jit.interpret(lambda func: True)
    yield
    jit.interpret(None)


def make(rows, *, queue=QUEUE_RISK_AVERSE, feed_ms=0.0, send=0.0, cancel=0.0, report=0.0, **kw):
    """A state over ``rows`` of ``(ms, kind, price, lots)``; fixed latencies in ms.

    A last row 10 s later keeps the feed going: `advance` reports the end, and stops the
    clock, once the feed and both buses are exhausted."""
    rows = [*rows, (rows[-1][0] + 10_000, BID, 99.90, 1)]
    t = np.array([round(r[0] * MS) for r in rows], dtype=np.int64)
    return B.new_state(
        np.array([r[1] for r in rows]),
        np.full(len(rows), 3),
        t,
        t + round(feed_ms * MS),
        np.array([r[2] for r in rows], dtype=float),
        np.array([r[3] * LOT for r in rows]),
        tick_size=0.01,
        lot_size=LOT,
        maker_fee=-0.0001,
        taker_fee=0.0005,
        queue=queue,
        send=kw.pop("send_leg", (LAT_FIXED, send, 0.0)),
        cancel=(LAT_FIXED, cancel, 0.0),
        report=(LAT_FIXED, report, 0.0),
        max_orders=kw.pop("max_orders", 64),
        max_fills=256,
        margin_ticks=50,
        **kw,
    )


def at(state, ms):
    return B.advance(state, round(ms * MS))


def fills(state):
    n = state.s[B.S_FILLS]
    return [
        (int(state.fi[i, B.L_SLOT]), round(state.ff[i, B.L_PRICE], 2),
         round(state.ff[i, B.L_QTY] / LOT), bool(state.fi[i, B.L_MAKER]))
        for i in range(n)
    ]  # fmt: skip


def front_lots(state, slot):
    return state.of[slot, B.F_FRONT] / LOT


def test_risk_averse_queue_moves_by_trades_only():
    rows = [*BOOK, (2, SELL, 100.00, 2), (3, BID, 100.00, 3), (4, BID, 100.00, 7),
            (5, BID, 100.00, 4), (6, SELL, 100.00, 3), (7, SELL, 100.00, 1),
            (8, SELL, 100.00, 1)]  # fmt: skip
    s = make(rows)
    at(s, 1)
    slot = B.submit_order(s, 1, 100.00, LOT, B.LIMIT, B.TIF_GTC)
    at(s, 1)
    assert front_lots(s, slot) == pytest.approx(5)  # the whole level is ahead
    expected = {2: 3, 3: 3, 4: 3, 5: 3, 6: 0}  # joins behind, cancels behind
    for ms, lots_ahead in expected.items():
        at(s, ms)
        assert front_lots(s, slot) == pytest.approx(lots_ahead), ms
    assert fills(s) == []
    at(s, 7)  # one lot traded past the front: the order's lot fills, at its price
    assert fills(s) == [(slot, 100.00, 1, True)]
    assert s.fi[0, B.L_EXCH_TS] == 7 * MS


def _power(front, back, n=3.0):
    return back**n / (back**n + front**n)


def test_probabilistic_queue_moves_by_the_model():
    rows = [*BOOK, (2, BID, 100.00, 9), (3, BID, 100.00, 7), (4, SELL, 100.00, 4),
            (5, BID, 100.00, 3), (6, SELL, 100.00, 1)]  # fmt: skip
    ra, pq = make(rows), make(rows, queue=QUEUE_POWER, queue_n=3.0)
    for s in (ra, pq):
        at(s, 1)
        B.submit_order(s, 1, 100.00, LOT, B.LIMIT, B.TIF_GTC)
        at(s, 2)  # four lots join behind: the order keeps its 5 ahead
        assert front_lots(s, 0) == pytest.approx(5)
    at(ra, 3)
    at(pq, 3)  # two lots cancel: behind with probability p, ahead with 1 - p
    p = _power(5, 4)
    expected = 5 - (1 - p) * 2 + min(4 - p * 2, 0)
    assert front_lots(pq, 0) == pytest.approx(expected)
    assert front_lots(ra, 0) == pytest.approx(5)
    at(ra, 4)
    at(pq, 4)  # a trade of 4 moves both by 4 (less than half a lot past the front)
    assert front_lots(ra, 0) == pytest.approx(1)
    assert front_lots(pq, 0) == pytest.approx(expected - 4)
    at(ra, 5)
    at(pq, 5)  # the depth update that reports the trade: counted once
    assert front_lots(pq, 0) == pytest.approx(expected - 4)
    at(ra, 6)
    at(pq, 6)  # one more lot: the probabilistic order is reached, the risk-averse not
    assert fills(pq) == [(0, 100.00, 1, True)]
    assert fills(ra) == []
    assert front_lots(ra, 0) == pytest.approx(0)


def test_a_market_order_walks_the_visible_depth_with_fees_by_level():
    s = make(BOOK)
    at(s, 1)
    B.submit_order(s, 1, 0.0, 4 * LOT, B.MARKET, B.TIF_GTC)
    at(s, 1)
    assert fills(s) == [(0, 100.01, 2, False), (0, 100.02, 2, False)]
    assert s.ff[0, B.L_FEE] == pytest.approx(100.01 * 2 * LOT * 0.0005)
    assert s.ff[1, B.L_FEE] == pytest.approx(100.02 * 2 * LOT * 0.0005)
    B.submit_order(s, 1, 0.0, 20 * LOT, B.MARKET, B.TIF_GTC)
    at(s, 2)  # the book is replayed as recorded: the second order sees the same 15 lots
    assert [f[2] for f in fills(s)[2:]] == [2, 3, 10]
    assert s.oi[1, B.O_LSTATUS] == B.ST_EXPIRED  # what the book could not fill
    assert s.acct[B.A_LOCAL + B.A_POSITION] == pytest.approx(19 * LOT)
    assert s.acct[B.A_LOCAL + B.A_BALANCE] == pytest.approx(
        -sum(f[1] * f[2] * LOT for f in fills(s))
    )


@pytest.mark.parametrize(
    ("tif", "price", "lots", "filled", "status"),
    [
        (B.TIF_GTX, 100.01, 5, [], B.ST_EXPIRED),  # post-only that would take: refused
        (B.TIF_GTX, 100.00, 5, [], B.ST_NEW),  # post-only that rests
        (B.TIF_IOC, 100.02, 10, [2, 3], B.ST_EXPIRED),  # fills what is there, drops the rest
        (B.TIF_FOK, 100.02, 10, [], B.ST_EXPIRED),  # 5 visible up to its price: all or none
        (B.TIF_FOK, 100.02, 5, [2, 3], B.ST_FILLED),
        (B.TIF_GTC, 100.01, 5, [2], B.ST_PARTIAL),  # the rest rests at its price
    ],
)
def test_times_in_force(tif, price, lots, filled, status):
    s = make(BOOK, report=1.0)
    at(s, 1)
    B.submit_order(s, 1, price, lots * LOT, B.LIMIT, tif)
    at(s, 3)
    assert [f[2] for f in fills(s)] == filled
    assert s.oi[0, B.O_LSTATUS] == status
    if tif == B.TIF_GTC:
        assert s.s[B.S_ACTIVE] == 1 and front_lots(s, 0) == 0  # first in its new queue


def test_resting_orders_fill_through_and_when_the_best_reaches_them():
    rows = [*BOOK, (2, BUY, 100.03, 1), (3, ASK, 99.99, 1)]
    s = make(rows)
    at(s, 1)
    sell = B.submit_order(s, -1, 100.02, 3 * LOT, B.LIMIT, B.TIF_GTC)
    buy = B.submit_order(s, 1, 99.99, 2 * LOT, B.LIMIT, B.TIF_GTC)
    at(s, 2)  # a trade printed through the sell's price: the level was taken
    assert fills(s) == [(sell, 100.02, 3, True)]
    at(s, 3)  # the best ask came down onto the buy
    assert fills(s)[1:] == [(buy, 99.99, 2, True)]


def test_latency_moves_fills_by_the_declared_amounts():
    rows = [*BOOK, (30, ASK, 100.01, 0)]  # the best ask leaves 30 ms in
    s = make(rows, send=25.0, report=7.0, feed_ms=3.0)
    at(s, 10)
    B.submit_order(s, 1, 0.0, LOT, B.MARKET, B.TIF_GTC)
    at(s, 34.999999)
    assert fills(s) == []  # still on its way
    at(s, 35)  # 10 + 25 ms: the ask at 100.01 is gone (30 ms), the order takes 100.02
    assert fills(s) == [(0, 100.02, 1, False)]
    assert s.fi[0, B.L_EXCH_TS] == 35 * MS and s.fi[0, B.L_LOCAL_TS] == 42 * MS
    assert s.acct[B.A_LOCAL + B.A_POSITION] == 0  # the report is 7 ms away
    at(s, 42)
    assert s.acct[B.A_LOCAL + B.A_POSITION] == pytest.approx(LOT)
    assert s.s[B.S_LOCAL + B.S_BA] == s.s[B.S_BA]  # the strategy saw the ask leave at 33 ms


def test_a_drawn_latency_is_the_declared_draw():
    leg = (LAT_UNIFORM, 5.0, 50.0)
    s = make(BOOK, send_leg=leg, seed=11)
    at(s, 1)
    for _ in range(3):
        B.submit_order(s, 1, 0.0, LOT, B.MARKET, B.TIF_GTC)
    at(s, 200)
    sent = [MS + round(latency_ms(LAT_UNIFORM, 5.0, 50.0, 11, k, LEG_SEND) * MS) for k in range(3)]
    arrived = np.maximum.accumulate(sent)  # first in, first out: never before the one ahead
    assert [int(s.oi[k, B.O_ARRIVED]) for k in range(3)] == list(arrived)


@pytest.mark.parametrize(
    ("trade_ms", "filled"),
    [(14.999999, True), (15, True), (15.000001, False)],
    ids=["before", "same-instant", "after"],
)
def test_a_cancel_racing_a_trade(trade_ms, filled):
    """The cancel reaches the exchange at 15 ms. A trade at that very instant comes first
    (data before requests): the order fills and the cancel is too late."""
    rows = [*BOOK, (1, BID, 100.00, 0), (trade_ms, SELL, 100.00, 1)]
    s = make(rows, cancel=5.0)
    at(s, 2)
    slot = B.submit_order(s, 1, 100.00, LOT, B.LIMIT, B.TIF_GTC)
    at(s, 10)
    assert B.cancel_order(s, slot)
    at(s, 20)
    assert (fills(s) == [(slot, 100.00, 1, True)]) is filled
    assert s.oi[slot, B.O_LSTATUS] == (B.ST_FILLED if filled else B.ST_CANCELED)
    last = s.s[B.S_RSP_TAIL] - 1
    rejected = bool(s.rsp[last, B.B_KIND] == B.RSP_CANCEL_REJECTED)
    assert rejected is filled


def test_a_full_state_says_so():
    s = make(BOOK, max_orders=1)
    at(s, 1)
    assert B.submit_order(s, 1, 0.0, LOT, B.MARKET, B.TIF_GTC) == 0
    assert s.s[B.S_FULL] == 0
    assert B.submit_order(s, 1, 0.0, LOT, B.MARKET, B.TIF_GTC) == -1
    assert s.s[B.S_FULL] == 1


# --- properties ----------------------------------------------------------------------

_events = st.lists(
    st.tuples(st.sampled_from([BID, ASK, BUY, SELL]), st.integers(0, 6), st.integers(0, 6)),
    min_size=1,
    max_size=40,
)


def _stream(events):
    """A book around 100.00 with ``events`` (kind, level from the touch, lots) 1 ms apart."""
    rows = [(0, BID, round(100.00 - d * 0.01, 2), 3) for d in range(4)]
    rows += [(0, ASK, round(100.01 + d * 0.01, 2), 3) for d in range(4)]
    for i, (kind, d, lots) in enumerate(events):
        price = 100.00 - d * 0.01 if kind in (BID, SELL) else 100.01 + d * 0.01
        rows.append((1 + i, kind, round(price, 2), lots if kind in (BID, ASK) else max(lots, 1)))
    return rows


@settings(max_examples=60, deadline=None)
@given(_events, st.lists(st.tuples(st.booleans(), st.integers(1, 12)), min_size=1, max_size=5))
def test_market_fills_never_exceed_the_visible_depth(events, orders):
    s = make(_stream(events), send=0.5)
    for i, (buy, lots) in enumerate(orders):
        at(s, 1 + 5 * i)
        B.submit_order(s, 1 if buy else -1, 0.0, lots * LOT, B.MARKET, B.TIF_GTC)
        at(s, 1 + 5 * i + 0.5)
        mine = [k for k in range(s.s[B.S_FILLS]) if s.fi[k, B.L_SLOT] == i]
        got = sum(s.ff[k, B.L_QTY] for k in mine)
        assert got <= lots * LOT + 1e-12  # never more than asked
        depth_now = s.depth[1 if buy else 0]
        for k in mine:
            tick = round(s.ff[k, B.L_PRICE] / 0.01) - int(s.cfg[B.C_BASE])
            assert s.ff[k, B.L_QTY] <= depth_now[tick] + 1e-12  # never more than the level
        assert got == pytest.approx(s.of[i, B.F_QTY] - s.of[i, B.F_LEAVES])  # conserved
    at(s, 10_000)
    a = s.acct
    assert a[B.A_POSITION] == pytest.approx(a[B.A_LOCAL + B.A_POSITION])  # reports drained
    assert a[B.A_BALANCE] == pytest.approx(a[B.A_LOCAL + B.A_BALANCE])


@settings(max_examples=80, deadline=None)
@given(_events, st.integers(0, 3))
def test_risk_averse_fills_no_earlier_than_probabilistic(events, level):
    """One resting lot, the same events: the risk-averse queue is never shorter, so that
    order fills no earlier; neither fills more at its price than traded there; its queue
    never passes the front by half a lot or more."""
    rows = _stream(events)
    price = round(100.00 - level * 0.01, 2)
    done = {}
    for model in (QUEUE_RISK_AVERSE, QUEUE_POWER):
        s = make(rows, queue=model)
        at(s, 0.5)
        B.submit_order(s, 1, price, LOT, B.LIMIT, B.TIF_GTX)
        fronts = []
        for i in range(len(events)):
            at(s, 1 + i)
            if s.s[B.S_FILLS] == 0:
                fronts.append(front_lots(s, 0))
                assert fronts[-1] > -0.5
        done[model] = (s.fi[0, B.L_EXCH_TS] if s.s[B.S_FILLS] else math.inf, fronts)
        traded_at = sum(r[3] for r in rows[8:] if r[1] == SELL and r[2] == price)
        through = any(r[1] == SELL and r[2] < price for r in rows[8:])
        if s.s[B.S_FILLS] and not through:
            assert s.ff[0, B.L_QTY] / LOT <= traded_at
    (t_ra, f_ra), (t_p, f_p) = done[QUEUE_RISK_AVERSE], done[QUEUE_POWER]
    assert t_p <= t_ra
    for a, b in zip(f_ra, f_p, strict=False):
        assert b <= a + 1e-9


def test_compiled_matches_python():
    """The compiled forms (what a backtest runs) give the Python forms' numbers, fill for
    fill, on a stream with every kind of event (compiling the book kernels costs about
    15 s of CPU once; the on-disk cache keeps them)."""
    from tradeloom.core.kernels.book_strategies import quote_touch

    rng = np.random.default_rng(5)
    events = [(int(k), int(d), int(n)) for k, d, n in rng.integers(0, [4, 4, 6], size=(400, 3))]
    rows = _stream(events)
    results = []
    for python in (True, False):
        jit.interpret((lambda func: True) if python else None)
        s = make(rows, queue=QUEUE_POWER, send=2.0, cancel=2.0, report=1.0)
        steps = quote_touch(s, 5 * MS, LOT, 3 * LOT)
        results.append((steps, fills(s), s.acct.tolist()))
    assert results[0][1]  # it traded
    assert results[0] == results[1]
