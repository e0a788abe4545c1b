"""The risk engine: trading states, pre-trade checks, order rate, daily loss, the kill latch.

Ported from tests/runner/test_pretrade.py and tests/runner/test_trading_state.py,
against `tradeloom.core.risk` and `tradeloom.core.feed`'s kill and resume, with the
messages as `tradeloom.core.codes.describe` words them.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.context import Order
from tradeloom.core.feed import cancel_for_kill, kill, resume
from tradeloom.core.kernels.specs import MARGIN_PERPETUAL, MARGIN_SHORTS, MarginKernel
from tradeloom.core.params import Limits
from tradeloom.core.risk import (
    RATE_WINDOW_NS,
    halt_unwinds,
    is_reducing,
    kill_spares,
    move_state,
    observe_day,
    pretrade_check,
    record_send,
)
from tradeloom.core.state import CoreState

from .harness import make_spec, rows

NOW = pd.Timestamp("2024-03-01T12:00Z").value
SECOND = 1_000_000_000
ACTIVE, REDUCING, HALTED = codes.ACTIVE, codes.REDUCING, codes.HALTED_STATE


def engine(margin: MarginKernel | None = None, **limits: float) -> CoreState:
    """Return a fresh core whose risk engine has ``limits`` (`risk.limits`)."""
    return CoreState(make_spec(limits=Limits(**limits), margin=margin))  # type: ignore[arg-type]


def check(
    state: CoreState,
    side: int = 1,
    quantity: float = 1.0,
    price: float = 100.0,
    *,
    position: float = 0.0,
    last: float = 100.0,
    equity: float = 1000.0,
    gross_after: float | None = None,
    now: int = NOW,
) -> tuple[int, tuple[float, ...]]:
    """Run the pre-trade checks; return the refusing code (0: pass) and its values.

    The order is a limit order at ``price`` (NaN: none) sized at ``last``, so that the
    collar measures ``price`` from ``last``.
    """
    st = state.bundle()
    st.out[:] = -7.0
    if gross_after is None:
        gross_after = abs(position + side * quantity) * price
    order = Order(side, quantity, codes.ENTRY, last, L.ORDER_LIMIT, price, 0.0)
    code = pretrade_check(st, now, position, order, equity, gross_after)
    return int(code), tuple(float(v) for v in st.out)


def refusal(
    state: CoreState,
    side: int = 1,
    quantity: float = 1.0,
    price: float = 100.0,
    *,
    position: float = 0.0,
    last: float = 100.0,
    equity: float = 1000.0,
    gross_after: float | None = None,
    now: int = NOW,
) -> str:
    """Return the refusal as the journal reads it (``CODE: message``), '' for a pass."""
    code, values = check(
        state, side, quantity, price, position=position, last=last, equity=equity,
        gross_after=gross_after, now=now,
    )  # fmt: skip
    if code == 0:
        return ""
    table = codes.CodeTable()
    return f"{table.name(code)}: {codes.describe(code, values, table)[0]}"


def send(state: CoreState, now: int) -> None:
    record_send(state.acct, state.prm, state.sent, now)


def to_state(state: CoreState, new: int, why: int) -> None:
    move_state(state.bundle(), 0, new, why)


def observe(state: CoreState, now: int, equity: float) -> None:
    observe_day(state.bundle(), 0, now, equity)


def state_rows(state: CoreState) -> list[tuple[float, ...]]:
    """Return the STATE rows' values: previous, state, code, values..."""
    return [tuple(float(v) for v in r[3:9]) for r in state.rows() if r[0] == L.EV_STATE]


# --- the limits ------------------------------------------------------------------------------


def test_without_limits_every_order_passes_while_active() -> None:
    state = engine()
    assert check(state, 1, 1e9, 1e9, position=1e9, equity=1.0)[0] == 0
    # A spot account has no initial margin to meet: the cash limits its buys instead.
    assert check(state, 1, 1e9, 1e9, equity=1.0, gross_after=1e30)[0] == 0


