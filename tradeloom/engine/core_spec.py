"""From a built strategy to the compiled core's parameters (`tradeloom.core.params.CoreSpec`).

A layer whose component offers a kernel spec runs inside the compiled step; any
other layer (a plugin's, or a live venue) is external and the step asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradeloom.core.kernels.specs import (
    MARGIN_SHORTS,
    CompiledComponent,
    DrawdownKernel,
    MarginKernel,
    OrdersKernel,
    SizingKernel,
    ThresholdKernel,
    VenueKernel,
)
from tradeloom.core.params import CoreSpec, ExitRules, Limits, PortfolioLimits, Scaling
from tradeloom.engine.funding import funding_series
from tradeloom.engine.wiring import Pipeline
from tradeloom.plugins.protocols import MarketLots, Venue, VenueLimits
from tradeloom.schemas.config import StrategyConfig
from tradeloom.schemas.exits import TrailingAtr, exit_time_ns
from tradeloom.schemas.limits import PreTradeLimits
from tradeloom.schemas.portfolio import PortfolioRisk
from tradeloom.schemas.regime import regime_mask
from tradeloom.schemas.scaling import Scaling as ScalingSection
from tradeloom.time.calendars import TradingCalendar

__all__ = [
    "SIDES",
    "core_spec",
    "exit_rules",
    "kernel_spec_of",
    "portfolio_limits",
    "pre_trade_limits",
    "sizing_year",
]

SIDES = {"both": 0, "long": 1, "short": -1}
"""``signal.sides`` -> the core's ``sides``: the one direction traded (0: both)."""


def kernel_spec_of(component: object) -> object | None:
    """Return the component's kernel spec (None: a Python component, external to the step)."""
    if isinstance(component, CompiledComponent):
        return component.kernel_spec()
    return None


def pre_trade_limits(limits: PreTradeLimits) -> Limits:
    """Return the core's form of ``risk.limits``."""
    return Limits(
        max_order_notional=limits.max_order_notional,
        max_position_quantity=limits.max_position_quantity,
        max_orders_per_minute=limits.max_orders_per_minute,
        price_collar=limits.price_collar,
        daily_loss_limit=limits.daily_loss_limit,
    )


def exit_rules(config: StrategyConfig) -> ExitRules:
    """Return the core's form of the trailing stop, break-even, cooldown and time exit."""
    trailing = config.trailing_stop
    atr = trailing if isinstance(trailing, TrailingAtr) else None
    fraction = None if isinstance(trailing, TrailingAtr) else trailing
    return ExitRules(
        trailing_stop=fraction,
        trailing_atr=None if atr is None else atr.atr,
        trailing_multiple=0.0 if atr is None else atr.multiple,
        break_even=config.break_even,
        cooldown_bars=config.cooldown_bars,
        exit_time_ns=None if config.exit_time is None else exit_time_ns(config.exit_time),
    )


def sizing_year(calendar: TradingCalendar, timeframe_seconds: int) -> float:
    """Return the bars a year of ``calendar`` has for a sizing's annualization: the rule
    the statistics annualize by (`TradingCalendar.periods_per_year`), given no span of
    data, since a decision at a bar cannot read how far the data runs (`core_spec`'s
    ``periods_per_year``; XNYS daily bars: 251.6, crypto's: 365)."""
    return calendar.periods_per_year(timeframe_seconds)


