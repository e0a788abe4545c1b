"""A bar's order of fills across a universe (`tradeloom.core.sequence`) against vectorbt.

Several symbols share one spot account; the strategy's signals make exits and entries
at the same bars, sized at the decision close and filled at the next open, where gaps
and the entries' sizes leave the cash short. The compiled core's orders are fed to
vectorbt's ``Portfolio.from_orders(..., cash_sharing=True, call_seq="auto")`` at the
bars they fill (sizes as amounts, the open as the price, the same fee and slippage):
every fill equals vectorbt's to 1e-9, and every order filled short of its quantity has
its cancellation journaled with a code.

The long hunt (the lead's command, a few minutes):
``HYPOTHESIS_PROFILE=long pytest -n 0 tests/core/test_fill_sequence.py`` runs 500
examples instead of CI's 30.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reference_libraries import ON_VECTORBTS_WORKER, Reference
from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.state import BarInputs

from .harness import HOUR, T0, assert_rows, make_spec, rows, run

vbt = Reference("vectorbt")  # imported by the tests that use it (`reference_libraries`)

REL = 1e-9
CASH = 10_000.0
MIN_NOTIONAL = 1e-6  # vectorbt fills what a residue of cash buys; the core refuses it
EXAMPLES = 500 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 30

# vectorbt 1.2 calls DataFrame.rename(inplace=True), which pandas 3.1 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename")


def _inputs(open_: np.ndarray, close: np.ndarray, p: np.ndarray) -> BarInputs:
    n, nsym = close.shape
    px = np.empty((6, n, nsym))
    px[0] = open_
    px[1] = np.maximum(open_, close)
    px[2] = np.minimum(open_, close)
    px[3] = close
    px[4] = 1e12
    px[5] = p
    return BarInputs(
        px,
        np.zeros((2, n, nsym), np.uint8),
        np.full((n, nsym), math.nan),
        T0 + HOUR * np.arange(n, dtype=np.int64),
        np.zeros(n, np.int64),
    )


@st.composite
def _universes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float]:
    nsym = draw(st.integers(2, 5))
    n = draw(st.integers(4, 14))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (n, nsym)), axis=0))
    previous = np.vstack([close[:1], close[:-1]])
    open_ = previous * np.exp(rng.normal(0.0, 0.02, (n, nsym)))
    # p = 0.9: long (an entry when flat); 0.1: short (an exit when long); NaN: nothing
    u = rng.random((n, nsym))
    p = np.where(u < 0.35, 0.9, np.where(u > 0.6, 0.1, math.nan))
    fraction = draw(st.sampled_from([0.3, 0.45, 0.6, 0.9]))
    fee = draw(st.sampled_from([0.0, 0.001]))
    slippage = draw(st.sampled_from([0.0, 0.0005]))
    return open_, close, p, fraction, fee, slippage


def _vectorbt_fills(
    open_: np.ndarray, size: np.ndarray, fee: float, slippage: float
) -> list[tuple[int, int, float, float, float]]:
    n = open_.shape[0]
    index = pd.date_range("2024-03-01", periods=n, freq="1h")
    price = pd.DataFrame(open_, index=index)
    portfolio = vbt.Portfolio.from_orders(
        price,
        pd.DataFrame(size, index=index),
        size_type="amount",
        direction="longonly",
        fees=fee,
        slippage=slippage,
        init_cash=CASH,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        min_size=0.0,
        freq="1h",
    )
    records = portfolio.orders.values
    out = []
    for r in records:
        side = 1 if r["side"] == 0 else -1
        if r["size"] * r["price"] >= MIN_NOTIONAL:
            out.append((int(r["idx"]), int(r["col"]), side * r["size"], r["price"], r["fees"]))
    return sorted(out)


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b), scale)


@ON_VECTORBTS_WORKER
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(_universes())
def test_fills_equal_vectorbt_call_seq_auto(
    case: tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float],
) -> None:
    open_, close, p, fraction, fee, slippage = case
    n, nsym = close.shape
    spec = make_spec(
        fraction=fraction, fill_at_close=False, fee=fee, slippage=slippage, cash=CASH,
        min_notional=MIN_NOTIONAL,
    )  # fmt: skip
    state = run(spec, _inputs(open_, close, p), symbols=nsym)
    written = rows(state)
    size = np.zeros((n, nsym))
    ordered: dict[int, tuple[int, int, float]] = {}
    for r in written:
        if r.kind == "ORDER":
            seq, side, quantity = int(r.values[0]), int(r.values[1]), r.values[2]
            ordered[seq] = (r.bar, r.symbol, quantity)
            if r.bar + 1 < n:  # the last bar's orders never fill
                size[r.bar + 1, r.symbol] = side * quantity
    ours = sorted(
        (r.bar, r.symbol, r.values[1] * r.values[2], r.values[3], r.values[4])
        for r in written
        if r.kind == "FILL"
    )
    theirs = _vectorbt_fills(open_, size, fee, slippage)
    assert len(ours) == len(theirs), (ours, theirs)
    for a, b in zip(ours, theirs, strict=True):
        scale = abs(a[2]) * a[3]
        assert a[:2] == b[:2], (ours, theirs)
        assert _close(a[2] * a[3], b[2] * b[3], scale), (a, b)
        assert _close(a[3], b[3], a[3]), (a, b)
        assert _close(a[4], b[4], scale), (a, b)
    # no order fills short of its quantity without a journaled code
    filled: dict[int, float] = {}
    for r in written:
        if r.kind == "FILL":
            filled[int(r.values[0])] = filled.get(int(r.values[0]), 0.0) + r.values[2]
    cut = {
        int(r.values[0]): int(r.values[2])
        for r in written
        if r.kind == "CANCEL" and int(r.values[2]) in (codes.INSUFFICIENT_CASH, codes.BELOW_MINIMUM)
    }
    for seq, (bar, _, quantity) in ordered.items():
        if bar + 1 < n and filled.get(seq, 0.0) < quantity * (1.0 - REL):
            assert seq in cut, (seq, quantity, filled.get(seq), written)


def test_an_exit_goes_out_and_fills_before_an_entry_of_an_earlier_symbol() -> None:
    """Symbol 0 enters and symbol 1 exits at bar 1's close: the exit is sent first (a
    live exchange fills in the order it receives), and at bar 2's open it fills first,
    so the entry is filled whole with the cash it freed."""
    close = np.array([[100.0, 100.0], [100.0, 100.0], [100.0, 100.0]])
    p = np.array([[math.nan, 0.9], [0.9, 0.1], [math.nan, math.nan]])
    state = run(make_spec(fraction=0.9, fill_at_close=False), _inputs(close, close, p), symbols=2)
    # bar 0: symbol 1 buys 90 (9,000); bar 1: symbol 1 exits (order 2) and symbol 0
    # targets 90% of 10,000: 90 at 100 (order 3), more than the 1,000 left before the exit
    sent = [r for r in rows(state, 1) if r.kind == "ORDER"]
    assert_rows(
        sent,
        [
            ("ORDER", 1, 2, -1, 90, codes.EXIT_SIGNAL, 100, L.ORDER_MARKET, math.nan),
            ("ORDER", 0, 3, 1, 90, codes.ENTRY, 100, L.ORDER_MARKET, math.nan),
        ],
    )
    fills = [r for r in rows(state, 2) if r.kind in ("FILL", "CANCEL", "TRADE")]
    assert_rows(
        fills,
        [
            ("FILL", 1, 2, -1, 90, 100, 0, 0, 1, 0, 10_000, L.LIQ_TAKER),
            ("TRADE", 1, 1, 1, 2, 90, 100, 100, 0, 0),
            ("FILL", 0, 3, 1, 90, 100, 0, 0, 1, 90, 1_000, L.LIQ_TAKER),
        ],
    )


def test_at_the_close_too() -> None:
    """``fill: close``: the same bar's exit of symbol 1 fills before symbol 0's entry."""
    close = np.array([[100.0, 100.0], [100.0, 100.0]])
    p = np.array([[math.nan, 0.9], [0.9, 0.1]])
    state = run(make_spec(fraction=0.9), _inputs(close, close, p), symbols=2)
    fills = [r for r in rows(state, 1) if r.kind == "FILL"]
    assert [(r.symbol, r.values[2]) for r in fills] == [(1, 90.0), (0, 90.0)]
