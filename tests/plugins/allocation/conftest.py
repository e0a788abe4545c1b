"""The markets the allocators are checked on: the project's synthetic universe, and real
prices, skfolio's 20 S&P 500 stocks (daily closes 1990-2022, shipped with skfolio: no
network); skfolio's estimators and refits, as references."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeloom.plugins.data.synthetic import SyntheticParams, simulate_universe

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT"]
WINDOW = 250
SP500_WINDOW = 500
"""Two years of trading days: the trailing window of the real-data checks."""
SP500_ENDS = (1500, 3200, 4700, 6300, 8000)
"""The last bars of the real-data windows: 1995, 2002, 2008, 2014, 2021."""


@pytest.fixture(scope="session")
def market_returns() -> np.ndarray:
    """Simple close-to-close returns of six correlated synthetic markets, 799 bars."""
    markets = simulate_universe(SyntheticParams(bars=800, symbols=SYMBOLS, correlation=0.5), 11)
    closes = np.column_stack([m.frame["close"].to_numpy() for m in markets])
    return np.asarray(closes[1:] / closes[:-1] - 1.0)


@pytest.fixture(scope="session")
def windows(market_returns: np.ndarray) -> list[np.ndarray]:
    """Three trailing windows of WINDOW bars ending at different decision bars."""
    return [market_returns[end - WINDOW : end] for end in (WINDOW, 500, len(market_returns))]


@pytest.fixture(scope="session")
def sp500() -> pd.DataFrame:
    """Daily simple returns of skfolio's 20 S&P 500 stocks, one column per ticker."""
    from skfolio.datasets import load_sp500_dataset

    return load_sp500_dataset().pct_change().iloc[1:]


@pytest.fixture(scope="session")
def sp500_windows(sp500: pd.DataFrame) -> list[np.ndarray]:
    """Five trailing windows of SP500_WINDOW days of the 20 stocks, 1995 to 2021."""
    returns = sp500.to_numpy()
    return [returns[end - SP500_WINDOW : end] for end in SP500_ENDS]


def skfolio_covariance(kind: str, halflife: float | None = None) -> Any:
    """Return skfolio's covariance estimator of the name tradeloom's ``covariance:`` takes."""
    from skfolio.moments import EmpiricalCovariance, EWCovariance, LedoitWolf

    if kind == "sample":
        return EmpiricalCovariance()
    if kind == "ledoit_wolf":
        return LedoitWolf()
    return EWCovariance(half_life=halflife, min_observations=1)


def refit(estimator: Any, returns: np.ndarray) -> np.ndarray:
    """Return the weights of a skfolio ``estimator`` fitted on ``returns``."""
    names = [f"a{k}" for k in range(returns.shape[1])]
    estimator.fit(pd.DataFrame(returns, columns=names))
    return np.asarray(estimator.weights_)


Refit = Callable[[Any, np.ndarray], np.ndarray]
