"""No dust positions: the venue's minimum order notional (`execution.min_notional`).

On a shared account a cash-limited buy can spend the cash down to a float residue
(1e-12 of the quote); the next symbol's entry used to fill what that residue buys
(1e-14 units) and hold it, so that its later long signals were holds while vectorbt
entered in full. The core now refuses a fill the cash cuts below the minimum
(``BELOW_MINIMUM``), and a position worth less than the minimum counts as flat: the
exits it meets are journaled, and the next entry takes it in as from flat
(`tradeloom.core.dust`).

The reference is vectorbt's ``Portfolio.from_order_func`` with shared cash, valued
at each bar's close, the order function sizing ``fraction / (1 + fee)`` of the group
value as a target percent (the core's fraction includes the fee) and only from flat,
as the core's threshold rule holds a position in the signal's direction.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tests.reference_libraries import ON_VECTORBTS_WORKER
from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.columns import RowContext, decode
from tradeloom.core.kernels.specs import SizingKernel
from tradeloom.core.state import CoreState
from tradeloom.plugins.execution.simulated import (
    CUT_CASH,
    CUT_MINIMUM,
    CUT_NONE,
    MIN_NOTIONAL_SHARE,
    FillTerms,
    Offer,
    SimulatedVenueParams,
    fill_order,
    min_notional_of,
)

from .harness import HOUR, T0, For, Row, assert_rows, bars, make_spec, rows, run
from .test_portfolio_risk import universe

NAN = math.nan
CASH, FEE, FRACTION = 10_000.0, 0.00075, 0.5
MINIMUM = min_notional_of(CASH, None)
# seed 10 of this walk: the second entry is cut to the cash and leaves a residue of
# 1e-12, of which the third symbol's entry at bar 2 would buy 9.2e-15 units
CLOSE = 100.0 * np.exp(np.cumsum(np.random.default_rng(10).normal(0, 0.05, (12, 3)), axis=0))
P = np.full((12, 3), NAN)
P[0, 0] = P[1, 1] = P[2, 2] = 0.9  # A, B, C enter on bars 0, 1 and 2
P[6, 0] = 0.1  # A exits at bar 6: its cash comes free
P[8, 2] = 0.9  # C signals long again


def _run(min_notional: float) -> CoreState:
    spec = make_spec(cash=CASH, fraction=FRACTION, fee=FEE, min_notional=min_notional)
    return run(spec, universe(CLOSE.tolist(), P.tolist()), symbols=3)


def _rows(state: CoreState, kind: int, symbol: int) -> np.ndarray:
    ev = state.rows()
    return ev[(ev[:, L.E_KIND] == kind) & (ev[:, L.E_SYM] == symbol)]


def _positions(state: CoreState) -> np.ndarray:
    """Return each bar's position per symbol, from the fill rows (the journal's view)."""
    held = np.zeros_like(CLOSE)
    for row in state.rows():
        if row[L.E_KIND] == L.EV_FILL:
            held[int(row[L.E_BAR]) :, int(row[L.E_SYM])] = row[10]
    return held


def test_without_a_minimum_the_residue_buys_dust() -> None:
    """The case is the issue's: with no minimum, C fills a dust quantity at bar 2."""
    fill = _rows(_run(0.0), L.EV_FILL, 2)[0]
    assert fill[L.E_BAR] == 2
    assert 0.0 < fill[5] * fill[6] < 1e-9  # quantity x price: a float residue


def test_a_cash_residue_fills_nothing_and_is_journaled_below_minimum() -> None:
    state = _run(MINIMUM)
    c_fills = _rows(state, L.EV_FILL, 2)
    assert [int(b) for b in c_fills[:, L.E_BAR]] == [8]  # no dust at bar 2: entered at 8
    assert c_fills[0, 5] * c_fills[0, 6] > 1000.0
    cancel = _rows(state, L.EV_CANCEL, 2)
    assert [(int(r[L.E_BAR]), int(r[5])) for r in cancel] == [(2, codes.BELOW_MINIMUM)]
    ctx = RowContext(
        times=lambda bar: pd.Timestamp(T0 + bar * HOUR, tz="UTC"),
        order_id=lambda seq: f"o{seq}",
        symbols=("A", "B", "C"),
    )
    cancels = [e for e in decode(state.rows(), ctx).events() if e.kind == "cancel"]
    assert [(e.bar, e.value.reason) for e in cancels if e.symbol == 2] == [(2, "BELOW_MINIMUM")]


