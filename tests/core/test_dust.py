"""No dust positions: the venue's minimum order notional (`execution.min_notional`).

On a shared account a cash-limited buy can spend the cash down to a float residue
(1e-12 of the quote); the next symbol's entry used to fill what that residue buys
(1e-14 units) and hold it, so that its later long signals were holds while vectorbt
entered in full. The core now refuses a fill the cash cuts below the minimum
(``BELOW_MINIMUM``), and a position worth less than the minimum counts as flat.

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
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.decode import RowContext, decode
from tradeloom.core.state import CoreState
from tradeloom.plugins.execution.simulated import (
    CUT_CASH,
    CUT_MINIMUM,
    CUT_NONE,
    MIN_NOTIONAL_SHARE,
    SimulatedVenueParams,
    fill_order,
    min_notional_of,
)

from .harness import HOUR, T0, make_spec, run
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
    cancels = [e for e in decode(state.rows(), ctx) if e.kind == "cancel"]
    assert [(e.bar, e.value.reason) for e in cancels if e.symbol == 2] == [(2, "BELOW_MINIMUM")]


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
    refused = [e.value for e in decode(ev, ctx) if e.kind == "rejection"]
    assert [f"{r.code}: {r.message}" for r in refused] == [
        "BELOW_MINIMUM: quantity=0.1, notional=10 is below the venue's minimum order "
        "notional 50 (execution.min_notional)"
    ]


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
        for e in decode(ev, ctx)
        if e.kind == "rejection"
    ]
    assert refused == [
        (
            2,
            "BELOW_MINIMUM: quantity=1, notional=40 is below the venue's minimum order "
            "notional 50 (execution.min_notional)",
        )
    ]


def test_the_default_minimum_is_a_billionth_of_the_cash() -> None:
    assert MIN_NOTIONAL_SHARE == 1e-9
    assert min_notional_of(100_000.0, None) == pytest.approx(1e-4)
    assert min_notional_of(100_000.0, 5.0) == 5.0
    assert SimulatedVenueParams().min_notional is None


def test_fill_order_says_which_cut() -> None:
    quantity, *_, cut = fill_order(1, 10.0, 100.0, 1e9, 0.0, 0.0, -1.0, 500.0, True, 1.0)
    assert (quantity, cut) == (5.0, CUT_CASH)
    quantity, *_, cut = fill_order(1, 10.0, 100.0, 1e9, 0.0, 0.0, -1.0, 0.5, True, 1.0)
    assert (quantity, cut) == (0.0, CUT_MINIMUM)


def test_fill_order_refuses_a_volume_slice_below_the_minimum() -> None:
    """A slice of a thin bar is refused like a cash cut; a slice leaves no dust rest."""
    quantity, *_, cut = fill_order(1, 10.0, 100.0, 3.0, 0.0, 0.0, 0.1, 1e6, True, 50.0)
    assert (quantity, cut) == (0.0, CUT_MINIMUM)  # 0.3 units, 30 of notional
    quantity, *_, cut = fill_order(-1, 10.0, 100.0, 99.7, 0.0, 0.0, 0.1, 0.0, True, 50.0)
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


@settings(max_examples=60)
@given(
    fraction=st.floats(0.05, 1.0),
    fee=st.sampled_from([0.0, 0.0002, 0.00075, 0.001]),
    seed=st.integers(0, 10_000),
    minimum=st.sampled_from([MINIMUM, 1.0, 50.0]),
    cap=st.sampled_from([None, 0.1]),
)
def test_no_position_ends_between_zero_and_the_minimum(
    fraction: float, fee: float, seed: int, minimum: float, cap: float | None
) -> None:
    """Over random walks and signals on a shared account, with or without thin bars
    sliced by ``max_volume_fraction``: every fill leaves its symbol flat or holding at
    least the minimum's worth at the fill price."""
    rng = np.random.default_rng(seed)
    n = 40
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.04, (n, 3)), axis=0))
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
