"""The core's parameters: built-in components' kernel specs and the risk engine's settings.

`CoreSpec` gathers what the compiled step needs from a strategy; `CoreSpec.vector`
packs it into the ``prm`` array (`tradeloom.core.layout`). A layer whose component
is a plugin's (no kernel spec) is marked external: the step stops and asks Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tradeloom.core import layout as L
from tradeloom.core.kernels.specs import (
    MarginKernel,
    OrdersKernel,
    SizingKernel,
    ThresholdKernel,
    VenueKernel,
)
from tradeloom.runtime.lazy import numpy as np

__all__ = ["CoreSpec", "ExitRules", "Limits", "PortfolioLimits", "Scaling"]


@dataclass(frozen=True)
class Limits:
    """The pre-trade limits (`risk.limits`); None: not checked."""

    max_order_notional: float | None = None
    max_position_quantity: float | None = None
    max_orders_per_minute: int | None = None
    price_collar: float | None = None
    daily_loss_limit: float | None = None


@dataclass(frozen=True)
class PortfolioLimits:
    """Signal ranking and the portfolio limits (`tradeloom.core.portfolio`); None: off.

    Attributes:
        top_k: ``signal.top_k``: the candidates kept at a bar, best first.
        max_open_positions, max_gross_exposure, max_net_exposure, max_weight,
        max_group_exposure: ``risk.portfolio``'s limits (exposures are fractions of
            equity).
        groups: The group index of each symbol, by symbol index (-1: in no group);
            empty: no groups.
        max_correlation, correlation_window: ``risk.portfolio.correlation``.
    """

    top_k: int | None = None
    max_open_positions: int | None = None
    max_gross_exposure: float | None = None
    max_net_exposure: float | None = None
    max_weight: float | None = None
    max_group_exposure: float | None = None
    groups: tuple[int, ...] = ()
    max_correlation: float | None = None
    correlation_window: int = 0

    @property
    def active(self) -> bool:
        """Whether any is set: the bar's candidates are then ranked and checked together."""
        return self != PortfolioLimits()

    @property
    def window(self) -> int:
        """Return the returns ring's length (0: no correlation limit)."""
        return self.correlation_window if self.max_correlation is not None else 0


@dataclass(frozen=True)
class ExitRules:
    """The trailing stop, break-even stop, cooldown and time-of-day exit; None: off.

    Attributes:
        trailing_stop: The trailing distance as a fraction of the best price.
        trailing_atr: The trailing distance in ATRs: the ATR's window (with
            ``trailing_multiple``).
        trailing_multiple: How many ATRs.
        break_even: The gain (a fraction of the entry price) after which the stop
            rises to the entry price.
        cooldown_bars: Bars after an exit's fill that take no new entry.
        exit_time_ns: The time of day (ns since midnight UTC) at which a position is
            closed.
    """

    trailing_stop: float | None = None
    trailing_atr: int | None = None
    trailing_multiple: float = 0.0
    break_even: float | None = None
    cooldown_bars: int | None = None
    exit_time_ns: int | None = None

    @property
    def trailing(self) -> bool:
        """Whether a trailing stop is set."""
        return self.trailing_stop is not None or self.trailing_atr is not None

    @property
    def stops(self) -> bool:
        """Whether a stop follows the position (trailing or break-even)."""
        return self.trailing or self.break_even is not None


@dataclass(frozen=True)
class Scaling:
    """Scaling in and out (``risk.scaling``, `tradeloom.core.scaling`); the defaults: off.

    Attributes:
        take_profit_levels: ``(gain, close)`` of each partial take-profit, gains
            ascending (at most `tradeloom.core.layout.MAX_TP_LEVELS`).
        kind: ``none``, ``pyramid`` (adds on a gain) or ``dca`` (adds on a loss).
        step: The move of the close from the last leg's price that calls for an add.
        max_adds: Most adds a trade takes.
        max_position: The position's cap, a fraction of equity (as the sizing's).
    """

    take_profit_levels: tuple[tuple[float, float], ...] = ()
    kind: str = "none"
    step: float = 0.0
    max_adds: int = 0
    max_position: float = 0.0

    def pack(self, p: list[float]) -> None:
        """Write these settings into the ``prm`` values ``p`` (`CoreSpec.vector`'s list)."""
        if len(self.take_profit_levels) > L.MAX_TP_LEVELS:
            raise ValueError(f"at most {L.MAX_TP_LEVELS} take-profit levels")
        p[L.P_SC_KIND] = _SCALINGS[self.kind]
        p[L.P_SC_STEP] = self.step
        p[L.P_SC_MAX_ADDS] = self.max_adds
        p[L.P_SC_CAP] = self.max_position
        p[L.P_TP_LEVELS] = len(self.take_profit_levels)
        for k, (gain, close) in enumerate(self.take_profit_levels):
            p[L.P_TP_GAIN + k] = gain
            p[L.P_TP_CLOSE + k] = close


