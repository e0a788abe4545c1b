"""The order of a bar and the rejection ladder: `run_bars`, the one step every mode runs.

A bar, for every symbol of the strategy (in symbol order where a stage goes through
them):

1. **begin**: the model's folds that start predicting at this bar are journaled;
2. **open**: a perpetual's funding due in the bar is booked on the position carried
   into it (`tradeloom.core.funding`); then the venue fills what is due at the bar's
   open (orders decided at the previous close under ``fill: next_open``): exits and
   reductions before entries and increases, across every symbol
   (`tradeloom.core.sequence`);
3. **protect**: a stop (the stop-loss, the break-even or the trailing stop, whichever
   is tightest), take-profit or (margin accounts) liquidation that the bar's range
   reaches exits during the bar (`tradeloom.core.exits`), and a partial take-profit
   level it reaches closes its share (`tradeloom.core.scaling`; not inside a bar that
   reaches the stop or the liquidation price); the working order is cancelled first
   (``PROTECTIVE_EXIT``; one a Python venue works on, its cancel without effect, holds
   the exit, ``CANCEL_UNCONFIRMED``: the next bar's range decides again). The
   stop-loss, the break-even stop and the partial levels measure from the position's
   average entry price, which an add moves;
4. **mark**: the best price of each open trade takes the bar's high (a short: its
   low) and the trailing stop follows it, after the bar's check (`_follow`); the
   positions are marked to the close; the daily-loss clock observes the equity
   (`tradeloom.core.risk.observe_day`);
5. **monitor**: the monitors and health rules see the bar (Python; a health halt
   latches here and closes every position at step 7);
6. **regime**: the bar's regime label is journaled when it changes;
7. **halts**: zero equity (``NO_EQUITY``), a drawdown rule or a plugin's rule may
   halt trading: every position is closed (``EXIT_HALT``); the kill switch's flatten
   closes every position while the kill holds (``EXIT_FLATTEN``, the one order the
   kill lets through, `tradeloom.core.risk.pretrade_check`); either goes again at each
   bar whose position its exit has not closed (`tradeloom.core.risk.halt_unwinds`).
   Otherwise a position held ``max_holding_bars`` is closed (``EXIT_MAX_HOLDING``);
   under ``stops: bar_close``, a close through a stop or the take-profit closes it; at
   the bar whose span holds ``risk.exit_time``, it is closed (``EXIT_TIME``). Dust is
   not: the exit it meets is journaled, once (`tradeloom.core.dust`);
8. **allocate** (with ``allocation:`` only): the step stops for Python, which, at a
   rebalance the schedule asks for, sets each symbol's intent to its target weight
   (``REBALANCE``, `tradeloom.engine.allocating`); the signal stage and the ladder are
   then not run (the allocator decides the positions); the intents go to **send**;
   **signal**: the signal rule sees the bar's probability;
9. **decide**, the rejection ladder, for a signal: a regime not in
   ``signal.regimes`` -> filtered; the halt latch -> ``HALTED`` for a signal that
   would send an order (one in the side held is a hold, its add ``HALTED``); a signal
   on a side ``signal.sides`` does not trade, while flat -> hold; a short on a
   long-only venue while flat -> ``SHORT_NOT_ALLOWED`` (either, over dust, a position
   no order could close: ``BELOW_MINIMUM``, `tradeloom.core.dust`); the side already
   held -> hold (or ignored, when an exit of this bar closes it), unless it is an add
   (``SCALE_IN``, or ``SCALE_IN_CAP`` at the cap, `tradeloom.core.scaling`), which
   goes on down the ladder as an entry; an exit from a long on a long-only venue, or
   from the side held by a signal on the side ``signal.sides`` bars -> the exit; an
   entry from flat within ``risk.cooldown_bars`` of the last exit's fill ->
   ``COOLDOWN``; an anomalous bar -> ``ANOMALY``; equity <= 0 ->
   ``NO_EQUITY``; the sizing (`tradeloom.core.sizing`: ``KELLY_NO_EDGE``,
   ``NO_RISK_ESTIMATE``, a plugin's code); a plugin's risk
   rules; else accepted, or, with ``signal.top_k`` or ``risk.portfolio``, a
   candidate: once every symbol went down the ladder, the candidates are ranked by
   confidence and checked against the portfolio limits in rank order
   (`tradeloom.core.portfolio`). A refused entry or reversal still exits what is held;
10. **send**: exits and reductions first, then entries and increases
    (`tradeloom.core.sequence.sends_first`); the intent's order (target minus
    position, sized at the close) first cancels the working order (``REPLACED``; one a
    Python venue works on, its cancel without effect, refuses the intent
    ``CANCEL_UNCONFIRMED`` and sends nothing for the symbol; a held exit of a halt or
    of the kill's flatten goes again at the next bar); an
    order, or its target, below the venue's minimum is refused (``BELOW_MINIMUM``,
    `tradeloom.core.dust`; a refused reversal still exits; a rebalance's target below it
    is a target of zero: the position is closed); else it passes the pre-trade checks
    (`tradeloom.core.risk.pretrade_check`; a margin account's checks an entry or an
    increase with the exits and reductions sent before it counted as filled) and goes
    to the venue;
11. **close**: under ``fill: close`` the venue fills it at the close, in the open's
    order (`tradeloom.core.sequence`).

Every layer a built-in component implements runs here, compiled; a layer a plugin
implements, the live venue, and the monitors are Python: the step stops with a
*need* (`tradeloom.core.layout` ``NEED_*``), the driver answers it (writes ``io``,
or feeds the venue's events with `tradeloom.core.feed`) and calls again; the step
resumes where it stopped. A backtest of built-in components runs every bar in one
call. Everything that happens is an event row (`tradeloom.core.rows`: ``emit_fill``...).
"""

from __future__ import annotations

import math

