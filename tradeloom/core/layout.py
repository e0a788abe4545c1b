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
]

# --- acct ----------------------------------------------------------------------------------
A_CASH = 0
A_PEAK = 1
A_FEES = 2
A_SEQ = 3  # orders sent so far (the next order's sequence number is A_SEQ + 1)
A_HALT = 4  # the halt latch: 0, or the code that halted trading
A_STATE = 5  # trading state: codes.ACTIVE, REDUCING or HALTED_STATE
A_STATE_WHY = 6  # the code of the last trading state change
A_DAY = 7  # the UTC day (days since the epoch) of the daily-loss clock; -1 before any
A_DAY_EQUITY = 8  # the equity at that day's first mark
A_EQUITY = 9  # the equity at the last mark
A_EXIT_HALT = 10  # 1: a halt this bar closes every position (a health halt); 2: the kill's flatten
A_RATE_COUNT = 11  # sends in the ring
A_RATE_HEAD = 12  # the ring's oldest slot
A_RETURNS = 13  # bars pushed to the returns ring (``port``) so far
A_SEND_PASS = 14  # the send stage's pass: 0 exits and reductions, 1 entries and increases
ACCT_SIZE = 15

# --- sym (one row per symbol) --------------------------------------------------------------
S_QTY = 0  # signed position
S_ENTRY_BAR = 1  # bar of the fill that opened it (-1 flat)
S_ENTRY_PRICE = 2  # average entry price (NaN flat)
S_MAX_QTY = 3  # largest size of the open trade
S_EXIT_VALUE = 4  # sum of quantity x price of the open trade's reductions
S_EXIT_QTY = 5  # quantity reduced so far
S_TRADE_FEES = 6  # fees paid while the trade is open
S_REALIZED = 7  # realized profit of the open trade, before fees
S_MARK = 8  # the last close the position was marked at
S_W_ACTIVE = 9  # 1 while an order is working (external venue: anything pending)
S_W_SEQ = 10
S_W_BAR = 11  # its decision bar
S_W_SIDE = 12
S_W_REMAINING = 13
S_W_QTY = 14
S_W_STOP = 15  # 1: a protective exit filling during its bar
S_W_DIR = 16  # the direction the engine wants (a working order's target)
S_SIG_LAST = 17  # the threshold rule's last signal bar (-1: none yet)
S_REGIME = 18  # the previous bar's regime code
S_I_REASON = 19  # the bar's intent: order reason (0: none)
S_I_DIR = 20  # its direction
S_I_TARGET = 21  # its target, a signed fraction of equity
S_X_DIR = 22  # the bar's signal: direction (0: none)
S_X_CONF = 23
S_X_P = 24
S_X_HELD = 25  # the side held when the signal came
S_X_SIZE = 26  # the size the sizing gave
S_O_QTY = 27  # the order being sent: its signed quantity (target minus position)
S_P_REASON = 28  # the protective exit the bar triggered: its reason
S_P_LEVEL = 29  # and its trigger price
S_LAST_CLOSE = 30  # the last close the symbol had (NaN: none yet): the returns ring's
S_CANDIDATE = 31  # 1: the bar's signal passed the ladder and waits for the portfolio checks
S_GROUP = 32  # the symbol's group (risk.portfolio.groups), -1: none
S_DUST = 33  # a position within this of zero is flat: the symbol's market's lot (live)
S_W_TYPE = 34  # the working order's type: ORDER_MARKET or ORDER_LIMIT (a stop: S_W_STOP)
S_W_LIMIT = 35  # its limit price (NaN: a market order)
S_W_FIRST = 36  # a limit order: the first bar it rests during (-1: not arrived yet)
S_W_PARENT = 37  # the slicing parent's sequence number (0: none)
S_PA_SEQ = 38  # a slicing parent still sending children: its sequence number (0: none)
S_PA_SIDE = 39
S_PA_QTY = 40  # its quantity
S_PA_REST = 41  # what no child has filled yet
S_PA_NEXT = 42  # the bar its next child goes out
S_PA_SENT = 43  # children sent so far
S_PA_REASON = 44
S_PA_DIR = 45  # the direction the parent works toward
S_W_REASON = 46  # the working order's reason (a fallback order keeps it)
S_PA_KIND = 47  # the type of the parent's children (ORDER_MARKET or ORDER_LIMIT)
S_MIN_COST = 48  # the symbol's market's minimum order cost (a live market's limits.cost.min)
S_DUST_NOTED = 49  # the engine exits a dust position was journaled for, a bit each (a fill: 0)
S_DUST_MERGE = 50  # 1: an order was sent over a dust position: its next fill starts a trade
S_EXIT_BAR = 51  # the bar of the fill that last closed a trade (NaN: none): the cooldown's
S_BEST = 52  # the open trade's best price up to the last bar (NaN: none yet; the entry)
S_TRAIL = 53  # its trailing stop's level in force (NaN: none yet)
S_ATR = 54  # the trailing stop's average true range: 4 floats (`tradeloom.core.exits.atr_update`)
S_ATR_END = 58
S_FUNDING = 58  # funding booked while the open trade was held (+ received; `core.funding`)
# scaling in and out (`tradeloom.core.scaling`): the open trade's legs
S_SC_TRADE = 59  # the trade the slots below belong to: its entry bar + 1 (0: none)
S_SC_TAKEN = 60  # the take-profit levels taken, a bit each
S_SC_ADDS = 61  # the adds sent
S_SC_LAST = 62  # the last leg's price: the entry price, then each add's decision close
S_SC_QTY = 63  # the partial take-profit being sent: its quantity
S_VOL = 64  # volatility_target's EWMA variance: 4 floats (`core.kernels.sizing.volatility_update`)
S_VOL_END = 68
SYM_SIZE = 68

