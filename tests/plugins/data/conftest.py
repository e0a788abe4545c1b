"""Fixtures of the ccxt data tests: bars and the emulated ``binance``."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
import structlog

from tests.plugins.data.ccxt_emulated import START, emulated_binance, make_bars
from tradeloom.testing import ExchangeEmulator


@pytest.fixture
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture
def emulator(bars: pd.DataFrame) -> Iterator[ExchangeEmulator]:
    with emulated_binance(bars, START) as emu:
        yield emu


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