def test_max_order_notional_at_the_limit_passes_above_is_refused() -> None:
    state = engine(max_order_notional=1000.0)
    assert check(state, 1, 10.0, 100.0)[0] == 0
    code, values = check(state, -1, 10.5, 100.0)
    assert code == codes.MAX_ORDER_NOTIONAL
    table = codes.CodeTable()
    assert codes.describe(code, values, table) == (
        "notional=1050, limit=1000",
        {"notional": 1050.0, "limit": 1000.0},
    )
    assert refusal(state, -1, 10.5, 100.0) == "MAX_ORDER_NOTIONAL: notional=1050, limit=1000"


def test_max_order_notional_values_an_order_without_a_price_at_the_last_price() -> None:
    state = engine(max_order_notional=1000.0)
    assert check(state, 1, 10.0, math.nan, last=100.0)[0] == 0
    assert check(state, 1, 10.0, math.nan, last=101.0)[0] == codes.MAX_ORDER_NOTIONAL
    assert check(state, 1, 10.0, 0.0, last=101.0)[0] == codes.MAX_ORDER_NOTIONAL


def test_max_position_at_the_limit_passes_above_is_refused_both_ways() -> None:
    state = engine(max_position_quantity=2.0)
    assert check(state, 1, 0.5, position=1.5)[0] == 0
    assert (
        refusal(state, 1, 0.75, position=1.5)
        == "MAX_POSITION_QUANTITY: position_after=2.25, limit=2"
    )
    # A flip is checked on the position it leaves behind.
    assert check(state, -1, 3.0, position=1.0)[0] == 0
    assert check(state, -1, 3.5, position=1.0)[0] == codes.MAX_POSITION_QUANTITY
    assert check(state, -1, 2.5, position=0.0)[0] == codes.MAX_POSITION_QUANTITY


def test_price_collar_at_the_edges_passes_beyond_is_refused() -> None:
    state = engine(price_collar=0.25)
    assert check(state, 1, 1.0, 125.0, last=100.0)[0] == 0
    assert check(state, 1, 1.0, 75.0, last=100.0)[0] == 0
    assert refusal(state, 1, 1.0, 125.5, last=100.0) == (
        "PRICE_COLLAR: price=125.5, reference=100, collar=0.25, allowed=[75, 125]"
    )
    assert check(state, -1, 1.0, 74.5, last=100.0)[0] == codes.PRICE_COLLAR


def test_initial_margin_at_the_equity_passes_above_is_refused() -> None:
    state = engine(MarginKernel(initial=0.5, maintenance=0.25, leverage=2.0))
    # 0.5 x 20,000 of gross notional after the order = 10,000 = the equity: allowed.
    assert check(state, 1, 200.0, 100.0, equity=10_000.0, gross_after=20_000.0)[0] == 0
    # An order sized at the full equity may exceed it by rounding (1e-9 relative).
    assert check(state, 1, 200.0, 100.0, equity=10_000.0, gross_after=20_000.00001)[0] == 0
    assert refusal(state, 1, 200.01, 100.0, equity=10_000.0, gross_after=20_001.0) == (
        "INSUFFICIENT_MARGIN: initial margin=10000.5 > equity=10000 (execution.margin.initial=0.5)"
    )


@pytest.mark.parametrize(
    ("source", "named"),
    [
        (
            MARGIN_SHORTS,
            "a venue with execution.allow_short and no execution.margin borrows at an "
            "initial margin of 1: set execution.margin to change it",
        ),
        (
            MARGIN_PERPETUAL,
            "a perpetual without execution.margin: an initial margin of 1; "
            "set execution.margin to change it",
        ),
    ],
)
def test_a_margin_refusal_names_the_rule_it_comes_from(source: int, named: str) -> None:
    """A venue that allows shorts, or a perpetual, without ``execution.margin`` is a
    margin account at the defaults: its refusal names that, not a key the file lacks."""
    state = engine(MarginKernel(source=source))
    assert refusal(state, -1, 101.0, 100.0, equity=10_000.0, gross_after=10_100.0) == (
        f"INSUFFICIENT_MARGIN: initial margin=10100 > equity=10000 ({named})"
    )


