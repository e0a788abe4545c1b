"""An account's figures in ``metrics.json``, computed alike for every kind of run.

A backtest of one strategy, of a portfolio, and a paper or live run's refresh all
report their equity curve with the same keys: its span and starting cash,
`performance`, the trade statistics, the turnover and `equity_statistics` against a
benchmark, in that order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import Trade
from tradeloom.reporting.metrics import curve_performance
from tradeloom.reporting.statistics import equity_statistics, fill_notional, traded_turnover
from tradeloom.tables.kept import column

__all__ = ["Account", "TradeLedger", "account_figures"]


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
    fills: Sequence[Any],
    trade_figures: Mapping[str, Any],
    periods_per_year: float | None = None,
    ledger: TradeLedger | None = None,
    returns: npt.NDArray[np.float64] | None = None,
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
        ledger: The trades' P&L and returns and the fills' notional, kept as they
            arrive (a live run's); None: read from ``account.trades`` and ``fills``.
        returns: The curve's `tradeloom.reporting.tearsheet.simple_returns`, where the
            caller has them; None: computed here.

    Returns:
        ``start``, ``end``, ``period`` and ``initial_cash``, `performance`'s figures,
        ``trade_figures``, ``turnover``, then `equity_statistics`'.
    """
    if ledger is None:
        ledger = TradeLedger()
        ledger.add(account.trades, fills)
    perf = curve_performance(
        equity,
        position,
        initial_cash=account.initial_cash,
        timeframe_seconds=timeframe_seconds,
        pnl=ledger.pnl,
        trade_returns=ledger.returns,
        fees=account.fees,
        periods_per_year=periods_per_year,
        returns=returns,
    )
    perf.update(trade_figures)
    perf["turnover"] = traded_turnover(ledger.traded, equity)
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


class TradeLedger:
    """What the figures read of the trades and fills, kept as they arrive: each closed
    trade's P&L and return (`performance`'s ``Trade.pnl``, ``Trade.return_pct``) and
    every fill's notional, so a live run's refresh adds the new ones only."""

    def __init__(self) -> None:
        self._pnl: list[float] = []
        self._returns: list[float] = []
        self._notional: list[float] = []
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def trades(self) -> int:
        """Trades added."""
        return len(self._pnl)

    @property
    def fills(self) -> int:
        """Fills added."""
        return len(self._notional)

    def add(self, trades: Sequence[Trade], fills: Sequence[Any]) -> None:
        """Add closed trades and fills (each once, in order; objects, or a
        `tradeloom.tables.kept.Kept` read by its columns)."""
        if len(trades):
            pnl = column(trades, "pnl").astype(np.float64)
            notional = column(trades, "quantity").astype(np.float64) * column(
                trades, "entry_price"
            ).astype(np.float64)
            self._pnl += pnl.tolist()
            self._returns += (pnl / notional).tolist()  # `Trade.return_pct`
            self._arrays = None
        self._notional += fill_notional(fills).tolist()

    @property
    def pnl(self) -> np.ndarray:
        """Each trade's P&L."""
        return self._trade_arrays()[0]

    @property
    def returns(self) -> np.ndarray:
        """Each trade's return."""
        return self._trade_arrays()[1]

    @property
    def traded(self) -> float:
        """The fills' notional, summed exactly (`math.fsum`)."""
        return math.fsum(self._notional)

    def _trade_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = (
                np.array(self._pnl, dtype=np.float64),
                np.array(self._returns, dtype=np.float64),
            )
        return self._arrays