@pytest.mark.slow
@ON_VECTORBTS_WORKER
def test_positions_equal_vectorbt_from_order_func_with_shared_cash() -> None:
    vbt = pytest.importorskip("vectorbt")
    from numba import njit
    from vectorbt.portfolio import nb as pnb
    from vectorbt.portfolio.enums import Direction, SizeType

    target = np.where(P > 0.5, FRACTION / (1.0 + FEE), np.where(P < 0.5, 0.0, np.nan))

    @njit
    def at_close(c):  # type: ignore[no-untyped-def]
        for col in range(c.from_col, c.to_col):
            c.last_val_price[col] = c.close[c.i, col]
        return ()

    @njit
    def order(c, target, fee):  # type: ignore[no-untyped-def]
        wanted = target[c.i, c.col]
        if np.isnan(wanted) or (wanted > 0.0 and c.position_now != 0.0):
            return pnb.order_nothing_nb()
        return pnb.order_nb(
            size=wanted,
            price=c.close[c.i, c.col],
            size_type=SizeType.TargetPercent,
            direction=Direction.LongOnly,
            fees=fee,
        )

    portfolio = vbt.Portfolio.from_order_func(
        pd.DataFrame(CLOSE),
        order,
        target,
        FEE,
        pre_segment_func_nb=at_close,
        cash_sharing=True,
        group_by=True,
        init_cash=CASH,
    )
    expected = portfolio.assets().to_numpy()
    held = _positions(_run(MINIMUM))
    np.testing.assert_allclose(held, expected, rtol=1e-9, atol=0.0)
    assert ((held == 0.0) == (expected == 0.0)).all()  # no dust where vectorbt holds none
    assert expected[8, 2] > 10.0 and expected[2, 2] == 0.0  # the entry that dust suppressed


def test_an_order_below_the_minimum_is_refused_at_the_send() -> None:
    """0.1% of 10,000 is 10 of notional, below a minimum of 50: refused, never sent."""
    spec = make_spec(cash=CASH, fraction=0.001, min_notional=50.0)
    state = run(spec, universe([[100.0], [100.0]], [[0.9], [NAN]]), symbols=1)
    ev = state.rows()
    assert not (ev[:, L.E_KIND] == L.EV_ORDER).any()
    ctx = RowContext(
        times=lambda bar: pd.Timestamp(T0 + bar * HOUR, tz="UTC"), order_id=lambda seq: f"o{seq}"
    )
    refused = [e.value for e in decode(ev, ctx).events() if e.kind == "rejection"]
    assert [f"{r.code}: {r.message}" for r in refused] == [
        "BELOW_MINIMUM: ENTRY quantity=0.1, notional=10 is below the venue's minimum order "
        "notional 50 (execution.min_notional, or a live market's limits.cost.min)"
    ]
    assert refused[0].values == {"quantity": 0.1, "notional": 10.0, "minimum": 50.0, "lot": 0.0}


def test_an_exit_of_a_position_fallen_below_the_minimum_is_journaled_below_minimum() -> None:
    """1 unit bought at 100 is worth 40 at bar 2, below a minimum of 50: its exit signal
    cannot be sent, and the journal says why (not SHORT_NOT_ALLOWED)."""
    spec = make_spec(cash=CASH, fraction=0.01, min_notional=50.0)
    inputs = universe([[100.0], [100.0], [40.0]], [[0.9], [NAN], [0.1]])
    ev = run(spec, inputs, symbols=1).rows()
    assert not (ev[ev[:, L.E_BAR] == 2][:, L.E_KIND] == L.EV_ORDER).any()
    ctx = RowContext(
        times=lambda bar: pd.Timestamp(T0 + bar * HOUR, tz="UTC"), order_id=lambda seq: f"o{seq}"
    )
    refused = [
        (e.bar, f"{e.value.code}: {e.value.message}")
        for e in decode(ev, ctx).events()
        if e.kind == "rejection"
    ]
    assert refused == [
        (
            2,
            "BELOW_MINIMUM: EXIT_SIGNAL quantity=1, notional=40 is below the venue's minimum "
            "order notional 50 (execution.min_notional, or a live market's limits.cost.min); "
            "the position is dust: it counts as flat and is carried until the symbol's next "
            "order takes it in",
        )
    ]


