"""Order types in the compiled bar: limit orders, time in force, fallback, stops at the close,
``auto``, and TWAP and participation slicing (``execution.orders``).

Every expected row is worked out by hand from the rules on the execution reference
page. The strategy buys at bar 0's close of 100 (``p = 0.9``) with half the equity,
so the order's quantity is ``q = 5_000 / (100 (1 + s) (1 + f))``; with an offset of
100 bps the buy limit is 99.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.accounting import mark_equity
from tradeloom.core.kernels.specs import OrdersKernel
from tradeloom.core.params import CoreSpec
from tradeloom.core.state import BarInputs

from .harness import assert_rows, bars, decoded, make_spec, rows, run

NAN = math.nan
ENTRY = codes.ENTRY
LIMIT, MARKET = L.ORDER_LIMIT, L.ORDER_MARKET
MAKER = L.LIQ_MAKER  # a FILL row's liquidity: a resting limit the bar traded through


def spec(*, maker: float | None = None, fill_at_close: bool = False, **orders: object) -> CoreSpec:
    """Return the harness's strategy buying half the equity, with these order settings."""
    venue_keys = {
        k: orders.pop(k) for k in ("slippage", "fee", "max_volume_fraction") if k in orders
    }
    other = {
        k: orders.pop(k) for k in ("stop_loss", "take_profit", "max_holding_bars") if k in orders
    }
    base = make_spec(fraction=0.5, fill_at_close=fill_at_close, **venue_keys, **other)  # type: ignore[arg-type]
    assert base.venue is not None
    return replace(
        base,
        venue=replace(base.venue, maker_fee_rate=maker),
        orders=OrdersKernel(**orders),  # type: ignore[arg-type]
    )


def buy(
    low: list[float],
    *,
    open_: list[float] | None = None,
    close: list[float] | None = None,
    volume: list[float] | None = None,
) -> BarInputs:
    """Bars closing at 100 (or ``close``) with these lows; the signal at bar 0."""
    n = len(low)
    c = close or [100.0] * n
    o = open_ or [100.0] * n
    return bars(
        c,
        open_=o,
        high=[max(a, b) + 1.0 for a, b in zip(o, c, strict=True)],
        low=low,
        volume=volume,
        p=[0.9] + [NAN] * (n - 1),
    )


def q_of(s: float = 0.0, f: float = 0.0) -> float:
    return 5_000.0 / (100.0 * (1 + s) * (1 + f))


# --- limit orders ---------------------------------------------------------------------------


def test_a_limit_order_is_sent_at_its_offset_and_rests_until_the_price_trades_through() -> None:
    f, maker = 0.001, 0.0002
    state = run(
        spec(order_type="limit", limit_offset=0.01, fee=f, maker=maker),
        buy([100.0, 99.0, 98.5]),  # bar 1 touches 99, bar 2 trades through
    )
    q = q_of(0.0, f)  # sized with the taker fee, the most it can pay
    assert_rows(rows(state, 0)[-1:], [("ORDER", 0, 1, 1, q, ENTRY, 100.0, LIMIT, 99.0)])
    assert rows(state, 1) == []  # conservative: a touch is not enough
    fee = q * 99.0 * maker  # the maker's fee, no slippage
    assert_rows(
        rows(state, 2),
        [("FILL", 0, 1, 1, q, 99.0, fee, 0.0, 0, q, 10_000.0 - q * 99.0 - fee, MAKER)],
    )


def test_queue_touch_fills_a_limit_the_bar_only_touches() -> None:
    state = run(spec(order_type="limit", limit_offset=0.01, queue_touch=True), buy([100, 99, 98]))
    q = q_of()
    assert_rows(
        rows(state, 1), [("FILL", 0, 1, 1, q, 99.0, 0.0, 0.0, 0, q, 10_000.0 - q * 99.0, MAKER)]
    )


