"""The run's tables from its arrays, the same for every driver: equity, positions, benchmark.

The backtest and the live runtime build ``equity.csv``, ``positions.csv`` and the
equal-weight benchmark from the same ``[bars, symbols]`` arrays with these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["equal_weight", "equity_frame", "position_rows"]


def equity_frame(
    index: pd.DatetimeIndex,
    symbols: tuple[str, ...],
    close: np.ndarray,
    positions: np.ndarray,
    cash: np.ndarray,
    equity: np.ndarray,
    initial_cash: float,
) -> pd.DataFrame:
    """Return the equity curve: one symbol's close and position, or every symbol's.

    One symbol: ``close position cash equity drawdown``. Several: ``cash equity
    drawdown``, then per symbol ``close[S]`` (NaN: no bar), ``position[S]`` and
    ``value[S]`` (the position at its last close). ``close`` and ``positions`` are
    ``[bars, symbols]``.
    """
    if len(symbols) == 1:
        frame = pd.DataFrame(
            {"close": close[:, 0], "position": positions[:, 0], "cash": cash, "equity": equity},
            index=index,
        )
    else:
        frame = pd.DataFrame({"cash": cash, "equity": equity}, index=index)
    peak = np.maximum.accumulate(np.maximum(equity, initial_cash))
    frame["drawdown"] = 1.0 - equity / peak
    if len(symbols) > 1:
        marks = pd.DataFrame(close, index=index).ffill().to_numpy()
        per_symbol = {}
        for s, symbol in enumerate(symbols):
            per_symbol[f"close[{symbol}]"] = close[:, s]
            per_symbol[f"position[{symbol}]"] = positions[:, s]
            per_symbol[f"value[{symbol}]"] = np.where(
                positions[:, s] != 0.0, positions[:, s] * marks[:, s], 0.0
            )
        frame = pd.concat([frame, pd.DataFrame(per_symbol, index=index)], axis=1)
    return frame


def equal_weight(close: np.ndarray, index: pd.DatetimeIndex) -> pd.Series:
    """Return the equal-weight index of the symbols (each from 1 at its first bar)."""
    marks = pd.DataFrame(close, index=index).ffill()
    first = marks.bfill().iloc[0]
    return (marks / first).fillna(1.0).mean(axis=1)


def position_rows(
    index: pd.DatetimeIndex,
    closes: npt.NDArray[np.float64],
    positions: npt.NDArray[np.float64],
    symbols: Sequence[str],
    labels: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Return ``positions.csv``: every bar's non-zero position of each column, marked at
    its last close (``closes`` and ``positions`` are ``[bars, columns]``).

    Args:
        symbols: Each column's market.
        labels: More columns named before ``symbol``, each a value per column
            (a portfolio's ``strategy``).
    """
    marks = pd.DataFrame(closes).ffill().to_numpy(np.float64)
    at, which = np.nonzero(positions)
    held = positions[at, which]
    named = {k: _taken(v, which) for k, v in (labels or {}).items()}
    return pd.DataFrame(
        {
            "timestamp": index[at],
            "bar": at,
            **named,
            "symbol": _taken(symbols, which),
            "position": held,
            "close": marks[at, which],
            "value": held * marks[at, which],
        },
        copy=False,  # arrays of its own: a block each, not copied into one (a million rows: 12 ms)
    )


def _taken(names: Sequence[str], which: npt.NDArray[np.intp]) -> pd.Categorical:
    """Return ``names[which]`` as categories: a code per row, each name held once."""
    codes, distinct = pd.factorize(np.asarray(names, dtype=object))
    return pd.Categorical.from_codes(codes[which], categories=distinct)
