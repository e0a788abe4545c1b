"""How each figure of ``metrics.json`` is named and printed: one table for the summary,
the report and ``compare``, so the three say the same thing the same way."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "ALLOCATION",
    "ANNUALISED",
    "NOT_APPLICABLE",
    "STATISTICS",
    "TRADES_NOT_APPLICABLE",
    "TRADE_FIGURES",
    "allocation_value",
    "format_duration",
    "format_price",
    "format_value",
    "label_of",
    "price_decimals",
    "short_run",
    "short_run_note",
    "trades_apply",
]

ANNUALISED = ("cagr", "sharpe", "sortino", "sharpe_daily", "sortino_daily", "calmar", "volatility")
"""The figures scaled to a year: extrapolations on a run shorter than `_SHORT_YEARS`."""

_SHORT_YEARS = 0.25
"""A run shorter than a quarter of a year has its annualised figures flagged: 55 hourly
bars compound to a CAGR and a Sharpe ratio that say little about a year."""


def short_run(metrics: Mapping[str, Any]) -> tuple[int, float] | None:
    """Return the bars and days of a run too short to annualise (None: long enough)."""
    bars, periods = metrics.get("bars"), metrics.get("periods_per_year")
    if not isinstance(bars, int | float) or not isinstance(periods, int | float) or periods <= 0:
        return None
    years = float(bars) / float(periods)
    return None if years >= _SHORT_YEARS else (int(bars), years * 365)


def short_run_note(metrics: Mapping[str, Any]) -> str:
    """Return the warning for a run too short to annualise ('' for a long enough run)."""
    short = short_run(metrics)
    if short is None:
        return ""
    return (
        f"annualised from {short[0]:,} bars ({short[1]:,.1f} days): CAGR, Sharpe, "
        "Sortino, Calmar and volatility extrapolate a short run to a year; read them "
        "with care"
    )


def _pct(value: float) -> str:
    return f"{value:+.2%}"


def _plain_pct(value: float) -> str:
    return f"{value:.2%}"


def _ratio(value: float) -> str:
    return f"{value:.2f}"


def _count(value: float) -> str:
    return f"{int(value):,}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _bars(value: float) -> str:
    return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"


def _days(value: float) -> str:
    return f"{value:,.1f} days"


def format_duration(seconds: float) -> str:
    """Return a length of time in the unit a person reads it in (``2.5 hours``)."""
    if seconds < 60:
        return f"{seconds:,.3g} s"
    if seconds >= 86_400:
        return f"{seconds / 86_400:,.1f} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:,.1f} hours"
    return f"{seconds / 60:,.1f} minutes"


_PRICE_DIGITS = 6
"""Significant digits a price is printed with at most (1.19825, 43,215.1)..."""


def price_decimals(prices: Any) -> int:
    """Return the decimals a market's prices are quoted with: those of its prices as
    written (1.19825: 5; a file's prices of two decimals: 2), at most what shows
    `_PRICE_DIGITS` significant digits of the typical price and at least 2.

    Args:
        prices: Prices of the market (its closes), or one price.
    """
    values = np.asarray(prices, dtype=np.float64).ravel()
    values = values[np.isfinite(values) & (values != 0)]  # a copy of its own: worked in
    if not len(values):
        return 2
    np.abs(values, out=values)
    sample = values[:: max(1, len(values) // 500)].tolist()  # before the median reorders them
    typical = float(np.median(values, overwrite_input=True))
    cap = max(2, _PRICE_DIGITS - 1 - math.floor(math.log10(typical)))
    written = 0
    for value in sample:  # a sample: the decimals written
        text = repr(float(value))
        if "e" in text:
            return cap
        written = max(written, len(text.partition(".")[2].rstrip("0")))
        if written >= cap:
            return cap
    return max(2, written)


def format_price(value: float, decimals: int | None = None) -> str:
    """Return a price at its market's decimals (`price_decimals`; None: the price's own):
    ``1.19825``, not ``1.20``."""
    places = price_decimals(value) if decimals is None else decimals
    return f"{value:,.{places}f}"


def _text(value: Any) -> str:
    return str(value)


Formatter = Callable[[Any], str]

STATISTICS: tuple[tuple[str, tuple[tuple[str, str, Formatter], ...]], ...] = (
    (
        "Returns",
        (
            ("total_return", "total return", _pct),
            ("buy_and_hold_return", "buy and hold", _pct),
            ("cagr", "CAGR", _pct),
            ("sharpe", "Sharpe (ann.)", _ratio),
            ("sortino", "Sortino (ann.)", _ratio),
            ("calmar", "Calmar", _ratio),
            ("sharpe_daily", "Sharpe (daily returns, ann.)", _ratio),
            ("sortino_daily", "Sortino (daily returns, ann.)", _ratio),
            ("volatility", "volatility (ann.)", _plain_pct),
            ("max_drawdown", "max drawdown", _plain_pct),
            ("max_drawdown_duration_days", "max drawdown duration", _days),
            # "exposure" has one meaning per name: this is the share of bars with a
            # position; "gross exposure" is the value held over equity (the report's chart,
            # the attribution by symbol)
            ("exposure", "time in market", _plain_pct),
            ("final_equity", "final equity", _money),
        ),
    ),
    (
        "Trades",
        (
            ("trades", "trades", _count),
            ("long_trades", "long", _count),
            ("short_trades", "short", _count),
            ("win_rate", "win rate", lambda v: f"{v:.1%}"),
            ("avg_trade_return", "average trade", _pct),
            ("best_trade", "best trade", _pct),
            ("worst_trade", "worst trade", _pct),
            ("expectancy", "expectancy (per trade)", _money),
            ("profit_factor", "profit factor", _ratio),
            ("sqn", "SQN", _ratio),
            ("avg_holding_bars", "average holding (bars)", _bars),
            ("avg_holding_seconds", "average holding time", format_duration),
            ("turnover", "turnover (x mean equity)", _ratio),
            ("fees", "fees", _money),
            ("funding", "funding (net, + received)", lambda v: f"{v:+,.2f}"),
        ),
    ),
    (
        "Model and run",
        (
            ("bars", "bars", _count),
            ("period", "period", _text),
            ("auc", "AUC (all predictions)", lambda v: f"{v:.4f}"),
            ("predictions", "predictions", _count),
            ("model_trainings", "model trainings", _count),
            ("signals", "signals", _count),
            ("orders", "orders", _count),
            ("fills", "fills", _count),
            ("unfilled_orders", "orders not filled in full", _count),
            ("refusals_total", "refusals", _count),
        ),
    ),
)
"""Groups of ``(key, label, formatter)``, in the order they are shown."""

_LABELS = {key: label for _, rows in STATISTICS for key, label, _ in rows}
_FORMATS = {key: fmt for _, rows in STATISTICS for key, _, fmt in rows}


TRADE_FIGURES = frozenset(
    {
        "win_rate",
        "avg_trade_return",
        "best_trade",
        "worst_trade",
        "expectancy",
        "profit_factor",
        "sqn",
        "avg_holding_bars",
        "avg_holding_seconds",
    }
)
"""The figures of closed trades that say nothing of an allocating run (`trades_apply`)."""

NOT_APPLICABLE = "n/a (allocation)"
"""How a figure of `TRADE_FIGURES` prints for an allocating run."""

TRADES_NOT_APPLICABLE = (
    "not applicable: an allocation holds its positions and resizes them at each rebalance "
    "(see allocation: rebalances, turnover, refused orders); trades counts only the "
    "positions it closed to zero"
)
"""``metrics.json``'s ``trade_statistics`` of an allocating run: why its win rate, average
trade, profit factor and the like are not shown."""


def trades_apply(metrics: Mapping[str, Any]) -> bool:
    """Return whether the figures of closed trades describe the run: not an allocating
    strategy's (its ``metrics.json`` has an ``allocation`` block), whose positions are
    held and resized at each rebalance, a trade closing only when a weight goes to 0."""
    return not metrics.get("allocation")


ALLOCATION: tuple[tuple[str, str, Formatter], ...] = (
    ("allocator", "allocator", _text),
    ("rebalances", "rebalances", _count),
    ("failed", "failed (kept the last weights)", _count),
    ("late", "late (kept the last weights)", _count),
    ("mean_turnover", "turnover a rebalance (mean)", _plain_pct),
    ("total_turnover", "turnover (sum of |target - held|)", lambda v: f"{v:,.2f}"),
    ("refused_orders", "rebalance orders refused", _count),
)
"""The ``allocation`` block of ``metrics.json`` (`allocation_value`): ``compare`` shows it
beside the figures of a run that allocates."""


def allocation_value(key: str, metrics: Mapping[str, Any]) -> str:
    """Return figure ``key`` of the run's ``allocation`` block as `ALLOCATION` prints it
    (``-``: the run does not allocate, or its block has no such figure)."""
    block = metrics.get("allocation")
    value = block.get(key) if isinstance(block, Mapping) else None
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    fmt = next(f for k, _, f in ALLOCATION if k == key)
    try:
        return fmt(value)
    except (TypeError, ValueError):
        return str(value)


def label_of(key: str) -> str:
    """Return the label of a metric (the key itself when it has none)."""
    return _LABELS.get(key, key)


def format_value(key: str, metrics: Mapping[str, Any]) -> str:
    """Return a metric formatted for a person: ``-`` when missing or not a number, `NOT_APPLICABLE`
    for a figure of closed trades of an allocating run (`trades_apply`)."""
    if key in TRADE_FIGURES and not trades_apply(metrics):
        return NOT_APPLICABLE
    value = metrics.get(key)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if key == "trades" and not trades_apply(metrics) and isinstance(value, int):
        return f"{value:,} closed to zero"
    fmt = _FORMATS.get(key, _text)
    try:
        return fmt(value)
    except (TypeError, ValueError):
        return str(value)
