"""`tradeloom.core.quiet`'s Python form (a small run's, whole-array numpy over windows of
bars) stops where its loop stops and leaves the state it leaves, bit for bit."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tradeloom.core import layout as L
from tradeloom.core import quiet
from tradeloom.core.context import Bars, State
from tradeloom.core.state import CoreState
from tradeloom.kernels import jit

from .harness import bars, make_spec

NAN = math.nan


def _both(state: CoreState, inputs: Bars, t: int, t_end: int) -> list[tuple[int, State]]:
    """Run the loop and the Python form from the same state; return what each left."""
    done = []
    previous = jit.interpreting()
    jit.interpret(jit.every_kernel)  # the kernels they call, as Python too
    try:
        for form in (quiet._quiet_loop, quiet._quiet_bars_as_python):
            acct, sym = state.acct.copy(), state.sym.copy()
            bundle = state.bundle()._replace(acct=acct, sym=sym)
            with np.errstate(all="ignore"):  # as a Python form runs (`jit._as_python`)
                done.append((int(form(t, t_end, inputs, bundle)), bundle))
    finally:
        jit.interpret(previous)
    return done


CASES = 400
"""Random states and bars, each a seed: every test of a quiet bar meets its edge in some
(the holding limit's bar, the interval's last bar, a gap at a signal, a halt); cheap
enough (a few ms each) that the suite runs them all."""


def _case(seed: int) -> tuple[CoreState, Bars, int, int]:
    """Return a strategy's state, its bars and the stretch to run, drawn from ``seed``."""
    rng = np.random.default_rng(seed)

    def pick(*choices: Any) -> Any:
        return choices[rng.integers(len(choices))]

    n = int(rng.integers(1, 1000))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, pick(0.001, 0.05), n)))
    if pick(True, False):
        close[rng.random(n) < 0.2] = NAN  # bars the symbol has not
    p = np.where(rng.random(n) < pick(0.0, 0.002, 0.01, 0.3), rng.random(n), 0.5)
    p[rng.random(n) < 0.01] = NAN
    inputs = bars(close, p=p, regime=np.where(rng.random(n) < 0.005, 3, 1))
    inputs.trainings[:] = rng.random(n) < pick(0.0, 0.0, 0.002, 0.1)
    spec = make_spec(
        threshold=pick(0.1, 0.5, 1.0),
        min_interval=int(rng.integers(1, 50)),
        max_holding_bars=pick(None, 3, 8, 300),
        drawdown_limits=pick((), (), (), (0.05,), (0.3, 0.01), (0.0,)),
        journal_regime=pick(True, False),
        stop_loss=pick(None, None, None, 0.5),
    )
    state = CoreState(spec)
    acct, sym = state.acct, state.sym
    quantity = pick(0.0, 0.0, 3.0, -2.0, 1e-9, 150.0)
    cash = pick(10_000.0, 10_000.0, 10_000.0, 300.0, 0.0, -50.0)
    acct[L.A_CASH] = cash
    acct[L.A_PEAK] = pick(10_000.0, 10_000.0, 12_000.0, 0.0, NAN, 400.0)
    acct[L.A_EQUITY] = cash
    acct[L.A_HALT] = pick(0.0, 0.0, 0.0, 0.0, 1.0)
    sym[0, L.S_QTY] = quantity
    sym[0, L.S_MARK] = pick(100.0, 97.5, NAN)
    t = int(rng.integers(0, n + 1))
    if quantity != 0.0:  # entered a few bars before: the holding limit may end the stretch
        sym[0, L.S_ENTRY_BAR] = max(t - int(rng.integers(-1, 11)), -1)
        sym[0, L.S_ENTRY_PRICE] = 100.0
    # the last signal a few bars before: the interval may hold a signal back
    sym[0, L.S_SIG_LAST] = max(t - int(rng.integers(0, 61)), -1)
    sym[0, L.S_REGIME] = pick(1.0, 1.0, 3.0)
    sym[0, L.S_I_REASON] = 7.0
    sym[0, L.S_X_DIR] = 1.0
    return state, Bars(*inputs.arrays), t, int(rng.integers(t, n + 1))


