"""Tools for testing trading code against tradeloom without a real exchange.

`ExchangeEmulator` is a Binance spot venue on 127.0.0.1: point a real
``ccxt.binance`` at it with `ExchangeEmulator.client`, move its bar clock with
`ExchangeEmulator.advance`, and schedule faults with ``emulator.faults``.
"""

from __future__ import annotations

from tradeloom.testing import emulator
from tradeloom.testing.emulator import *  # noqa: F403  (the emulator's public names)

__all__ = emulator.__all__
