"""The order book endpoint and several venues on one clock, through the real ccxt client."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from tests.testing.emulator_series import START, SYMBOL, make_bars
from tradeloom.testing import (
    BookProfile,
    EmulatedVenues,
    ExchangeEmulator,
    MarketRules,
    ServerError,
    VenueSpec,
    book_levels,
)

MARKET = "BTCUSDT"
TIGHT = BookProfile(spread_bps=Decimal(2), levels=5, level_gap_bps=Decimal(1), size=Decimal("0.5"))
WIDE = BookProfile(
    spread_bps=Decimal(20), levels=3, level_gap_bps=Decimal(5), size=Decimal(2), growth=Decimal(1)
)


def _venues() -> list[VenueSpec]:
    return [
        VenueSpec(
            "alpha",
            {"USDT": 100_000},
            maker_fee=Decimal("0.0002"),
            taker_fee=Decimal("0.0004"),
            book=TIGHT,
        ),
        VenueSpec(
            "beta",
            {"USDT": 50_000, "BTC": 1},
            price_offset_bps=Decimal(10),
            taker_fee=Decimal("0.001"),
            book=WIDE,
        ),
    ]


def test_the_book_is_the_profile_around_the_open_of_the_bar_in_progress() -> None:
    bars = make_bars()
    with ExchangeEmulator({SYMBOL: bars}, {"USDT": 1000}, start=START, book=TIGHT) as emu:
        client = emu.client()
        book = client.fetch_order_book(SYMBOL)
        now = Decimal(repr(float(bars["open"].iloc[START])))
        expected = book_levels(now, MarketRules(), TIGHT, book["nonce"])
        assert book["bids"] == [[float(p), float(q)] for p, q in expected.bids]
        assert book["asks"] == [[float(p), float(q)] for p, q in expected.asks]
        assert [q for _, q in book["bids"]] == [0.5, 0.75, 1.125, 1.6875, 2.53125]
        best_bid, best_ask = Decimal(str(book["bids"][0][0])), Decimal(str(book["asks"][0][0]))
        assert best_bid < now < best_ask
        assert (best_ask - best_bid) / now * 10_000 == pytest.approx(2, abs=0.02)
        assert [p for p, _ in book["bids"]] == sorted((p for p, _ in book["bids"]), reverse=True)
        assert book["nonce"] == int(bars.index[START].value // 1_000_000)
        assert len(client.fetch_order_book(SYMBOL, limit=2)["asks"]) == 2
        emu.advance()
        moved = client.fetch_order_book(SYMBOL)
        later = Decimal(repr(float(bars["open"].iloc[START + 1])))
        assert moved["bids"][0][0] == float(book_levels(later, MarketRules(), TIGHT, 0).best_bid)
        assert emu.errors == []


def test_a_depth_limit_outside_binances_range_is_refused() -> None:
    pattern = r"^binance .*\"Data sent for parameter 'limit' is not valid\.\"\}$"
    with (
        ExchangeEmulator({SYMBOL: make_bars()}, {"USDT": 1000}, start=START) as emu,
        pytest.raises(ccxt.BadRequest, match=pattern),
    ):
        emu.client().fetch_order_book(SYMBOL, limit=6000)


def test_venues_quote_their_offset_and_their_book_on_one_clock() -> None:
    bars = make_bars()
    with EmulatedVenues({SYMBOL: bars}, _venues(), start=START) as venues:
        clients = venues.clients(timeout=5000)
        assert venues.names == ["alpha", "beta"]
        alpha, beta = (clients[n].fetch_ticker(SYMBOL) for n in ("alpha", "beta"))
        now = Decimal(repr(float(bars["open"].iloc[START])))
        assert alpha["last"] == float(now)
        assert beta["last"] == float((now * Decimal("1.001")).quantize(Decimal("1e-8")))
        assert len(clients["alpha"].fetch_order_book(SYMBOL)["bids"]) == 5
        assert clients["beta"].fetch_order_book(SYMBOL)["asks"][0][1] == 2.0
        venues.advance(3)
        assert venues.position == START + 3
        assert {n: venues[n].exchange.position for n in venues} == {
            "alpha": START + 3,
            "beta": START + 3,
        }
        klines = clients["beta"].fetch_ohlcv(SYMBOL, "1h", limit=2)
        assert klines[0][4] == pytest.approx(float(bars["close"].iloc[START + 2]) * 1.001)
        assert venues.errors() == {}


def test_each_venue_charges_its_own_maker_and_taker_fees_and_keeps_its_balances() -> None:
    bars = make_bars()
    with EmulatedVenues({SYMBOL: bars}, _venues(), start=START) as venues:
        clients = venues.clients(timeout=5000)
        for client in clients.values():
            client.load_markets()
        taker = clients["alpha"].create_order(SYMBOL, "market", "buy", 1)
        assert taker["trades"][0]["fee"] == {"cost": 0.0004, "currency": "BTC"}
        sell = clients["beta"].create_order(SYMBOL, "market", "sell", 0.5)
        proceeds = Decimal(str(sell["cost"]))
        assert sell["trades"][0]["fee"]["cost"] == float(
            (proceeds * Decimal("0.001")).quantize(Decimal("1e-8"))
        )
        low = min(bars["low"].iloc[START : START + 48])
        price = round(low + 1, 2)
        resting = clients["alpha"].create_order(SYMBOL, "limit", "buy", 0.1, price)
        venues.advance(48)
        [maker] = clients["alpha"].fetch_my_trades(SYMBOL, params={"orderId": resting["id"]})
        assert (maker["takerOrMaker"], maker["fee"]["cost"]) == ("maker", 0.1 * 0.0002)
        assert venues["alpha"].exchange.balance("BTC").free == Decimal("1.1") - Decimal(
            "0.0004"
        ) - Decimal("0.00002")
        assert venues["beta"].exchange.balance("BTC").free == Decimal("0.5")


def test_a_fault_on_one_venue_leaves_the_other_answering() -> None:
    with EmulatedVenues({SYMBOL: make_bars()}, _venues(), start=START) as venues:
        clients = venues.clients(timeout=5000)
        venues["beta"].faults.next("GET /api/v3/depth", ServerError(status=503))
        with pytest.raises(ccxt.ExchangeNotAvailable):
            clients["beta"].fetch_order_book(SYMBOL)
        assert clients["alpha"].fetch_order_book(SYMBOL)["bids"]
        assert len(venues["beta"].requests("GET /api/v3/depth")) == 1
        assert venues["alpha"].requests("GET /api/v3/depth")[0].faults == ()


def test_venue_names_must_be_unique_and_known() -> None:
    spec = VenueSpec("same", {"USDT": 1})
    with pytest.raises(ValueError, match=r"^venue names must be unique; repeated: same$"):
        EmulatedVenues({SYMBOL: make_bars()}, [spec, spec])
    venues = EmulatedVenues({SYMBOL: make_bars()}, [spec])
    with pytest.raises(KeyError, match=r"no venue 'other'; the venues are same"):
        venues["other"]
