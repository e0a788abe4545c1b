"""The project's synthetic multi-asset market as trailing returns, and skfolio refits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeloom.plugins.data.synthetic import SyntheticParams, simulate_universe

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT"]
WINDOW = 250


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


def refit(estimator: Any, returns: np.ndarray) -> np.ndarray:
    """Return the weights of a skfolio ``estimator`` fitted on ``returns``."""
    names = [f"a{k}" for k in range(returns.shape[1])]
    estimator.fit(pd.DataFrame(returns, columns=names))
    return np.asarray(estimator.weights_)


Refit = Callable[[Any, np.ndarray], np.ndarray]
