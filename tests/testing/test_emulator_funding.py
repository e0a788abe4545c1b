"""The emulator's funding rates: what ccxt's ``fetch_funding_rate_history`` reads."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from tests.testing.emulator_series import START, SYMBOL, make_bars
from tradeloom.testing import ExchangeEmulator


def rates() -> pd.Series:
    bars = make_bars()  # rates over all of the bars' time, every 8 hours
    index = pd.date_range(bars.index[0], bars.index[-1], freq="8h")
    n = len(index)
    return pd.Series(np.round(np.linspace(-3e-4, 3e-4, n), 8), index=index)


def ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)


def test_rates_are_served_up_to_market_time_through_ccxt() -> None:
    bars, funding = make_bars(), rates()
    with ExchangeEmulator(
        {SYMBOL: bars}, {"USDT": Decimal(1)}, start=START, funding_rates={SYMBOL: funding}
    ) as emulator:
        client = emulator.client()
        since = ms(funding.index[0])
        got = client.fetch_funding_rate_history(SYMBOL, since=since, limit=1000)
        now = bars.index[START]
        visible = funding[funding.index <= now]
        assert [(r["symbol"], r["timestamp"], r["fundingRate"]) for r in got] == [
            (SYMBOL, ms(t), float(v)) for t, v in visible.items()
        ]
        page = client.fetch_funding_rate_history(SYMBOL, since=since, limit=3)
        assert [r["timestamp"] for r in page] == [ms(t) for t in funding.index[:3]]
        emulator.advance(24)
        later = client.fetch_funding_rate_history(SYMBOL, since=since, limit=1000)
        assert len(later) == len(visible) + 3  # one day: three more funding times
        assert len(later) < len(funding)
        assert emulator.errors == []


def test_rates_of_a_symbol_that_is_not_a_market_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^funding rates of ETH/USDT, which is not one of"):
        ExchangeEmulator({SYMBOL: make_bars()}, {}, funding_rates={"ETH/USDT": rates()})
    unsorted = rates().iloc[::-1]
    with pytest.raises(ValueError, match=r"^funding rates of BTC/USDT need a sorted, unique UTC"):
        ExchangeEmulator({SYMBOL: make_bars()}, {}, funding_rates={SYMBOL: unsorted})