from tradeloom.core import codes
from tradeloom.core.accounting import is_dust, mark_equity
from tradeloom.core.context import Bars, FillCosts, Order, Settings, State, settings
from tradeloom.core.dust import (
    at_zero_target,
    below_minimum,
    note_dust,
    refuse_below_minimum,
    zero_target,
)
from tradeloom.core.exits import (
    OpenTrade,
    StopSettings,
    active_stop,
    atr_update,
    close_exit_at,
    cooling_down,
    holding_expired,
    liquidation_price,
    protective_exit_at,
    ratchet,
    resting_stop,
    stop_levels,
    time_exit_due,
    trail_level,
)
from tradeloom.core.funding import FUNDING_ROW, book_funding
from tradeloom.core.intent import accept, fall_back, signal_purpose
from tradeloom.core.kernels.sizing import sizing_quantity
from tradeloom.core.kernels.threshold import threshold_step
from tradeloom.core.latency import cancel_ms, cancel_too_late, send_ms
from tradeloom.core.layout import (
    A_CASH,
    A_EQUITY,
    A_EXIT_HALT,
    A_FLATTEN,
    A_HALT,
    A_PEAK,
    A_SEND_PASS,
    A_SEND_SEQ,
    A_SEND_SPLIT,
    A_SEQ,
    A_STATE,
    C_BASE,
    C_COUNT,
    C_NEED,
    C_STAGE,
    C_SYM,
    C_T,
    IO_CODE,
    IO_CONF,
    IO_DIR,
    IO_FRACTION,
    IO_P,
    IO_PENDING,
    IO_QUANTITY,
    IO_REF,
    LIQ_TAKER,
    MAX_TP_LEVELS,
    NEED_ALLOCATE,
    NEED_BAR,
    NEED_BUFFER,
    NEED_CANCEL,
    NEED_CHECK,
    NEED_CLOSE,
    NEED_DONE,
    NEED_MONITOR,
    NEED_OPEN,
    NEED_QUANTITY,
    NEED_RULES,
    NEED_SEND,
    NEED_SIGNAL,
    NEED_SIZE,
    NEED_STOP,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_STOP,
    P_ALLOW_SHORT,
    P_BREAK_EVEN,
    P_COOLDOWN,
    P_LIMIT_OFFSET,
    P_LIQUIDATION_FEE,
    P_MAINTENANCE_MARGIN,
    P_REGIME_FILTER,
    P_SIDES,
    P_SIZE_SCALE,
    P_STOP_LOSS,
    P_TAKE_PROFIT,
    P_TIMEFRAME_NS,
    P_TRAIL_ATR,
    P_TRAIL_MULTIPLE,
    P_TRAILING,
    PORT_ORDER,
    S_ATR,
    S_ATR_END,
    S_BEST,
    S_CANDIDATE,
    S_DUST_MERGE,
    S_ENTRY_BAR,
    S_ENTRY_PRICE,
    S_EXIT_BAR,
    S_I_DIR,
    S_I_REASON,
    S_I_TARGET,
    S_MARK,
    S_O_QTY,
    S_P_LEVEL,
    S_P_REASON,
    S_PA_SEQ,
    S_QTY,
    S_REGIME,
    S_SC_QTY,
    S_SIG_LAST,
    S_STOP_TRADED,
    S_TRAIL,
    S_W_ACTIVE,
    S_W_ARRIVE,
    S_W_BAR,
    S_W_DIR,
    S_W_FIRST,
    S_W_QTY,
    S_W_SEQ,
    S_W_SIDE,
    S_W_STOP,
    S_W_TYPE,
    S_X_CONF,
    S_X_DIR,
    S_X_HELD,
    S_X_P,
    S_X_SIZE,
    STAGE_BEGIN,
    STAGE_CANCELLED,
    STAGE_CHECKED,
    STAGE_CLOSE,
    STAGE_DECIDE,
    STAGE_END,
    STAGE_HALTS,
    STAGE_MARK,
    STAGE_MONITOR,
    STAGE_OPEN,
    STAGE_PROTECT,
    STAGE_QUANTITY,
    STAGE_REGIME,
    STAGE_SEND,
    STAGE_SENT,
    STAGE_SIGNAL,
    STAGE_SIZED,
)
from tradeloom.core.orders import (
    cancel_working,
    choose_order,
    execute,
    limit_arrives,
    limit_at_open,
    limit_price,
    next_child,
    send_order,
    signal_reason,
    start_parent,
)
from tradeloom.core.portfolio import decide_candidates, push_returns
from tradeloom.core.quiet import quiet_bars
from tradeloom.core.risk import (
    halt_unwinds,
    kill_holds,
    move_state,
    observe_day,
    pretrade_check,
    record_send,
)
from tradeloom.core.rows import (
    Liquidation,
    emit_decision,
    emit_halt,
    emit_liquidation,
    emit_regime,
    emit_rejection,
    emit_signal,
    emit_training,
)
from tradeloom.core.scaling import accept_add, add_sent, partial_exit, wants_add
from tradeloom.core.sequence import sends_first, sequence_fills
from tradeloom.core.sizing import observe_volatility, size_signal
from tradeloom.kernels.jit import core_kernel, core_loop, core_stage
from tradeloom.runtime.lazy import numpy as np

__all__ = ["ROWS_PER_SYMBOL", "SCRATCH_SIZE", "run_bars"]

SCRATCH_SIZE = 16
"""Floats of `run_bars`'s ``scratch`` (it allocates nothing itself)."""

ROWS_PER_SYMBOL = 29 + 3 * MAX_TP_LEVELS
"""Most event rows one bar writes per symbol (the step checks for room once per bar):
each partial take-profit level may write an order, a fill and a trade."""

# Sub-stages of the per-symbol stages that stop for Python (resume points).
STAGE_PROTECT_ORDER = 20
STAGE_HALTS_RULED = 21
STAGE_SIGNALLED = 22
STAGE_PROTECT_SENT = 23
STAGE_PARTIAL_SENT = 24  # a Python venue took symbol s's partial take-profit: more may fill


@core_kernel
def _save(cur: np.ndarray, t: int, stage: int, symbol: int, need: int) -> int:
    cur[C_T] = t
    cur[C_STAGE] = stage
    cur[C_SYM] = symbol
    cur[C_NEED] = need
    return need


@core_kernel
def _direction(quantity: float, dust: bool) -> int:
    """Return the side held: +1, -1, or 0 for flat (no position, or ``dust``)."""
    if dust or quantity == 0.0:
        return 0
    return 1 if quantity > 0.0 else -1


@core_kernel
def _other_equity(acct: np.ndarray, sym: np.ndarray, s: int) -> float:
    """Return cash plus every position but symbol ``s``'s, at their marks."""
    other: float = acct[A_CASH]
    for k in range(sym.shape[0]):
        if k != s and sym[k, S_QTY] != 0.0:
            other += sym[k, S_QTY] * sym[k, S_MARK]
    return other


@core_kernel
def _gross_after(sym: np.ndarray, s: int, after: float, price: float, acct: np.ndarray) -> float:
    """Return the account's gross notional once symbol ``s`` holds ``after`` (at ``price``)
    and the orders of the send stage's first pass (exits and reductions, sequence numbers
    in ``(A_SEND_SEQ, A_SEND_SPLIT]``) have filled: the bar's sales, sent first, free
    their margin before its purchases are checked (`tradeloom.core.risk.pretrade_check`).

    The second pass's orders are not counted: each entry or increase is checked as if it
    were the bar's only one, whatever the symbols' order (as before its sales were).
    """
    first, split = acct[A_SEND_SEQ], acct[A_SEND_SPLIT]
    gross = abs(after) * price
    for k in range(sym.shape[0]):
        if k != s:
            held = sym[k, S_QTY]
            if first < sym[k, S_W_SEQ] <= split:  # nothing fills before the close
                held += sym[k, S_W_SIDE] * sym[k, S_W_QTY]
            gross += abs(held) * sym[k, S_MARK]
    return gross


@core_kernel
def _atr_now(sym: np.ndarray, s: int, window: int) -> float:
    """Return symbol ``s``'s ATR up to its last bar (NaN: fewer than ``window`` + 1 bars)."""
    if window <= 0 or sym[s, S_ATR + 2] < window:
        return math.nan
    return sym[s, S_ATR + 3]  # type: ignore[no-any-return]


