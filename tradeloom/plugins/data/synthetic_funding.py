"""The synthetic market's funding rates: a ``kind: funding_rate`` series offline.

A ``data.auxiliary`` entry of ``kind: funding_rate`` on the ``synthetic`` source gets
a funding rate at each 8-hour funding time (00:00, 08:00 and 16:00 UTC, as on
Binance, Bybit and OKX) from one day before the first bar (as the ccxt source reads
them, so the first bar has the rate then in force) to the last bar's close:

    rate = clip(0.0001 + x, -0.003, 0.003),   x_k = 0.9 x_(k-1) + 0.00004 e_k

the exchanges' usual interest component (0.01% per 8 hours: longs pay shorts in a
calm market) plus a persistent premium (AR(1), e_k standard normal, about 0.009%
wide), within the clamp BTC perpetuals have (0.3%). The draws are seeded by the
strategy's seed, the source's ``seed_offset`` and the symbol, so a run is repeated
exactly and each symbol of a universe has its own rates.
"""

from __future__ import annotations

import zlib

from tradeloom.plugins.data.auxiliary import AuxiliarySeries
from tradeloom.runtime.lazy import numpy as np

__all__ = ["FUNDING_INTERVAL_NS", "synthetic_funding"]

FUNDING_INTERVAL_NS = 8 * 3600 * 1_000_000_000
"""The synthetic market's funding interval: 8 hours."""

_DAY_NS = 86_400 * 1_000_000_000
_INTEREST = 0.0001
_PERSISTENCE = 0.9
_PREMIUM = 0.00004
_CLAMP = 0.003
_FUNDING_KEY = 2**41  # the funding streams' key: no market's stream reaches it


def synthetic_funding(
    name: str, symbol: str, delay_ns: int, *, entropy: int, first_ns: int, end_ns: int
) -> AuxiliarySeries:
    """Return ``symbol``'s funding rates as the series ``name``.

    Args:
        name: The series' name.
        symbol: The market.
        delay_ns: Its ``available_after``, in nanoseconds.
        entropy: The market's seed (the strategy's seed plus ``seed_offset``).
        first_ns: The first bar's open (UTC ns).
        end_ns: The last bar's close (exclusive bound of the funding times).
    """
    start = (first_ns - _DAY_NS) // FUNDING_INTERVAL_NS * FUNDING_INTERVAL_NS
    times = np.arange(start, end_ns, FUNDING_INTERVAL_NS, dtype=np.int64)
    key = zlib.crc32(symbol.encode())
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([entropy, _FUNDING_KEY, key])))
    noise = rng.standard_normal(len(times)) * _PREMIUM
    premium = np.empty(len(times))
    x = 0.0
    for k in range(len(times)):
        x = _PERSISTENCE * x + noise[k]
        premium[k] = x
    rates = np.clip(_INTEREST + premium, -_CLAMP, _CLAMP)
    return AuxiliarySeries(name, times, rates, delay_ns, symbol)
