"""The bundles a bar's stages take: the bars, the state, and the settings read once.

`tradeloom.core.bar.run_bars` runs a bar as a sequence of stage kernels; each takes
these named bundles instead of a dozen arrays (as vectorbt's ``OrderContext`` gives a
callback the simulation's state by name). numba passes a named tuple of arrays as one
argument and reads its fields by name; inlined, a field costs nothing over a local.

- `Bars`: the inputs, one row per bar (`run_bars` documents each);
- `State`: the arrays the step reads and writes (`tradeloom.core.layout`), and the
  scratch it may use;
- `Settings`: what the step reads of the parameters, read once per call (the compiler
  cannot keep a ``prm`` value in a register across stores to the other arrays, which
  it must assume alias).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tradeloom.core.layout import (
    FUNDING_ROW,
    ORDER_MARKET,
    P_ALLOCATE,
    P_BREAK_EVEN,
    P_CANCEL_KIND,
    P_DAILY_LOSS,
    P_EXIT_TIME,
    P_EXT_RULES,
    P_EXT_SIGNAL,
    P_EXT_SIZER,
    P_EXT_VENUE,
    P_FEE,
    P_FILL_AT_CLOSE,
    P_JOURNAL_REGIME,
    P_LAT_KIND,
    P_LEVERAGE,
    P_MARGIN,
    P_MAX_HOLDING,
    P_MAX_VOLUME_FRACTION,
    P_MIN_INTERVAL,
    P_MONITORS,
    P_ORDER_TYPE,
    P_PORTFOLIO,
    P_SIZING_KIND,
    P_SLICE_KIND,
    P_SLIPPAGE,
    P_STOP_LOSS,
    P_STOPS_AT_CLOSE,
    P_TAKE_PROFIT,
    P_THRESHOLD,
    P_TIMEFRAME_NS,
    P_TP_LEVELS,
    P_TRAIL_ATR,
    P_TRAILING,
    P_YIELD_BARS,
    PORT_ROWS,
    SIZING_VOL_TARGET,
)
from tradeloom.kernels.jit import core_kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = ["Bars", "FillCosts", "FillReport", "Order", "Settings", "State", "settings"]


class Bars(NamedTuple):
    """The bars a call runs (`tradeloom.core.bar.run_bars`'s arguments of the same names)."""

    px: np.ndarray
    flags: np.ndarray
    score: np.ndarray
    time_ns: np.ndarray
    trainings: np.ndarray


class State(NamedTuple):
    """The state and parameters (`tradeloom.core.layout`), and the step's scratch.

    ``trade`` and ``out`` are slices of the step's scratch: a closed trade's figures,
    a pre-trade check's values.
    """

    acct: np.ndarray
    sym: np.ndarray
    prm: np.ndarray
    limits: np.ndarray
    sent: np.ndarray
    port: np.ndarray
    ev: np.ndarray
    cur: np.ndarray
    io: np.ndarray
    trade: np.ndarray
    out: np.ndarray


class Order(NamedTuple):
    """An order the core sends (`tradeloom.core.orders.send_order`), or a sliced parent.

    Its fields are the order row's (`tradeloom.core.records.ORDER`), its number aside.
    """

    side: int
    quantity: float
    reason: int
    reference_price: float  # the price it was sized at (a stop's trigger price)
    type: int  # ORDER_MARKET, ORDER_STOP or ORDER_LIMIT (a parent's: its children's)
    price: float  # the stop's or the limit's price (NaN: a market order)
    parent: float  # the slicing parent's sequence number (0: none)


class FillCosts(NamedTuple):
    """What a fill of the simulated venue costs (`tradeloom.core.orders.execute`).

    A resting limit order the bar traded through fills with no slippage at the maker
    fee, as ``LIQ_MAKER`` (journaled with the fill); every other fill as ``LIQ_TAKER``.
    """

    slippage: float
    fee: float
    liquidity: int


class FillReport(NamedTuple):
    """A fill of order ``seq``, as the core books and journals it (`tradeloom.core.feed.feed_fill`).

    The simulated venue's fills (`tradeloom.core.orders.execute`) and a Python venue's
    alike; `tradeloom.core.accounting.apply_fill` reads its side, quantity, price and fee.
    """

    seq: int
    side: int  # +1 buy, -1 sell
    quantity: float  # > 0
    price: float  # slippage included
    fee: float  # quote currency
    slippage: float
    decision_bar: int  # the bar the order was decided at
    liquidity: int  # LIQ_TAKER, LIQ_MAKER or LIQ_UNKNOWN


class Settings(NamedTuple):
    """What the stages read of ``prm`` (and of the arrays' shapes), read once per call."""

    ext_venue: bool
    ext_signal: bool
    ext_sizer: bool
    ext_rules: bool
    monitors: bool
    yield_bars: bool
    margin: bool
    following: bool  # a stop follows the position: a trailing stop, the break-even stop
    levels: bool  # partial take-profits (`tradeloom.core.scaling`)
    protect: bool  # any exit the bar's range may reach
    fill_at_close: bool
    limits_on: bool  # limit orders (or auto)
    slicing: bool
    stops_close: bool
    stop_loss: float  # NaN under ``stops: bar_close`` (checked at the close)
    take_profit: float
    follow: bool  # the following stops rest at the venue
    exit_ns: int  # risk.exit_time (-1: none)
    volume_cap: float
    journal_regime: bool
    daily_loss: bool
    max_holding: int
    threshold: float
    min_interval: int
    vol_target: bool
    leverage: float
    slippage: float
    fee: float
    tf: int
    n_limits: int
    portfolio: bool
    returns: bool  # a returns ring to push each close to
    funding: bool  # a perpetual's funding rates
    allocating: bool  # the allocation layer decides the intents (no signal runs)
    latency: bool  # a declared latency (`tradeloom.core.latency`): a cancel may come too late


@core_kernel
def settings(prm: np.ndarray, limits: np.ndarray, port: np.ndarray, px: np.ndarray) -> Settings:
    """Return the `Settings` of parameters ``prm``, drawdown ``limits``, ``port`` and ``px``."""
    margin = prm[P_MARGIN] != 0.0
    trailing_on = not math.isnan(prm[P_TRAILING]) or prm[P_TRAIL_ATR] > 0.0
    following = trailing_on or not math.isnan(prm[P_BREAK_EVEN])
    levels = prm[P_TP_LEVELS] != 0.0
    protect = (
        not (math.isnan(prm[P_STOP_LOSS]) and math.isnan(prm[P_TAKE_PROFIT]))
        or margin
        or following
        or levels
    )
    stops_close = prm[P_STOPS_AT_CLOSE] != 0.0
    # every argument a plain name: numba refuses a call whose arguments branch
    stop_loss = math.nan if stops_close else prm[P_STOP_LOSS]
    take_profit = math.nan if stops_close else prm[P_TAKE_PROFIT]
    follow = following and not stops_close
    exit_ns = -1 if math.isnan(prm[P_EXIT_TIME]) else int(prm[P_EXIT_TIME])
    ext_venue = prm[P_EXT_VENUE] != 0.0
    ext_signal = prm[P_EXT_SIGNAL] != 0.0
    ext_sizer = prm[P_EXT_SIZER] != 0.0
    ext_rules = prm[P_EXT_RULES] != 0.0
    monitors = prm[P_MONITORS] != 0.0
    yield_bars = prm[P_YIELD_BARS] != 0.0
    fill_at_close = prm[P_FILL_AT_CLOSE] != 0.0
    limits_on = prm[P_ORDER_TYPE] != ORDER_MARKET
    slicing = prm[P_SLICE_KIND] != 0.0
    journal_regime = prm[P_JOURNAL_REGIME] != 0.0
    daily_loss = not math.isnan(prm[P_DAILY_LOSS])
    vol_target = prm[P_SIZING_KIND] == SIZING_VOL_TARGET
    portfolio = prm[P_PORTFOLIO] != 0.0
    returns = port.shape[0] > PORT_ROWS
    funding = px.shape[0] > FUNDING_ROW
    latency = prm[P_LAT_KIND] != 0.0 or prm[P_CANCEL_KIND] != 0.0
    return Settings(
        ext_venue,
        ext_signal,
        ext_sizer,
        ext_rules,
        monitors,
        yield_bars,
        margin,
        following,
        levels,
        protect,
        fill_at_close,
        limits_on,
        slicing,
        stops_close,
        stop_loss,
        take_profit,
        follow,
        exit_ns,
        prm[P_MAX_VOLUME_FRACTION],
        journal_regime,
        daily_loss,
        int(prm[P_MAX_HOLDING]),
        prm[P_THRESHOLD],
        int(prm[P_MIN_INTERVAL]),
        vol_target,
        prm[P_LEVERAGE],
        prm[P_SLIPPAGE],
        prm[P_FEE],
        int(prm[P_TIMEFRAME_NS]),
        limits.shape[0],
        portfolio,
        returns,
        funding,
        prm[P_ALLOCATE] != 0.0,
        latency,
    )