# --- prm -----------------------------------------------------------------------------------
P_THRESHOLD = 0
P_MIN_INTERVAL = 1
P_SIZING_KIND = 2  # SIZING_FIXED, SIZING_KELLY, SIZING_VOL_TARGET or SIZING_RISK
P_FRACTION = 3  # the fixed fraction, Kelly's share, the target volatility or the risk
P_PAYOFF = 4
P_MAX_POSITION = 5
P_FILL_AT_CLOSE = 6
P_SLIPPAGE = 7
P_FEE = 8
P_ALLOW_SHORT = 9
P_MAX_VOLUME_FRACTION = 10  # <= 0: no limit
P_MAX_HOLDING = 11  # <= 0: no limit
P_STOP_LOSS = 12  # NaN: none
P_TAKE_PROFIT = 13  # NaN: none
P_JOURNAL_REGIME = 14
P_REGIME_FILTER = 15  # regime_mask of signal.regimes (0: every regime)
P_MAX_ORDER_NOTIONAL = 16  # NaN: no limit (and the four below)
P_MAX_POSITION_QTY = 17
P_MAX_ORDERS_PER_MINUTE = 18
P_PRICE_COLLAR = 19
P_DAILY_LOSS = 20
P_MARGIN = 21  # 0: spot cash; else a margin account, by its rule's source (MarginKernel.source)
P_INITIAL_MARGIN = 22
P_MAINTENANCE_MARGIN = 23
P_LEVERAGE = 24
P_LIQUIDATION_FEE = 25
P_TIMEFRAME_NS = 26  # a bar's length: the risk clock reads a bar at its close
P_MIN_NOTIONAL = 27  # the strategy's minimum order notional (a symbol's market may ask more)
P_EXT_VENUE = 28  # 1: the venue is Python (live, a plugin's): ask for its events
P_EXT_SIGNAL = 29
P_EXT_SIZER = 30
P_EXT_RULES = 31
P_MONITORS = 32  # 1: stop at each bar for the monitors and health rules
P_YIELD_BARS = 33  # 1: stop at the end of every bar (the per-bar driver)
P_RATE_CAPACITY = 34  # slots of the ``sent`` ring
P_QUIET = 35  # 1: quiet bars skip the ladder (`tradeloom.core.quiet`); 0: every bar runs it
P_PORTFOLIO = 36  # 1: entries and reversals are ranked and checked together (below)
P_TOP_K = 37  # signal.top_k (0: every candidate)
P_MAX_OPEN = 38  # risk.portfolio.max_open_positions (NaN: no limit, and the four below)
P_MAX_GROSS = 39
P_MAX_NET = 40
P_MAX_WEIGHT = 41
P_MAX_GROUP = 42  # risk.portfolio.max_group_exposure
P_MAX_CORRELATION = 43  # risk.portfolio.correlation.max (NaN: no limit)
P_CORRELATION_WINDOW = 44  # its window, in returns (0: no ring)
P_ORDER_TYPE = 45  # execution.orders.type: ORDER_MARKET, ORDER_LIMIT or ORDER_AUTO
P_LIMIT_OFFSET = 46  # limit.offset_bps, as a fraction
P_POST_ONLY = 47
P_TIF = 48  # TIF_GTC, TIF_IOC or TIF_FOK
P_FALLBACK_BARS = 49  # 0: no fallback to market
P_EXPIRE_BARS = 50  # 0: good till cancelled
P_AUTO_SPREAD = 51  # auto.max_spread_bps, as a fraction
P_AUTO_URGENT = 52  # auto.urgent_confidence (NaN: never urgent)
P_QUEUE_TOUCH = 53  # 1: queue touch; 0: conservative
P_STOPS_AT_CLOSE = 54  # 1: stops bar_close; 0: exchange
P_MAKER_FEE = 55  # a resting limit fill's fee rate
P_SLICE_KIND = 56  # SLICE_NONE, SLICE_TWAP or SLICE_PARTICIPATION
P_SLICE_CHILDREN = 57
P_SLICE_EVERY = 58
P_SLICE_FRACTION = 59
P_TRAILING = 60  # risk.trailing_stop as a fraction (NaN: none, or an ATR distance)
P_TRAIL_ATR = 61  # risk.trailing_stop.atr: the ATR's window (0: no ATR distance)
P_TRAIL_MULTIPLE = 62  # risk.trailing_stop.multiple
P_BREAK_EVEN = 63  # risk.break_even (NaN: none)
P_COOLDOWN = 64  # risk.cooldown_bars (0: none)
P_EXIT_TIME = 65  # risk.exit_time: ns since midnight UTC (NaN: none)
# scaling in and out (`tradeloom.core.scaling`, ``risk.scaling``)
P_SC_KIND = 66  # SCALE_NONE, SCALE_PYRAMID or SCALE_DCA
P_SC_STEP = 67  # the move from the last leg that calls for an add (a fraction)
P_SC_MAX_ADDS = 68
P_SC_CAP = 69  # the position's cap, a fraction of equity (as the sizing's)
P_TP_LEVELS = 70  # how many partial take-profit levels (0: none)
P_TP_GAIN = 71  # MAX_TP_LEVELS slots: each level's gain, ascending
P_TP_CLOSE = 71 + 8  # MAX_TP_LEVELS slots: each level's share of the trade's size
P_VOL_WINDOW = 87  # volatility_target: the EWMA's span in returns
P_PERIODS_PER_YEAR = 88  # volatility_target: bars in a year (annualises the variance)
PRM_SIZE = 89