def _messages(state: CoreState, symbols: tuple[str, ...] = ("",)) -> list[tuple[int, str]]:
    ctx = RowContext(
        times=lambda bar: pd.Timestamp(T0 + bar * HOUR, tz="UTC"),
        order_id=lambda seq: f"o{seq}",
        symbols=symbols,
    )
    return [
        (e.bar, f"{e.value.code}: {e.value.message}")
        for e in decode(state.rows(), ctx).events()
        if e.kind == "rejection"
    ]


_DUST = (
    "; the position is dust: it counts as flat and is carried until the symbol's next order "
    "takes it in"
)
_NOTIONAL = (
    "is below the venue's minimum order notional 50 (execution.min_notional, or a live "
    "market's limits.cost.min)"
)


def _kinds(state: CoreState, bar: int, *kinds: str) -> list[Row]:
    return [r for r in rows(state, bar) if r.kind in kinds]


def test_dust_is_journaled_once_and_taken_in_by_the_next_entry_as_from_flat() -> None:
    """Worked by hand: cash 10,000, fraction 0.01, no fee, minimum 50, a holding limit
    of 3 bars. Bar 0 buys 1 unit at 100; at bar 2 it is worth 40, dust. The exit
    signal of bar 2 and the holding limit (from bar 3 on) cannot be sent: each is
    journaled once. The long signal of bar 5 enters as from flat: 0.01 of the equity
    9,940 is 99.4, 2.485 units at 40, so it buys 1.485 and the trade starts at bar 5, at
    40: the holding limit closes it at bar 8 (5 + 3), not at bar 6 (0 + 3, a held long),
    and its P&L carries the dust's loss, 1 x (40 - 100): -60 + 2.485 x (44 - 40)."""
    close = [100.0, 100.0, 40.0, 40.0, 40.0, 40.0, 40.0, 44.0, 44.0, 44.0]
    p = [0.9, NAN, 0.1, NAN, NAN, 0.9, NAN, NAN, NAN, NAN]
    spec = make_spec(cash=CASH, fraction=0.01, min_notional=50.0, max_holding_bars=3)
    state = run(spec, bars(close, p=p))
    below = codes.BELOW_MINIMUM
    assert_rows(
        _kinds(state, 2, "REJECT"),
        [("REJECT", 0, below, 1, 40, 50, 0, codes.EXIT_SIGNAL, For(codes.EXIT_SIGNAL))],
    )
    assert_rows(
        _kinds(state, 3, "REJECT"),
        [("REJECT", 0, below, 1, 40, 50, 0, codes.EXIT_MAX_HOLDING, For(codes.EXIT_MAX_HOLDING))],
    )
    assert [rows(state, bar) for bar in (1, 4, 6, 7)] == [[], [], [], []]
    assert_rows(
        _kinds(state, 5, "DECISION", "ORDER", "FILL"),
        [
            ("DECISION", 0, codes.ACCEPTED, codes.ENTRY, 0.01),
            ("ORDER", 0, 2, 1, 1.485, codes.ENTRY, 40, L.ORDER_MARKET, NAN, 0),
            ("FILL", 0, 2, 1, 1.485, 40, 0, 0, 5, 2.485, 9840.6, L.LIQ_TAKER),
        ],
    )
    assert_rows(
        _kinds(state, 8, "ORDER", "FILL", "TRADE"),
        [
            ("ORDER", 0, 3, -1, 2.485, codes.EXIT_MAX_HOLDING, 44, L.ORDER_MARKET, NAN, 0),
            ("FILL", 0, 3, -1, 2.485, 44, 0, 0, 8, 0, 9949.94, L.LIQ_TAKER),
            ("TRADE", 0, 1, 5, 8, 2.485, 40, 44, 0, -60 + 2.485 * 4),
        ],
    )
    assert state.acct[L.A_CASH] == pytest.approx(CASH - 60 + 2.485 * 4)
    assert _messages(state) == [
        (2, f"BELOW_MINIMUM: EXIT_SIGNAL quantity=1, notional=40 {_NOTIONAL}{_DUST}"),
        (3, f"BELOW_MINIMUM: EXIT_MAX_HOLDING quantity=1, notional=40 {_NOTIONAL}{_DUST}"),
    ]


