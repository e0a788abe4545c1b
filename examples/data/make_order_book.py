"""Write the bars and the recorded order book of examples/order_book_rf.yaml.

    python examples/data/make_order_book.py [FOLDER]

Hourly bars of a seeded random walk are replayed by the loopback exchange emulator,
and its order book is read through the real ccxt client once per bar, exactly as
``tradeloom data record-book`` reads an exchange's (stamped with the emulator's
market time, where the command stamps the time of receipt). The book's spread
widens with recent volatility, and its lean (more bids than asks, or fewer) carries
a noisy hint of the coming bar's move, as order flow often does: the
book_imbalance feature has something to find. The files are rewritten bit for bit
by every run (tests/plugins/data/test_order_book_example.py checks it); FOLDER,
examples/data by default, is where they go.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from tradeloom.plugins.data.book_recorder import record_books
from tradeloom.plugins.data.book_snapshots import BookSnapshot, fetch_book, snapshots_frame
from tradeloom.testing import BookProfile, ExchangeEmulator

SYMBOL = "BTC/USDT"
BARS = 1200
DEPTH = 5
HERE = Path(__file__).resolve().parent
BARS_FILE = "book_bars.csv"
BOOK_FILE = "btc_book.parquet"


def make_bars(n: int = BARS, seed: int = 16) -> pd.DataFrame:
    """Return hourly bars of a random walk from 2024-01-01, on a 0.01 tick."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.r_[30_000.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0002, 0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0002, 0.003, n))
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": rng.uniform(5, 80, n)},
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp"),
    )
    return frame.round({"open": 2, "high": 2, "low": 2, "close": 2, "volume": 4})


def profiles(bars: pd.DataFrame, seed: int = 17) -> list[BookProfile]:
    """Return the book's profile at each bar's open: spread from volatility, a leaning tilt."""
    rng = np.random.default_rng(seed)
    moves = np.log(bars["close"] / bars["open"]).to_numpy()
    volatility = pd.Series(moves).abs().rolling(12, min_periods=1).mean().shift(1).fillna(0.003)
    hint = np.tanh(moves / 0.004) * 0.12 + rng.normal(0, 0.3, len(bars))
    return [
        BookProfile(
            spread_bps=Decimal(f"{1 + 400 * v:.2f}"),
            levels=DEPTH,
            level_gap_bps=Decimal(2),
            size=Decimal("0.8"),
            growth=Decimal("1.4"),
            tilt=Decimal(f"{float(np.clip(h, -0.9, 0.9)):.3f}"),
        )
        for v, h in zip(volatility, hint, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    """Write the two files into FOLDER (examples/data) and say what was written."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else HERE
    bars = make_bars()
    shapes = profiles(bars)
    with ExchangeEmulator({SYMBOL: bars}, {"USDT": 0}, start=0) as emulator:
        client = emulator.client()
        client.load_markets()
        exchange = emulator.exchange

        def read_at_this_bar() -> BookSnapshot:
            exchange.book = shapes[exchange.position]
            return fetch_book(client, SYMBOL, DEPTH, clock=exchange.now_ms)

        recording = record_books(
            read_at_this_bar,
            every=1,
            count=BARS,
            clock=lambda: 0.0,
            sleep=lambda _: exchange.advance(),
        )
    bars_file, book_file = folder / BARS_FILE, folder / BOOK_FILE
    bars.to_csv(bars_file, float_format="%.10g")
    snapshots_frame(recording.snapshots, DEPTH).to_parquet(book_file, index=False)
    print(
        f"wrote {len(bars)} bars to {bars_file}, {len(recording.snapshots)} books to "
        f"{book_file} ({book_file.stat().st_size:,} bytes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