def core_spec(
    pipeline: Pipeline,
    timeframe_seconds: int,
    *,
    periods_per_year: float,
    venue: Venue | None = None,
    monitors: bool = True,
    symbols: Sequence[str] | None = None,
) -> CoreSpec:
    """Return the core's parameters for ``pipeline``.

    Args:
        pipeline: The built strategy.
        timeframe_seconds: The bars' length (the risk clock reads a bar at its close).
        periods_per_year: Bars in a year of the bars' calendar, which annualize the
            sizing (``volatility_target``) where the file sets no ``periods_per_year``:
            `tradeloom.time.calendars.TradingCalendar.periods_per_year`, the rule the
            statistics annualize by, given no span of data (the decision at a bar
            cannot read how far the data runs); `sizing_year` says it.
        venue: The venue orders go to instead of the strategy's (live: the exchange; a
            paper replay); a Python venue, external to the step.
        monitors: Stop at each bar for the monitors (when the strategy has any).
        symbols: The symbols the core trades, by index (the groups of
            ``risk.portfolio`` are mapped onto them); None: the data section's ``symbol``.
    """
    config = pipeline.config
    signal = kernel_spec_of(pipeline.signal)
    sizing = kernel_spec_of(pipeline.sizer)
    rules = [kernel_spec_of(rule) for rule in pipeline.rules]
    target = pipeline.venue if venue is None else venue
    venue_spec = kernel_spec_of(target) if venue is None else None
    simulated = venue_spec if isinstance(venue_spec, VenueKernel) else None
    # the strategy's own venue says which orders to send, whichever venue takes them
    own = venue_spec if venue is None else kernel_spec_of(pipeline.venue)
    orders = own.orders if isinstance(own, VenueKernel) else OrdersKernel()
    allow_short = bool(target.allow_short)
    margin = None
    if simulated is not None:
        margin = simulated.margin
        if margin is None and allow_short:
            # shorts borrow: liquidated at zero equity at the latest
            margin = MarginKernel(source=MARGIN_SHORTS)
    elif funding_series(pipeline.venue) is not None and isinstance(own, VenueKernel):
        # a perpetual traded live: shorts as the file allows them, and its margin rule
        # (the liquidation exit goes to the exchange as a market order, as a stop does)
        allow_short = allow_short and bool(pipeline.venue.allow_short)
        margin = own.margin
    return CoreSpec(
        signal=signal if isinstance(signal, ThresholdKernel) else None,
        sizing=sizing if isinstance(sizing, SizingKernel) else None,
        venue=simulated,
        drawdown_limits=tuple(r.limit for r in rules if isinstance(r, DrawdownKernel)),
        external_rules=not all(isinstance(r, DrawdownKernel) for r in rules),
        allow_short=allow_short,
        initial_cash=float(target.initial_cash),
        dust=float(target.dust) if isinstance(target, VenueLimits) else 0.0,
        dusts=tuple(float(d) for d in target.dusts) if isinstance(target, MarketLots) else (),
        # the strategy's own venue's minimum, whichever venue takes the orders (paper
        # refuses what its backtest refuses), or a live market's minimum cost when it
        # is more: the exchange would refuse the order (its amount limits and lot are
        # ``dust``; `tradeloom.live.orders.order_checks` checks them all again)
        min_notional=max(
            own.min_notional if isinstance(own, VenueKernel) else 0.0,
            float(venue.min_notional) if isinstance(venue, VenueLimits) else 0.0,
        ),
        # over a universe, each market's own minimum cost
        min_costs=tuple(float(c) for c in target.min_costs)
        if isinstance(target, MarketLots)
        else (),
        margin=margin,
        max_holding_bars=config.max_holding_bars,
        stop_loss=config.stop_loss,
        take_profit=config.take_profit,
        exits=exit_rules(config),
        journal_regime=config.regime is not None,
        regime_filter=regime_mask(config.signal_regimes),
        sides=SIDES[config.signal_sides],
        limits=pre_trade_limits(config.risk_limits),
        timeframe_ns=timeframe_seconds * 1_000_000_000,
        periods_per_year=periods_per_year,
        monitors=monitors and bool(pipeline.monitors),
        portfolio=_portfolio(pipeline, symbols),
        orders=orders,
        scaling=scaling_of(config.risk_scaling),
        allocating=pipeline.allocator is not None,
    )


def scaling_of(scaling: ScalingSection) -> Scaling:
    """Return the core's form of ``risk.scaling``."""
    add = scaling.scale_in
    return Scaling(
        take_profit_levels=tuple((lv.gain, lv.close) for lv in scaling.take_profit_levels),
        kind="none" if add is None else add.kind,
        step=0.0 if add is None else add.step,
        max_adds=0 if add is None else add.max_adds,
        max_position=0.0 if add is None else add.max_position,
    )


def _portfolio(pipeline: Pipeline, symbols: Sequence[str] | None) -> PortfolioLimits:
    config = pipeline.config
    if symbols is None:
        symbol = getattr(config.data.params, "symbol", None)
        symbols = (symbol,) if isinstance(symbol, str) else ()
    return portfolio_limits(config.risk_portfolio, config.signal_top_k, symbols)


def portfolio_limits(
    risk: PortfolioRisk, top_k: int | None, symbols: Sequence[str]
) -> PortfolioLimits:
    """Return the core's form of ``risk.portfolio`` and ``signal.top_k``.

    Args:
        risk: The portfolio limits.
        top_k: The candidates kept per bar (None: every one).
        symbols: The market of each row of the core (the groups are mapped onto them).
    """
    correlation = risk.correlation
    return PortfolioLimits(
        top_k=top_k,
        max_open_positions=risk.max_open_positions,
        max_gross_exposure=risk.max_gross_exposure,
        max_net_exposure=risk.max_net_exposure,
        max_weight=risk.max_weight,
        max_group_exposure=risk.max_group_exposure,
        groups=risk.group_of(symbols),
        max_correlation=None if correlation is None else correlation.max,
        correlation_window=0 if correlation is None else correlation.window,
    )