def test_a_halt_meets_dust_once() -> None:
    """A drawdown halt (0.5%) closes every position; dust worth 40 cannot be closed: one row."""
    close = [100.0, 40.0, 40.0, 40.0]
    spec = make_spec(cash=CASH, fraction=0.01, min_notional=50.0, drawdown_limits=(0.005,))
    state = run(spec, bars(close, p=[0.9, NAN, NAN, NAN]))
    assert [r.kind for r in rows(state, 1)] == ["HALT", "STATE", "REJECT"]
    assert_rows(
        _kinds(state, 1, "REJECT"),
        [("REJECT", 0, codes.BELOW_MINIMUM, 1, 40, 50, 0, codes.EXIT_HALT, For(codes.EXIT_HALT))],
    )
    assert rows(state, 2) == rows(state, 3) == []
    assert state.sym[0, L.S_QTY] == 1.0  # carried, and marked in the equity
    assert state.acct[L.A_EQUITY] == pytest.approx(CASH - 60.0)


def test_a_stop_whose_fill_is_below_the_minimum_leaves_dust_it_journals_once() -> None:
    """A 50% stop-loss under 1 unit bought at 100: bar 1 gaps to 40 at the open, the stop
    fills nothing there (worth 40, minimum 50: cancelled BELOW_MINIMUM), and from bar 2
    the stop the dust stays under is journaled once, not at every bar."""
    close = [100.0, 40.0, 40.0, 40.0]
    spec = make_spec(cash=CASH, fraction=0.01, min_notional=50.0, stop_loss=0.5)
    state = run(spec, bars(close, p=[0.9, NAN, NAN, NAN]))
    assert_rows(
        _kinds(state, 1, "ORDER", "FILL", "CANCEL"),
        [
            ("ORDER", 0, 2, -1, 1, codes.EXIT_STOP_LOSS, 40, L.ORDER_STOP, 40, 0),
            ("CANCEL", 0, 2, 1, codes.BELOW_MINIMUM, 1),
        ],
    )
    assert_rows(
        rows(state, 2),
        [
            (
                "REJECT",
                0,
                codes.BELOW_MINIMUM,
                1,
                40,
                50,
                0,
                codes.EXIT_STOP_LOSS,
                For(codes.EXIT_STOP_LOSS),
            )
        ],
    )
    assert rows(state, 3) == []


def test_a_reversal_to_a_target_below_the_minimum_only_exits() -> None:
    """Kelly sizing (a tenth of Kelly): the long of p=0.9 is 0.08 of 10,000, 8 units at
    100; the short of p=0.39 is 0.022, 220 of notional, below a minimum of 500. Its
    order (10.2 units) is not below the minimum, but the short it would leave is: the
    reversal is refused and, as a refused reversal does, still exits the long."""
    spec = make_spec(
        cash=CASH,
        allow_short=True,
        min_notional=500.0,
        sizing=SizingKernel("kelly", 0.1),
    )
    state = run(spec, bars([100.0] * 4, p=[0.9, NAN, 0.39, NAN]))
    assert_rows(
        _kinds(state, 2, "DECISION", "REJECT", "ORDER", "FILL"),
        [
            ("DECISION", 0, codes.ACCEPTED, codes.REVERSE, -0.022),
            ("REJECT", 0, codes.BELOW_MINIMUM, 2.2, 220, 500, 0, codes.REVERSE, For(codes.REVERSE)),
            ("ORDER", 0, 2, -1, 8, codes.EXIT_SIGNAL, 100, L.ORDER_MARKET, NAN, 0),
            ("FILL", 0, 2, -1, 8, 100, 0, 0, 2, 0, CASH, L.LIQ_TAKER),
        ],
    )
    assert _messages(state)[0] == (
        2,
        "BELOW_MINIMUM: REVERSE quantity=2.2, notional=220 is below the venue's minimum "
        "order notional 500 (execution.min_notional, or a live market's limits.cost.min)",
    )


