"""Where each number lives in the core's arrays.

The compiled step keeps every state in a few float64 arrays so that one call can
run any number of bars, stop wherever it needs Python (a plugin's component, a
live venue, the monitors), and resume there. This module names the slots.

Arrays:

- ``acct`` (`ACCT_SIZE`): the account: cash, peak equity, fees, the order counter,
  the halt latch, the trading state and the daily-loss clock.
- ``sym`` (symbols x `SYM_SIZE`): per symbol, the position and its open trade, the
  working order, the signal rule's state, the previous regime, and the bar's scratch
  (its intent, its signal). A single-symbol strategy has one row.
- ``prm`` (`PRM_SIZE`): the parameters of the built-in components and the risk engine.
- ``cur`` (int64, `CUR_SIZE`): where the step is (bar, stage, symbol) and how many
  event rows are used.
- ``io`` (`IO_SIZE`): what Python answers to a need (a plugin's signal, size, ...).
- ``ev`` (rows x `EV_WIDTH`): the event rows: kind, bar, symbol, then `EV_VALUES` values,
  each kind's declared in `tradeloom.core.records`.
- ``sent`` (int64): the order-rate window's send times (ns), a ring.
- ``port`` (`PORT_ROWS` + window, symbols): the portfolio checks' scratch (the rank
  order, the weights) and the ring of close-to-close returns the correlation limit
  reads (`tradeloom.core.portfolio`).
"""

from __future__ import annotations

from tradeloom.core import records


class Slots:
    """Numbers the slots of one array (or the members of one sequence) as they are declared.

    Each slot is a plain module-level int that numba freezes into the kernels and mypy
    reads as an int; none is numbered by hand, so a new one goes where it belongs and
    the array's size follows. `slot_names` reads the names back.
    """

    def __init__(self) -> None:
        self.size = 0

    def __call__(self, width: int = 1) -> int:
        """Return the next slot, and take ``width`` slots from it."""
        at = self.size
        self.size += width
        return at


def slot_names(prefix: str) -> dict[int, str]:
    """Return the slots of the constants named ``prefix...``, by number (``P_``: ``prm``'s)."""
    return {
        value: name
        for name, value in globals().items()
        if name.startswith(prefix) and isinstance(value, int) and name not in _ENDS
    }


_ENDS = ("S_ATR_END", "S_VOL_END", "IO_SIZE")
"""Bounds named like slots: where a wide slot ends, ``io``'s size."""


MAX_TP_LEVELS = 8
"""Most partial take-profit levels (``risk.scaling.take_profit_levels``)."""

_acct, _sym, _prm, _cur, _io, _stage, _need = (Slots() for _ in range(7))

__all__ = [
    "ACCT_SIZE",
    "CUR_SIZE",
    "EV_VALUES",
    "EV_WIDTH",
    "IO_SIZE",
    "MAX_TP_LEVELS",
    "NEED_NAMES",
    "PORT_ROWS",
    "PRM_SIZE",
    "SYM_SIZE",
    "Slots",
    "slot_names",
]

# --- acct ----------------------------------------------------------------------------------
A_CASH = _acct()
A_PEAK = _acct()
A_FEES = _acct()
A_SEQ = _acct()  # orders sent so far (the next order's sequence number is A_SEQ + 1)
A_HALT = _acct()  # the halt latch: 0, or the code that halted trading
A_STATE = _acct()  # trading state: codes.ACTIVE, REDUCING or HALTED_STATE
A_STATE_WHY = _acct()  # the code of the last trading state change
A_DAY = _acct()  # the UTC day (days since the epoch) of the daily-loss clock; -1 before any
A_DAY_EQUITY = _acct()  # the equity at that day's first mark
A_EQUITY = _acct()  # the equity at the last mark
A_EXIT_HALT = (
    _acct()
)  # 1: a halt this bar closes every position (a health halt); 2: the kill's flatten
A_FLATTEN = _acct()  # 1: the kill's flatten was carried out: it unwinds until resume
A_RATE_COUNT = _acct()  # sends in the ring
A_RATE_HEAD = _acct()  # the ring's oldest slot
A_RETURNS = _acct()  # bars pushed to the returns ring (``port``) so far
A_SEND_PASS = _acct()  # the send stage's pass: 0 exits and reductions, 1 entries and increases
A_SEND_SEQ = _acct()  # the order counter when the bar's send stage began (its orders: above)
A_SEND_SPLIT = _acct()  # ... when its second pass began (its first pass's orders: up to it)
ACCT_SIZE = _acct.size