@core_kernel
def _stop(
    sym: np.ndarray, prm: np.ndarray, s: int, direction: int, stop_loss: float, follow: bool
) -> tuple[int, float]:
    """Return the stop resting under symbol ``s``'s position: its reason and price.

    `tradeloom.core.exits.active_stop` over the trade's state; ``follow`` off: the
    stop-loss alone (``stops: bar_close`` watches the others at the close).
    """
    entry = sym[s, S_ENTRY_PRICE]
    if not follow:
        return active_stop(direction, entry, math.nan, math.nan, stop_loss, math.nan)
    atr = _atr_now(sym, s, int(prm[P_TRAIL_ATR]))
    trade = OpenTrade(direction, entry, sym[s, S_BEST], sym[s, S_TRAIL], atr)
    stops = StopSettings(stop_loss, prm[P_BREAK_EVEN], prm[P_TRAILING], prm[P_TRAIL_MULTIPLE])
    return resting_stop(trade, stops)


@core_stage
def _follow(sym: np.ndarray, prm: np.ndarray, px: np.ndarray, i: int) -> None:
    """Take the bar into each open trade's best price and trailing stop (after its check).

    The ATR of an ATR distance takes every bar of the symbol, flat or not.
    """
    window = int(prm[P_TRAIL_ATR])
    trailing = prm[P_TRAILING]
    multiple = prm[P_TRAIL_MULTIPLE]
    for s in range(sym.shape[0]):
        high, low, close = px[1, i, s], px[2, i, s], px[3, i, s]
        if close != close:  # no bar
            continue
        atr = math.nan
        before = math.nan  # the ATR the bar's check read (up to the bar before)
        if window > 0:
            before = _atr_now(sym, s, window)
            atr = atr_update(sym[s, S_ATR:S_ATR_END], high, low, close, window)
        quantity = sym[s, S_QTY]
        if quantity == 0.0:
            continue
        direction = 1 if quantity > 0.0 else -1
        entry = sym[s, S_ENTRY_PRICE]
        best = sym[s, S_BEST]
        if best != best:
            best = entry
        best = max(best, high) if direction > 0 else min(best, low)
        sym[s, S_BEST] = best
        if window > 0 or trailing == trailing:
            trail = sym[s, S_TRAIL]
            if trail != trail:  # the trade's first bar: the level `_stop` read at it,
                # from the entry at the ATR before the bar (an ATR the bar widened must
                # not lower it below the level that was in force during the bar)
                trail = trail_level(direction, entry, before, trailing, multiple)
            sym[s, S_TRAIL] = ratchet(
                direction, trail, trail_level(direction, best, atr, trailing, multiple)
            )


@core_kernel
def _ladder(st: State, t: int, s: int, regime: int, anomalous: bool, score: float) -> bool:
    """Run the signal down the ladder up to the sizing; return whether to size it.

    Journals the signal and any outcome before the sizing; sets the intent where the
    ladder ends early.
    """
    acct, sym, prm, ev, cur = st.acct, st.sym, st.prm, st.ev, st.cur
    wanted = int(sym[s, S_X_DIR])
    emit_signal(ev, cur, t, s, wanted, sym[s, S_X_CONF], sym[s, S_X_P])
    held = (
        int(sym[s, S_W_DIR])
        if sym[s, S_W_ACTIVE] != 0.0
        else _direction(sym[s, S_QTY], is_dust(sym, prm, s, sym[s, S_QTY]))
    )
    sym[s, S_X_HELD] = held
    allow_short = prm[P_ALLOW_SHORT] != 0.0
    regime_filter = int(prm[P_REGIME_FILTER])
    intent = int(sym[s, S_I_REASON])
    if regime_filter != 0 and (regime & regime_filter) == 0:
        emit_decision(ev, cur, t, s, codes.FILTERED, regime, 0.0)
        return False
    # a halt refuses what the signal would send; a signal in the direction held sends
    # nothing unless it adds, so it is a hold (or an add refused) below, not a refusal
    halted = acct[A_HALT] != 0.0
    if halted and held != wanted:
        emit_rejection(ev, cur, t, s, codes.HALTED, (acct[A_HALT],), signal_purpose(sym, s))
        return False
    # a side signal.sides does not trade asks for flat (`sides`: the one side traded);
    # a short on a long-only venue can only close a long
    sides = int(prm[P_SIDES])
    barred = sides != 0 and wanted == -sides
    one_way = barred or (wanted == -1 and not allow_short)
    if one_way and held != -wanted:
        quantity = sym[s, S_QTY]
        # no working order, yet a position held as flat: worth less than the minimum, so
        # no exit can be sent (with a working exit, it is not dust: it is leaving)
        if quantity * wanted < 0.0 and sym[s, S_W_ACTIVE] == 0.0:
            refuse_below_minimum(sym, prm, ev, cur, t, s, abs(quantity), codes.EXIT_SIGNAL)
        elif barred:
            emit_decision(ev, cur, t, s, codes.HOLD, sides, 0.0)  # flat, or the side barred
        else:
            emit_rejection(ev, cur, t, s, codes.SHORT_NOT_ALLOWED, (), signal_purpose(sym, s))
        return False
    if held == wanted:
        # an add (`tradeloom.core.scaling`) goes on down the ladder as an entry; a
        # position at its cap journals why it is not one (-1)
        add = wants_add(acct, sym, prm, ev, cur, t, s) if intent == 0 else 0
        if add <= 0:
            if intent != 0:
                emit_decision(ev, cur, t, s, codes.IGNORED, intent, 0.0)
            elif add == 0:
                emit_decision(ev, cur, t, s, codes.HOLD, 0, 0.0)
            return False
        if halted:
            emit_rejection(ev, cur, t, s, codes.HALTED, (acct[A_HALT],), codes.SCALE_IN)
            return False
    if one_way:  # held the other way: the signal closes it
        fall_back(sym, s)
        return False
    cooldown = int(prm[P_COOLDOWN])
    if held == 0 and cooling_down(t, sym[s, S_EXIT_BAR], cooldown):
        exit_bar = sym[s, S_EXIT_BAR]
        values = (t - exit_bar, float(cooldown), exit_bar)
        emit_rejection(ev, cur, t, s, codes.COOLDOWN, values, signal_purpose(sym, s))
        fall_back(sym, s)
        return False
    if anomalous:
        emit_rejection(ev, cur, t, s, codes.ANOMALY, (score,), signal_purpose(sym, s))
        fall_back(sym, s)
        return False
    equity = acct[A_EQUITY]
    if equity <= 0.0:
        emit_rejection(ev, cur, t, s, codes.NO_EQUITY_REJECT, (equity,), signal_purpose(sym, s))
        fall_back(sym, s)
        return False
    return True


@core_kernel
def _begin(st: State, bars: Bars, t: int, i: int) -> int:
    """Stage 1: check for room, journal the bar's trainings, clear the bar's scratch."""
    sym, ev, cur = st.sym, st.ev, st.cur
    nsym = sym.shape[0]
    if cur[C_COUNT] + ROWS_PER_SYMBOL * nsym + bars.trainings[i] + 8 > ev.shape[0]:
        return _save(cur, t, STAGE_BEGIN, 0, NEED_BUFFER)
    for k in range(bars.trainings[i]):
        emit_training(ev, cur, t, k)
    for s in range(nsym):
        sym[s, S_I_REASON] = 0.0
        sym[s, S_X_DIR] = 0.0
    return NEED_DONE