def test_an_order_within_the_markets_lot_is_refused_and_journaled() -> None:
    """A live market's lot (0.5 units): an entry of 0.4 is refused, never sent (it used to
    be dropped without a row)."""
    spec = make_spec(cash=CASH, fraction=0.004, dust=0.5)
    state = run(spec, bars([100.0, 100.0], p=[0.9, NAN]))
    assert not [r for r in rows(state) if r.kind == "ORDER"]
    assert _messages(state) == [
        (
            0,
            "BELOW_MINIMUM: ENTRY quantity=0.4 is within the market's lot 0.5 (its amount step "
            "or limits.amount.min)",
        )
    ]


def test_each_symbol_has_its_markets_minimum() -> None:
    """Over a universe, symbol B's market asks 50 (``min_costs``), A's nothing: the same
    entry of 25 goes for A and is refused for B."""
    spec = make_spec(cash=CASH, fraction=0.0025, min_notional=1.0, min_costs=(0.0, 50.0))
    state = run(spec, universe([[100.0, 100.0]], [[0.9, 0.9]]), symbols=2)
    assert [(r.kind, r.symbol) for r in rows(state) if r.kind in ("ORDER", "REJECT")] == [
        ("ORDER", 0),
        ("REJECT", 1),
    ]
    assert _messages(state, ("A", "B")) == [
        (0, f"BELOW_MINIMUM: ENTRY quantity=0.25, notional=25 {_NOTIONAL}")
    ]


def test_the_default_minimum_is_a_billionth_of_the_cash() -> None:
    assert MIN_NOTIONAL_SHARE == 1e-9
    assert min_notional_of(100_000.0, None) == pytest.approx(1e-4)
    assert min_notional_of(100_000.0, 5.0) == 5.0
    assert SimulatedVenueParams().min_notional is None


def test_fill_order_says_which_cut() -> None:
    offer, terms = Offer(100.0, 1e9, -1.0), FillTerms(0.0, 0.0, 1.0, spot=True)
    quantity, *_, cut = fill_order(1, 10.0, offer, terms, 500.0)
    assert (quantity, cut) == (5.0, CUT_CASH)
    quantity, *_, cut = fill_order(1, 10.0, offer, terms, 0.5)
    assert (quantity, cut) == (0.0, CUT_MINIMUM)


def test_fill_order_refuses_a_volume_slice_below_the_minimum() -> None:
    """A slice of a thin bar is refused like a cash cut; a slice leaves no dust rest."""
    terms = FillTerms(0.0, 0.0, 50.0, spot=True)
    quantity, *_, cut = fill_order(1, 10.0, Offer(100.0, 3.0, 0.1), terms, 1e6)
    assert (quantity, cut) == (0.0, CUT_MINIMUM)  # 0.3 units, 30 of notional
    quantity, *_, cut = fill_order(-1, 10.0, Offer(100.0, 99.7, 0.1), terms, 0.0)
    assert (quantity, cut) == (pytest.approx(9.5), CUT_NONE)  # not 9.97: a rest of 0.5 is left


def _thin(volume: list[float]) -> CoreState:
    """Buy 50 units at 100 on bar 0 with 10% of each bar's volume, a minimum of 50."""
    inputs = universe([[100.0]] * len(volume), [[0.9]] + [[NAN]] * (len(volume) - 1))
    inputs.px[4, :, 0] = volume
    spec = make_spec(cash=CASH, fraction=0.5, min_notional=50.0, max_volume_fraction=0.1)
    return run(spec, inputs, symbols=1)