# --- sym (one row per symbol) --------------------------------------------------------------
S_QTY = _sym()  # signed position
S_ENTRY_BAR = _sym()  # bar of the fill that opened it (-1 flat)
S_ENTRY_PRICE = _sym()  # average entry price (NaN flat)
S_MAX_QTY = _sym()  # largest size of the open trade
S_EXIT_VALUE = _sym()  # sum of quantity x price of the open trade's reductions
S_EXIT_QTY = _sym()  # quantity reduced so far
S_TRADE_FEES = _sym()  # fees paid while the trade is open
S_REALIZED = _sym()  # realized profit of the open trade, before fees
S_MARK = _sym()  # the last close the position was marked at
S_W_ACTIVE = _sym()  # 1 while an order is working (external venue: anything pending)
S_W_SEQ = _sym()
S_W_BAR = _sym()  # its decision bar
S_W_SIDE = _sym()
S_W_REMAINING = _sym()
S_W_QTY = _sym()
S_W_STOP = _sym()  # 1: a protective exit filling during its bar
S_W_DIR = _sym()  # the direction the engine wants (a working order's target)
S_SIG_LAST = _sym()  # the threshold rule's last signal bar (-1: none yet)
S_REGIME = _sym()  # the previous bar's regime code
S_I_REASON = _sym()  # the bar's intent: order reason (0: none)
S_I_DIR = _sym()  # its direction
S_I_TARGET = _sym()  # its target, a signed fraction of equity
S_X_DIR = _sym()  # the bar's signal: direction (0: none)
S_X_CONF = _sym()
S_X_P = _sym()
S_X_HELD = _sym()  # the side held when the signal came
S_X_SIZE = _sym()  # the size the sizing gave
S_O_QTY = _sym()  # the order being sent: its signed quantity (target minus position)
S_P_REASON = _sym()  # the protective exit the bar triggered: its reason
S_P_LEVEL = _sym()  # and its trigger price
S_LAST_CLOSE = _sym()  # the last close the symbol had (NaN: none yet): the returns ring's
S_CANDIDATE = _sym()  # 1: the bar's signal passed the ladder and waits for the portfolio checks
S_GROUP = _sym()  # the symbol's group (risk.portfolio.groups), -1: none
S_DUST = _sym()  # a position within this of zero is flat: the symbol's market's lot (live)
S_W_TYPE = _sym()  # the working order's type: ORDER_MARKET or ORDER_LIMIT (a stop: S_W_STOP)
S_W_LIMIT = _sym()  # its limit price (NaN: a market order)
S_W_FIRST = _sym()  # a limit order: the first bar it rests during (-1: not arrived yet)
S_W_PARENT = _sym()  # the slicing parent's sequence number (0: none)
S_PA_SEQ = _sym()  # a slicing parent still sending children: its sequence number (0: none)
S_PA_SIDE = _sym()
S_PA_QTY = _sym()  # its quantity
S_PA_REST = _sym()  # what no child has filled yet
S_PA_NEXT = _sym()  # the bar its next child goes out
S_PA_SENT = _sym()  # children sent so far
S_PA_REASON = _sym()
S_PA_DIR = _sym()  # the direction the parent works toward
S_W_REASON = _sym()  # the working order's reason (a fallback order keeps it)
S_PA_KIND = _sym()  # the type of the parent's children (ORDER_MARKET or ORDER_LIMIT)
S_MIN_COST = _sym()  # the symbol's market's minimum order cost (a live market's limits.cost.min)
S_DUST_NOTED = _sym()  # the engine exits a dust position was journaled for, a bit each (a fill: 0)
S_DUST_MERGE = _sym()  # 1: an order was sent over a dust position: its next fill starts a trade
S_EXIT_BAR = _sym()  # the bar of the fill that last closed a trade (NaN: none): the cooldown's
S_BEST = _sym()  # the open trade's best price up to the last bar (NaN: none yet; the entry)
S_TRAIL = _sym()  # its trailing stop's level in force (NaN: none yet)
S_ATR = _sym(
    4
)  # the trailing stop's average true range: 4 floats (`tradeloom.core.exits.atr_update`)
S_ATR_END = S_ATR + 4
S_W_ARRIVE = _sym()  # the bar at whose open the working order reaches the venue (declared latency)
S_FUNDING = _sym()  # funding booked while the open trade was held (+ received; `core.funding`)
# scaling in and out (`tradeloom.core.scaling`): the open trade's legs
S_SC_TRADE = _sym()  # the trade the slots below belong to: its entry bar + 1 (0: none)
S_SC_TAKEN = _sym()  # the take-profit levels taken, a bit each
S_SC_ADDS = _sym()  # the adds sent
S_SC_LAST = _sym()  # the last leg's price: the entry price, then each add's decision close
S_SC_QTY = _sym()  # the partial take-profit being sent: its quantity
S_STOP_TRADED = _sym()  # 1: the live venue's resting stop traded, unbooked (set at each open)
S_VOL = _sym(
    4
)  # volatility_target's EWMA variance: 4 floats (`core.kernels.sizing.volatility_update`)
S_VOL_END = S_VOL + 4
SYM_SIZE = _sym.size

