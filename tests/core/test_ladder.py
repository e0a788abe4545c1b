"""The order of a bar and the rejection ladder, rung by rung, through `run_bars`.

Each rung's test builds a bar where later rungs would refuse too, and asserts the
bar's exact rows: the rung in front wins. Then the send's checks
(`REPLACED`, the trading state, the order rate, the limits), and the promise that
makes the step resumable: running bars in one call, one call per bar, or stopping
anywhere gives the same rows and the same state.

Unless a test says otherwise: 10,000 cash, threshold 0.2 (a long at p >= 0.6, a
short at p <= 0.4), 100% of equity, a spot long-only venue filling at the close,
so an entry at 100 buys 100.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.feed import kill, latch_halt, resume
from tradeloom.core.kernels.specs import MarginKernel, SizingKernel
from tradeloom.core.params import CoreSpec, ExitRules, Limits
from tradeloom.core.state import BarInputs, CoreState
from tradeloom.domain import Rejection
from tradeloom.engine.regime import (
    HIGH_VOLATILITY,
    LOW_VOLATILITY,
    RANGING,
    TRENDING,
    regime_mask,
)
from tradeloom.plugins.signal.threshold import threshold_step

from .harness import T0, For, assert_rows, bars, decoded, make_spec, rows, run

NAN = math.nan
SECOND = 1_000_000_000
NO_EDGE = SizingKernel("kelly", 0.5, payoff=0.1)
"""Kelly sizing that finds no edge at p = 0.9: 0.9 - 0.1 / 0.1 = -0.1."""


def drive(
    state: CoreState, inputs: BarInputs, answer: Callable[[int, CoreState], None]
) -> list[int]:
    """Run every bar, answering each need with ``answer``; return the needs met."""
    needs: list[int] = []
    while True:
        need = state.run(inputs, len(inputs))
        if need == L.NEED_DONE:
            return needs
        needs.append(need)
        answer(need, state)


REFS = [f"python object {k}" for k in range(10)]
"""What rows that refer to Python objects (a plugin's halt, rejection) read back as."""


def message(state: CoreState, kind: str = "rejection") -> str:
    return str(next(e.value for e in decoded(state, REFS) if e.kind == kind))


def test_the_order_of_a_bar() -> None:
    """Trainings, open fills, protective exits, mark, regime, halts, signal, decision."""
    spec = make_spec(
        fill_at_close=False,
        stop_loss=0.05,
        journal_regime=True,
        drawdown_limits=(0.05,),
        limits=Limits(daily_loss_limit=0.05),
    )
    inputs = bars(
        [100.0, 92.0],
        open_=[100.0, 100.0],
        low=[100.0, 90.0],
        p=[0.9, 0.9],
        regime=[0, TRENDING | HIGH_VOLATILITY],
    )
    inputs.trainings[1] = 1
    state = run(spec, inputs)
    # Bar 0's order of 100 fills at bar 1's open, 100; the stop 5% below, at 95, is met
    # within the bar; the close, 92, marks 9,500: a loss of 5% of the day and of the peak.
    assert_rows(
        rows(state, 1),
        [
            ("TRAINING", -1, 0),
            ("FILL", 0, 1, 1, 100.0, 100.0, 0.0, 0.0, 0, 100.0, 0.0),
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_STOP_LOSS, 95.0, 1, 95.0),
            ("FILL", 0, 2, -1, 100.0, 95.0, 0.0, 0.0, 1, 0.0, 9500.0),
            ("TRADE", 0, 1, 1, 1, 100.0, 100.0, 95.0, 0.0, -500.0),
            ("STATE", -1, codes.ACTIVE, codes.REDUCING, codes.DAILY_LOSS, 0.05, 0.05, 10_000.0),
            ("REGIME", 0, TRENDING | HIGH_VOLATILITY, 0),
            ("HALT", -1, codes.MAX_DRAWDOWN_HALT, 0.05, 0.05),
            ("STATE", -1, codes.REDUCING, codes.HALTED_STATE, codes.MAX_DRAWDOWN_HALT),
            ("SIGNAL", 0, 1, 0.8, 0.9),
            ("REJECT", 0, codes.HALTED, codes.MAX_DRAWDOWN_HALT),
        ],
    )


# --- the ladder, rung by rung ------------------------------------------------------------------


def _health_halted(spec: CoreSpec, inputs: BarInputs) -> CoreState:
    """Run ``inputs`` after a health rule halted trading before bar 0 (as a monitor does)."""
    state = CoreState(spec)
    assert latch_halt(state.acct, state.ev, state.cur, 0, codes.HEALTH_HALT, 7)
    assert state.run(inputs, len(inputs)) == L.NEED_DONE
    return state