def test_a_marketable_limit_fills_at_the_open_as_a_taker_never_past_its_limit() -> None:
    s, f = 0.001, 0.001
    # opens at 98.8: marketable; 98.8 slipped is 98.8988, still below the limit of 99
    state = run(
        spec(order_type="limit", limit_offset=0.01, slippage=s, fee=f, maker=0.0),
        buy([98.0, 98.0], open_=[100.0, 98.8]),
    )
    q = q_of(s, f)
    price = 98.8 * (1 + s)
    fee = q * price * f
    assert_rows(
        rows(state, 1),
        [("FILL", 0, 1, 1, q, price, fee, q * 98.8 * s, 0, q, 10_000.0 - q * price - fee)],
    )
    # opens at 98.95: slipped it would be 99.049; the limit caps it at 99
    state = run(
        spec(order_type="limit", limit_offset=0.01, slippage=s, fee=f),
        buy([98.0, 98.0], open_=[100.0, 98.95]),
    )
    fill = rows(state, 1)[0].values
    assert fill[3] == pytest.approx(99.0, rel=1e-12)
    assert fill[5] == pytest.approx(q * (99.0 - 99.0 / (1 + s)), rel=1e-9)


def test_a_post_only_limit_that_would_cross_is_refused_whole() -> None:
    state = run(
        spec(order_type="limit", limit_offset=0.01, post_only=True),
        buy([98.0, 98.0], open_=[100.0, 98.8]),
    )
    assert_rows(rows(state, 1), [("CANCEL", 0, 1, q_of(), codes.POST_ONLY_WOULD_CROSS, 0)])
    assert state.sym[0, L.S_QTY] == 0.0


def test_a_post_only_limit_that_does_not_cross_rests_and_fills_as_a_maker() -> None:
    state = run(
        spec(order_type="limit", limit_offset=0.01, post_only=True, maker=0.0001),
        buy([99.5, 99.5, 98.0], open_=[100.0, 99.5, 99.5]),
    )
    q = q_of()
    assert rows(state, 1) == []  # arrives at 99.5, above its limit: rests, untouched
    fee = q * 99.0 * 0.0001
    assert_rows(
        rows(state, 2),
        [("FILL", 0, 1, 1, q, 99.0, fee, 0.0, 0, q, 10_000.0 - q * 99.0 - fee, MAKER)],
    )


def test_ioc_cancels_what_is_not_marketable_and_fok_what_cannot_fill_whole() -> None:
    state = run(spec(order_type="limit", limit_offset=0.01, time_in_force="IOC"), buy([90, 90]))
    assert_rows(rows(state, 1), [("CANCEL", 0, 1, q_of(), codes.UNFILLED_IOC, 0)])
    # marketable, but the volume lets 10% of 100 fill: IOC keeps that, FOK nothing
    q = q_of()
    opened = buy([90.0, 90.0], open_=[100.0, 98.0], volume=[1e12, 100.0])
    state = run(
        spec(order_type="limit", limit_offset=0.01, time_in_force="IOC", max_volume_fraction=0.1),
        opened,
    )
    assert_rows(
        rows(state, 1),
        [
            ("FILL", 0, 1, 1, 10.0, 98.0, 0.0, 0.0, 0, 10.0, 10_000.0 - 980.0),
            ("CANCEL", 0, 1, q - 10.0, codes.UNFILLED_IOC, 0),
        ],
    )
    state = run(
        spec(order_type="limit", limit_offset=0.01, time_in_force="FOK", max_volume_fraction=0.1),
        opened,
    )
    assert_rows(rows(state, 1), [("CANCEL", 0, 1, q, codes.UNFILLED_FOK, 0)])


def test_a_resting_limit_expires_after_its_bars() -> None:
    state = run(
        spec(order_type="limit", limit_offset=0.01, expire_after_bars=2), buy([100, 100, 100, 90])
    )
    assert rows(state, 1) == [] and rows(state, 2) == []
    assert_rows(rows(state, 3), [("CANCEL", 0, 1, q_of(), codes.LIMIT_EXPIRED, 0)])
    assert state.sym[0, L.S_QTY] == 0.0


