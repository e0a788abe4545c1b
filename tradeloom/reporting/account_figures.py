"""An account's figures in ``metrics.json``, computed alike for every kind of run.

A backtest of one strategy, of a portfolio, and a paper or live run's refresh all
report their equity curve with the same keys: its span and starting cash,
`performance`, the trade statistics, the turnover and `equity_statistics` against a
benchmark, in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from tradeloom.domain import Trade
from tradeloom.reporting.metrics import performance
from tradeloom.reporting.statistics import equity_statistics, turnover

__all__ = ["Account", "account_figures"]


class Account(Protocol):
    """What the figures read of an account (a backtest's book, a live run's snapshot)."""

    @property
    def initial_cash(self) -> float:
        """Equity before the first bar."""
        ...

    @property
    def trades(self) -> Sequence[Trade]:
        """Closed round trips."""
        ...

    @property
    def fees(self) -> float:
        """Fees paid."""
        ...


def account_figures(
    equity: pd.Series,
    position: pd.Series,
    benchmark: pd.Series,
    account: Account,
    *,
    timeframe_seconds: int,
    fills: Iterable[Any],
    trade_figures: Mapping[str, Any],
    periods_per_year: float | None = None,
) -> dict[str, Any]:
    """Return the figures of an account's equity curve.

    Args:
        equity: Equity at each bar's close, indexed by the bars' times.
        position: Position held at each bar's close (non-zero: the bars in the market).
        benchmark: The prices the curve is measured against (buy and hold, equal weight).
        account: Its starting cash, closed trades and fees.
        timeframe_seconds: Bar length.
        fills: Every fill (for the turnover).
        trade_figures: `trade_statistics` of the run's trades.
        periods_per_year: Bars in a year of the data's trading calendar (None: the bars
            of the timeframe in 365 days).

    Returns:
        ``start``, ``end``, ``period`` and ``initial_cash``, `performance`'s figures,
        ``trade_figures``, ``turnover``, then `equity_statistics`'.
    """
    perf = performance(
        equity,
        position,
        initial_cash=account.initial_cash,
        timeframe_seconds=timeframe_seconds,
        trades=account.trades,
        fees=account.fees,
        periods_per_year=periods_per_year,
    )
    perf.update(trade_figures)
    perf["turnover"] = turnover(fills, equity)
    stats = equity_statistics(
        equity,
        benchmark,
        initial_cash=account.initial_cash,
        cagr=perf["cagr"],
        max_drawdown=perf["max_drawdown"],
    )
    index = equity.index
    return {
        "start": index[0].isoformat(),
        "end": index[-1].isoformat(),
        "period": f"{index[0]:%Y-%m-%d} .. {index[-1]:%Y-%m-%d}",
        "initial_cash": account.initial_cash,
        **perf,
        **stats,
    }