def test_rung_regime_filter() -> None:
    spec = make_spec(regime_filter=regime_mask(("trending",)))
    # Ranging: filtered, before the halt, the short on a long-only venue and the anomaly.
    inputs = bars([100.0], p=[0.1], regime=[RANGING | LOW_VOLATILITY], anomalous=[True])
    state = _health_halted(spec, inputs)
    assert_rows(
        rows(state, 0),
        [
            ("HALT", -1, 0, 7),
            ("STATE", -1, codes.ACTIVE, codes.HALTED_STATE, codes.HEALTH_HALT),
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("DECISION", 0, codes.FILTERED, RANGING | LOW_VOLATILITY),
        ],
    )
    assert next(e.value for e in decoded(state, REFS) if e.kind == "decision") == {
        "outcome": "filtered",
        "reason": "regime (ranging, low_volatility) is none of signal.regimes ()",
        "trend": "ranging",
        "volatility": "low_volatility",
    }
    passed = _health_halted(spec, bars([100.0], p=[0.1], regime=[TRENDING]))
    assert [r.kind for r in rows(passed, 0)] == ["HALT", "STATE", "SIGNAL", "REJECT"]


def test_rung_halted() -> None:
    # Latched: refused HALTED before the short on a long-only venue and the anomaly.
    state = _health_halted(make_spec(), bars([100.0], p=[0.1], anomalous=[True]))
    assert_rows(
        rows(state, 0),
        [
            ("HALT", -1, 0, 7),
            ("STATE", -1, codes.ACTIVE, codes.HALTED_STATE, codes.HEALTH_HALT),
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("REJECT", 0, codes.HALTED, codes.HEALTH_HALT),
        ],
    )
    assert message(state) == "HALTED: trading is halted (HEALTH_HALT)"


def test_a_halt_closes_what_is_held_and_refuses_the_signal() -> None:
    # 100 bought at 100; the close of 75 marks 7,500: a drawdown of 25%, at the limit.
    spec = make_spec(drawdown_limits=(0.25,))
    state = run(spec, bars([100.0, 75.0, 95.0], p=[0.9, 0.9, 0.9]))
    assert_rows(
        rows(state, 1),
        [
            ("HALT", -1, codes.MAX_DRAWDOWN_HALT, 0.25, 0.25),
            ("STATE", -1, codes.ACTIVE, codes.HALTED_STATE, codes.MAX_DRAWDOWN_HALT),
            ("SIGNAL", 0, 1, 0.8, 0.9),
            # in the side held: ignored, the halt's exit closes it (no refusal)
            ("DECISION", 0, codes.IGNORED, codes.EXIT_HALT),
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_HALT, 75.0, 0, NAN),
            ("FILL", 0, 2, -1, 100.0, 75.0, 0.0, 0.0, 1, 0.0, 7500.0),
            ("TRADE", 0, 1, 0, 1, 100.0, 100.0, 75.0, 0.0, -2500.0),
        ],
    )
    halt = next(e.value for e in decoded(state) if e.kind == "halt")
    assert (halt.code, halt.message) == ("MAX_DRAWDOWN_HALT", "drawdown=0.2500, limit=0.25")
    # Latched: halted once, refused ever after.
    assert_rows(
        rows(state, 2),
        [("SIGNAL", 0, 1, 0.8, 0.9), ("REJECT", 0, codes.HALTED, codes.MAX_DRAWDOWN_HALT)],
    )


def test_a_halts_exit_refused_by_the_order_rate_goes_out_when_the_rate_allows() -> None:
    """A halt closes every position: an exit the rate refused is sent again later.

    Signals are refused HALTED from then on, so nothing else would ever close it.
    """
    spec = make_spec(
        drawdown_limits=(0.1,),
        limits=Limits(max_orders_per_minute=1),
        timeframe_ns=20 * SECOND,
    )
    inputs = bars([100.0, 85.0, 85.0, 85.0, 85.0], p=[0.9, NAN, NAN, NAN, NAN], bar_ns=20 * SECOND)
    state = run(spec, inputs)
    # The entry went at 20 s; the halt at bar 1 (40 s) finds it in the last minute.
    assert_rows(
        rows(state, 1),
        [
            ("HALT", -1, codes.MAX_DRAWDOWN_HALT, 0.15, 0.1),
            ("STATE", -1, codes.ACTIVE, codes.HALTED_STATE, codes.MAX_DRAWDOWN_HALT),
            ("REJECT", 0, codes.ORDER_RATE, 1, 1, For(codes.EXIT_HALT)),
        ],
    )
    # From bar 3 (80 s) the entry is out of (20 s, 80 s]: the exit goes.
    assert [r.kind for r in rows(state, 3)] == ["ORDER", "FILL", "TRADE"]
    assert state.sym[0, L.S_QTY] == 0.0


def test_while_killed_nothing_is_sent_and_resume_brings_the_exits_back() -> None:
    spec = make_spec(max_holding_bars=1, stop_loss=0.05)
    inputs = bars(
        [100.0, 100.0, 100.0, 100.0], low=[100.0, 90.0, 100.0, 100.0], p=[0.9, NAN, 0.9, NAN]
    )
    state = CoreState(spec)
    assert state.run(inputs, 1) == L.NEED_DONE  # long 100 at 100
    kill(state.acct)
    assert state.run(inputs, 3) == L.NEED_DONE
    # Bar 1: the holding limit and the stop (the low, 90) are due; bar 2: a signal in the
    # side still held, which would send nothing: a hold, not a refusal
    assert rows(state, 1) == []
    assert_rows(rows(state, 2), [("SIGNAL", 0, 1, 0.8, 0.9), ("DECISION", 0, codes.HOLD)])
    assert resume(state.acct)
    assert state.run(inputs, 4) == L.NEED_DONE
    assert_rows(
        rows(state, 3),
        [
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_MAX_HOLDING, 100.0, 0, NAN),
            ("FILL", 0, 2, -1, 100.0, 100.0, 0.0, 0.0, 3, 0.0, 10_000.0),
            ("TRADE", 0, 1, 0, 3, 100.0, 100.0, 100.0, 0.0, 0.0),
        ],
    )