@core_kernel
def _open(st: State, bars: Bars, cfg: Settings, t: int, i: int) -> int:
    """Stage 2: a perpetual's funding, then the fills due at the open."""
    acct, sym, prm, ev, cur = st.acct, st.sym, st.prm, st.ev, st.cur
    px = bars.px
    nsym = sym.shape[0]
    if cfg.funding:
        for s in range(nsym):
            book_funding(acct, sym, ev, cur, t, s, px[FUNDING_ROW, i, s], px[0, i, s])
    if cfg.ext_venue:
        return _save(cur, t, STAGE_PROTECT, 0, NEED_OPEN)
    fill_at_close = cfg.fill_at_close
    if not fill_at_close or cfg.limits_on:
        taker = FillCosts(cfg.slippage, cfg.fee, LIQ_TAKER)
        # exits and reductions first, then entries (`tradeloom.core.sequence`)
        order = st.port[PORT_ORDER]
        n = 0
        for s in range(nsym):
            if (
                sym[s, S_W_ACTIVE] != 0.0
                and sym[s, S_W_ARRIVE] <= t  # it reached the venue (`core.latency`)
                and sym[s, S_W_STOP] == 0.0
                and px[0, i, s] == px[0, i, s]  # the symbol has a bar
                and (sym[s, S_W_TYPE] == ORDER_LIMIT or not fill_at_close)
            ):
                order[n] = s
                n += 1
        sequence_fills(sym, px, 0, i, order, n)
        for k in range(n):
            s = int(order[k])
            if sym[s, S_W_TYPE] == ORDER_LIMIT:
                if limit_at_open(
                    st, t, s, px[0, i, s], px[1, i, s], px[2, i, s], px[4, i, s],
                    cfg.volume_cap,
                ):  # fmt: skip
                    record_send(acct, prm, st.sent, bars.time_ns[i])
            else:
                execute(st, t, s, px[0, i, s], px[4, i, s], cfg.volume_cap, taker)
    return NEED_DONE


@core_kernel
def _cancel_unended(st: State, t: int, s: int, reason: int) -> bool:
    """Refuse the order that was to follow the cancel of symbol ``s``'s working order when
    the Python venue works that order on; return whether it was refused.

    The cancel took no effect (a live order whose end, and what it filled, are not
    known: ``io[IO_PENDING]``, its number): nothing is sent for the symbol, so an exit
    (``reason``: a protective exit's, a halt's) never sells what the order may sell too,
    and one intent never has two orders. ``CANCEL_UNCONFIRMED`` names the order and the
    refused order's reason; the next bar decides again (a stop its range reaches, a new
    signal) and cancels the order again first. A halt's exit and the kill's flatten are
    decided once, at the bar that latched them: held, they go again at the next bar
    (``A_EXIT_HALT``), else the order that held them would hold them until it ends.
    """
    io = st.io
    if io[IO_PENDING] == 0.0:
        return False
    emit_rejection(st.ev, st.cur, t, s, codes.CANCEL_UNCONFIRMED, (io[IO_PENDING],), reason)
    io[IO_PENDING] = 0.0
    acct = st.acct
    if reason == codes.EXIT_FLATTEN:
        acct[A_EXIT_HALT] = 2.0
    elif reason == codes.EXIT_HALT and acct[A_EXIT_HALT] == 0.0:
        acct[A_EXIT_HALT] = 1.0
    return True


@core_kernel
def _protect(st: State, bars: Bars, cfg: Settings, t: int, i: int, stage: int, s: int) -> int:
    """Stage 3: the protective exits the bar's range reaches, from symbol ``s`` on.

    ``stage`` is where a Python venue left it (`STAGE_PROTECT` at a bar's first call).
    """
    acct, sym, prm, ev, cur, io = st.acct, st.sym, st.prm, st.ev, st.cur, st.io
    px = bars.px
    nsym = sym.shape[0]
    margin = cfg.margin
    stop_loss, take_profit, follow = cfg.stop_loss, cfg.take_profit, cfg.follow
    sub = stage
    if sub == STAGE_PROTECT_SENT:  # a Python venue took symbol s's exit
        s += 1
        sub = STAGE_PROTECT
    elif sub == STAGE_PARTIAL_SENT:  # a partial take-profit: the next level may fill
        sub = STAGE_PROTECT
    killed = kill_holds(acct)
    # the kill sends no protective exit but the one a resting stop that traded binds to
    # (a Python venue's, `S_STOP_TRADED`) and, on a margin account, the venue's liquidation
    while cfg.protect and s < nsym and not (killed and not margin and not cfg.ext_venue):
        if sub == STAGE_PROTECT:
            quantity = sym[s, S_QTY]
            if px[3, i, s] != px[3, i, s]:  # no bar
                s += 1
                continue
            if is_dust(sym, prm, s, quantity):
                if quantity != 0.0 and sym[s, S_W_ACTIVE] == 0.0 and not killed:
                    # dust: a stop it reaches cannot be sent (nor liquidated)
                    direction = 1 if quantity > 0.0 else -1
                    why, stop = _stop(sym, prm, s, direction, stop_loss, follow)
                    _, target = stop_levels(
                        direction, sym[s, S_ENTRY_PRICE], stop_loss, take_profit
                    )
                    reason, level = protective_exit_at(
                        direction, px[0, i, s], px[1, i, s], px[2, i, s], why, stop,
                        target, math.nan,
                    )  # fmt: skip
                    if reason != 0:
                        note_dust(sym, prm, ev, cur, t, s, reason)
                s += 1
                continue
            liq = math.nan
            if margin:
                liq = liquidation_price(
                    _other_equity(acct, sym, s), quantity, prm[P_MAINTENANCE_MARGIN]
                )
            # HALTED sends nothing of the trader's: only the venue liquidates
            direction = 1 if quantity > 0.0 else -1
            why, stop = _stop(sym, prm, s, direction, stop_loss, follow)
            _, target = stop_levels(direction, sym[s, S_ENTRY_PRICE], stop_loss, take_profit)
            # the kill's one exit: booked to the stop that traded, once no order works
            fired = killed and sym[s, S_STOP_TRADED] != 0.0 and sym[s, S_W_ACTIVE] == 0.0
            if killed and not fired:
                stop = math.nan
                target = math.nan
            reason, level = protective_exit_at(
                direction, px[0, i, s], px[1, i, s], px[2, i, s], why, stop, target, liq
            )
            if fired and reason == 0:  # it traded at a bar this range does not show
                reason, level = why, stop
                if stop != stop:
                    reason, level = codes.EXIT_TAKE_PROFIT, target
                if level != level:
                    level = px[3, i, s]
            part = 0.0
            if cfg.levels and not killed:
                # a bar whose range reaches the stop in force (the stop-loss, the
                # break-even or the trailing stop) or the liquidation price: only a
                # level the open is through fills
                k, at, part = partial_exit(
                    sym, prm, s, px[0, i, s], px[1, i, s], px[2, i, s],
                    reason != 0 and reason != codes.EXIT_TAKE_PROFIT,
                )  # fmt: skip
                if k >= 0:
                    if part < abs(quantity) and below_minimum(sym, prm, s, part):
                        refuse_below_minimum(
                            sym, prm, ev, cur, t, s, part, codes.TAKE_PROFIT_PARTIAL
                        )
                        continue  # the level is spent; the next one may fill
                    reason, level = codes.TAKE_PROFIT_PARTIAL, at
            if reason == 0:
                s += 1
                continue
            sym[s, S_P_REASON] = reason
            sym[s, S_P_LEVEL] = level
            sym[s, S_SC_QTY] = part
            sym[s, S_PA_SEQ] = 0.0  # a sliced order's children stop with the position
            if sym[s, S_W_ACTIVE] != 0.0:
                if cfg.ext_venue:
                    io[IO_CODE] = codes.PROTECTIVE_EXIT
                    return _save(cur, t, STAGE_PROTECT_ORDER, s, NEED_CANCEL)
                cancel_working(ev, cur, sym, t, s, codes.PROTECTIVE_EXIT)
        if sub == STAGE_PROTECT_ORDER and _cancel_unended(st, t, s, int(sym[s, S_P_REASON])):
            sub = STAGE_PROTECT
            s += 1
            continue
        sub = STAGE_PROTECT
        reason = int(sym[s, S_P_REASON])
        level = sym[s, S_P_LEVEL]
        quantity = sym[s, S_QTY]  # what the cancel of a working order left
        if quantity == 0.0 or is_dust(sym, prm, s, quantity):
            # that order's fills, booked at its cancel, closed it (dust counts as flat)
            s += 1
            continue
        side = -1 if quantity > 0.0 else 1
        partial = reason == codes.TAKE_PROFIT_PARTIAL
        size = min(sym[s, S_SC_QTY], abs(quantity)) if partial else abs(quantity)
        extra = 0.0
        if reason == codes.EXIT_LIQUIDATION:
            extra = prm[P_LIQUIDATION_FEE]
            notional = abs(quantity) * level
            equity_before = _other_equity(acct, sym, s) + quantity * level
            maintenance = prm[P_MAINTENANCE_MARGIN] * notional
            liquidation = Liquidation(
                side, abs(quantity), level, extra * notional, equity_before, maintenance
            )
            emit_liquidation(ev, cur, t, s, liquidation)
        send_order(st, t, s, Order(side, size, reason, level, ORDER_STOP, level, 0.0))
        record_send(acct, prm, st.sent, bars.time_ns[i] + cfg.tf)
        if cfg.ext_venue:
            after = STAGE_PARTIAL_SENT if partial else STAGE_PROTECT_SENT
            return _save(cur, t, after, s, NEED_STOP)
        execute(
            st, t, s, level, px[4, i, s], -1.0, FillCosts(cfg.slippage, cfg.fee + extra, LIQ_TAKER)
        )
        if not partial:
            s += 1
    return NEED_DONE