def test_a_thin_bar_fills_nothing_below_the_minimum_and_cancels() -> None:
    state = _thin([3.0, 1e9])
    assert len(_rows(state, L.EV_FILL, 0)) == 0
    cancel = _rows(state, L.EV_CANCEL, 0)
    assert [(int(r[L.E_BAR]), int(r[5])) for r in cancel] == [(0, codes.BELOW_MINIMUM)]


def test_a_volume_slice_leaves_the_minimum_for_the_next_bar() -> None:
    state = _thin([497.0, 1e9])
    fills = _rows(state, L.EV_FILL, 0)
    assert [(int(r[L.E_BAR]), r[5]) for r in fills] == [(0, pytest.approx(49.5)), (1, 0.5)]
    assert fills[-1][10] == pytest.approx(50.0)


@settings(max_examples=examples(60))
@given(
    fraction=st.floats(0.05, 1.0),
    fee=st.sampled_from([0.0, 0.0002, 0.00075, 0.001]),
    seed=st.integers(0, 10_000),
    minimum=st.sampled_from([MINIMUM, 1.0, 50.0]),
    cap=st.sampled_from([None, 0.1]),
    scale=st.integers(-4, 5).map(lambda e: 10.0**e),
)
def test_no_position_ends_between_zero_and_the_minimum(
    fraction: float, fee: float, seed: int, minimum: float, cap: float | None, scale: float
) -> None:
    """Over random walks and signals on a shared account, with or without thin bars
    sliced by ``max_volume_fraction``, at prices from 0.0001 (a unit is a float residue's
    worth) to 10 million (a unit is more than the cash): every fill leaves its symbol
    flat or holding at least the minimum's worth at the fill price."""
    rng = np.random.default_rng(seed)
    n = 40
    close = scale * 100.0 * np.exp(np.cumsum(rng.normal(0, 0.04, (n, 3)), axis=0))
    p = np.where(rng.random((n, 3)) < 0.3, rng.choice([0.1, 0.9], (n, 3)), NAN)
    inputs = universe(close.tolist(), p.tolist())
    inputs.px[4] = rng.uniform(1.0, 2000.0, (n, 3))  # 0.1 of it: 0.1 to 200 units a bar
    spec = make_spec(
        cash=CASH, fraction=fraction, fee=fee, min_notional=minimum, max_volume_fraction=cap
    )
    state = run(spec, inputs, symbols=3)
    for row in state.rows():
        if row[L.E_KIND] == L.EV_FILL:
            worth = abs(row[10]) * row[6]
            assert worth == 0.0 or worth >= minimum * (1.0 - 1e-12), row


_ENGINE_EXITS = (
    codes.EXIT_MAX_HOLDING,
    codes.EXIT_HALT,
    codes.EXIT_STOP_LOSS,
    codes.EXIT_TAKE_PROFIT,
)