def test_reducing_orders_skip_notional_position_collar_and_margin() -> None:
    state = engine(
        MarginKernel(initial=0.5),
        max_order_notional=100.0,
        max_position_quantity=2.0,
        price_collar=0.25,
    )

    def trapped(side: int, quantity: float, price: float) -> int:
        # Long 5 (above a lowered limit), the last price gapped 2x, and an equity that no
        # longer covers the margin.
        return check(
            state, side, quantity, price, position=5.0, last=200.0, equity=1.0, gross_after=1e9
        )[0]

    # Closing (notional 500) or reducing still passes.
    assert trapped(-1, 5.0, 100.0) == 0
    assert trapped(-1, 1.0, 100.0) == 0
    # The same order one unit past flat is not reducing and meets every limit again.
    assert trapped(-1, 6.0, 100.0) == codes.MAX_ORDER_NOTIONAL
    assert trapped(1, 1.0, 200.0) == codes.MAX_ORDER_NOTIONAL


def test_the_checks_run_in_order_and_the_first_failure_wins() -> None:
    """An order that fails every check; each fix reveals the next check in the ladder."""
    state = engine(
        MarginKernel(initial=0.5),
        max_orders_per_minute=1,
        max_order_notional=1000.0,
        max_position_quantity=5.0,
        price_collar=0.1,
    )
    send(state, NOW - SECOND)  # the rate's one order in the last minute
    later = NOW + 60 * SECOND  # when that send has left the window

    def buy(quantity: float, price: float, now: int = NOW, equity: float = 100.0) -> int:
        return check(state, 1, quantity, price, last=100.0, equity=equity, now=now)[0]

    to_state(state, HALTED, codes.KILL_SWITCH)
    seen = [buy(20.0, 200.0)]
    to_state(state, REDUCING, codes.DAILY_LOSS)
    seen.append(buy(20.0, 200.0))
    to_state(state, ACTIVE, codes.RESUME)
    seen.append(buy(20.0, 200.0))
    seen.append(buy(20.0, 200.0, later))  # notional 4,000
    seen.append(buy(20.0, 45.0, later))  # notional 900; 20 > 5
    seen.append(buy(5.0, 180.0, later))  # 180 is outside [90, 110]
    seen.append(buy(5.0, 100.0, later))  # 0.5 x 500 > 100
    seen.append(buy(5.0, 100.0, later, equity=250.0))
    assert seen == [
        codes.TRADING_HALTED,
        codes.TRADING_REDUCING,
        codes.ORDER_RATE,
        codes.MAX_ORDER_NOTIONAL,
        codes.MAX_POSITION_QUANTITY,
        codes.PRICE_COLLAR,
        codes.INSUFFICIENT_MARGIN,
        0,
    ]


# --- the order rate --------------------------------------------------------------------------


def test_rate_window_slides_and_the_60th_second_is_outside_it() -> None:
    state = engine(max_orders_per_minute=3)
    for seconds in (0, 10, 20):
        assert check(state, now=NOW + seconds * SECOND)[0] == 0
        send(state, NOW + seconds * SECOND)
    almost = NOW + 59_999_000_000
    assert refusal(state, now=almost) == "ORDER_RATE: orders_sent_last_60s=3, limit=3"
    # The send at NOW leaves the window (now - 60 s, now] exactly at NOW + 60 s.
    assert check(state, now=NOW + 60 * SECOND)[0] == 0
    assert state.acct[L.A_RATE_COUNT] == 2
    send(state, NOW + 60 * SECOND)
    assert check(state, now=NOW + 70 * SECOND - 1_000_000)[0] == codes.ORDER_RATE
    assert check(state, now=NOW + 70 * SECOND)[0] == 0


