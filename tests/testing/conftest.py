"""Fixtures for the exchange emulator tests: bars, a running emulator, a real ccxt client."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pandas as pd
import pytest

from tests.testing.emulator_series import START, SYMBOL, make_bars
from tradeloom.testing import ExchangeEmulator


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