def test_rung_short_not_allowed() -> None:
    state = run(make_spec(), bars([100.0], p=[0.1], anomalous=[True], score=[-0.5]))
    assert_rows(
        rows(state, 0),
        [("SIGNAL", 0, -1, 0.8, 0.1), ("REJECT", 0, codes.SHORT_NOT_ALLOWED, For(codes.ENTRY))],
    )
    assert message(state) == (
        "SHORT_NOT_ALLOWED: short signal on a long-only venue (execution.allow_short: false)"
    )


def test_rung_hold() -> None:
    # Long already: hold, before the anomaly (which would refuse a new position).
    inputs = bars([100.0, 110.0], p=[0.9, 0.9], anomalous=[False, True], score=[0.1, -0.5])
    state = run(make_spec(), inputs)
    assert_rows(rows(state, 1), [("SIGNAL", 0, 1, 0.8, 0.9), ("DECISION", 0, codes.HOLD)])


def test_rung_ignored_when_an_exit_of_this_bar_closes_the_side() -> None:
    state = run(make_spec(max_holding_bars=1), bars([100.0, 110.0], p=[0.9, 0.9]))
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 0, 1, 0.8, 0.9),
            ("DECISION", 0, codes.IGNORED, codes.EXIT_MAX_HOLDING),
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_MAX_HOLDING, 110.0, 0, NAN),
            ("FILL", 0, 2, -1, 100.0, 110.0, 0.0, 0.0, 1, 0.0, 11_000.0),
            ("TRADE", 0, 1, 0, 1, 100.0, 100.0, 110.0, 0.0, 1000.0),
        ],
    )
    assert next(e.value for e in decoded(state) if e.kind == "decision" and e.bar == 1) == {
        "outcome": "ignored",
        "reason": "position is being closed (EXIT_MAX_HOLDING)",
    }


def test_rung_exit_from_a_long_on_a_long_only_venue() -> None:
    # A short signal while long on a long-only venue exits, anomalous bar or not; no
    # decision is journaled, the order says why.
    inputs = bars([100.0, 90.0], p=[0.9, 0.1], anomalous=[False, True], score=[0.1, -0.5])
    state = run(make_spec(), inputs)
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_SIGNAL, 90.0, 0, NAN),
            ("FILL", 0, 2, -1, 100.0, 90.0, 0.0, 0.0, 1, 0.0, 9000.0),
            ("TRADE", 0, 1, 0, 1, 100.0, 100.0, 90.0, 0.0, -1000.0),
        ],
    )


def test_rung_anomaly() -> None:
    state = run(make_spec(sizing=NO_EDGE), bars([100.0], p=[0.9], anomalous=[True], score=[-0.25]))
    assert_rows(
        rows(state, 0),
        [("SIGNAL", 0, 1, 0.8, 0.9), ("REJECT", 0, codes.ANOMALY, -0.25, For(codes.ENTRY))],
    )
    assert message(state) == (
        "ANOMALY: anomaly_score=-0.2500 < 0: the bar is unlike the model's training rows"
    )


def test_a_refused_reversal_still_exits_what_is_held() -> None:
    inputs = bars([100.0, 90.0], p=[0.9, 0.1], anomalous=[False, True], score=[0.1, -0.25])
    state = run(make_spec(allow_short=True), inputs)
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("REJECT", 0, codes.ANOMALY, -0.25),
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_SIGNAL, 90.0, 0, NAN),
            ("FILL", 0, 2, -1, 100.0, 90.0, 0.0, 0.0, 1, 0.0, 9000.0),
            ("TRADE", 0, 1, 0, 1, 100.0, 100.0, 90.0, 0.0, -1000.0),
        ],
    )


def test_rung_no_equity_is_met_as_the_no_equity_halt() -> None:
    """Equity at or below zero latches NO_EQUITY at the halts, before any signal.

    The ladder's own NO_EQUITY rung comes after HALTED, so a signal reads HALTED.
    """
    spec = make_spec(allow_short=True)  # liquidated at zero equity at the latest
    inputs = bars([100.0, 250.0, 250.0], open_=[100.0, 250.0, 250.0], p=[0.1, NAN, 0.9])
    state = run(spec, inputs)
    # Short 100 at 100 (cash 20,000), bought back at the gap's open, 250: cash -5,000.
    assert [r.kind for r in rows(state, 1)][-2:] == ["HALT", "STATE"]
    assert state.acct[L.A_STATE] == codes.HALTED_STATE
    assert_rows(
        rows(state, 2), [("SIGNAL", 0, 1, 0.8, 0.9), ("REJECT", 0, codes.HALTED, codes.NO_EQUITY)]
    )