def test_rate_limit_applies_to_reducing_orders_and_checks_alone_do_not_count() -> None:
    state = engine(max_orders_per_minute=1)
    for _ in range(5):
        assert check(state, -1, 1.0, position=3.0)[0] == 0
    send(state, NOW)
    assert check(state, -1, 1.0, position=2.0)[0] == codes.ORDER_RATE


def test_without_the_limit_sends_are_not_counted() -> None:
    state = engine()
    for k in range(10):
        send(state, NOW + k)
    assert state.acct[L.A_RATE_COUNT] == 0


@given(
    limit=st.integers(min_value=1, max_value=5),
    steps=st.lists(
        st.tuples(
            st.one_of(st.just(0), st.integers(min_value=0, max_value=40_000)),  # ms later
            st.booleans(),  # a protective exit: sent without the checks
        ),
        max_size=80,
    ),
)
def test_rate_limiter_never_lets_more_than_n_through_in_any_60s(
    limit: int, steps: list[tuple[int, bool]]
) -> None:
    """The ring of `limit` slots wraps many times over; it answers as the full history."""
    state = engine(max_orders_per_minute=limit)
    now, sent, checked = NOW, [], []
    for gap, unchecked in steps:
        now += gap * 1_000_000
        if unchecked:  # the venue's own stop: counted, never refused
            send(state, now)
            sent.append(now)
            continue
        in_window = sum(1 for s in sent if now - RATE_WINDOW_NS < s <= now)
        passed = check(state, now=now)[0] == 0
        # Refused exactly when the window is full: never too strict, never too loose.
        assert passed is (in_window < limit)
        if passed:
            send(state, now)
            sent.append(now)
            checked.append(now)
    for start in checked:
        assert sum(1 for s in checked if start <= s < start + RATE_WINDOW_NS) <= limit


# --- trading states ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "side", "quantity", "reducing"),
    [
        (2.0, -1, 0.5, True),  # partial close of a long
        (2.0, -1, 2.0, True),  # exact close
        (2.0, -1, 2.5, False),  # flip
        (2.0, 1, 0.5, False),  # increase
        (-2.0, 1, 1.0, True),  # partial close of a short
        (-2.0, 1, 3.0, False),  # flip
        (-2.0, -1, 1.0, False),  # increase
        (0.0, 1, 1.0, False),  # opening from flat
        (0.0, -1, 1.0, False),
    ],
)
def test_is_reducing(position: float, side: int, quantity: float, reducing: bool) -> None:
    assert is_reducing(position, side, quantity) is reducing
    for state_code, allowed in ((ACTIVE, True), (REDUCING, reducing), (HALTED, False)):
        state = engine()
        to_state(state, state_code, codes.KILL_SWITCH)
        assert (check(state, side, quantity, position=position)[0] == 0) is allowed


def test_halted_refuses_every_order_even_a_reducing_one() -> None:
    state = engine()
    previous = kill(state.acct)
    assert previous == ACTIVE
    for side, position in ((1, 0.0), (-1, 3.0), (1, -3.0), (1, 3.0)):
        assert refusal(state, side, 1.0, position=position) == (
            "TRADING_HALTED: trading is HALTED (KILL_SWITCH); only cancels are allowed"
        )
    code, values = check(state, -1, 1.0, position=3.0)
    assert codes.describe(code, values, codes.CodeTable())[1] == {
        "position": 3.0,
        "side": -1.0,
        "quantity": 1.0,
    }
    assert resume(state.acct)
    assert check(state, 1, 1.0)[0] == 0


def test_reducing_allows_a_partial_close_but_not_a_flip_or_an_increase() -> None:
    state = engine()
    to_state(state, REDUCING, codes.DAILY_LOSS)
    assert check(state, -1, 1.0, position=3.0)[0] == 0
    assert check(state, -1, 3.0, position=3.0)[0] == 0
    assert refusal(state, -1, 4.0, position=3.0) == (
        "TRADING_REDUCING: trading is REDUCING (DAILY_LOSS); "
        "the order would flip the position: position=3, after=-1"
    )
    assert refusal(state, 1, 1.0, position=3.0) == (
        "TRADING_REDUCING: trading is REDUCING (DAILY_LOSS); "
        "the order would increase the position: position=3, after=4"
    )
    assert check(state, 1, 1.0, position=0.0)[0] == codes.TRADING_REDUCING