@core_kernel
def _mark(st: State, bars: Bars, cfg: Settings, t: int, i: int) -> None:
    """Stage 4: the following stops take the bar; the positions are marked to the close."""
    acct, sym, prm, px = st.acct, st.sym, st.prm, bars.px
    if cfg.following:
        _follow(sym, prm, px, i)
    equity = mark_equity(acct, sym, px, i)
    acct[A_EQUITY] = equity
    if cfg.returns:
        push_returns(acct, sym, st.port, px, i)
    if cfg.vol_target:
        observe_volatility(sym, prm, px, i)
    if cfg.daily_loss:
        observe_day(st, t, bars.time_ns[i] + cfg.tf, equity)


@core_kernel
def _regime(st: State, bars: Bars, t: int, i: int) -> None:
    """Stage 6: journal each symbol's regime label where it changed."""
    sym, flags = st.sym, bars.flags
    for s in range(sym.shape[0]):
        code = flags[1, i, s]
        if code != sym[s, S_REGIME]:
            emit_regime(st.ev, st.cur, t, s, code, sym[s, S_REGIME])
            sym[s, S_REGIME] = code


@core_kernel
def _halts(st: State, bars: Bars, cfg: Settings, t: int, i: int, ruled: bool) -> int:
    """Stage 7: a halt may latch; the exits of a halt, the holding limit, the close's stops.

    ``ruled``: a plugin's rules answered (``io``) whether one halts trading.
    """
    acct, sym, prm, ev, cur, io = st.acct, st.sym, st.prm, st.ev, st.cur, st.io
    px, limits = bars.px, st.limits
    halting = False
    exit_reason = codes.EXIT_HALT
    if ruled:
        ref = io[IO_REF]
        if ref >= 0.0:
            acct[A_HALT] = io[IO_CODE]
            emit_halt(ev, cur, t, 0, (ref,))
            halting = True
    elif acct[A_EXIT_HALT] != 0.0:
        if acct[A_EXIT_HALT] == 2.0:  # the kill switch's flatten (the kill holds)
            exit_reason = codes.EXIT_FLATTEN
            if kill_holds(acct):  # then it unwinds, as a halt does, until resume
                acct[A_FLATTEN] = 1.0
        acct[A_EXIT_HALT] = 0.0
        halting = True
    elif acct[A_HALT] == 0.0 and acct[A_STATE] != codes.HALTED_STATE:
        equity = acct[A_EQUITY]
        if equity <= 0.0:
            acct[A_HALT] = codes.NO_EQUITY
            emit_halt(ev, cur, t, codes.NO_EQUITY, (equity,))
            halting = True
        elif cfg.ext_rules:
            return _save(cur, t, STAGE_HALTS_RULED, 0, NEED_RULES)
        elif cfg.n_limits:
            peak = acct[A_PEAK]
            drawdown = 0.0 if peak <= 0.0 else 1.0 - equity / peak
            for k in range(cfg.n_limits):
                if not drawdown < limits[k]:
                    acct[A_HALT] = codes.MAX_DRAWDOWN_HALT
                    emit_halt(ev, cur, t, codes.MAX_DRAWDOWN_HALT, (drawdown, limits[k]))
                    halting = True
                    break
    if halting:  # any halt but the kill switch: HALTED, its exits alone pass
        move_state(st, t, codes.HALTED_STATE, int(acct[A_HALT]))
    # a halt closes every position: at the bar it latches, and again at each bar
    # whose position its exit has not closed (refused by the order rate, cut short,
    # never arrived; held by a working order: `_cancel_unended` sets A_EXIT_HALT);
    # while the kill switch holds the run, only its flatten's (`halt_unwinds`)
    unwinding = halt_unwinds(acct)
    if unwinding and kill_holds(acct):
        exit_reason = codes.EXIT_FLATTEN
    max_holding, stops_close, exit_ns = cfg.max_holding, cfg.stops_close, cfg.exit_ns
    if halting or unwinding or max_holding > 0 or stops_close or exit_ns >= 0:
        for s in range(sym.shape[0]):
            quantity = sym[s, S_QTY]
            held = not is_dust(sym, prm, s, quantity)
            idle = sym[s, S_W_ACTIVE] == 0.0
            # no order could close it, and none works: an exit is journaled, once
            dust = not held and quantity != 0.0 and idle
            reason = 0
            if halting or (unwinding and held and idle):
                if held or not idle or dust:
                    reason = exit_reason
            elif (held or dust) and not kill_holds(acct):
                if holding_expired(t, int(sym[s, S_ENTRY_BAR]), max_holding):
                    reason = codes.EXIT_MAX_HOLDING
                elif px[3, i, s] == px[3, i, s]:  # it has a bar
                    if stops_close:
                        direction = 1 if quantity > 0.0 else -1
                        why, stop = _stop(sym, prm, s, direction, prm[P_STOP_LOSS], cfg.following)
                        _, target = stop_levels(
                            direction, sym[s, S_ENTRY_PRICE], prm[P_STOP_LOSS],
                            prm[P_TAKE_PROFIT],
                        )  # fmt: skip
                        reason = close_exit_at(direction, px[3, i, s], why, stop, target)
                    if reason == 0 and time_exit_due(bars.time_ns[i], cfg.tf, exit_ns):
                        reason = codes.EXIT_TIME
            if reason != 0 and dust:
                note_dust(sym, prm, ev, cur, t, s, reason)
            elif reason != 0:
                sym[s, S_I_REASON] = reason
                sym[s, S_I_DIR] = 0.0
                sym[s, S_I_TARGET] = 0.0
    return NEED_DONE


