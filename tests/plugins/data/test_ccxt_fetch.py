"""Paging closed bars out of an exchange through the real ccxt client and the emulator."""

from __future__ import annotations

import math
import re
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pytest

from tests.plugins.data.ccxt_emulated import HOUR_MS, KLINES, START, SYMBOL, Sleeps, ms
from tradeloom.errors import DataError
from tradeloom.plugins.data.ccxt_client import create_client
from tradeloom.plugins.data.ccxt_fetch import (
    BarFeed,
    check_page,
    closed_end,
    fetch_closed_bars,
    poll_closed_bars,
    poll_closed_rows,
)
from tradeloom.plugins.data.ccxt_retry import ExchangeUnavailable, retry_after
from tradeloom.runtime.retrying import RetriesExhausted, RetryPolicy
from tradeloom.testing import (
    DropConnection,
    ExchangeEmulator,
    RateLimited,
    Reject,
    ServerError,
    Timeout,
)

LABEL = "binance BTC/USDT 1h"
BAD = f"data: {LABEL}: bad response from the exchange"


def feed(
    *,
    page_limit: int | None = None,
    sleeps: Sleeps | None = None,
    policy: RetryPolicy | None = None,
    symbol: str = SYMBOL,
    **settings: Any,
) -> BarFeed:
    return BarFeed(
        create_client("binance", settings),
        symbol,
        "1h",
        retry=policy or RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0),
        sleep=sleeps if sleeps is not None else Sleeps(),
        draw=lambda: 0.0,
        page_limit=page_limit,
    )


def start_times(emulator: ExchangeEmulator) -> list[int]:
    return [int(r.params["startTime"]) for r in emulator.requests(KLINES)]


# --- paging -----------------------------------------------------------------------------