# --- prm -----------------------------------------------------------------------------------
P_THRESHOLD = _prm()
P_MIN_INTERVAL = _prm()
P_SIZING_KIND = _prm()  # SIZING_FIXED, SIZING_KELLY, SIZING_VOL_TARGET or SIZING_RISK
P_FRACTION = _prm()  # the fixed fraction, Kelly's share, the target volatility or the risk
P_PAYOFF = _prm()
P_MAX_POSITION = _prm()
P_FILL_AT_CLOSE = _prm()
P_SLIPPAGE = _prm()
P_FEE = _prm()
P_ALLOW_SHORT = _prm()
P_MAX_VOLUME_FRACTION = _prm()  # <= 0: no limit
P_MAX_HOLDING = _prm()  # <= 0: no limit
P_STOP_LOSS = _prm()  # NaN: none
P_TAKE_PROFIT = _prm()  # NaN: none
P_JOURNAL_REGIME = _prm()
P_REGIME_FILTER = _prm()  # regime_mask of signal.regimes (0: every regime)
P_MAX_ORDER_NOTIONAL = _prm()  # NaN: no limit (and the four below)
P_MAX_POSITION_QTY = _prm()
P_MAX_ORDERS_PER_MINUTE = _prm()
P_PRICE_COLLAR = _prm()
P_DAILY_LOSS = _prm()
P_MARGIN = _prm()  # 0: spot cash; else a margin account, by its rule's source (MarginKernel.source)
P_INITIAL_MARGIN = _prm()
P_MAINTENANCE_MARGIN = _prm()
P_LEVERAGE = _prm()
P_LIQUIDATION_FEE = _prm()
P_TIMEFRAME_NS = _prm()  # a bar's length: the risk clock reads a bar at its close
P_MIN_NOTIONAL = _prm()  # the strategy's minimum order notional (a symbol's market may ask more)
P_EXT_VENUE = _prm()  # 1: the venue is Python (live, a plugin's): ask for its events
P_EXT_SIGNAL = _prm()
P_EXT_SIZER = _prm()
P_EXT_RULES = _prm()
P_MONITORS = _prm()  # 1: stop at each bar for the monitors and health rules
P_YIELD_BARS = _prm()  # 1: stop at the end of every bar (the per-bar driver)
P_RATE_CAPACITY = _prm()  # slots of the ``sent`` ring
P_QUIET = _prm()  # 1: quiet bars skip the ladder (`tradeloom.core.quiet`); 0: every bar runs it
P_PORTFOLIO = _prm()  # 1: entries and reversals are ranked and checked together (below)
P_TOP_K = _prm()  # signal.top_k (0: every candidate)
P_MAX_OPEN = _prm()  # risk.portfolio.max_open_positions (NaN: no limit, and the four below)
P_MAX_GROSS = _prm()
P_MAX_NET = _prm()
P_MAX_WEIGHT = _prm()
P_MAX_GROUP = _prm()  # risk.portfolio.max_group_exposure
P_MAX_CORRELATION = _prm()  # risk.portfolio.correlation.max (NaN: no limit)
P_CORRELATION_WINDOW = _prm()  # its window, in returns (0: no ring)
P_ORDER_TYPE = _prm()  # execution.orders.type: ORDER_MARKET, ORDER_LIMIT or ORDER_AUTO
P_LIMIT_OFFSET = _prm()  # limit.offset_bps, as a fraction
P_POST_ONLY = _prm()
P_TIF = _prm()  # TIF_GTC, TIF_IOC or TIF_FOK
P_FALLBACK_BARS = _prm()  # 0: no fallback to market
P_EXPIRE_BARS = _prm()  # 0: good till cancelled
P_AUTO_SPREAD = _prm()  # auto.max_spread_bps, as a fraction
P_AUTO_URGENT = _prm()  # auto.urgent_confidence (NaN: never urgent)
P_QUEUE_TOUCH = _prm()  # 1: queue touch; 0: conservative
P_STOPS_AT_CLOSE = _prm()  # 1: stops bar_close; 0: exchange
P_MAKER_FEE = _prm()  # a resting limit fill's fee rate
P_SLICE_KIND = _prm()  # SLICE_NONE, SLICE_TWAP or SLICE_PARTICIPATION
P_SLICE_CHILDREN = _prm()
P_SLICE_EVERY = _prm()
P_SLICE_FRACTION = _prm()
P_TRAILING = _prm()  # risk.trailing_stop as a fraction (NaN: none, or an ATR distance)
P_TRAIL_ATR = _prm()  # risk.trailing_stop.atr: the ATR's window (0: no ATR distance)
P_TRAIL_MULTIPLE = _prm()  # risk.trailing_stop.multiple
P_BREAK_EVEN = _prm()  # risk.break_even (NaN: none)
P_COOLDOWN = _prm()  # risk.cooldown_bars (0: none)
P_EXIT_TIME = _prm()  # risk.exit_time: ns since midnight UTC (NaN: none)
# scaling in and out (`tradeloom.core.scaling`, ``risk.scaling``)
P_SC_KIND = _prm()  # SCALE_NONE, SCALE_PYRAMID or SCALE_DCA
P_SC_STEP = _prm()  # the move from the last leg that calls for an add (a fraction)
P_SC_MAX_ADDS = _prm()
P_SC_CAP = _prm()  # the position's cap, a fraction of equity (as the sizing's)
P_TP_LEVELS = _prm()  # how many partial take-profit levels (0: none)
P_TP_GAIN = _prm(MAX_TP_LEVELS)  # MAX_TP_LEVELS slots: each level's gain, ascending
P_TP_CLOSE = _prm(MAX_TP_LEVELS)  # MAX_TP_LEVELS slots: each level's share of the trade's size
P_VOL_WINDOW = _prm()  # volatility_target: the EWMA's span in returns
P_PERIODS_PER_YEAR = _prm()  # volatility_target: bars in a year (annualises the variance)
P_ALLOCATE = _prm()  # 1: stop after the halts for the allocation layer (it replaces the signal)
P_SIZE_SCALE = _prm()  # the share of the sizing's size an entry takes (1; a canary's fraction)
# declared latency (execution.realism; `tradeloom.core.kernels.latency`): kind (LAT_*), its
# two parameters (ms), for the order's way to the venue and a cancel's; the seed; the rule
P_LAT_KIND = _prm()  # LAT_NONE: no latency, the next bar's open as without a realism setting
P_LAT_A = _prm()
P_LAT_B = _prm()
P_CANCEL_KIND = _prm()
P_CANCEL_A = _prm()
P_CANCEL_B = _prm()
P_LAT_SEED = _prm()
P_LAT_RULE = _prm()  # ARRIVE_BAR_OPEN or ARRIVE_NEXT_OPEN
P_SIDES = _prm()  # signal.sides: the one direction traded (+1 long, -1 short), 0: both
PRM_SIZE = _prm.size