@core_kernel
def _signal(st: State, bars: Bars, cfg: Settings, t: int, i: int, stage: int, s: int) -> int:
    """Stage 8: each symbol's signal, from symbol ``s`` on (`STAGE_SIGNALLED`: Python's)."""
    sym, io, px = st.sym, st.io, bars.px
    while s < sym.shape[0]:
        if stage == STAGE_SIGNAL:
            p = px[5, i, s]
            if px[3, i, s] != px[3, i, s]:  # no bar: no signal
                s += 1
                continue
            if cfg.ext_signal:
                io[IO_P] = p
                return _save(st.cur, t, STAGE_SIGNALLED, s, NEED_SIGNAL)
            wanted, confidence, last = threshold_step(
                sym[s, S_SIG_LAST], t, p, cfg.threshold, cfg.min_interval
            )
            if wanted != 0:
                sym[s, S_SIG_LAST] = last
                sym[s, S_X_DIR] = wanted
                sym[s, S_X_CONF] = confidence
                sym[s, S_X_P] = p
        else:
            sym[s, S_X_DIR] = io[IO_DIR]
            sym[s, S_X_CONF] = io[IO_CONF]
            sym[s, S_X_P] = io[IO_P]
            stage = STAGE_SIGNAL
        s += 1
    return NEED_DONE


@core_kernel
def _pending(sym: np.ndarray) -> bool:
    """Return whether any symbol has a signal, an intent or a slicing parent this bar."""
    for s in range(sym.shape[0]):
        if sym[s, S_X_DIR] != 0.0 or sym[s, S_I_REASON] != 0.0 or sym[s, S_PA_SEQ] != 0.0:
            return True
    return False


@core_kernel
def _decide(st: State, bars: Bars, cfg: Settings, t: int, i: int, stage: int, s: int) -> int:
    """Stage 9: the ladder, from symbol ``s`` on; then the portfolio's checks.

    ``stage`` is where Python left it: `STAGE_SIZED` (a plugin sized symbol ``s``'s
    signal) or `STAGE_CHECKED` (a plugin's rules checked it); `STAGE_DECIDE` else.
    """
    acct, sym, prm, ev, cur, io = st.acct, st.sym, st.prm, st.ev, st.cur, st.io
    flags = bars.flags
    while s < sym.shape[0]:
        if stage == STAGE_DECIDE:
            if sym[s, S_X_DIR] == 0.0:
                s += 1
                continue
            if not _ladder(st, t, s, int(flags[1, i, s]), flags[0, i, s] != 0, bars.score[i, s]):
                s += 1
                continue
            if cfg.ext_sizer:
                return _save(cur, t, STAGE_SIZED, s, NEED_SIZE)
            size, code, v0, v1, v2 = size_signal(sym, prm, s)
            if size == 0.0:
                values = (float(v0), float(v1), float(v2))
                emit_rejection(ev, cur, t, s, code, values, signal_purpose(sym, s))
                fall_back(sym, s)
                s += 1
                continue
            io[IO_FRACTION] = size
            stage = STAGE_SIZED
        if stage == STAGE_SIZED:
            size = io[IO_FRACTION]
            if not size > 0.0:  # a plugin's sizing refused: the row IO_REF names
                emit_rejection(ev, cur, t, s, 0, (io[IO_REF],), signal_purpose(sym, s))
                fall_back(sym, s)
                stage = STAGE_DECIDE
                s += 1
                continue
            # a canary's candidate trades a fraction of the sizing's size (1 otherwise)
            sym[s, S_X_SIZE] = size * prm[P_SIZE_SCALE]
            if cfg.ext_rules:
                return _save(cur, t, STAGE_CHECKED, s, NEED_CHECK)
            io[IO_REF] = -1.0
            stage = STAGE_CHECKED
        if stage == STAGE_CHECKED:
            if io[IO_REF] >= 0.0:  # a plugin's rule refused
                emit_rejection(ev, cur, t, s, 0, (io[IO_REF],), signal_purpose(sym, s))
                fall_back(sym, s)
            elif sym[s, S_X_HELD] == sym[s, S_X_DIR]:  # an add (`tradeloom.core.scaling`)
                accept_add(acct, sym, prm, ev, cur, t, s, sym[s, S_X_SIZE])
            elif cfg.portfolio:  # ranked and checked with the bar's others, below
                sym[s, S_CANDIDATE] = 1.0
            else:
                accept(sym, ev, cur, t, s, sym[s, S_X_SIZE])
            stage = STAGE_DECIDE
        s += 1
    if cfg.portfolio:
        decide_candidates(acct, sym, prm, st.port, ev, cur, t)
    return NEED_DONE


@core_kernel
def _order_delta(sym: np.ndarray, io: np.ndarray, s: int) -> float:
    """The signed quantity symbol ``s``'s intent orders from the position held now: an
    exit all of it, an add its own size (``io[IO_QUANTITY]``, the sized quantity), a
    target the difference."""
    if sym[s, S_I_TARGET] == 0.0:
        return float(-sym[s, S_QTY])
    if sym[s, S_I_REASON] == codes.SCALE_IN:  # an add: its own size
        return float(sym[s, S_I_DIR] * io[IO_QUANTITY])
    return float(sym[s, S_I_DIR] * io[IO_QUANTITY] - sym[s, S_QTY])


@core_kernel
def _cancel_lost(st: State, t: int, s: int) -> bool:
    """Refuse the replacement of an order the declared latency lets beat its cancel.

    The order stays working and fills at its arrival; the decision is refused with
    ``CANCEL_TOO_LATE`` (`tradeloom.core.latency.cancel_too_late`).
    """
    sym, prm = st.sym, st.prm
    seq = sym[s, S_W_SEQ]
    sent = sym[s, S_W_BAR]
    if not cancel_too_late(prm, t, sent, sym[s, S_W_ARRIVE], seq):
        return False
    order_ms = (sent - t) * prm[P_TIMEFRAME_NS] / 1e6 + send_ms(prm, seq)
    values = (seq, order_ms, cancel_ms(prm, seq), 0.0, 0.0)
    emit_rejection(st.ev, st.cur, t, s, codes.CANCEL_TOO_LATE, values, int(sym[s, S_I_REASON]))
    return True


