"""The market rules an emulated exchange checks an order against (price grid, quantity
bounds, rates), when a stop order triggers, and the funding rates by market."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import pandas as pd

from tradeloom.testing.emulator.records import (
    ASSET_PRECISION,
    Market,
    MarketRules,
    OrderType,
    Reason,
    Rejected,
    Side,
)


def _falls(type: OrderType, side: Side) -> bool:
    """Whether a stop triggers on a fall (a sell stop-loss, a buy take-profit)."""
    return (side == "SELL") == type.startswith("STOP_LOSS")


def _reached(type: OrderType, side: Side, stop: Decimal, low: Decimal, high: Decimal) -> bool:
    return low <= stop if _falls(type, side) else high >= stop


def _funding_by_id(
    rates: Mapping[str, pd.Series], markets: Mapping[str, Market]
) -> dict[str, tuple[list[int], list[Decimal]]]:
    by_symbol = {m.symbol: m.id for m in markets.values()}
    out: dict[str, tuple[list[int], list[Decimal]]] = {}
    for symbol, series in rates.items():
        if symbol not in by_symbol:
            raise ValueError(f"funding rates of {symbol}, which is not one of the markets")
        index = pd.DatetimeIndex(series.index)
        if index.tz is None or not index.is_monotonic_increasing or index.has_duplicates:
            raise ValueError(f"funding rates of {symbol} need a sorted, unique UTC index")
        times = [int(t) for t in index.as_unit("ms").asi8]
        out[by_symbol[symbol]] = (times, [Decimal(repr(float(r))) for r in series])
    return out


def _rules_for(symbol: str, rules: MarketRules | Mapping[str, MarketRules] | None) -> MarketRules:
    if rules is None:
        return MarketRules()
    if isinstance(rules, MarketRules):
        return rules
    return rules.get(symbol, MarketRules())


def _check_rate(name: str, value: Decimal, *, allow_zero: bool) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, Decimal) or not low_ok or value > 1:
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must be a Decimal in {bound}, was {value!r}")


def _check_price(price: Decimal, rules: MarketRules) -> None:
    grid = (rules.min_price, rules.max_price, rules.tick_size)
    _check_on_grid("price", price, *grid, "tick", Reason.PRICE_FILTER)


def _check_quantity(quantity: Decimal, rules: MarketRules) -> None:
    grid = (rules.min_qty, rules.max_qty, rules.step_size)
    _check_on_grid("quantity", quantity, *grid, "step", Reason.LOT_SIZE)


def _check_on_grid(
    what: str,
    value: Decimal,
    low: Decimal,
    high: Decimal,
    step: Decimal,
    step_name: str,
    reason: Reason,
) -> None:
    # Binance's PRICE_FILTER and LOT_SIZE: within [low, high] and a whole number of
    # steps above low
    if value < low or value > high or (value - low) % step:
        raise Rejected(reason, f"{what} {value} not in [{low}, {high}] on {step_name} {step}")


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _round8(value: Decimal) -> Decimal:
    return value.quantize(ASSET_PRECISION, rounding=ROUND_HALF_EVEN)


def _ceil8(value: Decimal) -> Decimal:
    return value.quantize(ASSET_PRECISION, rounding=ROUND_CEILING)