def test_a_resting_limit_falls_back_to_market_after_its_bars() -> None:
    s, f, maker = 0.001, 0.002, 0.0
    opens = [100.0, 100.0, 100.0, 101.0]
    state = run(
        spec(
            order_type="limit", limit_offset=0.01, fallback_after_bars=2, slippage=s, fee=f,
            maker=maker,
        ),
        buy([100.0, 100.0, 100.0, 100.0], open_=opens),
    )  # fmt: skip
    q = q_of(s, f)
    price = 101.0 * (1 + s)  # the market order fills at bar 3's open, as a taker
    fee = q * price * f
    assert_rows(
        rows(state, 3),
        [
            ("CANCEL", 0, 1, q, codes.LIMIT_FALLBACK, 0),
            ("ORDER", 0, 2, 1, q, ENTRY, 101.0, MARKET, NAN),
            ("FILL", 0, 2, 1, q, price, fee, q * 101.0 * s, 3, q, 10_000.0 - q * price - fee),
        ],
    )


def test_fallback_after_seconds_counts_whole_bars_rounded_up() -> None:
    kernel = OrdersKernel(order_type="limit", fallback_after_seconds=3_601.0)
    assert kernel.fallback_bars(3_600) == 2
    assert OrdersKernel(fallback_after_bars=3).fallback_bars(3_600) == 3


def test_a_resting_limit_fills_a_share_of_each_bars_volume() -> None:
    state = run(
        spec(order_type="limit", limit_offset=0.01, max_volume_fraction=0.1),
        buy([100.0, 98.0, 98.0, 100.0], volume=[1e12, 100.0, 200.0, 1e12]),
    )
    q = q_of()
    assert_rows(
        rows(state, 1), [("FILL", 0, 1, 1, 10.0, 99.0, 0.0, 0.0, 0, 10.0, 10_000.0 - 990.0, MAKER)]
    )
    assert_rows(
        rows(state, 2), [("FILL", 0, 1, 1, 20.0, 99.0, 0.0, 0.0, 0, 30.0, 10_000.0 - 2970.0, MAKER)]
    )
    assert rows(state, 3) == []  # the low stays at 100: the rest keeps resting
    assert state.sym[0, L.S_W_REMAINING] == pytest.approx(q - 30.0)


def test_fill_at_close_a_limit_rests_from_the_next_bar() -> None:
    state = run(spec(order_type="limit", limit_offset=0.01, fill_at_close=True), buy([100.0, 98.0]))
    q = q_of()
    assert [r.kind for r in rows(state, 0)] == ["SIGNAL", "DECISION", "ORDER"]
    assert_rows(
        rows(state, 1), [("FILL", 0, 1, 1, q, 99.0, 0.0, 0.0, 0, q, 10_000.0 - q * 99.0, MAKER)]
    )


def test_the_engines_own_exits_stay_market_orders() -> None:
    state = run(
        spec(order_type="limit", limit_offset=0.01, queue_touch=True, max_holding_bars=2),
        buy([100.0, 99.0, 100.0, 100.0, 100.0]),  # filled at bar 1, held 2 bars
    )
    orders = [r for r in rows(state) if r.kind == "ORDER"]
    assert [(o.bar, o.values[3], o.values[5]) for o in orders] == [
        (0, ENTRY, LIMIT),
        (3, codes.EXIT_MAX_HOLDING, MARKET),
    ]


# --- auto -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("urgent", "spread", "high_low", "expected"),
    [
        (None, 0.05, (101.0, 99.0), LIMIT),  # range 2% <= 5%: a limit
        (None, 0.01, (101.0, 99.0), MARKET),  # range 2% > 1%: the spread is wide
        (0.7, 0.05, (101.0, 99.0), MARKET),  # confidence 0.8 >= 0.7: urgent
        (0.9, 0.05, (101.0, 99.0), LIMIT),
    ],
)
def test_auto_sends_a_limit_unless_urgent_or_the_range_is_wide(
    urgent: float | None, spread: float, high_low: tuple[float, float], expected: int
) -> None:
    inputs = bars([100.0], high=[high_low[0]], low=[high_low[1]], p=[0.9])
    state = run(
        spec(order_type="auto", auto_max_spread=spread, auto_urgent_confidence=urgent), inputs
    )
    order = rows(state, 0)[-1]
    assert order.kind == "ORDER" and order.values[5] == expected


