"""Markets, klines and tickers through the real ccxt client."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import numpy as np
import pandas as pd
import pytest

from tests.testing.emulator_series import START, SYMBOL, make_bars
from tradeloom.testing import BarSeries, ExchangeEmulator, MarketRules


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _page_all(client: ccxt.binance, since: int, limit: int) -> list[list[float]]:
    """Page through klines as a live runner does: since/limit until a short page."""
    rows: list[list[float]] = []
    while True:
        page = client.fetch_ohlcv(SYMBOL, "1h", since=since, limit=limit)
        rows += page
        if len(page) < limit:
            return rows
        since = int(page[-1][0]) + 3_600_000


def test_load_markets_reads_the_filters_and_calls_only_exchange_info(
    emulator: ExchangeEmulator,
) -> None:
    client = emulator.client()
    markets = client.load_markets()
    assert list(markets) == [SYMBOL]
    market = markets[SYMBOL]
    assert (market["id"], market["base"], market["quote"], market["spot"]) == (
        "BTCUSDT",
        "BTC",
        "USDT",
        True,
    )
    assert market["active"] is True
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 0.00001
    assert market["limits"]["amount"] == {"min": 0.00001, "max": 9000.0}
    assert market["limits"]["price"] == {"min": 0.01, "max": 1_000_000.0}
    assert market["limits"]["cost"] == {"min": 5.0, "max": 9_000_000.0}
    assert [r.route for r in emulator.requests()] == ["GET /api/v3/exchangeInfo"]


def test_market_rules_are_served_per_symbol(bars: pd.DataFrame) -> None:
    eth = MarketRules(
        tick_size=Decimal("0.1"), step_size=Decimal("0.001"), min_qty=Decimal("0.001")
    )
    with ExchangeEmulator(
        {"BTC/USDT": bars, "ETH/USDT": bars}, {"USDT": 1000}, rules={"ETH/USDT": eth}
    ) as emu:
        markets = emu.client().load_markets()
    assert markets["ETH/USDT"]["precision"] == {
        "amount": 0.001,
        "price": 0.1,
        "base": 1e-08,
        "quote": 1e-08,
    }
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01


def test_fetch_ohlcv_pages_through_history_up_to_the_clock(
    client: ccxt.binance, bars: pd.DataFrame
) -> None:
    rows = _page_all(client, since=_ms(bars.index[0]), limit=500)
    closed, in_progress = rows[:-1], rows[-1]
    assert len(closed) == START
    expected = bars.iloc[:START]
    assert [r[0] for r in closed] == [_ms(t) for t in expected.index]
    np.testing.assert_array_equal(np.array([r[1:] for r in closed]), expected.to_numpy())
    # The bar in progress shows its open only, as Binance's kline does right after it opens.
    first_open = float(bars["open"].iloc[START])
    assert in_progress == [_ms(bars.index[START]), *[first_open] * 4, 0.0]


def test_fetch_ohlcv_defaults_to_the_latest_bars_and_never_shows_the_future(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    latest = client.fetch_ohlcv(SYMBOL, "1h", limit=3)
    assert [r[0] for r in latest] == [_ms(t) for t in bars.index[START - 2 : START + 1]]
    emulator.advance(2)
    latest = client.fetch_ohlcv(SYMBOL, "1h", limit=3)
    assert [r[0] for r in latest] == [_ms(t) for t in bars.index[START : START + 3]]
    assert latest[0][1:] == bars.iloc[START].tolist()
    assert latest[-1][5] == 0.0


def test_klines_serve_the_exact_floats_of_an_off_tick_series() -> None:
    frame = make_bars(300, seed=3, on_tick=False)
    with ExchangeEmulator({SYMBOL: frame}, {"USDT": 1000}, start=300) as emu:
        rows = emu.client().fetch_ohlcv(SYMBOL, "1h", since=_ms(frame.index[0]), limit=1000)
    assert np.array_equal(np.array([r[1:] for r in rows]), frame.to_numpy())


def test_the_kline_in_progress_can_be_left_out(bars: pd.DataFrame) -> None:
    with ExchangeEmulator(
        {SYMBOL: bars}, {"USDT": 1}, start=START, include_open_kline=False
    ) as emu:
        rows = emu.client().fetch_ohlcv(SYMBOL, "1h", limit=2)
    assert [r[0] for r in rows] == [_ms(t) for t in bars.index[START - 2 : START]]


def test_bar_series_round_trips_a_frame(bars: pd.DataFrame) -> None:
    assert BarSeries.from_frame(bars).to_frame().equals(bars)


def test_klines_of_another_interval_are_refused(client: ccxt.binance) -> None:
    with pytest.raises(ccxt.BadRequest, match=r'"code": -1120, "msg": "Invalid interval\."'):
        client.fetch_ohlcv(SYMBOL, "4h")


def test_ticker_quotes_the_open_of_the_bar_in_progress(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    ticker = client.fetch_ticker(SYMBOL)
    now = float(bars["open"].iloc[START])
    assert ticker["last"] == now
    book = emulator.exchange.order_book("BTCUSDT", limit=1)
    assert (ticker["bid"], ticker["ask"]) == (float(book.best_bid), float(book.best_ask))
    assert ticker["bid"] < now < ticker["ask"]
    assert ticker["timestamp"] == _ms(bars.index[START])
    day = bars.iloc[START - 24 : START]
    assert ticker["open"] == day["open"].iloc[0]
    assert ticker["high"] == max(day["high"].max(), now)
    assert ticker["low"] == min(day["low"].min(), now)
    assert ticker["baseVolume"] == pytest.approx(day["volume"].sum())
    emulator.advance()
    assert client.fetch_ticker(SYMBOL)["last"] == bars["open"].iloc[START + 1]


def test_ticker_after_the_series_ends_quotes_the_last_close(bars: pd.DataFrame) -> None:
    with ExchangeEmulator({SYMBOL: bars}, {"USDT": 1000}, start=len(bars)) as emu:
        client = emu.client()
        assert client.fetch_ticker(SYMBOL)["last"] == bars["close"].iloc[-1]
        rows = client.fetch_ohlcv(SYMBOL, "1h", limit=2)
    assert rows[-1][1:] == bars.iloc[-1].tolist()


def test_unsupported_endpoint_gets_404_and_is_logged(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    with pytest.raises(ccxt.ExchangeNotAvailable, match=r"404"):
        client.fetch_trades(SYMBOL)
    assert [r.route for r in emulator.requests()][-1] == "GET /api/v3/aggTrades"


def test_bar_series_validation_names_the_first_bad_bar(bars: pd.DataFrame) -> None:
    broken = bars.copy()
    broken.iloc[5, broken.columns.get_loc("high")] = broken["low"].iloc[5] - 1
    with pytest.raises(
        ValueError,
        match=r"^1 bars have high < max\(open, close\) \(first at 2024-01-01T05:00Z\); "
        r"repair or drop them before replaying$",
    ):
        BarSeries.from_frame(broken)
    with pytest.raises(ValueError, match=r"^bar timestamps must be sorted and unique"):
        BarSeries.from_frame(bars.iloc[::-1], timeframe="1h")
    with pytest.raises(ValueError, match=r"^timeframe must be one of Binance's kline intervals"):
        BarSeries.from_frame(bars, timeframe="7m")
    with pytest.raises(ValueError, match=r"^bars need columns .*; missing volume$"):
        BarSeries.from_frame(bars.drop(columns="volume"))


def test_weekly_bars_open_on_mondays() -> None:
    mondays = pd.date_range("2024-01-01", periods=3, freq="7D", tz="UTC")
    assert BarSeries.from_frame(make_bars(3).set_axis(mondays)).interval == "1w"
    with pytest.raises(ValueError, match=r"^3 bars do not open on a 604800s boundary"):
        BarSeries.from_frame(make_bars(3).set_axis(mondays + pd.Timedelta(days=1)))


def test_markets_must_share_one_clock(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"^ETH/USDT and BTC/USDT have different bar timestamps"):
        ExchangeEmulator({"BTC/USDT": bars, "ETH/USDT": bars.iloc[1:]}, {})
