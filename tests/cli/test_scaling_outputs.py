"""A scaled trade in the run's files: one trades.csv row per trade, each leg an order
whose reason says which, and the legs' fills adding up to the trade's numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.builders import FAST
from tradeloom.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_legs_of_each_trade_add_up_to_its_row(ram_tmp_path: Path) -> None:
    out = ram_tmp_path / "run"
    strategy = str(ROOT / "strategies" / "btc_scaling.yaml")
    # the calibrator's rows in the file's proportion: a tenth of the (shorter) folds' rows
    holdout = ("--set", "model.calibration.holdout=40")
    assert main(["-q", "run", strategy, *FAST, *holdout, "--out", str(out)]) == 0
    orders = pd.read_csv(out / "orders.csv")
    fills = pd.read_csv(out / "fills.csv").merge(
        orders[["id", "reason"]], left_on="order_id", right_on="id"
    )
    trades = pd.read_csv(out / "trades.csv")
    reasons = set(orders["reason"])
    assert {"ENTRY", "SCALE_IN", "TAKE_PROFIT_PARTIAL"} <= reasons, reasons
    # walk the fills: a trade runs from a fill off flat to the fill that makes it flat
    rows = []
    position = cash = fees = 0.0
    legs: list[str] = []
    peak = average = 0.0
    for fill in fills.itertuples():
        signed = fill.side * fill.quantity
        legs.append(fill.reason)
        cash -= signed * fill.price
        fees += fill.fee
        if fill.side > 0:  # an add moves the average entry price; a partial leaves it
            average = (average * position + fill.price * fill.quantity) / (position + signed)
        position += signed
        peak = max(peak, position)
        if abs(position) <= 1e-12 * peak:
            rows.append((peak, average, cash - fees, fees, fill.reason, legs))
            position = cash = fees = peak = average = 0.0
            legs = []
    assert len(rows) == len(trades)
    scaled = 0
    for (peak, entry, pnl, paid, last, legs), trade in zip(rows, trades.itertuples(), strict=True):
        assert trade.quantity == pytest.approx(peak)  # the trade's largest size
        assert trade.entry_price == pytest.approx(entry)  # the buys' running average
        assert trade.pnl == pytest.approx(pnl)  # every leg's cash, every fee
        assert trade.fees == pytest.approx(paid)
        assert trade.exit_reason == last
        scaled += "SCALE_IN" in legs or "TAKE_PROFIT_PARTIAL" in legs[:-1]
    assert scaled >= 3
