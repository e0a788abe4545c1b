"""A perpetual paper-trades on the emulator's swap market through the command line, books
the funding its backtest books, and a ``kill -9`` mid-position restarts from the journal
holding the position and the cash (funding included) it held.

The emulator serves ``BTC/USDT:USDT`` as a USD-M perpetual (``/fapi`` markets, bars and
funding history, which ccxt's unified swap API reads); the paper run reads its bars and
funding rates there, bar by bar, and books the funding of each funding time on the
position carried into its bar (`tradeloom.engine.funding.LiveFunding`). Its history is
the first half of the bars; the model trains first at bar 400, in the played half, so
the paper run decides what the backtest decides from there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests import forkserver
from tests.live.live_emulated import rows
from tradeloom.cli.main import main
from tradeloom.journal import JournalError
from tradeloom.testing import ExchangeEmulator

ROOT = Path(__file__).resolve().parents[2]
PERP = ROOT / "strategies" / "btc_perp.yaml"
SHORTER = (
    "--set", "data.bars=700",
    "--set", "model.walk_forward.train_window=400",
    "--set", "model.walk_forward.retrain_every=100",
)  # fmt: skip
FUNDED = ("bar", "rate", "price", "position", "amount", "cash")
FILLED = ("bar", "order_id", "side", "quantity", "price", "fee")


def _paper(run: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return forkserver.popen(
        [
            sys.executable, "-m", "tradeloom.cli.main", "run", str(PERP), "--mode", "paper",
            "--clock", "simulated", "--speed", "max", "--out", str(run), "-q", *SHORTER,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip


def _table(journal: Path, kind: str, fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Each row's ``fields``; an order id by its sequence (the run's key differs by mode)."""
    return [
        tuple(r[f].rsplit("-", 1)[1] if f == "order_id" else r[f] for f in fields)
        for r in rows(journal, kind)
    ]


def _funded(journal: Path) -> int:
    try:
        return sum(1 for r in rows(journal, "funding") if r["position"] != 0.0)
    except (JournalError, OSError):  # not created yet
        return 0


def test_the_emulator_serves_a_perpetual_swap_market_to_ccxts_unified_swap_api() -> None:
    n = 30
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    close = 100.0 + np.arange(n, dtype=float)
    bars = pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 5.0},
        index=index,
    )
    times = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 08:00", "2024-01-01 16:00"], tz="UTC")
    funding = pd.Series([0.0001, -0.0002, 0.0003], index=times)
    with ExchangeEmulator(
        {"BTC/USDT:USDT": bars, "ETH/USDT": bars},
        {"USDT": Decimal(1000)},
        start=12,
        timeframe="1h",
        funding_rates={"BTC/USDT:USDT": funding},
    ) as emulator:
        client = emulator.client()
        markets = client.load_markets()
        swap = markets["BTC/USDT:USDT"]
        assert (swap["type"], swap["swap"], swap["linear"], swap["settle"]) == (
            "swap", True, True, "USDT"
        )  # fmt: skip
        assert markets["ETH/USDT"]["spot"] and "BTC/USDT" not in markets
        candles = client.fetch_ohlcv("BTC/USDT:USDT", "1h", limit=2)
        # the last closed bar and the one in progress (the emulator's default)
        assert [c[0] for c in candles] == [int(index[11].value / 1e6), int(index[12].value / 1e6)]
        assert candles[0][1:5] == [111.0, 112.0, 110.0, 111.0]
        assert emulator.requests("GET /fapi/v1/klines")
        # funding times up to market time (bar 12 opens at 12:00): 16:00 is not known yet
        history = client.fetch_funding_rate_history("BTC/USDT:USDT", since=0)
        assert [(r["timestamp"], r["fundingRate"]) for r in history] == [
            (int(times[0].value / 1e6), 0.0001),
            (int(times[1].value / 1e6), -0.0002),
        ]


@pytest.mark.slow
def test_a_perpetual_paper_run_books_the_backtests_funding_and_restarts_after_kill_9(
    ram_tmp_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with ram_tmp_factory.folder("perp_paper") as folder:
        backtest = folder / "backtest"
        assert main(["-q", "run", str(PERP), "--out", str(backtest), *SHORTER]) == 0
        capsys.readouterr()
        expected_funding = _table(backtest / "journal.sqlite", "funding", FUNDED)
        expected_fills = _table(backtest / "journal.sqlite", "fill", FILLED)
        equity = pd.read_csv(backtest / "equity.csv")
        assert sum(1 for row in expected_funding if row[3] != 0.0) > 10

        run = folder / "paper"
        journal = run / "journal.sqlite"
        child = _paper(run)
        deadline = time.monotonic() + 300
        while _funded(journal) < 4 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert child.poll() is None, f"the run ended before the kill: {child.communicate()}"
        child.send_signal(signal.SIGKILL)  # kill -9, mid-position (a funded one)
        child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL

        again = _paper(run)
        out, err = again.communicate(timeout=600)
        assert again.returncode == 0, err
        [restart] = rows(journal, "restarted")
        # the replay rebuilt the position and the cash the backtest held at that bar,
        # every funding booked before the kill included
        held = equity.iloc[restart["bar"]]
        assert restart["position"] == pytest.approx(held["position"], rel=1e-12)
        assert restart["cash"] == pytest.approx(held["cash"], rel=1e-12)
        assert restart["position"] != 0.0
        # across the kill: the backtest's funding and fills, each once
        assert _table(journal, "funding", FUNDED) == expected_funding
        assert _table(journal, "fill", FILLED) == expected_fills
        final = equity.iloc[-1]
        assert out.splitlines()[-1] == (
            f"paper run {run}: the simulated market ended after bar 699; position "
            f"{final['position']:.8g}, cash {final['cash']:.2f}, state ACTIVE"
        )
        # the paper run's metrics.json has its net funding, as the backtest's does
        paid = sum(r["amount"] for r in rows(journal, "funding"))
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["funding"] == pytest.approx(paid, rel=1e-12, abs=1e-9)
        assert paid != 0.0