SIZING_FIXED, SIZING_KELLY, SIZING_VOL_TARGET, SIZING_RISK = 0, 1, 2, 3

MAX_TP_LEVELS = 8
"""Most partial take-profit levels (``risk.scaling.take_profit_levels``)."""
SCALE_NONE, SCALE_PYRAMID, SCALE_DCA = 0, 1, 2

# --- order types, time in force, slicing (prm values; S_W_TYPE; an ORDER row's kind) -----
ORDER_MARKET, ORDER_STOP, ORDER_LIMIT, ORDER_AUTO = 0, 1, 2, 3
TIF_GTC, TIF_IOC, TIF_FOK = 0, 1, 2
SLICE_NONE, SLICE_TWAP, SLICE_PARTICIPATION = 0, 1, 2

# --- a FILL row's liquidity: who set the price (a venue that does not say: unknown) ---------
LIQ_TAKER, LIQ_MAKER, LIQ_UNKNOWN = 0, 1, 2
LIQUIDITY = ("taker", "maker", "")  # by code: `tradeloom.domain.Fill.liquidity`

# --- port: rows of the portfolio checks (then the returns ring, one row per bar) -----
PORT_ORDER = 0  # the candidates' symbols, best first
PORT_WEIGHT = 1  # each symbol's signed weight as the checks go (notional / equity)
PORT_ROWS = 2