def test_moving_to_the_current_state_changes_nothing_and_keeps_the_reason() -> None:
    state = engine()
    to_state(state, REDUCING, codes.DAILY_LOSS)
    to_state(state, REDUCING, codes.KILL_SWITCH)
    assert (state.acct[L.A_STATE], state.acct[L.A_STATE_WHY]) == (REDUCING, codes.DAILY_LOSS)
    assert state_rows(state) == [(ACTIVE, REDUCING, codes.DAILY_LOSS, 0.0, 0.0, 0.0)]


@given(
    position=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False).filter(lambda p: p != 0),
    steps=st.lists(
        st.tuples(
            st.sampled_from([1, -1]),
            st.one_of(st.floats(min_value=1e-6, max_value=3.0), st.sampled_from([0.5, 1.0])),
            st.floats(min_value=1.0, max_value=1000.0),
        ),
        max_size=30,
    ),
)
def test_under_reducing_no_passed_order_increases_or_flips_the_position(
    position: float, steps: list[tuple[int, float, float]]
) -> None:
    state = engine(max_order_notional=50.0, max_position_quantity=1.0, price_collar=0.1)
    to_state(state, REDUCING, codes.DAILY_LOSS)
    start_sign = 1 if position > 0 else -1
    for side, fraction, price in steps:
        quantity = fraction * abs(position)
        if not quantity > 0.0:  # underflow of a tiny position
            continue
        if check(state, side, quantity, price, position=position)[0] != 0:
            continue
        after = position + side * quantity
        assert abs(after) <= abs(position)
        assert after * start_sign >= 0
        position = after


@given(
    position=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    side=st.sampled_from([1, -1]),
    quantity=st.floats(min_value=1e-9, max_value=1e6, allow_nan=False),
)
def test_halted_refuses_every_order(position: float, side: int, quantity: float) -> None:
    state = engine()
    kill(state.acct)
    assert check(state, side, quantity, position=position)[0] == codes.TRADING_HALTED


# --- the kill latch ----------------------------------------------------------------------------


def test_kill_latches_halted_and_resume_lifts_it() -> None:
    state = engine()
    assert kill(state.acct) == ACTIVE
    assert state.acct[L.A_STATE] == HALTED
    assert state.acct[L.A_STATE_WHY] == codes.KILL_SWITCH
    assert state.acct[L.A_HALT] == codes.KILL_SWITCH
    assert kill(state.acct) == HALTED  # again: already halted
    assert resume(state.acct)
    assert state.acct[L.A_STATE] == ACTIVE
    assert state.acct[L.A_STATE_WHY] == codes.RESUME
    assert state.acct[L.A_HALT] == 0.0
    assert not resume(state.acct)  # only HALTED is resumed


@pytest.mark.parametrize("reason", codes.ORDER_REASON_NAMES.numbers)
def test_the_kill_lets_its_flattens_exits_alone_through(reason: int) -> None:
    state = engine()
    kill(state.acct)
    st = state.bundle()
    exit_ = Order(-1, 2.0, reason, 100.0, L.ORDER_MARKET, math.nan, 0.0)
    passes = pretrade_check(st, NOW, 2.0, exit_, 1000.0, 0.0) == 0
    assert passes == kill_spares(reason) == (reason == codes.EXIT_FLATTEN)
    flip = Order(-1, 3.0, reason, 100.0, L.ORDER_MARKET, math.nan, 0.0)
    assert pretrade_check(st, NOW, 2.0, flip, 1000.0, 0.0) == codes.TRADING_HALTED