def test_pages_equal_the_series_up_to_the_last_closed_bar(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    result = fetch_closed_bars(feed(page_limit=100), ms(bars.index[0]))

    pd.testing.assert_frame_equal(result.frame, bars.iloc[:START], check_freq=False)
    assert result.requests == 3
    first = ms(bars.index[0])
    assert start_times(emulator) == [first, first + 100 * HOUR_MS, first + 200 * HOUR_MS]
    # The exchange's clock decided what is closed: the bar in progress opened at "now".
    assert [r.route for r in emulator.requests()][:2] == [
        "GET /api/v3/exchangeInfo",
        "GET /api/v3/time",
    ]
    assert result.end_ms == ms(bars.index[START]) - HOUR_MS + 1


def test_the_exchanges_largest_page_is_asked_for_by_default(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    result = fetch_closed_bars(feed(), ms(bars.index[0]))

    assert len(result.frame) == START
    assert [r.params["limit"] for r in emulator.requests(KLINES)] == ["1000"]


def test_the_bar_in_progress_is_left_out_until_it_closes(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    market = feed()
    last = bars.index[START - 1]

    # The exchange's clock says no bar has closed since: not even a klines request.
    assert poll_closed_bars(market, last).empty
    assert emulator.requests(KLINES) == []
    emulator.advance()
    polled = poll_closed_bars(market, last)

    # The full bar, not the open-only kline it was while in progress; and not the
    # bar now in progress, which the same response carried.
    pd.testing.assert_frame_equal(polled, bars.iloc[[START]], check_freq=False)
    assert start_times(emulator) == [ms(bars.index[START])]


def test_the_tickers_arrays_are_the_polled_frames_bars(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    market = feed(page_limit=3)  # several pages
    last = bars.index[START - 1]
    now = bars.index[START] + pd.Timedelta(minutes=59)  # bar START is still open
    times, rows = poll_closed_rows(market, last.value, now.value)
    assert (times.dtype, rows.dtype, len(times)) == (np.int64, np.float64, 0)
    for _ in range(7):
        emulator.advance()
    now = pd.Timestamp(emulator.exchange.now_ms(), unit="ms", tz="UTC")
    polled = poll_closed_bars(market, last, now=now)
    times, rows = poll_closed_rows(market, last.value, now.value)
    assert len(times) == 7
    np.testing.assert_array_equal(times, polled.index.as_unit("ns").asi8)
    np.testing.assert_array_equal(rows, polled.to_numpy(np.float64))
    np.testing.assert_array_equal(rows, bars.iloc[START : START + 7].to_numpy(np.float64))


def test_a_given_now_and_until_bound_the_window(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    market = feed(page_limit=50)
    early = fetch_closed_bars(market, ms(bars.index[10]), now_ms=ms(bars.index[40]))
    bounded = fetch_closed_bars(market, ms(bars.index[10]), ms(bars.index[120]))

    pd.testing.assert_frame_equal(early.frame, bars.iloc[10:40], check_freq=False)
    pd.testing.assert_frame_equal(bounded.frame, bars.iloc[10:120], check_freq=False)
    assert bounded.end_ms == ms(bars.index[120])


def test_an_exchange_that_resends_the_same_page_ends_the_download(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    market = feed(page_limit=100)
    client = market.client
    fetch = client.fetch_ohlcv
    first = ms(bars.index[0])

    def ignores_since(
        symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[float]]:
        return fetch(symbol, timeframe, since=first, limit=limit)

    client.fetch_ohlcv = ignores_since
    result = fetch_closed_bars(market, first)

    pd.testing.assert_frame_equal(result.frame, bars.iloc[:100], check_freq=False)
    assert result.requests == 2


def test_nothing_is_requested_for_an_empty_window(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    result = fetch_closed_bars(feed(), ms(bars.index[START]))

    assert result.frame.empty
    assert result.requests == 0
    assert emulator.requests(KLINES) == []


def test_closed_end_is_the_bound_on_open_times_of_closed_bars() -> None:
    assert closed_end(10 * HOUR_MS, HOUR_MS) == 9 * HOUR_MS + 1
    assert closed_end(10 * HOUR_MS + 1, HOUR_MS) == 9 * HOUR_MS + 2
    assert closed_end(10 * HOUR_MS, HOUR_MS, until_ms=5 * HOUR_MS) == 5 * HOUR_MS


# --- retries ------------------------------------------------------------------------------


def test_network_errors_are_retried_with_capped_exponential_waits(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    for fault in (Timeout(), RateLimited(retry_after=0), ServerError(503), DropConnection()):
        emulator.faults.next(KLINES, fault)
    sleeps = Sleeps()

    result = fetch_closed_bars(feed(sleeps=sleeps, timeout=300), ms(bars.index[0]))

    assert sleeps == [1.0, 2.0, 3.0, 3.0]
    pd.testing.assert_frame_equal(result.frame, bars.iloc[:START], check_freq=False)
    klines = emulator.requests(KLINES)
    assert [r.dispatched for r in klines] == [False, False, False, False, True]
    assert len(set(start_times(emulator))) == 1  # the same read, repeated
    assert result.requests == 1


def test_a_rate_limit_waits_at_least_its_retry_after(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    emulator.faults.next(KLINES, RateLimited(retry_after=7))
    sleeps = Sleeps()

    fetch_closed_bars(feed(sleeps=sleeps), ms(bars.index[0]))

    assert sleeps == [7.0]  # longer than max_delay: retrying early earns a ban


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ccxt.DDoSProtection("418"), 120.0),
        (ccxt.RateLimitExceeded("429 without -1003"), 120.0),
        (ccxt.RequestTimeout("the headers are an older response's"), 0.0),
    ],
)
def test_only_a_rate_limit_answer_sets_a_retry_after(error: Exception, expected: float) -> None:
    client = ccxt.binance()
    client.last_response_headers = {"retry-after": "120"}
    assert retry_after(error, client) == expected


def test_giving_up_after_max_attempts_names_the_read_and_the_last_error(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    emulator.faults.always(KLINES, ServerError(503))
    sleeps = Sleeps()
    market = feed(sleeps=sleeps, policy=RetryPolicy(max_attempts=3, base_delay=1, max_delay=30))

    with pytest.raises(ExchangeUnavailable) as info:
        fetch_closed_bars(market, ms(bars.index[0]))

    assert re.fullmatch(
        rf"data: {LABEL}: bars from 2024-01-01T00:00Z: no answer after 3 attempts; last error "
        r"ExchangeNotAvailable: binance GET http://127\.0\.0\.1:\d+/api/v3/klines\?\S+ 503 "
        r"Service Unavailable <html>.*",
        str(info.value),
    ), str(info.value)
    assert isinstance(info.value, RetriesExhausted)
    assert (info.value.operation, info.value.attempts) == (
        f"data: {LABEL}: bars from 2024-01-01T00:00Z",
        3,
    )
    assert sleeps == [1.0, 2.0]
    assert len(emulator.requests(KLINES)) == 3


def test_an_exchange_refusal_is_a_data_error_and_not_retried(
    emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    emulator.faults.next(KLINES, Reject(-1121, "Invalid symbol."))
    sleeps = Sleeps()

    with pytest.raises(DataError) as info:
        fetch_closed_bars(feed(sleeps=sleeps), ms(bars.index[0]))

    assert str(info.value) == (
        f"data: {LABEL}: the exchange refused the request for bars from 2024-01-01T00:00Z: "
        'BadSymbol: binance {"code": -1121, "msg": "Invalid symbol."}'
    )
    assert sleeps == []


def test_an_unknown_symbol_names_the_closest_market(emulator: ExchangeEmulator) -> None:
    with pytest.raises(DataError) as info:
        fetch_closed_bars(feed(symbol="BTC/USDX"), 0)

    assert str(info.value) == (
        "data: binance BTC/USDX 1h: binance has no market 'BTC/USDX' (did you mean "
        "'BTC/USDT'?); check data.symbol (unified form such as BTC/USDT)"
    )
    assert emulator.requests(KLINES) == []


# --- bad responses --------------------------------------------------------------------------


def _raw(ts: int, *values: str) -> list[Any]:
    # A Binance kline: open time, OHLCV as strings, then fields ccxt ignores.
    return [ts, *values, ts + HOUR_MS - 1, "0", 0, "0", "0", "0"]


@pytest.mark.parametrize(
    ("klines", "message"),
    [
        (
            [_raw(1704067200000, "1", "abc", "0.5", "1", "3")],
            f"{BAD}: the bar at 2024-01-01T00:00Z has no high",
        ),
        (
            [_raw(1704067200000, "1", "2", "0.5", "1", "3"), _raw(1704067200000, *"12013")],
            f"{BAD}: the bar at 2024-01-01T00:00Z repeats the bar at 2024-01-01T00:00Z; "
            "bars must be in time order without duplicates",
        ),
        (
            [_raw(1704067200000, "-1", "2", "0.5", "1", "3")],
            f"{BAD}: the bar at 2024-01-01T00:00Z has a negative open",
        ),
    ],
    ids=["non-numeric", "duplicate", "negative"],
)
def test_a_malformed_kline_is_refused_after_ccxt_parses_it(
    emulator: ExchangeEmulator, klines: list[list[Any]], message: str
) -> None:
    market = feed()
    market.prepare()
    market.client.publicGetKlines = lambda params: klines  # the exchange's raw answer

    with pytest.raises(DataError) as info:
        fetch_closed_bars(market, 1704067200000)

    assert str(info.value) == message


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            {"bars": []},
            f"{BAD} for bars from 2024-01-01T00:00Z: expected a list of bars, got a dict",
        ),
        (
            [[1704067200000, 1.0, 2.0, 0.5, 1.0]],
            f"{BAD}: bar 1 of the page from 2024-01-01T00:00Z has 5 fields, expected 6 "
            "(timestamp, open, high, low, close, volume)",
        ),
        (
            [[1704067200000, 1.0, 2.0, 0.5, 1.0, 3.0], "oops"],
            f"{BAD}: bar 2 of the page from 2024-01-01T00:00Z has a str, expected 6 "
            "(timestamp, open, high, low, close, volume)",
        ),
        (
            [["2024-01-01", 1.0, 2.0, 0.5, 1.0, 3.0]],
            f"{BAD}: bar 1 of the page from 2024-01-01T00:00Z has timestamp '2024-01-01', "
            "expected epoch milliseconds",
        ),
        (
            [[1704067200000, 1.0, "2,5", 0.5, 1.0, 3.0]],
            f"{BAD}: the bar at 2024-01-01T00:00Z has a non-numeric high ('2,5')",
        ),
        (
            [[1704067200000, 1.0, True, 0.5, 1.0, 3.0]],
            f"{BAD}: the bar at 2024-01-01T00:00Z has a non-numeric high (True)",
        ),
        (
            [[1704067200000, 1.0, 2.0, 0.5, math.inf, 3.0]],
            f"{BAD}: the bar at 2024-01-01T00:00Z has a non-numeric close (inf)",
        ),
        (
            [[1704067200000, 1.0, 2.0, 0.5, 1.0, -3.0]],
            f"{BAD}: the bar at 2024-01-01T00:00Z has a negative volume",
        ),
        (
            [[1704070800000, 1.0, 2.0, 0.5, 1.0, 3.0], [1704067200000, 1.0, 2.0, 0.5, 1.0, 3.0]],
            f"{BAD}: the bar at 2024-01-01T00:00Z comes after the bar at 2024-01-01T01:00Z; "
            "bars must be in time order without duplicates",
        ),
    ],
    ids=[
        "not-a-list",
        "short-row",
        "not-a-row",
        "text-timestamp",
        "text-price",
        "bool-price",
        "infinite-price",
        "negative-volume",
        "out-of-order",
    ],
)
def test_check_page_names_the_first_problem(rows: object, message: str) -> None:
    with pytest.raises(DataError) as info:
        check_page(rows, label=LABEL, since_ms=1704067200000)
    assert str(info.value) == message


def test_check_page_accepts_a_missing_volume_and_numeric_text() -> None:
    page = check_page(
        [[1704067200000, "1.5", 2, 0.5, 1.0, None], [1704070800000.0, 1.0, 2.0, 0.5, 1.0, 0.0]],
        label=LABEL,
        since_ms=0,
    )
    assert page.times.tolist() == [1704067200000, 1704070800000]
    np.testing.assert_array_equal(
        page.values, [[1.5, 2.0, 0.5, 1.0, np.nan], [1.0, 2.0, 0.5, 1.0, 0.0]]
    )


_EDGES = [1.0, 0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 5e-324, 1e308]


@pytest.mark.parametrize("column", range(5))
@pytest.mark.parametrize("value", _EDGES, ids=repr)
def test_check_page_takes_ccxts_rows_as_it_checks_any_row(column: int, value: float) -> None:
    # a list of an int and floats (ccxt's rows) is taken without a call per value; a
    # tuple row is checked value by value: the same page, or the same message
    row = [1704067200000, 1.0, 2.0, 0.5, 1.0, 3.0]
    row[column + 1] = value
    rows = [[1704063600000, 1.0, 2.0, 0.5, 1.0, 3.0], row]

    def outcome(page_rows: list[Any]) -> object:
        try:
            page = check_page(page_rows, label=LABEL, since_ms=0)
        except DataError as error:
            return str(error)
        return page.times.tolist(), [[repr(x) for x in r] for r in page.values.tolist()]

    assert outcome(rows) == outcome([tuple(r) for r in rows])
    assert outcome(rows[::-1]) == outcome([tuple(r) for r in rows[::-1]])


def test_clients_have_ccxts_rate_limiter_on_by_default() -> None:
    assert create_client("binance").enableRateLimit is True
    assert create_client("binance", {"enableRateLimit": False}).enableRateLimit is False
    assert isinstance(create_client("kraken"), ccxt.kraken)


@pytest.mark.parametrize(
    "stamp", [2**63, 9_223_372_036_855, -9_223_372_036_855, 10**30, float(2**63)]
)
@pytest.mark.parametrize("later_bad", [False, True])
def test_a_timestamp_no_time_of_the_run_holds_is_refused_in_one_line(
    stamp: float, later_bad: bool
) -> None:
    """Beyond int64 nanoseconds (2262) a timestamp is the page's bad input: one DataError,
    not an OverflowError or pandas' OutOfBoundsDatetime, whatever else the row holds."""
    volume: object = "x" if later_bad else 1.0
    with pytest.raises(DataError) as info:
        check_page([[stamp, 1.0, 2.0, 0.5, 1.0, volume]], label=LABEL, since_ms=1704067200000)
    assert "expected epoch milliseconds" in str(info.value)
    assert "\n" not in str(info.value)


def test_the_last_millisecond_a_run_holds_is_accepted() -> None:
    page = check_page([[9_223_372_036_854, 1.0, 2.0, 0.5, 1.0, 1.0]], label=LABEL, since_ms=0)
    assert page.times.tolist() == [9_223_372_036_854]