# --- stops ----------------------------------------------------------------------------------


def test_exchange_stops_fill_at_the_gap_open_when_it_is_worse_than_the_stop() -> None:
    state = run(
        spec(stop_loss=0.05, fill_at_close=True),
        buy([100.0, 93.0], open_=[100.0, 92.0]),  # opens below the stop of 95
    )
    q = q_of()
    assert_rows(
        rows(state, 1)[:2],
        [
            ("ORDER", 0, 2, -1, q, codes.EXIT_STOP_LOSS, 92.0, L.ORDER_STOP, 92.0),
            ("FILL", 0, 2, -1, q, 92.0, 0.0, 0.0, 1, 0.0, 10_000.0 - q * 100.0 + q * 92.0),
        ],
    )


def test_bar_close_stops_send_a_market_exit_when_the_close_is_beyond_the_level() -> None:
    s = 0.001
    # bar 1 dips to 90 but closes at 97: no exit; bar 2 closes at 94, beyond the stop of 95
    inputs = buy([100.0, 90.0, 94.0, 93.0], close=[100.0, 97.0, 94.0, 95.0], open_=[100] * 4)
    state = run(spec(stop_loss=0.05, stops_at_close=True, fill_at_close=True, slippage=s), inputs)
    q = q_of(s)
    entry = 100.0 * (1 + s)
    assert [r.kind for r in rows(state, 1)] == []
    exit_ = rows(state, 2)
    assert_rows(
        exit_,
        [
            ("ORDER", 0, 2, -1, q, codes.EXIT_STOP_LOSS, 94.0, MARKET, NAN),
            ("FILL", 0, 2, -1, q, 94.0 * (1 - s), 0.0, q * 94.0 * s, 2, 0.0,
             10_000.0 - q * entry + q * 94.0 * (1 - s)),
            ("TRADE", 0, 1, 0, 2, q, entry, 94.0 * (1 - s), 0.0, q * (94.0 * (1 - s) - entry)),
        ],
    )  # fmt: skip


# --- slicing --------------------------------------------------------------------------------


def test_twap_sends_equal_children_one_per_bar_that_sum_to_the_parent() -> None:
    state = run(spec(slicing="twap", slice_children=4, slice_every_bars=1), buy([100.0] * 6))
    q = q_of()
    assert_rows(
        rows(state, 0)[-2:],
        [
            ("PARENT", 0, 1, 1, q, ENTRY, 100.0, L.SLICE_TWAP, 4),
            ("ORDER", 0, 2, 1, q / 4, ENTRY, 100.0, MARKET, NAN, 1),
        ],
    )
    children = [r for r in rows(state) if r.kind == "ORDER"]
    assert [int(c.values[0]) for c in children] == [2, 3, 4, 5]  # each its own number
    assert [c.bar for c in children] == [0, 1, 2, 3]
    assert all(c.values[7] == 1 for c in children)  # the parent's number
    assert sum(c.values[2] for c in children) == pytest.approx(q, rel=1e-12)
    assert state.sym[0, L.S_QTY] == pytest.approx(q, rel=1e-12)
    assert state.sym[0, L.S_PA_SEQ] == 0.0
    ids = [d.value.id for d in decoded(state) if d.kind == "order"]
    parents = {d.value.parent_id for d in decoded(state) if d.kind == "order"}
    assert ids == ["o2", "o3", "o4", "o5"] and parents == {"o1"}


def test_twap_every_bars_spaces_the_children() -> None:
    state = run(spec(slicing="twap", slice_children=2, slice_every_bars=3), buy([100.0] * 6))
    assert [r.bar for r in rows(state) if r.kind == "ORDER"] == [0, 3]