@core_kernel
def _send(st: State, bars: Bars, cfg: Settings, t: int, i: int, stage: int, s: int) -> int:
    """Stage 10: the intents' orders, exits and reductions first, from symbol ``s`` on.

    ``stage`` is where a Python venue left it: `STAGE_QUANTITY` (it priced the
    notional), `STAGE_CANCELLED` (it cancelled the working order), `STAGE_SENT` (it
    took the order); `STAGE_SEND` at the stage's start.
    """
    acct, sym, prm, ev, cur, io = st.acct, st.sym, st.prm, st.ev, st.cur, st.io
    px, time_ns, sent, out = bars.px, bars.time_ns, st.sent, st.out
    nsym = sym.shape[0]
    ext_venue, slicing, tf = cfg.ext_venue, cfg.slicing, cfg.tf
    if stage == STAGE_SEND:  # exits and reductions go out first, then entries
        acct[A_SEND_PASS] = 0.0
        acct[A_SEND_SEQ] = acct[A_SEQ]
        acct[A_SEND_SPLIT] = acct[A_SEQ]  # (no first-pass order yet)
    # what a target weight of 1 buys, as the send sizes it (a rebalance's reductions first)
    buying_power = acct[A_EQUITY] * cfg.leverage / ((1.0 + cfg.slippage) * (1.0 + cfg.fee))
    while True:
        if s >= nsym:
            if acct[A_SEND_PASS] != 0.0:
                break
            acct[A_SEND_PASS] = 1.0
            acct[A_SEND_SPLIT] = acct[A_SEQ]
            s = 0
        if stage == STAGE_SENT:  # a Python venue took the order
            stage = STAGE_SEND
            s += 1
            continue
        if stage == STAGE_SEND:
            if sends_first(sym, s, buying_power) != (acct[A_SEND_PASS] == 0.0):
                s += 1
                continue
            if sym[s, S_I_REASON] == 0.0:
                if slicing and next_child(st, t, s, px[3, i, s], px[4, i, s]):
                    record_send(acct, prm, sent, time_ns[i] + tf)
                    if ext_venue:
                        return _save(cur, t, STAGE_SENT, s, NEED_SEND)
                s += 1
                continue
            target = sym[s, S_I_TARGET]
            price = sym[s, S_MARK]
            if target != 0.0:
                notional = abs(target) * acct[A_EQUITY] * cfg.leverage
                if ext_venue:
                    io[IO_QUANTITY] = notional
                    io[IO_P] = price
                    return _save(cur, t, STAGE_QUANTITY, s, NEED_QUANTITY)
                io[IO_QUANTITY] = sizing_quantity(notional, price, cfg.slippage, cfg.fee)
            stage = STAGE_QUANTITY
        if stage == STAGE_QUANTITY:
            sym[s, S_O_QTY] = _order_delta(sym, io, s)
            sym[s, S_PA_SEQ] = 0.0  # a new decision ends a sliced order's children
            if sym[s, S_W_ACTIVE] != 0.0:
                # the race is the core's, whichever venue: a paper venue never hears of
                # a cancel the declared latency makes too late (`core.latency`)
                if cfg.latency and _cancel_lost(st, t, s):
                    s += 1
                    continue
                if ext_venue:
                    io[IO_CODE] = codes.REPLACED
                    return _save(cur, t, STAGE_CANCELLED, s, NEED_CANCEL)
                cancel_working(ev, cur, sym, t, s, codes.REPLACED)
        if stage == STAGE_CANCELLED and _cancel_unended(st, t, s, int(sym[s, S_I_REASON])):
            stage = STAGE_SEND
            s += 1
            continue
        # STAGE_CANCELLED: the working order is gone; the new one goes out, sized from
        # the position its cancel left (a live cancel books what the order filled since
        # the bar's opening poll: sized before, an exit sold the filled part again)
        stage = STAGE_SEND
        sym[s, S_W_DIR] = sym[s, S_I_DIR]
        delta = _order_delta(sym, io, s)
        sym[s, S_O_QTY] = delta
        if delta == 0.0:
            s += 1
            continue
        reason = int(sym[s, S_I_REASON])
        position = sym[s, S_QTY]
        after = position + delta
        if after != 0.0 and below_minimum(sym, prm, s, abs(after)):
            # the target itself is below the minimum: a position no order could
            # close (a reversal, or a short over dust long, sends more than it)
            if reason == codes.REBALANCE:  # a target of zero (`tradeloom.core.dust`)
                delta = zero_target(sym, s)
            else:
                refuse_below_minimum(sym, prm, ev, cur, t, s, abs(after), reason)
                if reason != codes.REVERSE:
                    s += 1
                    continue
                # a refused reversal still exits what is held, as the ladder's do
                reason = codes.EXIT_SIGNAL
                delta = -position
                sym[s, S_I_REASON] = reason
                sym[s, S_I_DIR] = 0.0
                sym[s, S_W_DIR] = 0.0
        if below_minimum(sym, prm, s, abs(delta)):
            if at_zero_target(sym, s, reason, delta):
                pass  # flat, or dust no order could close: the target is reached
            elif signal_reason(reason):
                refuse_below_minimum(sym, prm, ev, cur, t, s, abs(delta), reason)
            else:  # the engine's exit of dust (a halt's, with an order working)
                note_dust(sym, prm, ev, cur, t, s, reason)
            s += 1
            continue
        side = 1 if delta > 0.0 else -1
        price = sym[s, S_MARK]
        # an order over dust in its direction takes it in: its fill starts a trade
        merge = position * delta > 0.0 and is_dust(sym, prm, s, position)
        sym[s, S_DUST_MERGE] = 1.0 if merge else 0.0
        kind = ORDER_MARKET
        if cfg.limits_on or slicing:
            kind = choose_order(
                prm, reason, sym[s, S_X_CONF], px[1, i, s], px[2, i, s], px[3, i, s]
            )
        level = math.nan
        if kind == ORDER_LIMIT:
            level = limit_price(side, price, prm[P_LIMIT_OFFSET])
        now = time_ns[i] + tf
        after = sym[s, S_QTY] + delta
        order = Order(side, abs(delta), reason, price, kind, level, 0.0)
        code = pretrade_check(
            st,
            now,
            sym[s, S_QTY],
            order,
            acct[A_EQUITY],
            _gross_after(sym, s, after, price, acct),
        )
        if code != 0:
            values = (out[0], out[1], out[2], out[3], out[4])
            emit_rejection(ev, cur, t, s, code, values, reason)
            s += 1
            continue
        if slicing and signal_reason(reason) and reason != codes.SCALE_IN:
            start_parent(st, t, s, order, sym[s, S_I_DIR])
            # a bar without volume sends no participation child yet
            if not next_child(st, t, s, price, px[4, i, s]):
                s += 1
                continue
        else:
            send_order(st, t, s, order)
            if reason == codes.SCALE_IN:
                add_sent(sym, s)
        record_send(acct, prm, sent, now)
        if ext_venue:
            return _save(cur, t, STAGE_SENT, s, NEED_SEND)
        s += 1
    return NEED_DONE