_SCALINGS = {"none": L.SCALE_NONE, "pyramid": L.SCALE_PYRAMID, "dca": L.SCALE_DCA}


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class CoreSpec:
    """Everything the compiled step reads besides the bars.

    Attributes:
        signal: The threshold rule's kernel; None: a plugin's signal rule.
        sizing: The sizing kernel; None: a plugin's sizing.
        venue: The simulated venue's kernel; None: a Python venue (live, a plugin's),
            whose costs the driver answers for.
        drawdown_limits: The drawdown rules' limits, in file order.
        external_rules: A risk rule is a plugin's: every rule runs in Python.
        allow_short: Shorts allowed (a Python venue says so itself).
        initial_cash: The account's starting cash.
        dust: A position within this of zero counts as flat (a live venue's lot).
        dusts: Per symbol, its own ``dust`` (a live venue over a universe: each market's
            lot); empty: ``dust`` for every symbol.
        min_notional: The smallest order notional the strategy's venue takes (quote):
            an order or a fill below it is refused (``BELOW_MINIMUM``), and a
            position worth less at its mark counts as flat (0: no minimum).
        min_costs: Per symbol, its market's minimum order cost (a live venue over a
            universe: each market's ``limits.cost.min``); a symbol's minimum is the
            larger of it and ``min_notional``. Empty: ``min_notional`` alone.
        margin: The margin account's settings; None: spot cash (long-only, buys
            limited by the cash). A venue that allows shorts is a margin account.
        max_holding_bars, stop_loss, take_profit: The engine's own exits (None: off).
        exits: The trailing stop, break-even, cooldown and time-of-day exit
            (`ExitRules`; `tradeloom.core.exits`).
        journal_regime: Journal regime changes.
        regime_filter: `regime_mask` of ``signal.regimes`` (0: every regime).
        sides: ``signal.sides``: the one direction the strategy trades (+1 long, -1
            short; a signal the other way asks for flat), 0 both.
        limits: The pre-trade limits.
        timeframe_ns: A bar's length (the risk clock reads a bar at its close).
        periods_per_year: Bars in a year of the data's calendar, which a sizing that
            annualizes takes when its own ``periods_per_year`` is unset
            (`tradeloom.time.calendars.TradingCalendar.periods_per_year`, given no span: a
            decision cannot read how far the data runs); 0: the timeframe's bars in 365
            days (a market that never closes).
        monitors: Stop at each bar for the monitors and health rules.
        yield_bars: Stop at the end of every bar (the per-bar driver).
        portfolio: Signal ranking and the portfolio limits.
        orders: The order types the strategy sends (``execution.orders``), in every
            mode: a Python venue receives them as the core decides them.
        scaling: Partial take-profits and adds (``risk.scaling``).
        allocating: The allocation layer decides the intents: the step stops after the
            halts of every bar (`tradeloom.core.layout.NEED_ALLOCATE`) and runs no signal.
    """

    signal: ThresholdKernel | None
    sizing: SizingKernel | None
    venue: VenueKernel | None
    drawdown_limits: tuple[float, ...] = ()
    external_rules: bool = False
    allow_short: bool = False
    initial_cash: float = 100_000.0
    dust: float = 0.0
    dusts: tuple[float, ...] = ()
    min_notional: float = 0.0
    min_costs: tuple[float, ...] = ()
    margin: MarginKernel | None = None
    max_holding_bars: int | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    exits: ExitRules = field(default_factory=ExitRules)
    journal_regime: bool = False
    regime_filter: int = 0
    sides: int = 0
    limits: Limits = field(default_factory=Limits)
    timeframe_ns: int = 0
    periods_per_year: float = 0.0
    monitors: bool = False
    yield_bars: bool = False
    portfolio: PortfolioLimits = field(default_factory=PortfolioLimits)
    orders: OrdersKernel = field(default_factory=OrdersKernel)
    scaling: Scaling = field(default_factory=Scaling)
    allocating: bool = False

    @property
    def compiled(self) -> bool:
        """Whether every bar runs in one call: no layer needs Python."""
        return (
            self.signal is not None
            and self.sizing is not None
            and self.venue is not None
            and not self.external_rules
            and not self.monitors
            and not self.yield_bars
            and not self.allocating
        )

    def vector(self) -> np.ndarray:
        """Return the ``prm`` array.

        Packed into a Python list and converted once (the same float64 values): a sweep
        packs one per variant, and setting a list's item is cheaper than an array's
        (about 6% of the call; the rest is reading the spec's attributes).
        """
        p = [0.0] * L.PRM_SIZE
        signal, sizing, venue = self.signal, self.sizing, self.venue
        if signal is not None:
            p[L.P_THRESHOLD] = signal.threshold
            p[L.P_MIN_INTERVAL] = signal.min_interval
        if sizing is not None:
            p[L.P_SIZING_KIND] = _SIZINGS[sizing.kind]
            p[L.P_FRACTION] = sizing.fraction
            p[L.P_PAYOFF] = sizing.payoff
            p[L.P_MAX_POSITION] = sizing.max_position
            p[L.P_VOL_WINDOW] = sizing.window
            p[L.P_PERIODS_PER_YEAR] = (
                sizing.periods_per_year
                or self.periods_per_year
                or (_YEAR_NS / self.timeframe_ns if self.timeframe_ns else 0.0)
            )
        if venue is not None:
            p[L.P_FILL_AT_CLOSE] = venue.fill_at_close
            p[L.P_SLIPPAGE] = venue.slippage
            p[L.P_FEE] = venue.fee_rate
            p[L.P_MAX_VOLUME_FRACTION] = venue.max_volume_fraction or -1.0
            lat = venue.latency
            p[L.P_LAT_KIND] = lat.kind
            p[L.P_LAT_A] = lat.a
            p[L.P_LAT_B] = lat.b
            p[L.P_CANCEL_KIND] = lat.cancel_kind
            p[L.P_CANCEL_A] = lat.cancel_a
            p[L.P_CANCEL_B] = lat.cancel_b
            p[L.P_LAT_SEED] = lat.seed
            p[L.P_LAT_RULE] = lat.rule
        p[L.P_ALLOW_SHORT] = self.allow_short
        p[L.P_MAX_HOLDING] = self.max_holding_bars or 0
        p[L.P_STOP_LOSS] = _nan(self.stop_loss)
        p[L.P_TAKE_PROFIT] = _nan(self.take_profit)
        exits = self.exits
        p[L.P_TRAILING] = _nan(exits.trailing_stop)
        p[L.P_TRAIL_ATR] = exits.trailing_atr or 0
        p[L.P_TRAIL_MULTIPLE] = exits.trailing_multiple if exits.trailing_atr else 0.0
        p[L.P_BREAK_EVEN] = _nan(exits.break_even)
        p[L.P_COOLDOWN] = exits.cooldown_bars or 0
        p[L.P_EXIT_TIME] = _nan(exits.exit_time_ns)
        p[L.P_JOURNAL_REGIME] = self.journal_regime
        p[L.P_REGIME_FILTER] = self.regime_filter
        p[L.P_SIDES] = self.sides
        limits = self.limits
        p[L.P_MAX_ORDER_NOTIONAL] = _nan(limits.max_order_notional)
        p[L.P_MAX_POSITION_QTY] = _nan(limits.max_position_quantity)
        p[L.P_MAX_ORDERS_PER_MINUTE] = _nan(limits.max_orders_per_minute)
        p[L.P_PRICE_COLLAR] = _nan(limits.price_collar)
        p[L.P_DAILY_LOSS] = _nan(limits.daily_loss_limit)
        p[L.P_RATE_CAPACITY] = max(1, limits.max_orders_per_minute or 1)
        margin = self.margin
        p[L.P_MARGIN] = 0.0 if margin is None else margin.source
        if margin is not None:
            p[L.P_INITIAL_MARGIN] = margin.initial
            p[L.P_MAINTENANCE_MARGIN] = margin.maintenance
            p[L.P_LEVERAGE] = margin.leverage
            p[L.P_LIQUIDATION_FEE] = margin.liquidation_fee
        else:
            p[L.P_LEVERAGE] = 1.0
        p[L.P_TIMEFRAME_NS] = self.timeframe_ns
        p[L.P_MIN_NOTIONAL] = self.min_notional
        p[L.P_EXT_VENUE] = venue is None
        p[L.P_EXT_SIGNAL] = signal is None
        p[L.P_EXT_SIZER] = sizing is None
        p[L.P_EXT_RULES] = self.external_rules
        p[L.P_MONITORS] = self.monitors
        p[L.P_YIELD_BARS] = self.yield_bars
        portfolio = self.portfolio
        p[L.P_PORTFOLIO] = portfolio.active
        p[L.P_TOP_K] = portfolio.top_k or 0
        p[L.P_MAX_OPEN] = _nan(portfolio.max_open_positions)
        p[L.P_MAX_GROSS] = _nan(portfolio.max_gross_exposure)
        p[L.P_MAX_NET] = _nan(portfolio.max_net_exposure)
        p[L.P_MAX_WEIGHT] = _nan(portfolio.max_weight)
        p[L.P_MAX_GROUP] = _nan(portfolio.max_group_exposure)
        p[L.P_MAX_CORRELATION] = _nan(portfolio.max_correlation)
        p[L.P_CORRELATION_WINDOW] = portfolio.window
        # the returns ring must see every bar's close, an ATR trailing stop's average
        # every bar's range, volatility_target's variance every close: no bar may be
        # skipped as quiet
        vol_target = sizing is not None and sizing.kind == "volatility_target"
        # (nor may the allocation layer miss a close of its windows)
        quiet = not (portfolio.window or exits.trailing_atr or vol_target or self.allocating)
        p[L.P_QUIET] = 1.0 if quiet else 0.0
        p[L.P_ALLOCATE] = self.allocating
        p[L.P_SIZE_SCALE] = 1.0  # a canary scales it (`tradeloom.engine.driver.Engine.scale_sizes`)
        self._orders(p)
        self.scaling.pack(p)
        return np.array(p, np.float64)

    def _orders(self, p: list[float]) -> None:
        orders = self.orders
        p[L.P_ORDER_TYPE] = _ORDER_TYPES[orders.order_type]
        p[L.P_LIMIT_OFFSET] = orders.limit_offset
        p[L.P_POST_ONLY] = orders.post_only
        p[L.P_TIF] = _TIFS[orders.time_in_force]
        p[L.P_FALLBACK_BARS] = orders.fallback_bars(self.timeframe_ns // 1_000_000_000)
        p[L.P_EXPIRE_BARS] = orders.expire_after_bars
        p[L.P_AUTO_SPREAD] = orders.auto_max_spread
        p[L.P_AUTO_URGENT] = _nan(orders.auto_urgent_confidence)
        p[L.P_QUEUE_TOUCH] = orders.queue_touch
        p[L.P_STOPS_AT_CLOSE] = orders.stops_at_close
        p[L.P_MAKER_FEE] = p[L.P_FEE] if self.venue is None else self.venue.maker_fee
        p[L.P_SLICE_KIND] = _SLICINGS[orders.slicing]
        p[L.P_SLICE_CHILDREN] = orders.slice_children
        p[L.P_SLICE_EVERY] = orders.slice_every_bars
        p[L.P_SLICE_FRACTION] = orders.slice_volume_fraction


_YEAR_NS = 365.0 * 24 * 3600 * 1e9
"""A year of a 24/7 market, as `tradeloom.time.timeframes.SECONDS_PER_YEAR` counts it."""
_SIZINGS = {
    "fixed_fraction": L.SIZING_FIXED,
    "kelly": L.SIZING_KELLY,
    "volatility_target": L.SIZING_VOL_TARGET,
    "risk_per_trade": L.SIZING_RISK,
}
_ORDER_TYPES = {"market": L.ORDER_MARKET, "limit": L.ORDER_LIMIT, "auto": L.ORDER_AUTO}
_TIFS = {"GTC": L.TIF_GTC, "IOC": L.TIF_IOC, "FOK": L.TIF_FOK}
_SLICINGS = {"none": L.SLICE_NONE, "twap": L.SLICE_TWAP, "participation": L.SLICE_PARTICIPATION}