# --- cur (int64) ---------------------------------------------------------------------------
C_COUNT = 0  # event rows used
C_T = 1  # the bar being run
C_STAGE = 2  # where in the bar (STAGE_*)
C_SYM = 3  # which symbol, for a stage that goes through them
C_BASE = 4  # the bar of the inputs' row 0 (live steps one bar with one-row inputs)
C_NEED = 5  # what the step asked for when it stopped
CUR_SIZE = 6

# --- io: Python's answers ------------------------------------------------------------------
IO_DIR = 0  # a plugin's signal: direction (0: none)
IO_CONF = 1
IO_P = 2
IO_FRACTION = 3  # a plugin sizer's fraction (0: refused, see IO_REF)
IO_REF = 4  # the index of a Python object the row refers to (-1: none)
IO_CODE = 5  # an interned code (a plugin's halt)
IO_QUANTITY = 6  # a Python venue's quantity for a notional
IO_PENDING = 7  # a Python venue: 1 if it still works an order of the symbol
IO_SIZE = 8

# --- stages of a bar, in order ---------------------------------------------------------------
STAGE_BEGIN = 0
STAGE_OPEN = 1
STAGE_PROTECT = 2
STAGE_MARK = 3
STAGE_MONITOR = 4
STAGE_REGIME = 5
STAGE_HALTS = 6
STAGE_SIGNAL = 7
STAGE_DECIDE = 8
STAGE_SIZED = 9
STAGE_CHECKED = 10
STAGE_SEND = 11
STAGE_QUANTITY = 12
STAGE_CANCELLED = 13
STAGE_SENT = 14
STAGE_CLOSE = 15
STAGE_END = 16

# --- needs: why the step stopped ---------------------------------------------------------------
NEED_DONE = 0  # every bar asked for ran
NEED_BUFFER = 1  # the event rows are full: empty or grow them, then call again
NEED_OPEN = 2  # a Python venue: report the fills and cancels due at the bar's open
NEED_STOP = 3  # a Python venue: send the protective exit (ORDER row), report its fills
NEED_MONITOR = 4  # run the monitors and health rules
NEED_RULES = 5  # a plugin's risk rules: may one halt trading?
NEED_SIGNAL = 6  # a plugin's signal rule: the bar's signal
NEED_SIZE = 7  # a plugin's sizing: the signal's size
NEED_CHECK = 8  # a plugin's risk rules: may the intent go?
NEED_QUANTITY = 9  # a Python venue: the quantity a notional buys
NEED_CANCEL = 10  # a Python venue: cancel what works for the symbol
NEED_SEND = 11  # a Python venue: send the order of the last ORDER row
NEED_CLOSE = 12  # a Python venue: report what fills at the bar's close
NEED_BAR = 13  # the per-bar driver: a bar ended
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