def test_rung_no_equity_when_no_halt_is_latched() -> None:
    """The rung itself, reached only from a state that no driver makes today.

    Crafted: killed (HALTED, so the halts stage latches nothing), the kill's latch
    cleared, and cash that leaves the equity negative on a venue that does not
    liquidate (a margin account would be liquidated first, kill or not). The signal is
    refused NO_EQUITY and what is held is exited (refused in turn: HALTED).
    """
    spec = replace(make_spec(allow_short=True), margin=None)
    inputs = bars([100.0, 250.0], p=[0.9, 0.1])
    state = CoreState(spec)
    assert state.run(inputs, 1) == L.NEED_DONE  # long 100 at 100, cash 0
    kill(state.acct)
    state.acct[L.A_HALT] = 0.0
    state.acct[L.A_CASH] = -30_000.0  # equity at 250: -30,000 + 25,000 = -5,000
    assert state.run(inputs, 2) == L.NEED_DONE
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("REJECT", 0, codes.NO_EQUITY_REJECT, -5000.0, For(codes.REVERSE)),
            (
                "REJECT",
                0,
                codes.TRADING_HALTED,
                100.0,
                -1,
                100.0,
                codes.KILL_SWITCH,
                For(codes.EXIT_SIGNAL),
            ),
        ],
    )
    assert message(state) == "NO_EQUITY: equity=-5000.00 <= 0"


def test_rung_kelly_no_edge() -> None:
    # A plugin's rule would be asked next: the sizing refuses before it.
    spec = make_spec(sizing=NO_EDGE, external_rules=True)
    state = CoreState(spec)
    inputs = bars([100.0], p=[0.9])

    def answer(need: int, state: CoreState) -> None:
        assert need == L.NEED_RULES  # no halt; never NEED_CHECK
        state.io[L.IO_REF] = -1.0

    assert drive(state, inputs, answer) == [L.NEED_RULES]
    kelly = 0.9 - 0.1 / 0.1
    assert_rows(
        rows(state, 0),
        [
            ("SIGNAL", 0, 1, 0.8, 0.9),
            ("REJECT", 0, codes.KELLY_NO_EDGE, kelly, 0.9, 0.1, For(codes.ENTRY)),
        ],
    )
    assert message(state) == "KELLY_NO_EDGE: kelly=-0.1000 <= 0 (p_win=0.9000, payoff=0.1000)"


def test_rung_a_plugins_sizing_refuses() -> None:
    spec = make_spec(sizing=None)
    state = CoreState(spec)

    def answer(need: int, state: CoreState) -> None:
        assert need == L.NEED_SIZE
        state.io[L.IO_FRACTION] = 0.0
        state.io[L.IO_REF] = 7.0  # the rejection Python holds

    assert drive(state, bars([100.0], p=[0.9]), answer) == [L.NEED_SIZE]
    assert_rows(rows(state, 0), [("SIGNAL", 0, 1, 0.8, 0.9), ("REJECT", 0, 0, 7, For(codes.ENTRY))])
    # the plugin's rejection reads back stamped with what it refused (a plain object, as is)
    theirs = Rejection(0, pd.Timestamp(T0, tz="UTC"), "MY_SIZER", "no size", {})
    refs = [*REFS[:7], theirs]
    (read,) = [e.value for e in decoded(state, refs) if e.kind == "rejection"]
    assert read == replace(theirs, purpose="ENTRY")
    assert message(state) == "python object 7"


def test_rung_a_plugins_rule_refuses() -> None:
    state = CoreState(make_spec(external_rules=True))
    asked = []

    def answer(need: int, state: CoreState) -> None:
        asked.append((need, state.sym[0, L.S_X_SIZE]))
        state.io[L.IO_REF] = -1.0 if need == L.NEED_RULES else 3.0

    drive(state, bars([100.0], p=[0.9]), answer)
    assert asked == [(L.NEED_RULES, 0.0), (L.NEED_CHECK, 1.0)]  # the rule sees the size
    assert_rows(rows(state, 0), [("SIGNAL", 0, 1, 0.8, 0.9), ("REJECT", 0, 0, 3)])


def test_a_plugins_rule_halts() -> None:
    state = CoreState(make_spec(external_rules=True))

    def answer(need: int, state: CoreState) -> None:
        assert need == L.NEED_RULES
        state.io[L.IO_REF] = 5.0
        state.io[L.IO_CODE] = codes.DYNAMIC_BASE  # the plugin's code, interned

    assert drive(state, bars([100.0, 100.0], p=[NAN, 0.9]), answer) == [L.NEED_RULES]
    # asked once: latched after, and HALTED for the plugin's code
    assert_rows(
        rows(state, 0),
        [("HALT", -1, 0, 5), ("STATE", -1, codes.ACTIVE, codes.HALTED_STATE, codes.DYNAMIC_BASE)],
    )
    assert_rows(
        rows(state, 1),
        [("SIGNAL", 0, 1, 0.8, 0.9), ("REJECT", 0, codes.HALTED, codes.DYNAMIC_BASE)],
    )