def test_a_halt_unwinds_and_the_kill_only_once_its_flatten_was_carried_out() -> None:
    # a risk halt's exits go again at each bar whose position they did not close; the
    # kill sends nothing, but once its flatten was carried out its exits go again
    # likewise (an exit that never arrived left the position open), until resume
    state = engine()
    acct = state.acct
    assert not halt_unwinds(acct)
    acct[L.A_HALT] = codes.MAX_DRAWDOWN_HALT
    assert halt_unwinds(acct)
    kill(acct)
    assert not halt_unwinds(acct)
    acct[L.A_FLATTEN] = 1.0
    assert halt_unwinds(acct)
    assert resume(acct)  # the drawdown's halt stays, and unwinds; the flatten is over
    assert acct[L.A_FLATTEN] == 0.0 and halt_unwinds(acct)
    acct[L.A_HALT] = 0.0
    kill(acct)
    acct[L.A_FLATTEN] = 1.0
    assert halt_unwinds(acct)
    assert resume(acct) and not halt_unwinds(acct)


def test_a_resume_ends_a_flatten_not_carried_out_yet_and_keeps_a_halts_exits() -> None:
    # asked (A_EXIT_HALT 2) and resumed before its bar: it is not carried out (the next
    # bar took it for a new halt and left the run HALTED for none); a halt latched
    # before the kill outlives it, and its exits (1) go at the next bar, the flatten's
    # pending one included (a held flatten's working order is cancelled first)
    state = engine()
    acct = state.acct
    kill(acct)
    acct[L.A_EXIT_HALT] = 2.0
    assert resume(acct)
    assert acct[L.A_EXIT_HALT] == 0.0 and acct[L.A_STATE] == codes.ACTIVE
    acct[L.A_HALT] = codes.MAX_DRAWDOWN_HALT
    acct[L.A_EXIT_HALT] = 1.0
    kill(acct)
    assert resume(acct)
    assert acct[L.A_EXIT_HALT] == 1.0 and acct[L.A_STATE] == codes.HALTED_STATE
    acct[L.A_EXIT_HALT] = 2.0
    kill(acct)
    assert resume(acct)
    assert acct[L.A_EXIT_HALT] == 1.0 and acct[L.A_STATE] == codes.HALTED_STATE


@pytest.mark.parametrize("at_core", [True, False])
def test_the_kill_cancels_every_order_but_its_flattens_exits_and_ends_every_sliced_order(
    at_core: bool,
) -> None:
    # four symbols (a universe, a portfolio's books): an entry sliced into children, the
    # flatten's exit, a drawdown halt's exit, a protective stop's exit
    state = CoreState(make_spec(), symbols=4)
    sym = state.sym
    working = (codes.ENTRY, codes.EXIT_FLATTEN, codes.EXIT_HALT, codes.EXIT_STOP_LOSS)
    for s, reason in enumerate(working):
        sym[s, L.S_W_ACTIVE], sym[s, L.S_W_REASON], sym[s, L.S_W_SEQ] = 1.0, reason, 10 + s
        sym[s, L.S_W_REMAINING], sym[s, L.S_W_BAR] = 0.5 + s, 3.0
    sym[0, L.S_PA_SEQ] = 9.0  # its children to come
    cancel_for_kill(state.ev, state.cur, sym, 5, codes.KILL_SWITCH, at_core)
    assert (sym[:, L.S_PA_SEQ] == 0.0).all()
    cancels = [(r.bar, r.symbol, *r.values[:4]) for r in rows(state) if r.kind == "CANCEL"]
    if not at_core:  # a Python venue's orders: the engine cancels them by `kill_spares`
        assert cancels == [] and (sym[:, L.S_W_ACTIVE] == 1.0).all()
        return
    assert list(sym[:, L.S_W_ACTIVE]) == [0.0, 1.0, 0.0, 0.0]
    assert cancels == [(5, s, 10.0 + s, 0.5 + s, codes.KILL_SWITCH, 3.0) for s in (0, 2, 3)]