SIZING_FIXED, SIZING_KELLY, SIZING_VOL_TARGET, SIZING_RISK = 0, 1, 2, 3

SCALE_NONE, SCALE_PYRAMID, SCALE_DCA = 0, 1, 2

# --- order types, time in force, slicing (prm values; S_W_TYPE; an ORDER row's kind) -----
ORDER_MARKET, ORDER_STOP, ORDER_LIMIT, ORDER_AUTO = 0, 1, 2, 3
TIF_GTC, TIF_IOC, TIF_FOK = 0, 1, 2
SLICE_NONE, SLICE_TWAP, SLICE_PARTICIPATION = 0, 1, 2

# --- a FILL row's liquidity: who set the price (a venue that does not say: unknown) ---------
LIQ_TAKER, LIQ_MAKER, LIQ_UNKNOWN = 0, 1, 2
LIQUIDITY = ("taker", "maker", "")  # by code: `tradeloom.domain.Fill.liquidity`

# --- px: the rows of the bars (`tradeloom.core.bar.run_bars`: open, high, low, close, volume,
# probability; a perpetual adds the row below)
FUNDING_ROW = 6  # each bar's funding rate (present for a perpetual only; `core.funding`)

# --- port: rows of the portfolio checks (then the returns ring, one row per bar) -----
PORT_ORDER = 0  # the candidates' symbols, best first
PORT_WEIGHT = 1  # each symbol's signed weight as the checks go (notional / equity)
PORT_ROWS = 2