def test_rung_accepted_entry() -> None:
    state = run(make_spec(), bars([100.0], p=[0.9]))
    assert_rows(
        rows(state, 0),
        [
            ("SIGNAL", 0, 1, 0.8, 0.9),
            ("DECISION", 0, codes.ACCEPTED, codes.ENTRY, 1.0),
            ("ORDER", 0, 1, 1, 100.0, codes.ENTRY, 100.0, 0, NAN),
            ("FILL", 0, 1, 1, 100.0, 100.0, 0.0, 0.0, 0, 100.0, 0.0),
        ],
    )


def test_rung_accepted_reversal() -> None:
    state = run(make_spec(allow_short=True), bars([100.0, 100.0], p=[0.9, 0.1]))
    # Equity 10,000: a target of -100; from +100 the order sells 200.
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("DECISION", 0, codes.ACCEPTED, codes.REVERSE, -1.0),
            ("ORDER", 0, 2, -1, 200.0, codes.REVERSE, 100.0, 0, NAN),
            ("FILL", 0, 2, -1, 200.0, 100.0, 0.0, 0.0, 1, -100.0, 20_000.0),
            ("TRADE", 0, 1, 0, 1, 100.0, 100.0, 100.0, 0.0, 0.0),
        ],
    )


def test_regime_changes_are_journaled_when_they_change() -> None:
    spec = make_spec(journal_regime=True)
    state = run(spec, bars([100.0] * 4, regime=[0, TRENDING, TRENDING, RANGING]))
    assert_rows(rows(state), [("REGIME", 0, TRENDING, 0), ("REGIME", 0, RANGING, TRENDING)])
    assert [r.bar for r in rows(state)] == [1, 3]


# --- the send -------------------------------------------------------------------------------------


def test_a_new_order_replaces_the_working_one() -> None:
    spec = make_spec(fill_at_close=False, max_volume_fraction=0.1)
    state = run(spec, bars([100.0, 100.0], volume=[0.0, 100.0], p=[0.9, 0.1]))
    # 100 ordered at bar 0; 10 fill at bar 1's open; the exit cancels the other 90.
    assert_rows(
        rows(state, 1),
        [
            ("FILL", 0, 1, 1, 10.0, 100.0, 0.0, 0.0, 0, 10.0, 9000.0),
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("CANCEL", 0, 1, 90.0, codes.REPLACED, 0),
            ("ORDER", 0, 2, -1, 10.0, codes.EXIT_SIGNAL, 100.0, 0, NAN),
        ],
    )


def test_the_daily_loss_refuses_a_flip_and_lets_an_exit_out() -> None:
    limits = Limits(daily_loss_limit=0.1)
    inputs = bars([100.0, 70.0], p=[0.9, 0.1])
    # 50 bought at 100 (half the equity); the close of 70 marks 5,000 + 3,500 = 8,500: a
    # loss of 15% of the day's 10,000. The reversal's order (sell 50 and 4,250 / 70 more)
    # would flip the position.
    flip = run(make_spec(allow_short=True, fraction=0.5, limits=limits), inputs)
    after = -4250.0 / 70.0
    assert_rows(
        rows(flip, 1),
        [
            ("STATE", -1, codes.ACTIVE, codes.REDUCING, codes.DAILY_LOSS, 0.15, 0.1, 10_000.0),
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("DECISION", 0, codes.ACCEPTED, codes.REVERSE, -0.5),
            (
                "REJECT",
                0,
                codes.TRADING_REDUCING,
                50.0,
                after,
                codes.DAILY_LOSS,
                For(codes.REVERSE),
            ),
        ],
    )
    assert message(flip) == (
        "TRADING_REDUCING: trading is REDUCING (DAILY_LOSS); the order would flip the "
        "position: position=50, after=-60.71428571"
    )
    exit_ = run(make_spec(fraction=0.5, limits=limits), inputs)  # long-only: the exit passes
    assert [r.kind for r in rows(exit_, 1)] == ["STATE", "SIGNAL", "ORDER", "FILL", "TRADE"]


def test_the_order_rate_counts_sends_at_the_bars_close() -> None:
    spec = make_spec(limits=Limits(max_orders_per_minute=1), timeframe_ns=10 * SECOND)
    p = [0.9, 0.1, NAN, NAN, NAN, 0.1, 0.1]
    state = run(spec, bars([100.0] * 7, p=p, bar_ns=10 * SECOND))
    # The entry went at bar 0's close (10 s); bar 1 closes at 20 s: refused. Bar 5 closes
    # at 60 s, the entry still inside (0 s, 60 s]; bar 6 at 70 s: out of it.
    assert_rows(
        rows(state, 1), [("SIGNAL", 0, -1, 0.8, 0.1), ("REJECT", 0, codes.ORDER_RATE, 1, 1)]
    )
    assert message(state) == "ORDER_RATE: orders_sent_last_60s=1, limit=1"
    assert [r.kind for r in rows(state, 5)] == ["SIGNAL", "REJECT"]
    assert [r.kind for r in rows(state, 6)] == ["SIGNAL", "ORDER", "FILL", "TRADE"]