@pytest.mark.parametrize("start", [ACTIVE, REDUCING])
def test_kill_halts_from_any_state(start: int) -> None:
    state = engine()
    to_state(state, start, codes.DAILY_LOSS)
    assert kill(state.acct) == start
    assert state.acct[L.A_STATE] == HALTED


@pytest.mark.parametrize("state_code", [ACTIVE, REDUCING])
def test_resume_refuses_a_state_that_is_not_halted(state_code: int) -> None:
    state = engine()
    to_state(state, state_code, codes.DAILY_LOSS)
    before = state.acct.copy()
    assert not resume(state.acct)
    assert (state.acct == before).all()


@pytest.mark.parametrize("halt", [codes.MAX_DRAWDOWN_HALT, codes.NO_EQUITY, codes.HEALTH_HALT])
def test_resume_lifts_only_the_kill_switchs_latch(halt: int) -> None:
    state = engine()
    state.acct[L.A_HALT] = halt  # latched for the rest of the run
    kill(state.acct)
    assert state.acct[L.A_HALT] == halt  # the kill does not overwrite the first halt
    assert resume(state.acct)
    # the other halt stays, and holds the run HALTED: its exits alone may go
    assert (state.acct[L.A_STATE], state.acct[L.A_STATE_WHY]) == (HALTED, halt)
    assert state.acct[L.A_HALT] == halt
    assert check(state, -1, 1.0, position=3.0)[0] == 0
    assert check(state, 1, 1.0, position=3.0)[0] == codes.TRADING_HALTED
    assert not resume(state.acct)  # nothing left for resume to lift


def test_a_halt_other_than_the_kill_switch_lets_its_exits_alone_through() -> None:
    state = engine(price_collar=0.1)
    to_state(state, HALTED, codes.MAX_DRAWDOWN_HALT)
    # closing or reducing passes (the halt's exit); an entry, an increase or a flip does not
    assert check(state, -1, 3.0, position=3.0)[0] == 0
    assert check(state, 1, 1.0, position=-3.0)[0] == 0
    for side, quantity, position in ((1, 1.0, 0.0), (1, 1.0, 3.0), (-1, 4.0, 3.0)):
        assert refusal(state, side, quantity, position=position) == (
            "TRADING_HALTED: trading is HALTED (MAX_DRAWDOWN_HALT); only cancels are allowed"
        )
    assert not resume(state.acct)  # resume lifts the kill switch only


# --- the daily loss ------------------------------------------------------------------------------


def test_daily_loss_at_the_limit_moves_to_reducing_until_the_next_utc_day() -> None:
    state = engine(daily_loss_limit=0.125)
    observe(state, NOW, 1000.0)  # starts the day at 1000
    observe(state, NOW, 876.0)
    assert state.acct[L.A_STATE] == ACTIVE and state_rows(state) == []
    observe(state, NOW + SECOND, 875.0)  # (1000 - 875) / 1000 = 0.125: at the limit
    assert state.acct[L.A_STATE] == REDUCING
    [tripped] = state_rows(state)
    assert tripped == (ACTIVE, REDUCING, codes.DAILY_LOSS, 0.125, 0.125, 1000.0)
    assert codes.describe(codes.DAILY_LOSS, tripped[3:], codes.CodeTable())[0] == (
        "loss=0.1250, limit=0.125, day_start_equity=1000"
    )
    # Recovering within the day does not lift it.
    observe(state, NOW + 3600 * SECOND, 990.0)
    assert state.acct[L.A_STATE] == REDUCING
    assert refusal(state, 1, 1.0) == (
        "TRADING_REDUCING: trading is REDUCING (DAILY_LOSS); "
        "the order would increase the position: position=0, after=1"
    )
    assert check(state, -1, 1.0, position=2.0)[0] == 0
    # The first observation of the next UTC day lifts it and restarts the day.
    midnight = pd.Timestamp("2024-03-02T00:00Z").value
    observe(state, midnight, 800.0)
    assert state.acct[L.A_STATE] == ACTIVE
    day = midnight // (86_400 * SECOND)
    assert state_rows(state)[-1] == (REDUCING, ACTIVE, codes.DAY_ROLLOVER, day, 0.0, 0.0)
    assert (state.acct[L.A_DAY], state.acct[L.A_DAY_EQUITY]) == (day, 800.0)
    observe(state, midnight, 700.0)  # (800 - 700) / 800 = 0.125
    assert state.acct[L.A_STATE] == REDUCING
    assert state_rows(state)[-1] == (ACTIVE, REDUCING, codes.DAILY_LOSS, 0.125, 0.125, 800.0)