@core_kernel
def _close(st: State, bars: Bars, cfg: Settings, t: int, i: int) -> int:
    """Stage 11: the fills due at the close (``fill: close``), exits and reductions first."""
    sym, px = st.sym, bars.px
    if not cfg.fill_at_close:
        return NEED_DONE
    if cfg.ext_venue:
        return _save(st.cur, t, STAGE_END, 0, NEED_CLOSE)
    taker = FillCosts(cfg.slippage, cfg.fee, LIQ_TAKER)
    # exits and reductions first, then entries (`tradeloom.core.sequence`)
    order = st.port[PORT_ORDER]
    n = 0
    for s in range(sym.shape[0]):
        if (
            sym[s, S_W_ACTIVE] != 0.0
            and sym[s, S_W_BAR] <= t
            and px[3, i, s] == px[3, i, s]  # the symbol has a bar
            # a limit order arrives (and rests from the next bar)
            and (sym[s, S_W_TYPE] != ORDER_LIMIT or sym[s, S_W_FIRST] < 0.0)
        ):
            order[n] = s
            n += 1
    sequence_fills(sym, px, 3, i, order, n)
    for k in range(n):
        s = int(order[k])
        if sym[s, S_W_TYPE] != ORDER_LIMIT:
            execute(st, t, s, px[3, i, s], px[4, i, s], cfg.volume_cap, taker)
        else:
            limit_arrives(st, t, s, px[3, i, s], px[4, i, s], cfg.volume_cap, t + 1)
    return NEED_DONE


@core_loop
def run_bars(t_end: int, inputs: tuple[np.ndarray, ...], arrays: tuple[np.ndarray, ...]) -> int:
    """Run bars from where ``cur`` stands up to ``t_end`` (exclusive); return why it stopped.

    Each stage of a bar is a kernel of its own over the bundles of
    `tradeloom.core.context`; a stage that stops for Python saves where it stopped
    (``cur``) and returns its need, and the next call resumes there.

    The bundles come in as plain tuples and are named here. The per-bar paths call the
    step from Python at every bar, and numba's dispatcher types a named tuple in Python
    (2.8 us a call for these two, against 0.7 us for the 15 arrays one by one) but a
    plain tuple in C (1.0 us; benchmarks/bench_step_entry.py, 2026-11-26).

    Args:
        t_end: The bar to stop before.
        inputs: The `Bars` fields, in order:

            - px: ``[6, bars, symbols]``: open, high, low, close, volume, probability
              (NaN: no prediction; a close of NaN: the symbol has no bar). Row 0 is bar
              ``cur[C_BASE]``. A perpetual's has a seventh row: each bar's funding rate
              (`tradeloom.core.funding`).
            - flags: ``[2, bars, symbols]`` uint8: anomalous (1: no new position), regime
              code.
            - score: ``[bars, symbols]``: the anomaly detector's score (journaled with
              ANOMALY).
            - time_ns: ``[bars]``: each bar's open time (UTC, ns).
            - trainings: ``[bars]``: how many model trainings are journaled at each bar.
        arrays: ``acct, sym, prm, limits, sent, port, ev, cur, io, scratch``:

            - acct, sym, prm, limits, sent: The state and parameters
              (`tradeloom.core.layout`); ``limits`` are the drawdown rules' limits, in
              file order.
            - port: The portfolio checks' scratch and returns ring
              (`tradeloom.core.portfolio`).
            - ev, cur, io: The event rows, the cursor, Python's answers.
            - scratch: `SCRATCH_SIZE` floats the step may use as it likes (the
              `State`'s ``trade`` and ``out``).

    Returns:
        A ``NEED_*`` code: `NEED_DONE` once ``t_end`` is reached.
    """
    bars = Bars(*inputs)
    acct, sym, prm, limits, sent, port, ev, cur, io, scratch = arrays
    st = State(acct, sym, prm, limits, sent, port, ev, cur, io, scratch[0:8], scratch[8:16])
    cfg = settings(prm, limits, port, bars.px)
    base = cur[C_BASE]
    t = cur[C_T]
    stage = cur[C_STAGE]
    resume = cur[C_SYM]
    while t < t_end:
        i = t - base
        if stage == STAGE_BEGIN:
            resume = 0
            t = quiet_bars(t, t_end, bars, st)
            if t == t_end:
                break
            i = t - base
            need = _begin(st, bars, t, i)
            if need != NEED_DONE:
                return need
            stage = STAGE_OPEN
        if stage == STAGE_OPEN:
            stage = STAGE_PROTECT
            need = _open(st, bars, cfg, t, i)
            if need != NEED_DONE:
                return need
        if stage in (STAGE_PROTECT, STAGE_PROTECT_ORDER, STAGE_PROTECT_SENT, STAGE_PARTIAL_SENT):
            need = _protect(st, bars, cfg, t, i, stage, resume)
            if need != NEED_DONE:
                return need
            stage, resume = STAGE_MARK, 0
        if stage == STAGE_MARK:
            _mark(st, bars, cfg, t, i)
            stage = STAGE_MONITOR
        if stage == STAGE_MONITOR:
            stage = STAGE_REGIME
            if cfg.monitors:
                return _save(cur, t, STAGE_REGIME, 0, NEED_MONITOR)
        if stage == STAGE_REGIME:
            if cfg.journal_regime:
                _regime(st, bars, t, i)
            stage = STAGE_HALTS
        if stage in (STAGE_HALTS, STAGE_HALTS_RULED):
            need = _halts(st, bars, cfg, t, i, stage == STAGE_HALTS_RULED)
            if need != NEED_DONE:
                return need
            stage, resume = STAGE_SIGNAL, 0
            if cfg.allocating:  # Python writes the bar's rebalance intents, if one is due
                return _save(cur, t, STAGE_SIGNAL, 0, NEED_ALLOCATE)
        if stage in (STAGE_SIGNAL, STAGE_SIGNALLED):
            if not cfg.allocating:  # under an allocation, its weights decide, not a signal
                need = _signal(st, bars, cfg, t, i, stage, resume)
                if need != NEED_DONE:
                    return need
            stage = STAGE_DECIDE if _pending(sym) else STAGE_CLOSE
            resume = 0
        if stage in (STAGE_DECIDE, STAGE_SIZED, STAGE_CHECKED):
            need = _decide(st, bars, cfg, t, i, stage, resume)
            if need != NEED_DONE:
                return need
            stage, resume = STAGE_SEND, 0
        if stage in (STAGE_SEND, STAGE_QUANTITY, STAGE_CANCELLED, STAGE_SENT):
            need = _send(st, bars, cfg, t, i, stage, resume)
            if need != NEED_DONE:
                return need
            stage, resume = STAGE_CLOSE, 0
        if stage == STAGE_CLOSE:
            stage = STAGE_END
            need = _close(st, bars, cfg, t, i)
            if need != NEED_DONE:
                return need
        if stage == STAGE_END:
            t += 1
            stage = STAGE_BEGIN
            if cfg.yield_bars:
                return _save(cur, t, STAGE_BEGIN, 0, NEED_BAR)
    return _save(cur, t, stage, resume, NEED_DONE)  # at a bar's start once bars ran