def test_a_protective_exit_counts_toward_the_order_rate() -> None:
    spec = make_spec(
        limits=Limits(max_orders_per_minute=1), timeframe_ns=20 * SECOND, stop_loss=0.05
    )
    inputs = bars(
        [100.0] * 7,
        low=[100.0, 100.0, 100.0, 90.0, 100.0, 100.0, 100.0],
        p=[0.9, NAN, NAN, NAN, 0.9, 0.9, 0.9],
        bar_ns=20 * SECOND,
    )
    state = run(spec, inputs)
    # Every send is counted at its bar's close: the entry at 20 s, the stop at 95 during
    # bar 3 at 80 s. Bar 4's entry (100 s) and bar 5's (120 s) find the stop in the last
    # minute; bar 6's (140 s) does not: (80 s, 140 s].
    assert [r.kind for r in rows(state, 3)] == ["ORDER", "FILL", "TRADE"]
    decided = [("SIGNAL", 0, 1, 0.8, 0.9), ("DECISION", 0, codes.ACCEPTED, codes.ENTRY, 1.0)]
    for bar in (4, 5):
        assert_rows(rows(state, bar), [*decided, ("REJECT", 0, codes.ORDER_RATE, 1, 1)])
    assert [r.kind for r in rows(state, 6)] == ["SIGNAL", "DECISION", "ORDER", "FILL"]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (Limits(max_order_notional=5000.0), (codes.MAX_ORDER_NOTIONAL, 10_000.0, 5000.0)),
        (Limits(max_order_notional=10_000.0), None),
        (Limits(max_position_quantity=50.0), (codes.MAX_POSITION_QUANTITY, 0.0, 100.0, 50.0)),
        (Limits(max_position_quantity=100.0), None),
    ],
)
def test_the_limits_refuse_an_entry_after_its_decision(
    limits: Limits, expected: tuple[float, ...] | None
) -> None:
    state = run(make_spec(limits=limits), bars([100.0], p=[0.9]))
    decided = [("SIGNAL", 0, 1, 0.8, 0.9), ("DECISION", 0, codes.ACCEPTED, codes.ENTRY, 1.0)]
    if expected is None:  # exactly at the limit: sent
        assert [r.kind for r in rows(state, 0)] == ["SIGNAL", "DECISION", "ORDER", "FILL"]
    else:
        assert_rows(rows(state, 0), [*decided, ("REJECT", 0, *expected)])


def test_a_kill_during_the_bar_refuses_the_bars_exit() -> None:
    """A kill Python applies while the step waits (here for a plugin's signal)."""
    spec = make_spec(signal=None, max_holding_bars=1)
    state = CoreState(spec)

    def answer(need: int, state: CoreState) -> None:
        assert need == L.NEED_SIGNAL
        if state.bar == 0:
            state.io[L.IO_DIR], state.io[L.IO_CONF] = 1.0, 0.8
        else:
            kill(state.acct)
            state.io[L.IO_DIR] = 0.0

    drive(state, bars([100.0, 100.0], p=[0.9, 0.9]), answer)
    assert_rows(
        rows(state, 1),
        [("REJECT", 0, codes.TRADING_HALTED, 100.0, -1, 100.0, codes.KILL_SWITCH)],
    )
    assert message(state) == (
        "TRADING_HALTED: trading is HALTED (KILL_SWITCH); only cancels are allowed"
    )


# --- resumable: one call, one call per bar, or stopping anywhere ----------------------------------