def test_participation_children_take_a_share_of_the_bars_volume() -> None:
    state = run(
        spec(slicing="participation", slice_volume_fraction=0.1),
        buy([100.0] * 6, volume=[100.0, 50.0, 0.0, 1e6, 1e6, 1e6]),
    )
    q = q_of()
    children = [r for r in rows(state) if r.kind == "ORDER"]
    # 10% of the volume of the bar each child is sent at; a bar without volume sends none
    assert [(c.bar, c.values[2]) for c in children] == [(0, 10.0), (1, 5.0), (3, q - 15.0)]
    assert state.sym[0, L.S_QTY] == pytest.approx(q, rel=1e-12)


def test_a_new_decision_ends_a_parents_children_and_slices_its_own_order() -> None:
    p = [0.9, NAN, 0.1, NAN, NAN, NAN, NAN]
    state = run(spec(slicing="twap", slice_children=4), bars([100.0] * 7, p=p))
    q = q_of()
    # the entry's parent sent 2 of its 4 children; the exit (a signal's order too) is
    # a parent of its own, for the half held
    parents = [(r.bar, r.values[3], r.values[2]) for r in rows(state) if r.kind == "PARENT"]
    assert parents == [(0, ENTRY, pytest.approx(q)), (2, codes.EXIT_SIGNAL, pytest.approx(q / 2))]
    children = [(r.bar, r.values[7]) for r in rows(state) if r.kind == "ORDER"]
    assert children == [(0, 1), (1, 1), (2, 4), (3, 4), (4, 4), (5, 4)]
    assert state.sym[0, L.S_QTY] == pytest.approx(0.0, abs=1e-9)  # the last fills at bar 6


def test_limit_children_rest_and_the_next_waits_for_the_one_before() -> None:
    state = run(
        spec(slicing="twap", slice_children=2, order_type="limit", limit_offset=0.01),
        buy([100.0, 100.0, 98.0, 100.0, 98.0]),
    )
    children = [r for r in rows(state) if r.kind == "ORDER"]
    fills = [r for r in rows(state) if r.kind == "FILL"]
    # child 1 rests until bar 2 trades through 99; child 2 goes at bar 2's close
    assert [(c.bar, c.values[5], c.values[6]) for c in children] == [
        (0, LIMIT, 99.0),
        (2, LIMIT, 99.0),
    ]
    assert [(f.bar, f.values[0]) for f in fills] == [(2, 2), (4, 3)]


# --- properties -----------------------------------------------------------------------------