# --- cur (int64) ---------------------------------------------------------------------------
C_COUNT = _cur()  # event rows used
C_T = _cur()  # the bar being run
C_STAGE = _cur()  # where in the bar (STAGE_*)
C_SYM = _cur()  # which symbol, for a stage that goes through them
C_BASE = _cur()  # the bar of the inputs' row 0 (live steps one bar with one-row inputs)
C_NEED = _cur()  # what the step asked for when it stopped
CUR_SIZE = _cur.size

# --- io: Python's answers ------------------------------------------------------------------
IO_DIR = _io()  # a plugin's signal: direction (0: none)
IO_CONF = _io()
IO_P = _io()
IO_FRACTION = _io()  # a plugin sizer's fraction (0: refused, see IO_REF)
IO_REF = _io()  # the index of a Python object the row refers to (-1: none)
IO_CODE = _io()  # an interned code (a plugin's halt)
IO_QUANTITY = _io()  # a Python venue's quantity for a notional
IO_PENDING = _io()  # a Python venue: 1 if it still works an order of the symbol
IO_SIZE = _io.size

# --- stages of a bar, in order ---------------------------------------------------------------
STAGE_BEGIN = _stage()
STAGE_OPEN = _stage()
STAGE_PROTECT = _stage()
STAGE_MARK = _stage()
STAGE_MONITOR = _stage()
STAGE_REGIME = _stage()
STAGE_HALTS = _stage()
STAGE_SIGNAL = _stage()
STAGE_DECIDE = _stage()
STAGE_SIZED = _stage()
STAGE_CHECKED = _stage()
STAGE_SEND = _stage()
STAGE_QUANTITY = _stage()
STAGE_CANCELLED = _stage()
STAGE_SENT = _stage()
STAGE_CLOSE = _stage()
STAGE_END = _stage()

# --- needs: why the step stopped ---------------------------------------------------------------
NEED_DONE = _need()  # every bar asked for ran
NEED_BUFFER = _need()  # the event rows are full: empty or grow them, then call again
NEED_OPEN = _need()  # a Python venue: report the fills and cancels due at the bar's open
NEED_STOP = _need()  # a Python venue: send the protective exit (ORDER row), report its fills
NEED_MONITOR = _need()  # run the monitors and health rules
NEED_RULES = _need()  # a plugin's risk rules: may one halt trading?
NEED_SIGNAL = _need()  # a plugin's signal rule: the bar's signal
NEED_SIZE = _need()  # a plugin's sizing: the signal's size
NEED_CHECK = _need()  # a plugin's risk rules: may the intent go?
NEED_QUANTITY = _need()  # a Python venue: the quantity a notional buys
NEED_CANCEL = _need()  # a Python venue: cancel what works for the symbol
NEED_SEND = _need()  # a Python venue: send the order of the last ORDER row
NEED_CLOSE = _need()  # a Python venue: report what fills at the bar's close
NEED_BAR = _need()  # the per-bar driver: a bar ended
NEED_ALLOCATE = _need()  # the allocation layer: the bar's rebalance intents, if one is due
NEED_NAMES = (
    "done",
    "buffer",
    "open",
    "stop",
    "monitor",
    "rules",
    "signal",
    "size",
    "check",
    "quantity",
    "cancel",
    "send",
    "close",
    "bar",
    "allocate",
)

# --- event rows: declared in `tradeloom.core.records` (kinds, fields, columns) ----------------
EV_VALUES = records.VALUES
EV_WIDTH = records.WIDTH  # kind, bar, symbol, values
E_KIND, E_BAR, E_SYM = records.KIND, records.BAR, records.SYMBOL
EV_TRAINING = records.TRAINING.code
EV_SIGNAL = records.SIGNAL.code
EV_DECISION = records.DECISION.code
EV_REJECT = records.REJECT.code
EV_HALT = records.HALT.code
EV_ORDER = records.ORDER.code
EV_FILL = records.FILL.code
EV_CANCEL = records.CANCEL.code
EV_TRADE = records.TRADE.code
EV_REGIME = records.REGIME.code
EV_STATE = records.STATE.code
EV_LIQUIDATION = records.LIQUIDATION.code
EV_EXTERNAL = records.EXTERNAL.code
EV_PARENT = records.PARENT.code
EV_FUNDING = records.FUNDING.code