@st.composite
def strategies(draw: st.DrawFn) -> tuple[CoreSpec, BarInputs]:
    n = draw(st.one_of(st.integers(1, 6), st.integers(20, 60)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    drift = draw(st.sampled_from([0.0, 0.06, -0.06]))  # trends that reach liquidations
    close = 100.0 * np.exp(np.cumsum(rng.normal(drift, draw(st.sampled_from([0.01, 0.08])), n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.02, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.03, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.03, n)))
    volume = rng.choice([0.0, 5.0, 50.0, 1e9], n)
    p = np.where(rng.random(n) < 0.5, np.nan, rng.random(n))
    doomed = drift != 0.0 and draw(st.booleans())
    if doomed:  # one leveraged entry against the trend, held until it is liquidated
        p[:] = np.nan
        p[0] = 0.95 if drift < 0 else 0.05
    bar_ns = draw(st.sampled_from([20 * SECOND, 3600 * SECOND, 6 * 3600 * SECOND]))
    inputs = bars(
        close,
        open_=open_,
        high=high,
        low=low,
        volume=volume,
        p=p,
        anomalous=rng.random(n) < 0.15,
        score=rng.normal(0.0, 0.2, n),
        regime=rng.choice([0, TRENDING, RANGING | HIGH_VOLATILITY, TRENDING | LOW_VOLATILITY], n),
        bar_ns=bar_ns,
    )
    inputs.trainings[:] = rng.choice([0, 0, 0, 1, 2], n)
    allow_short = draw(st.booleans())
    margin = draw(
        st.sampled_from(
            [
                None,
                MarginKernel(0.5, 0.25, 2.0, 0.005),
                MarginKernel(0.5, 0.25, 2.0, 0.005),
                MarginKernel(1.0, 0.2, 1.0, 0.0),
            ]
        )
    )
    spec = make_spec(
        threshold=draw(st.sampled_from([0.1, 0.5])),
        min_interval=draw(st.integers(1, 3)),
        fraction=draw(st.sampled_from([0.4, 1.0])),
        fill_at_close=draw(st.booleans()),
        slippage=draw(st.sampled_from([0.0, 0.002])),
        fee=draw(st.sampled_from([0.0, 0.001])),
        allow_short=allow_short,
        max_volume_fraction=draw(st.sampled_from([None, 0.2])),
        margin=margin,
        limits=Limits(
            max_order_notional=draw(st.sampled_from([None, None, 6000.0])),
            max_position_quantity=draw(st.sampled_from([None, None, 90.0])),
            max_orders_per_minute=draw(st.sampled_from([None, 1, 2])),
            daily_loss_limit=draw(st.sampled_from([None, 0.03])),
        ),
        timeframe_ns=bar_ns,
        stop_loss=draw(st.sampled_from([None, None, 0.03])),
        take_profit=draw(st.sampled_from([None, None, 0.05])),
        max_holding_bars=draw(st.sampled_from([None, None, 3])),
        drawdown_limits=draw(st.sampled_from([(), (), (0.15,)])),
        journal_regime=draw(st.booleans()),
        regime_filter=draw(st.sampled_from([0, regime_mask(("trending", "high_volatility"))])),
    )
    if draw(st.booleans()):
        spec = replace(spec, sizing=SizingKernel("kelly", 0.5, payoff=1.5, max_position=0.8))
    if doomed:
        margin = MarginKernel(0.5, 0.25, 2.0, 0.005)
        venue = replace(spec.venue, allow_short=True, margin=margin)  # type: ignore[type-var]
        spec = replace(
            spec,
            venue=venue,
            allow_short=True,
            margin=margin,
            stop_loss=None,
            max_holding_bars=None,
            drawdown_limits=(),
            limits=replace(spec.limits, max_order_notional=None, max_position_quantity=None),
        )
    return spec, inputs


def _one_call(spec: CoreSpec, inputs: BarInputs) -> tuple[CoreState, np.ndarray]:
    state = CoreState(spec, capacity=100_000)
    assert state.run(inputs, len(inputs)) == L.NEED_DONE
    return state, state.rows().copy()


def _in_pieces(spec: CoreSpec, inputs: BarInputs, stops: list[int]) -> tuple[CoreState, np.ndarray]:
    """Run to each of ``stops`` in turn, taking the rows out between calls (as a flush does)."""
    state = CoreState(spec, capacity=1)  # the smallest buffer: it must grow, mid-run
    taken = []
    for t_end in stops:
        assert state.run(inputs, t_end) == L.NEED_DONE
        assert state.bar == t_end
        taken.append(state.rows().copy())
        state.clear()
    return state, np.concatenate(taken) if taken else np.empty((0, L.EV_WIDTH))


def _answering(spec: CoreSpec, inputs: BarInputs) -> tuple[CoreState, np.ndarray]:
    """The per-bar driver's way: stop at every bar and for the monitors, answer nothing."""
    state = CoreState(spec, capacity=64)
    taken = []
    while True:
        need = state.run(inputs, len(inputs))
        taken.append(state.rows().copy())
        state.clear()
        if need == L.NEED_DONE:
            break
        assert need in (L.NEED_BAR, L.NEED_MONITOR)
    return state, np.concatenate(taken)


def _python_layers(spec: CoreSpec, inputs: BarInputs) -> np.ndarray:
    """The signal (and a fixed sizing) answered by Python with the same rule."""
    assert spec.signal is not None and spec.sizing is not None
    signal, sizing = spec.signal, spec.sizing
    fixed = sizing.kind == "fixed_fraction"
    state = CoreState(replace(spec, signal=None, sizing=None if fixed else sizing), capacity=64)
    last = -1.0
    taken = []
    while True:
        need = state.run(inputs, len(inputs))
        taken.append(state.rows().copy())
        state.clear()
        if need == L.NEED_DONE:
            return np.concatenate(taken)
        io = state.io
        if need == L.NEED_SIGNAL:
            direction, confidence, last = threshold_step(
                last, state.bar, io[L.IO_P], signal.threshold, signal.min_interval
            )
            io[L.IO_DIR], io[L.IO_CONF] = direction, confidence
        else:
            assert need == L.NEED_SIZE
            io[L.IO_FRACTION] = sizing.fraction


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=strategies(), data=st.data())
def test_running_in_one_call_per_bar_or_in_pieces_gives_the_same_run(
    strategy: tuple[CoreSpec, BarInputs], data: st.DataObject
) -> None:
    spec, inputs = strategy
    n = len(inputs)
    whole, expected = _one_call(spec, inputs)
    cuts = data.draw(st.lists(st.integers(1, n), unique=True), label="stops")
    for stops in (list(range(1, n + 1)), [*sorted(cuts), n] if n not in cuts else sorted(cuts)):
        state, got = _in_pieces(spec, inputs, stops)
        assert _same(got, expected), stops
        for name in ("acct", "sym", "sent"):
            assert _same(getattr(state, name), getattr(whole, name)), name
        assert _same(state.cur[1:], whole.cur[1:])  # all but the rows used
    stepped = replace(spec, yield_bars=True, monitors=True)
    state, got = _answering(stepped, inputs)
    assert _same(got, expected)
    assert _same(state.acct, whole.acct) and _same(state.sym, whole.sym)
    # A Python rule's state is Python's: compare the journal only.
    assert _same(_python_layers(spec, inputs), expected)


# --- quiet bars: the fast path leaves what the full bar leaves ---------------------------------


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=strategies(), data=st.data())
def test_quiet_bars_run_as_the_full_bar_runs_them(
    strategy: tuple[CoreSpec, BarInputs], data: st.DataObject
) -> None:
    """The same bars with `tradeloom.core.quiet` on and off: the same rows and state."""
    spec, inputs = strategy
    n = len(inputs)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    if data.draw(st.booleans(), label="mostly quiet"):
        # long stretches without trainings, signals or regime changes, as in a backtest
        inputs.trainings[:] = np.where(rng.random(n) < 0.05, inputs.trainings, 0)
        p = inputs.px[5, :, 0]
        inputs.px[5, :, 0] = np.where(rng.random(n) < 0.2, p, 0.5)
        inputs.flags[1, :, 0] = np.where(rng.random(n) < 0.1, inputs.flags[1, :, 0], 0)
    if data.draw(st.booleans(), label="gaps"):
        inputs.px[3, rng.random(n) < 0.2, 0] = np.nan  # bars the symbol has not
    spec = replace(spec, limits=replace(spec.limits, daily_loss_limit=None))
    if data.draw(st.booleans(), label="unprotected"):
        # a spot long-only account without stops: positions held through quiet bars
        assert spec.venue is not None
        spec = replace(
            spec,
            venue=replace(spec.venue, allow_short=False, margin=None),
            allow_short=False,
            margin=None,
            stop_loss=None,
            take_profit=None,
            max_holding_bars=data.draw(st.sampled_from([None, 2, 3])),
            drawdown_limits=data.draw(st.sampled_from([(), (0.05,), (0.3, 0.02)])),
        )
    # the exits that follow a position, the cooldown, the time exit (an ATR stop is never
    # quiet, whatever P_QUIET says)
    spec = replace(spec, exits=data.draw(st.sampled_from(EXITS), label="exits"))
    stops = sorted(data.draw(st.lists(st.integers(1, n), unique=True), label="stops"))
    _assert_quiet_runs_as_full(spec, inputs, stops if stops and stops[-1] == n else [*stops, n])


