"""Fixtures for the exchange emulator tests: bars, a running emulator, a real ccxt client."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import numpy as np
import pandas as pd
import pytest

from tradeloom.testing import ExchangeEmulator

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


@pytest.fixture
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture
def emulator(bars: pd.DataFrame) -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator(
        {SYMBOL: bars}, {"USDT": Decimal("100000"), "BTC": Decimal("2")}, start=START
    ) as emu:
        yield emu
        assert emu.wait_idle(), "a request was still being served at the end of the test"
        assert emu.errors == [], "the emulator raised while serving"


@pytest.fixture
def client(emulator: ExchangeEmulator) -> ccxt.binance:
    exchange = emulator.client(timeout=5000)
    exchange.load_markets()
    return exchange
