"""``tradeloom data record-book`` through the command line, against the emulated binance."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.plugins.data.ccxt_emulated import START, SYMBOL, emulated_binance, make_bars
from tradeloom.cli.main import main
from tradeloom.testing import BookProfile
from tradeloom.time.timeframes import format_timestamp

pytestmark = pytest.mark.usefixtures("cli_logging")

RECORD = ["data", "record-book", "--exchange", "binance", "--symbol", SYMBOL]


def test_record_book_writes_the_snapshots_data_order_book_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "book.parquet"
    profile = BookProfile(levels=10, size=Decimal("0.5"))
    before = pd.Timestamp(time.time(), unit="s", tz="UTC").floor("min")
    with emulated_binance(make_bars(), START, book=profile) as emulator:
        code = main([*RECORD, "--depth", "3", "--every", "0s", "--count", "4", "--out", str(out)])
        assert len(emulator.requests("GET /api/v3/depth")) == 4
        assert emulator.requests("GET /api/v3/depth")[0].params == {
            "symbol": "BTCUSDT",
            "limit": "3",
        }
    stdout, stderr = capsys.readouterr()
    assert (code, stderr) == (0, "")
    frame = pd.read_parquet(out)
    assert len(frame) == 4 and frame["symbol"].tolist() == [SYMBOL] * 4
    assert [c for c in frame.columns if c.endswith("_2")] == [
        "bid_price_2",
        "bid_size_2",
        "ask_price_2",
        "ask_size_2",
    ]
    assert "bid_price_3" not in frame.columns
    assert (frame["bid_size_0"] == 0.5).all() and (
        frame["bid_price_0"] < frame["ask_price_0"]
    ).all()
    assert frame["timestamp"].min() >= before  # stamped when received: Binance sends no time
    first, last = (format_timestamp(frame["timestamp"].iloc[i]) for i in (0, -1))
    assert stdout == (
        f"{SYMBOL}: recorded 4 snapshots of 3 levels a side from {first} to {last} into {out}\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth", "0"], "--depth: must be a whole number from 1 to 5,000, was '0'"),
        (
            ["--every", "1 second"],
            "--every: must be a delay such as 0s, 90s, 15m, 8h or 1d "
            "(a whole number and s, m, h, d or w); was '1 second'",
        ),
        (["--for", "0s"], "--for: must be longer than 0s, was '0s'"),
        (["--count", "-2"], "--count: must be a whole number from 1 to 1,000,000,000, was '-2'"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*RECORD, *args, "--out", str(tmp_path / "b.parquet")])
    assert (code, capsys.readouterr().err) == (2, f"{message}\n")


def test_a_bad_target_exchange_or_symbol_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*RECORD, "--out", str(tmp_path / "b.csv")]) == 2
    assert capsys.readouterr().err == (
        f"--out: must be a Parquet file ending in .parquet, was '{tmp_path / 'b.csv'}'\n"
    )
    assert main([*RECORD, "--out", str(tmp_path / "no" / "b.parquet")]) == 2
    assert capsys.readouterr().err == f"--out: no such folder: {tmp_path / 'no'}\n"
    bad = ["data", "record-book", "--exchange", "binanse", "--symbol", SYMBOL]
    assert main([*bad, "--out", str(tmp_path / "b.parquet")]) == 2
    assert capsys.readouterr().err == (
        "--exchange: must be a ccxt exchange id such as binance, kraken or okx; was 'binanse'"
        " (did you mean 'binance'?)\n"
    )
    with emulated_binance(make_bars(), START):
        args = ["data", "record-book", "--exchange", "binance", "--symbol", "ETH/USDT"]
        assert main([*args, "--out", str(tmp_path / "b.parquet")]) == 2
    assert capsys.readouterr().err == "--symbol: binance has no market ETH/USDT\n"
    assert not (tmp_path / "b.parquet").exists()
