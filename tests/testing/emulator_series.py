"""The bar series the emulator tests replay (imported by name: every test folder has a
``conftest`` module, so ``from conftest import`` would pick whichever came first)."""

from __future__ import annotations

import numpy as np
import pandas as pd

SYMBOL = "BTC/USDT"
START = 1200
"""The emulator starts with this many bars of history closed."""


def make_bars(n: int = 1500, seed: int = 7, *, on_tick: bool = True) -> pd.DataFrame:
    """Hourly bars of a random walk; prices on a 0.01 tick unless ``on_tick`` is False."""
    rng = np.random.default_rng(seed)
    close = 20_000 + np.cumsum(rng.normal(0, 40, n))
    open_ = np.r_[20_000.0, close[:-1]]
    high = np.maximum(open_, close) + rng.uniform(1, 60, n)
    low = np.minimum(open_, close) - rng.uniform(1, 60, n)
    volume = rng.uniform(1, 50, n)
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp"),
    )
    if on_tick:
        frame[["open", "high", "low", "close"]] = frame[["open", "high", "low", "close"]].round(2)
        frame["volume"] = frame["volume"].round(5)
    return frame