@pytest.mark.parametrize(
    ("spec", "p"),
    [
        (make_spec(max_holding_bars=3), [0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.1, 0.5]),
        (make_spec(drawdown_limits=(0.02,)), [0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
        # the time exit at 04:30: the bar 04:00-05:00
        (
            make_spec(exits=ExitRules(exit_time_ns=270 * 60_000_000_000)),
            [0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
        ),
        # a 1% trailing stop under the best close 103: 101.97, reached by bar 4's close 99
        (make_spec(exits=ExitRules(trailing_stop=0.01)), [0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
        # a 2% stop-loss under the entry at 100 (bars held quiet): 98, reached by bar 5's 97
        (make_spec(stop_loss=0.02), [0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
        # a 2.5% take-profit over it, with the stop-loss: 102.5, reached by bar 2's 103
        (make_spec(stop_loss=0.1, take_profit=0.025), [0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
    ],
)
def test_a_quiet_stretch_ends_where_the_full_bar_acts(spec: CoreSpec, p: list[float]) -> None:
    """The holding limit, a drawdown halt and the stops end a run of quiet bars, as in
    the full bar."""
    close = [100.0, 101.0, 103.0, 102.0, 99.0, 97.0, 98.0, 99.0]
    got = _assert_quiet_runs_as_full(spec, bars(close, p=p), [len(close)])
    assert list(got[:, L.E_KIND]).count(L.EV_ORDER) == 2  # the entry, and the exit it forces


EXITS = [
    ExitRules(),
    ExitRules(trailing_stop=0.01),
    ExitRules(trailing_atr=3, trailing_multiple=1.0),
    ExitRules(break_even=0.005, cooldown_bars=2),
    ExitRules(exit_time_ns=7 * 3_600_000_000_000),
]


def _assert_quiet_runs_as_full(spec: CoreSpec, inputs: BarInputs, stops: list[int]) -> np.ndarray:
    runs = []
    for quiet in (1.0, 0.0):
        state = CoreState(spec, capacity=1)
        state.prm[L.P_QUIET] = quiet
        taken = []
        for t_end in stops:
            assert state.run(inputs, t_end) == L.NEED_DONE
            taken.append(state.rows().copy())
            state.clear()
        runs.append((state, np.concatenate(taken)))
    (fast, fast_rows), (full, full_rows) = runs
    assert _same(fast_rows, full_rows)
    for name in ("acct", "sym", "sent", "cur"):
        assert _same(getattr(fast, name), getattr(full, name)), name
    return full_rows
