"""Helpers for the ccxt data tests: bars, and the emulator as the ``binance`` exchange.

The emulator's clock is its market clock here (``wall_clock`` follows the bar in
progress), so ``fetch_time`` answers the time a live exchange would at that bar and
the closed-bar rule is exercised through the real ccxt client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from tests.builders import walk_bars
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.testing import ExchangeEmulator

SYMBOL = "BTC/USDT"
KLINES = "GET /api/v3/klines"
HOUR_MS = 3_600_000
START = 250
"""The emulator starts with this many closed bars; bar ``START`` is in progress."""


def make_bars(n: int = 400, seed: int = 11) -> pd.DataFrame:
    """Hourly bars of a random walk from 2024-01-01, on a 0.01 tick, indexed in ns."""
    bars = walk_bars(n, seed)
    return bars.set_axis(bars.index.as_unit("ns"))


def ms(stamp: pd.Timestamp) -> int:
    """Return a timestamp in epoch milliseconds."""
    return int(stamp.value // 1_000_000)


@contextmanager
def emulated_binance(bars: pd.DataFrame, start: int, **kwargs: Any) -> Iterator[ExchangeEmulator]:
    """Run an emulator at bar ``start`` and make every ``binance`` client talk to it."""
    clock: list[ExchangeEmulator] = []
    with ExchangeEmulator(
        {SYMBOL: bars},
        {"USDT": 1000},
        start=start,
        wall_clock=lambda: clock[0].exchange.now_ms() / 1000,
        **kwargs,
    ) as emulator:
        clock.append(emulator)
        with use_client_factory("binance", lambda settings: emulator.client(**settings)):
            yield emulator
        assert emulator.wait_idle(), "a request was still being served at the end of the test"
        assert emulator.errors == [], "the emulator raised while serving"


class Sleeps(list[float]):
    """An injected sleep: records each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