@st.composite
def order_markets(draw: st.DrawFn) -> tuple[BarInputs, dict[str, object]]:
    n = draw(st.integers(2, 16))
    closes = draw(st.lists(st.floats(80.0, 120.0), min_size=n, max_size=n))
    opens = draw(st.lists(st.floats(80.0, 120.0), min_size=n, max_size=n))
    width = draw(st.lists(st.floats(0.0, 5.0), min_size=n, max_size=n))
    volumes = draw(st.lists(st.sampled_from([0.0, 20.0, 100.0, 1e9]), min_size=n, max_size=n))
    p = draw(st.lists(st.sampled_from([NAN, 0.1, 0.5, 0.9]), min_size=n, max_size=n))
    high = [max(o, c) + w for o, c, w in zip(opens, closes, width, strict=True)]
    low = [min(o, c) - w for o, c, w in zip(opens, closes, width, strict=True)]
    tif = draw(st.sampled_from(["GTC", "IOC", "FOK"]))
    slicing = draw(st.sampled_from(["none", "twap", "participation"]))
    kw: dict[str, object] = {
        "order_type": draw(st.sampled_from(["market", "limit", "auto"])),
        "limit_offset": draw(st.sampled_from([0.0, 0.005, 0.02])),
        "time_in_force": tif,
        "post_only": tif == "GTC" and draw(st.booleans()),
        "fallback_after_bars": draw(st.sampled_from([0, 1, 3])) if tif == "GTC" else 0,
        "queue_touch": draw(st.booleans()),
        "stops_at_close": draw(st.booleans()),
        "auto_max_spread": 0.03,
        "slicing": slicing,
        "slice_children": 3 if slicing == "twap" else 0,
        "slice_volume_fraction": 0.2 if slicing == "participation" else 0.0,
        "fill_at_close": draw(st.booleans()),
        "slippage": draw(st.sampled_from([0.0, 0.002])),
        "fee": draw(st.sampled_from([0.0, 0.001])),
        "maker": draw(st.sampled_from([None, 0.0, -0.0001])),
        "max_volume_fraction": draw(st.sampled_from([None, 0.5])),
        "stop_loss": draw(st.sampled_from([None, 0.03])),
    }
    return bars(closes, open_=opens, high=high, low=low, volume=volumes, p=p), kw


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market=order_markets())
def test_fills_never_beat_the_limit_children_sum_and_the_books_balance(
    market: tuple[BarInputs, dict[str, object]],
) -> None:
    inputs, kw = market
    state = run(spec(**kw), inputs)  # type: ignore[arg-type]
    orders: dict[int, tuple[float, ...]] = {}
    parents: dict[int, float] = {}
    filled: dict[int, float] = {}
    cash = 10_000.0
    position = 0.0
    for row in rows(state):
        v = row.values
        if row.kind == "PARENT":
            parents[int(v[0])] = v[2]
        elif row.kind == "ORDER":
            orders[int(v[0])] = v
            assert not v[7] or int(v[7]) in parents  # a child names a parent sent before
        elif row.kind == "FILL":
            order = orders[int(v[0])]
            side, quantity, price, fee = int(v[1]), v[2], v[3], v[4]
            if order[5] == LIMIT:  # never worse than the limit
                assert (
                    (price <= order[6] * (1 + 1e-12))
                    if side > 0
                    else (price >= order[6] * (1 - 1e-12))
                )
            filled[int(v[0])] = filled.get(int(v[0]), 0.0) + quantity
            assert filled[int(v[0])] <= order[2] * (1 + 1e-9)
            cash -= side * quantity * price + fee
            position += side * quantity
            assert v[8] == pytest.approx(cash, rel=1e-9, abs=1e-6)  # the row's cash
    for parent, quantity in parents.items():
        # the children (their fallbacks included) never fill more than the parent
        done = sum(q for seq, q in filled.items() if orders[seq][7] == parent)
        assert done <= quantity * (1 + 1e-9)
    assert state.acct[L.A_CASH] == pytest.approx(cash, rel=1e-9, abs=1e-6)
    assert state.sym[0, L.S_QTY] == pytest.approx(position, rel=1e-9, abs=1e-9)
    # cash + positions at the last close = the equity the core marks (after the last
    # bar's own close fills, which come after its mark)
    last = len(inputs) - 1
    equity = mark_equity(state.acct.copy(), state.sym.copy(), inputs.px, last)
    value = cash + (position * inputs.px[3, last, 0] if position else 0.0)
    assert equity == pytest.approx(value, rel=1e-9, abs=1e-6)


def test_twap_children_sum_to_the_parent_on_any_volume() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        volumes = [float(v) for v in rng.choice([10.0, 100.0, 1e9], size=12)]
        state = run(
            spec(slicing="twap", slice_children=3, max_volume_fraction=0.5),
            buy([100.0] * 12, volume=volumes),
        )
        parent = next(r for r in rows(state) if r.kind == "PARENT").values[2]
        fills = sum(r.values[2] for r in rows(state) if r.kind == "FILL")
        children = [r for r in rows(state) if r.kind == "ORDER"]
        assert 1 <= len(children) <= 3
        # what the children filled and what is left to fill make the parent exactly
        assert fills + state.sym[0, L.S_PA_REST] == pytest.approx(parent, rel=1e-12)
        if state.sym[0, L.S_PA_SEQ] == 0.0 and state.sym[0, L.S_W_ACTIVE] == 0.0:
            assert len(children) == 3
            assert fills == pytest.approx(parent, rel=1e-12)
