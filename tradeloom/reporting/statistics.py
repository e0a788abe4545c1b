"""Statistics of a run beyond the headline metrics: benchmark, drawdown duration, trades,
period returns.

Definitions (where backtesting.py defines a figure the same way, its ``compute_stats``
gives the same number on the same equity and trades; the tests check it):

- ``buy_and_hold_return``: last close over first close, minus one.
- ``calmar``: CAGR over the maximum drawdown (backtesting.py: its annualized return,
  which equals the CAGR when both count the same bars per year).
- ``max_drawdown_duration_bars`` and ``_days``: the longest stretch from a bar at the
  equity peak to the next bar at the peak, or to the last bar if the peak was never
  regained (backtesting.py's "Max. Drawdown Duration"; `tradeloom.reporting.drawdowns`,
  the tearsheet's table measures each drawdown by the same function).
- ``avg_trade_return``: the arithmetic mean of the trades' returns after fees (also
  backtesting.py's "Expectancy [%]"; its "Avg. Trade" is the geometric mean).
- ``expectancy``: the mean P&L of a trade after fees, in quote currency.
- ``profit_factor``: gross profit over gross loss in quote currency (backtesting.py
  divides the sums of the trades' returns instead; the two agree when every trade has
  the same entry notional).
- ``sqn``: Van Tharp's system quality number, sqrt(trades) times the mean P&L over
  its standard deviation (ddof 1), as backtesting.py.
- ``turnover``: traded notional over the mean equity.
- ``monthly_returns`` and ``yearly_returns``: the equity at the period's last bar over
  the equity at the previous period's last bar (the starting cash for the first).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.reporting.drawdowns import find_drawdowns, longest_drawdown
from tradeloom.reporting.metrics import profit_factor
from tradeloom.reporting.tearsheet import calendar_periods, period_label
from tradeloom.tables.kept import column

__all__ = [
    "buy_and_hold_return",
    "calmar",
    "drawdown_duration",
    "equity_statistics",
    "fill_notional",
    "headline_statistics",
    "period_returns",
    "trade_statistics",
    "traded_turnover",
    "turnover",
]


def equity_statistics(
    equity: pd.Series,
    close: pd.Series,
    *,
    initial_cash: float,
    cagr: float,
    max_drawdown: float,
) -> dict[str, Any]:
    """Return the benchmark, Calmar, drawdown duration and period returns of an equity curve.

    Args:
        equity: Equity at each bar's close, indexed by the bars' UTC timestamps.
        close: The market's close at each bar.
        initial_cash: Equity before the first bar.
        cagr: The run's CAGR (annualized by the data's calendar).
        max_drawdown: The run's maximum drawdown (a fraction).
    """
    bars, duration = drawdown_duration(equity, initial_cash)
    periods = _period_returns(equity, initial_cash, ("M", "Y"))
    return {
        **headline_statistics(close, cagr=cagr, max_drawdown=max_drawdown),
        "max_drawdown_duration_bars": bars,
        "max_drawdown_duration_days": duration.total_seconds() / 86_400.0,
        "monthly_returns": periods["M"],
        "yearly_returns": periods["Y"],
    }


def headline_statistics(close: pd.Series, *, cagr: float, max_drawdown: float) -> dict[str, Any]:
    """Return the benchmark's return and the Calmar ratio (see the module's definitions)."""
    return {
        "buy_and_hold_return": buy_and_hold_return(close.to_numpy(np.float64)),
        "calmar": calmar(cagr, max_drawdown),
    }


def buy_and_hold_return(close: npt.NDArray[np.float64]) -> float:
    """Return ``buy_and_hold_return`` of the closes (NaN: no bar)."""
    return float(close[-1] / close[0] - 1.0) if len(close) else math.nan


def calmar(cagr: float, max_drawdown: float) -> float | None:
    """Return ``calmar``: the CAGR over the maximum drawdown (None: no drawdown)."""
    return cagr / max_drawdown if max_drawdown > 0 else None


def drawdown_duration(
    equity: pd.Series | npt.NDArray[np.float64],
    initial_cash: float,
    times_ns: npt.NDArray[np.int64] | None = None,
) -> tuple[int, pd.Timedelta]:
    """Return the longest drawdown in bars and in time (see the module's definition and
    `tradeloom.reporting.drawdowns`, which the tearsheet's table reads too).

    The peak includes the starting cash: a run that loses from its first bar is in
    drawdown from that bar.

    Args:
        equity: The curve, or its values alone (then ``times_ns`` is needed).
        times_ns: The equity's bar times as nanoseconds since the epoch, where the caller
            has them for many curves over the same bars (a sweep): the same duration,
            without building an index of times per curve.
    """
    values = equity.to_numpy(np.float64) if isinstance(equity, pd.Series) else equity
    if times_ns is not None:
        values = np.ascontiguousarray(values, np.float64)
        bars, longest = longest_drawdown(values, float(initial_cash), times_ns)
        # (the Timedelta of ``Timedelta(longest, unit="ns")``, made in half the time)
        return int(bars), pd.Timedelta(np.timedelta64(longest, "ns"))
    found = find_drawdowns(values, initial_cash)
    if not len(found.peaks):
        return 0, pd.Timedelta(0)
    if not isinstance(equity, pd.Series):
        raise TypeError("the drawdown duration of bare values needs their times_ns")
    index = equity.index
    times = index[found.ends] - index[found.peaks]
    return int(found.lengths.max()), pd.Timedelta(times.max())


def period_returns(equity: pd.Series, initial_cash: float, period: str) -> dict[str, float]:
    """Return each calendar month's (``M``) or year's (``Y``) return, keyed ``2024-03``/``2024``.

    Timestamps are UTC; a period is labelled by the UTC calendar.
    """
    return _period_returns(equity, initial_cash, (period,))[period]


def _period_returns(
    equity: pd.Series, initial_cash: float, periods: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """`period_returns` of each of ``periods``, the calendar read once."""
    if len(equity) == 0:
        return {period: {} for period in periods}
    index = equity.index.tz_convert("UTC") if equity.index.tz is not None else equity.index
    values = equity.to_numpy(np.float64)
    calendar = None
    if not np.isnan(values).any():  # each period's last bar
        calendar = calendar_periods(index.tz_localize(None).to_numpy())
    found = {}
    for period in periods:
        if calendar is not None:
            labels = [period_label(key, period) for key, _, _ in calendar[period]]
            last = values[[stop - 1 for _, _, stop in calendar[period]]]
        else:  # the groupby's last value that is known, periods in order of appearance
            by = index.strftime("%Y-%m" if period == "M" else "%Y")
            grouped = pd.Series(values, index=by).groupby(level=0, sort=False).last()
            labels, last = [str(k) for k in grouped.index], grouped.to_numpy()
        previous = np.concatenate(([initial_cash], last[:-1]))
        returns = last / previous - 1.0
        found[period] = {k: float(r) for k, r in zip(labels, returns, strict=True)}
    return found


def trade_statistics(trades: pd.DataFrame, timeframe_seconds: int) -> dict[str, Any]:
    """Return the trade figures of a ``trades.csv`` table (`tradeloom.reporting.trades`).

    Args:
        trades: One row per closed trade: ``pnl``, ``return``, ``holding_bars``,
            ``entry_time``, ``exit_time``, ``side``, ``exit_reason``.
        timeframe_seconds: Bar length (for the holding time when times are absent).
    """
    n = len(trades)
    pnl = trades["pnl"].to_numpy(np.float64) if n else np.zeros(0)
    returns = trades["return"].to_numpy(np.float64) if n else np.zeros(0)
    holding = trades["holding_bars"].to_numpy(np.int64) if n else np.zeros(0, np.int64)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    std = float(np.std(pnl, ddof=1)) if n > 1 else 0.0
    seconds = _holding_seconds(trades, timeframe_seconds)
    return {
        "trades": n,
        "long_trades": int((trades["side"] == "long").sum()) if n else 0,
        "short_trades": int((trades["side"] == "short").sum()) if n else 0,
        "win_rate": float(len(wins) / n) if n else 0.0,
        "avg_trade_return": float(returns.mean()) if n else 0.0,
        "best_trade": float(returns.max()) if n else None,
        "worst_trade": float(returns.min()) if n else None,
        "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
        "expectancy": float(pnl.mean()) if n else None,
        "profit_factor": profit_factor(pnl),
        "sqn": math.sqrt(n) * float(pnl.mean()) / std if std > 0 else None,
        "avg_holding_bars": float(holding.mean()) if n else None,
        "max_holding_bars": int(holding.max()) if n else None,
        "avg_holding_seconds": float(seconds.mean()) if n else None,
        "exits": _counts(trades["exit_reason"]) if n else {},
    }


def turnover(fills: Sequence[Any], equity: pd.Series) -> float:
    """Return the traded notional (every fill's quantity times price) over the mean equity."""
    return traded_turnover(math.fsum(fill_notional(fills).tolist()), equity)


def fill_notional(fills: Sequence[Any]) -> npt.NDArray[np.float64]:
    """Return each fill's traded notional: its quantity times its price, unsigned (the
    fills: objects, or a `tradeloom.tables.kept.Kept` read by its columns)."""
    quantity = column(fills, "quantity").astype(np.float64)
    return np.abs(quantity * column(fills, "price").astype(np.float64))


def traded_turnover(notional: float, equity: pd.Series) -> float:
    """Return ``notional`` (the fills' traded notional) over the mean equity."""
    mean = float(equity.mean()) if len(equity) else math.nan
    return notional / mean if mean > 0 else math.nan


def _holding_seconds(trades: pd.DataFrame, timeframe_seconds: int) -> np.ndarray:
    if not len(trades):
        return np.zeros(0)
    entry = pd.to_datetime(trades["entry_time"], utc=True)
    exit_ = pd.to_datetime(trades["exit_time"], utc=True)
    seconds = (exit_ - entry).dt.total_seconds().to_numpy(np.float64)
    return np.asarray(
        np.where(np.isnan(seconds), trades["holding_bars"] * timeframe_seconds, seconds)
    )


def _counts(values: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    # tallied by value first (a column of text boxes one str per cell when iterated)
    for value, count in Counter(values.tolist()).items():
        key = str(value) if isinstance(value, str) and value else "UNKNOWN"
        counts[key] = counts.get(key, 0) + count
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