@settings(max_examples=examples(60))
@given(
    fraction=st.floats(0.005, 0.015),
    fee=st.sampled_from([0.0, 0.001]),
    seed=st.integers(0, 10_000),
    allow_short=st.booleans(),
    holding=st.sampled_from([None, 2, 5]),
    stops=st.sampled_from([(None, None), (0.3, None), (0.2, 0.4)]),
    drawdown=st.sampled_from([(), (0.03,)]),
)
# a short over dust long whose order is worth the minimum, its target (the short) not
@example(0.005, 0.0, 0, True, None, (None, None), ())
# a reversal refused for its target: its row names the target, not the position
@example(0.005000000000000001, 0.0, 1, True, None, (None, None), ())
# a long worth exactly the minimum at the mark is a position, not dust: its exit is sent
@example(0.005, 0.0, 107, False, None, (0.2, 0.4), ())
def test_dust_counts_as_flat_and_the_trades_still_add_up(
    fraction: float,
    fee: float,
    seed: int,
    allow_short: bool,
    holding: int | None,
    stops: tuple[float | None, float | None],
    drawdown: tuple[float, ...],
) -> None:
    """Positions of 50 to 150 on a shared account of 10,000 with a minimum of 50, over
    walks that move 15% a bar: they fall to dust, and signals (half the bars, two in
    three long) meet it. Read in the journal's order:

    - a signal is a hold only over a position worth more than the minimum at the mark,
      and an entry in the direction of a position only over dust (sized as from flat);
    - a BELOW_MINIMUM row names an order or a target worth less than the minimum; an
      exit's names the whole position (dust); an engine's exit is journaled once per
      dust episode (until a fill);
    - the trade that takes dust in starts at its fill (its entry bar is that fill's);
    - the trades' P&L and the open positions' add up to the account's.
    """
    rng = np.random.default_rng(seed)
    n, nsym, minimum = 40, 3, 50.0
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.15, (n, nsym)), axis=0))
    p = np.where(rng.random((n, nsym)) < 0.5, rng.choice([0.1, 0.9, 0.9], (n, nsym)), NAN)
    spec = make_spec(
        cash=CASH,
        fraction=fraction,
        fee=fee,
        min_notional=minimum,
        allow_short=allow_short,
        max_holding_bars=holding,
        stop_loss=stops[0],
        take_profit=stops[1],
        drawdown_limits=drawdown,
    )
    state = run(spec, universe(close.tolist(), p.tolist()), symbols=nsym)
    position = [0.0] * nsym
    opened = [-1] * nsym  # the bar the open trade started
    closing = [-1] * nsym  # the entry bar of the trade the last fill closed
    noted: list[set[int]] = [set() for _ in range(nsym)]
    reasons: dict[int, int] = {}
    pnl = 0.0
    for row in state.rows():
        kind, t, s, v = int(row[L.E_KIND]), int(row[L.E_BAR]), int(row[L.E_SYM]), row[3:]
        if kind == L.EV_DECISION and v[0] == codes.HOLD:
            assert abs(position[s]) > minimum / close[t, s]
        elif kind == L.EV_DECISION and v[0] == codes.ACCEPTED and position[s] * v[2] > 0.0:
            assert abs(position[s]) <= minimum / close[t, s]  # dust, entered as from flat
        elif kind == L.EV_REJECT and v[0] == codes.BELOW_MINIMUM:
            assert v[2] < minimum  # the order's worth, or its target's (an entry's, a reversal's)
            if int(v[5]) not in (codes.ENTRY, codes.REVERSE):
                assert v[1] == abs(position[s])  # an exit's: the whole position, dust
            if int(v[5]) in _ENGINE_EXITS:
                assert int(v[5]) not in noted[s]
                noted[s].add(int(v[5]))
        elif kind == L.EV_ORDER:
            reasons[int(v[0])] = int(v[3])
        elif kind == L.EV_FILL:
            before, after = position[s], v[7]
            if before == 0.0 or before * after < 0.0 or reasons[int(v[0])] == codes.ENTRY:
                closing[s], opened[s] = opened[s], t  # from flat, through zero, or over dust
            elif after == 0.0:
                closing[s] = opened[s]
            position[s] = after
            noted[s].clear()
            worth = abs(after) * v[3]
            assert worth == 0.0 or worth >= minimum * (1.0 - 1e-12), row
        elif kind == L.EV_TRADE:
            assert int(v[1]) == closing[s]
            pnl += v[7]
    sym, acct = state.sym, state.acct
    held = sym[:, L.S_QTY] != 0.0
    open_pnl = (
        sym[:, L.S_REALIZED]
        + sym[:, L.S_QTY] * (sym[:, L.S_MARK] - sym[:, L.S_ENTRY_PRICE])
        - sym[:, L.S_TRADE_FEES]
    )
    equity = acct[L.A_CASH] + (sym[:, L.S_QTY] * sym[:, L.S_MARK]).sum()
    assert pnl + open_pnl[held].sum() == pytest.approx(equity - CASH, rel=1e-9, abs=1e-6)
