"""Pre-trade checks: each limit at its boundary, the rate window, the UTC day, the states."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.domain import Order, Rejection
from tradeloom.runner.pretrade import PreTradeChecks, PreTradeContext
from tradeloom.runner.trading_state import StateChange, TradingState, TradingStateMachine
from tradeloom.schemas.limits import PreTradeLimits

T0 = pd.Timestamp("2024-03-01T12:00Z")
SECOND = pd.Timedelta(seconds=1)


def order(
    side: int = 1, quantity: float = 1.0, price: float = 100.0, at: pd.Timestamp = T0
) -> Order:
    return Order("s-r-000001", 7, at, side, quantity, "signal", price)


def context(
    position: float = 0.0,
    last_price: float = 100.0,
    equity: float = 1000.0,
    now: pd.Timestamp = T0,
) -> PreTradeContext:
    return PreTradeContext(now=now, position=position, last_price=last_price, equity=equity)


def checks(state: TradingStateMachine | None = None, **limits: float) -> PreTradeChecks:
    return PreTradeChecks(PreTradeLimits.model_validate(limits), state)


def code(rejection: Rejection | None) -> str | None:
    return None if rejection is None else rejection.code


def test_without_limits_every_order_passes_while_active() -> None:
    pre = checks()
    assert pre.check(order(1, 1e9, 1e9), context(position=1e9, equity=1.0)) is None


def test_max_order_notional_at_the_limit_passes_above_is_refused() -> None:
    pre = checks(max_order_notional=1000.0)
    assert pre.check(order(1, 10.0, 100.0), context()) is None
    rejection = pre.check(order(-1, 10.5, 100.0), context())
    assert rejection == Rejection(
        7,
        T0,
        "MAX_ORDER_NOTIONAL",
        "notional=1050, limit=1000",
        {"notional": 1050.0, "limit": 1000.0},
    )
    assert str(rejection) == "MAX_ORDER_NOTIONAL: notional=1050, limit=1000"


def test_max_order_notional_values_an_order_without_a_price_at_the_last_price() -> None:
    pre = checks(max_order_notional=1000.0)
    assert code(pre.check(order(1, 10.0, math.nan), context(last_price=100.0))) is None
    assert code(pre.check(order(1, 10.0, math.nan), context(last_price=101.0))) == (
        "MAX_ORDER_NOTIONAL"
    )


def test_max_position_at_the_limit_passes_above_is_refused_both_ways() -> None:
    pre = checks(max_position_quantity=2.0)
    assert pre.check(order(1, 0.5), context(position=1.5)) is None
    rejection = pre.check(order(1, 0.75), context(position=1.5))
    assert rejection is not None
    assert str(rejection) == "MAX_POSITION: position_after=2.25, limit=2"
    # A flip is checked on the position it leaves behind.
    assert pre.check(order(-1, 3.0), context(position=1.0)) is None
    assert code(pre.check(order(-1, 3.5), context(position=1.0))) == "MAX_POSITION"


def test_price_collar_at_the_edges_passes_beyond_is_refused() -> None:
    pre = checks(price_collar=0.25)
    assert pre.check(order(1, 1.0, 125.0), context(last_price=100.0)) is None
    assert pre.check(order(1, 1.0, 75.0), context(last_price=100.0)) is None
    rejection = pre.check(order(1, 1.0, 125.5), context(last_price=100.0))
    assert rejection is not None
    assert str(rejection) == ("PRICE_COLLAR: price=125.5, last=100, collar=0.25, allowed=[75, 125]")
    assert code(pre.check(order(-1, 1.0, 74.5), context(last_price=100.0))) == "PRICE_COLLAR"


def test_reducing_orders_skip_notional_position_and_collar() -> None:
    pre = checks(max_order_notional=100.0, max_position_quantity=2.0, price_collar=0.25)
    # Long 5 (above a lowered limit), closing notional 1000, last price gapped 2x.
    trapped = context(position=5.0, last_price=200.0)
    assert pre.check(order(-1, 5.0, 100.0), trapped) is None
    assert pre.check(order(-1, 1.0, 100.0), trapped) is None
    # The same order one unit past flat is not reducing and meets every limit again.
    assert code(pre.check(order(-1, 6.0, 100.0), trapped)) == "MAX_ORDER_NOTIONAL"
    assert code(pre.check(order(1, 1.0, 200.0), trapped)) == "MAX_ORDER_NOTIONAL"


def test_rate_window_slides_and_the_60th_second_is_outside_it() -> None:
    pre = checks(max_orders_per_minute=3)
    for seconds in (0, 10, 20):
        at = T0 + seconds * SECOND
        assert pre.check(order(at=at), context(now=at)) is None
        pre.record_sent(order(at=at))
    rejection = pre.check(order(), context(now=T0 + 59.999 * SECOND))
    assert rejection is not None
    assert str(rejection) == "ORDER_RATE: orders_sent_last_60s=3, limit=3"
    assert rejection.timestamp == T0 + 59.999 * SECOND
    # The send at T0 leaves the window (now - 60 s, now] exactly at T0 + 60 s.
    assert pre.orders_in_window(T0 + 60 * SECOND) == 2
    assert pre.check(order(), context(now=T0 + 60 * SECOND)) is None
    pre.record_sent(order(), at=T0 + 60 * SECOND)
    assert code(pre.check(order(), context(now=T0 + 70 * SECOND - 0.001 * SECOND))) == "ORDER_RATE"
    assert pre.check(order(), context(now=T0 + 70 * SECOND)) is None


def test_rate_limit_applies_to_reducing_orders_and_checks_alone_do_not_count() -> None:
    pre = checks(max_orders_per_minute=1)
    for _ in range(5):
        assert pre.check(order(-1, 1.0), context(position=3.0)) is None
    pre.record_sent(order(-1, 1.0))
    assert code(pre.check(order(-1, 1.0), context(position=2.0))) == "ORDER_RATE"


def test_halted_refuses_every_order_even_a_reducing_one() -> None:
    state = TradingStateMachine()
    pre = checks(state)
    state.halt("KILL_SWITCH", "tradeloom kill", T0)
    for side, position in ((1, 0.0), (-1, 3.0), (1, -3.0), (1, 3.0)):
        rejection = pre.check(order(side, 1.0), context(position=position))
        assert rejection is not None
        assert rejection.message == (
            "trading is HALTED (KILL_SWITCH: tradeloom kill); only cancels are allowed"
        )
    state.resume("tradeloom resume", T0)
    assert pre.check(order(1, 1.0), context()) is None


def test_reducing_allows_a_partial_close_but_not_a_flip_or_an_increase() -> None:
    state = TradingStateMachine()
    state.move_to(TradingState.REDUCING, "OPERATOR", "reduce only", T0)
    pre = checks(state)
    assert pre.check(order(-1, 1.0), context(position=3.0)) is None
    assert pre.check(order(-1, 3.0), context(position=3.0)) is None
    flip = pre.check(order(-1, 4.0), context(position=3.0))
    assert flip is not None
    assert str(flip) == (
        "TRADING_REDUCING: trading is REDUCING (OPERATOR: reduce only); "
        "the order would flip the position: position=3, after=-1"
    )
    increase = pre.check(order(1, 1.0), context(position=3.0))
    assert increase is not None
    assert increase.message.endswith("would increase the position: position=3, after=4")
    assert code(pre.check(order(1, 1.0), context(position=0.0))) == "TRADING_REDUCING"


def test_daily_loss_at_the_limit_moves_to_reducing_until_the_next_utc_day() -> None:
    pre = checks(daily_loss_limit=0.125)
    assert pre.check(order(), context(equity=1000.0)) is None  # starts the day at 1000
    assert pre.check(order(), context(equity=876.0)) is None
    assert pre.state.state is TradingState.ACTIVE
    rejection = pre.check(order(), context(equity=875.0, now=T0 + SECOND))
    assert rejection == Rejection(
        7,
        T0 + SECOND,
        "DAILY_LOSS",
        "loss=0.1250, limit=0.125, day_start_equity=1000",
        {"loss": 0.125, "limit": 0.125, "day_start_equity": 1000.0},
    )
    assert pre.state.last_change == StateChange(
        TradingState.ACTIVE,
        TradingState.REDUCING,
        "DAILY_LOSS",
        "loss=0.1250, limit=0.125, day_start_equity=1000",
        T0 + SECOND,
    )
    # Recovering within the day does not lift it.
    later = pre.check(order(), context(equity=990.0, now=T0 + 3600 * SECOND))
    assert later is not None
    assert later.message.startswith("trading is REDUCING (DAILY_LOSS: loss=0.1250")
    assert pre.check(order(-1, 1.0), context(position=2.0, equity=990.0)) is None
    # The first observation of the next UTC day lifts it and restarts the day.
    midnight = pd.Timestamp("2024-03-02T00:00Z")
    assert pre.check(order(), context(equity=800.0, now=midnight)) is None
    assert pre.state.state is TradingState.ACTIVE
    assert pre.state.last_change is not None
    assert pre.state.last_change.code == "DAY_ROLLOVER"
    assert pre.day_start == (dt.date(2024, 3, 2), 800.0)
    assert code(pre.check(order(), context(equity=700.0, now=midnight))) == "DAILY_LOSS"


def test_the_utc_day_is_the_day_of_the_timestamp_in_utc() -> None:
    pre = checks(daily_loss_limit=0.5)
    pre.observe(pd.Timestamp("2024-03-01T23:30Z"), 1000.0)
    # 00:30 in UTC+2 is still 22:30 UTC of the same day.
    pre.observe(pd.Timestamp("2024-03-02T00:30+02:00"), 900.0)
    assert pre.day_start == (dt.date(2024, 3, 1), 1000.0)
    pre.observe(pd.Timestamp("2024-03-02T00:00Z"), 900.0)
    assert pre.day_start == (dt.date(2024, 3, 2), 900.0)


def test_a_reducing_order_that_finds_the_breach_passes_and_trips_the_state() -> None:
    pre = checks(daily_loss_limit=0.125)
    pre.observe(T0, 1000.0)
    assert pre.check(order(-1, 1.0), context(position=2.0, equity=800.0)) is None
    assert pre.state.state is TradingState.REDUCING


def test_rollover_lifts_only_a_daily_loss_reduction() -> None:
    next_day = pd.Timestamp("2024-03-02T00:00Z")
    for move in ("operator", "halt"):
        state = TradingStateMachine()
        pre = checks(state, daily_loss_limit=0.125)
        pre.observe(T0, 1000.0)
        assert pre.observe(T0, 800.0) is not None
        if move == "operator":
            state.move_to(TradingState.ACTIVE, "OPERATOR", "x", T0)
            state.move_to(TradingState.REDUCING, "OPERATOR", "reduce only", T0)
        else:
            state.halt("KILL_SWITCH", "tradeloom kill", T0)
        before = state.state
        assert pre.observe(next_day, 800.0) is None
        assert state.state is before


def test_resuming_on_a_day_still_in_breach_reduces_again() -> None:
    state = TradingStateMachine()
    pre = checks(state, daily_loss_limit=0.125)
    pre.observe(T0, 1000.0)
    state.halt("KILL_SWITCH", "tradeloom kill", T0)
    state.resume("tradeloom resume", T0)
    assert code(pre.check(order(), context(equity=850.0))) == "DAILY_LOSS"
    assert pre.state.state is TradingState.REDUCING


def test_a_restarted_run_keeps_its_day_start() -> None:
    pre = PreTradeChecks(
        PreTradeLimits(daily_loss_limit=0.125), day_start=(dt.date(2024, 3, 1), 1000.0)
    )
    assert code(pre.check(order(), context(equity=875.0))) == "DAILY_LOSS"


@given(
    limit=st.integers(min_value=1, max_value=5),
    gaps_ms=st.lists(
        st.one_of(st.just(0), st.integers(min_value=0, max_value=40_000)), max_size=60
    ),
)
def test_rate_limiter_never_lets_more_than_n_through_in_any_60s(
    limit: int, gaps_ms: list[int]
) -> None:
    pre = checks(max_orders_per_minute=limit)
    now, sent = T0, []
    for gap in gaps_ms:
        now = now + pd.Timedelta(milliseconds=gap)
        in_window = sum(1 for s in sent if now - pd.Timedelta(seconds=60) < s <= now)
        passed = pre.check(order(at=now), context(now=now)) is None
        # Refused exactly when the window is full: never too strict, never too loose.
        assert passed is (in_window < limit)
        if passed:
            pre.record_sent(order(at=now))
            sent.append(now)
    for start in sent:
        assert sum(1 for s in sent if start <= s < start + pd.Timedelta(seconds=60)) <= limit


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
    state = TradingStateMachine()
    state.move_to(TradingState.REDUCING, "OPERATOR", "reduce only", T0)
    pre = checks(state, max_order_notional=50.0, max_position_quantity=1.0, price_collar=0.1)
    start_sign = 1 if position > 0 else -1
    for side, fraction, price in steps:
        quantity = fraction * (abs(position) or 1.0)
        if quantity <= 0:
            continue
        if pre.check(order(side, quantity, price), context(position=position)) is not None:
            continue
        after = position + side * quantity
        assert abs(after) <= abs(position)
        assert after * start_sign >= 0
        position = after