def test_the_utc_day_is_the_day_of_the_time_in_utc() -> None:
    state = engine(daily_loss_limit=0.5)
    observe(state, pd.Timestamp("2024-03-01T23:30Z").value, 1000.0)
    observe(state, pd.Timestamp("2024-03-02T00:30+02:00").value, 900.0)  # 22:30 UTC
    observe(state, pd.Timestamp("2024-03-01T23:59:59.999999999Z").value, 900.0)
    assert state.acct[L.A_DAY_EQUITY] == 1000.0
    observe(state, pd.Timestamp("2024-03-02T00:00Z").value, 900.0)
    assert state.acct[L.A_DAY_EQUITY] == 900.0
    assert state.acct[L.A_DAY] == pd.Timestamp("2024-03-02T00:00Z").value // (86_400 * SECOND)


@pytest.mark.parametrize("why", [codes.KILL_SWITCH, codes.ORDER_RATE])
def test_rollover_lifts_only_a_daily_loss_reduction(why: int) -> None:
    next_day = pd.Timestamp("2024-03-02T00:00Z").value
    state = engine(daily_loss_limit=0.125)
    observe(state, NOW, 1000.0)
    observe(state, NOW, 800.0)
    assert state.acct[L.A_STATE] == REDUCING
    if why == codes.KILL_SWITCH:
        kill(state.acct)
    else:  # reducing for another reason than the daily loss
        to_state(state, ACTIVE, codes.RESUME)
        to_state(state, REDUCING, why)
    before = (state.acct[L.A_STATE], state.acct[L.A_STATE_WHY], len(state_rows(state)))
    observe(state, next_day, 800.0)
    assert (state.acct[L.A_STATE], state.acct[L.A_STATE_WHY], len(state_rows(state))) == before
    assert state.acct[L.A_DAY_EQUITY] == 800.0  # the day restarts all the same


def test_a_loss_while_halted_or_reducing_changes_nothing() -> None:
    state = engine(daily_loss_limit=0.125)
    observe(state, NOW, 1000.0)
    kill(state.acct)
    observe(state, NOW, 500.0)
    assert state.acct[L.A_STATE] == HALTED and state_rows(state) == []


def test_resuming_on_a_day_still_in_breach_reduces_again() -> None:
    state = engine(daily_loss_limit=0.125)
    observe(state, NOW, 1000.0)
    kill(state.acct)
    resume(state.acct)
    observe(state, NOW, 850.0)
    assert state.acct[L.A_STATE] == REDUCING
    assert state_rows(state) == [(ACTIVE, REDUCING, codes.DAILY_LOSS, 0.15, 0.125, 1000.0)]


def test_without_a_limit_the_day_is_not_tracked() -> None:
    state = engine()
    observe(state, NOW, 1000.0)
    observe(state, NOW, 1.0)
    assert state.acct[L.A_DAY] == -1.0
    assert state.acct[L.A_STATE] == ACTIVE and state.count == 0


@pytest.mark.parametrize("start", [0.0, -100.0])
def test_a_day_that_starts_without_equity_cannot_lose_a_share_of_it(start: float) -> None:
    state = engine(daily_loss_limit=0.125)
    observe(state, NOW, start)
    observe(state, NOW, start - 1000.0)
    assert state.acct[L.A_STATE] == ACTIVE and state.count == 0