def test_the_python_form_stops_where_the_loop_stops_and_leaves_its_state() -> None:
    ran = 0
    for seed in range(CASES):
        state, inputs, t, t_end = _case(seed)
        (t_loop, loop), (t_numpy, numpy) = _both(state, inputs, t, t_end)
        assert t_numpy == t_loop, seed
        assert loop.acct.tobytes() == numpy.acct.tobytes(), seed
        assert loop.sym.tobytes() == numpy.sym.tobytes(), seed
        ran += t_loop - t
    assert ran > 10 * CASES  # most cases run quiet bars


def test_a_long_quiet_stretch_spans_windows_and_ends_at_the_signal() -> None:
    """Ten thousand bars, a signal at bar 9,000 only: the windows double up to it."""
    n = 10_000
    close = 100.0 + np.sin(np.arange(n))
    p = np.full(n, 0.5)
    p[9_000] = 0.9
    inputs = bars(close, p=p)
    state = CoreState(make_spec(threshold=0.5))
    state.sym[0, L.S_QTY] = 2.0
    state.sym[0, L.S_MARK] = 100.0
    (t_loop, loop), (t_numpy, numpy) = _both(state, Bars(*inputs.arrays), 0, n)
    assert t_numpy == t_loop == 9_000
    assert numpy.sym[0, L.S_MARK] == close[8_999]
    assert loop.acct.tobytes() == numpy.acct.tobytes()
    assert loop.sym.tobytes() == numpy.sym.tobytes()


def _edge(**changes: Any) -> tuple[CoreState, Bars]:
    """Forty bars of a long position from bar 10 (entered at 100, its last signal then),
    a rising close and no prediction; ``changes`` set bars' close and p (``{bar: value}``),
    the spec's keys otherwise."""
    close = np.linspace(100.0, 104.0, 40)
    p = np.full(40, 0.5)
    for bar, value in changes.pop("close", {}).items():
        close[bar] = value
    for bar, value in changes.pop("p", {}).items():
        p[bar] = value
    inputs = bars(close, p=p)
    state = CoreState(make_spec(threshold=0.5, **changes))
    state.sym[0, L.S_QTY] = 2.0
    state.sym[0, L.S_MARK] = 100.0
    state.sym[0, L.S_ENTRY_BAR] = 10.0
    state.sym[0, L.S_ENTRY_PRICE] = 100.0
    state.sym[0, L.S_SIG_LAST] = 10.0
    return state, Bars(*inputs.arrays)


@pytest.mark.parametrize(
    ("changes", "stop"),
    [
        # a signal at every bar from 11, held back by the interval until bar 10 + 5
        ({"min_interval": 5, "p": dict.fromkeys(range(11, 40), 0.9)}, 15),
        # the signal at bar 20 on a bar the symbol has not (no close): the next one, 25
        ({"p": {20: 0.9, 25: 0.1}, "close": {20: NAN}}, 25),
        # no prediction (NaN) is no signal
        ({"p": {20: NAN, 25: 0.9}}, 25),
        # held for eight bars: the holding limit at bar 18
        ({"max_holding_bars": 8}, 18),
        # a drawdown of 1% from the peak of bar 21 (close 102.15...): at bar 23's 0
        ({"drawdown_limits": (0.01,), "close": {23: 0.0}}, 23),
    ],
    ids=["interval", "gap", "no prediction", "holding limit", "drawdown"],
)
def test_a_stretch_ends_at_the_bar_the_loop_ends_it(changes: dict[str, Any], stop: int) -> None:
    state, inputs = _edge(**changes)
    (t_loop, loop), (t_numpy, numpy) = _both(state, inputs, 11, 40)
    assert t_numpy == t_loop == stop
    assert loop.acct.tobytes() == numpy.acct.tobytes()
    assert loop.sym.tobytes() == numpy.sym.tobytes()
