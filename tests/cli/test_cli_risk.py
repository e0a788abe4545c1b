"""``risk.limits`` and ``execution.margin`` through the ``tradeloom`` command.

A leveraged long is liquidated in a ``tradeloom run`` of a YAML strategy over a
CSV market this test writes, with the liquidation price, the fee and the equity
after it worked out by hand; settings that cannot hold are refused by
``tradeloom validate`` with one located line each and exit 2.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tests.builders import OMIT, PRECOMPUTED, strategy_text, write_bars
from tradeloom.cli.main import main
from tradeloom.journal import read_rows

STRATEGY = strategy_text(
    PRECOMPUTED,
    name="liquidated",
    signal={"threshold": 0.3, "min_interval": OMIT},
    risk={
        "sizing": {"fraction": 1.0},
        "limits": {
            "max_order_notional": 25000,
            "max_position_quantity": 250,
            "max_orders_per_minute": 5,
            "price_collar": 0.05,
            "daily_loss_limit": 0.5,
        },
    },
    execution={
        "kind": "simulated",
        "initial_cash": 10000,
        "fill": "next_open",
        "margin": {"initial": 0.5, "maintenance": 0.25, "leverage": 2, "liquidation_fee": 0.01},
    },
)
"""A long at 2x; the tests rely on its line numbers."""


def _bars(folder: Path) -> None:
    # bar 0 says up (p 0.9): a long at bar 1's open, 100; bar 2's low, 60, crosses the
    # liquidation price; then no prediction: nothing else trades
    nan = math.nan
    write_bars(
        folder, [100.0, 100.0, 65.0, 70.0], [0.9, nan, nan, nan],
        open_=[100.0, 100.0, 100.0, 65.0], high=[100.0, 101.0, 100.0, 70.0],
        low=[100.0, 99.0, 60.0, 64.0], volume=1e6,
    )  # fmt: skip


def test_a_leveraged_long_is_liquidated_at_the_price_worked_out_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _bars(tmp_path)
    (tmp_path / "s.yaml").write_text(STRATEGY, encoding="utf-8")

    assert main(["run", "s.yaml", "--out", "run"]) == 0

    # Sized at 1.0 x equity 10,000 x leverage 2 = 20,000: 200 units at 100 (no fee, no
    # slippage), which every limit allows (notional 20,000 <= 25,000, 200 <= 250 units,
    # the close is the reference price) and the margin too (0.5 x 20,000 <= 10,000).
    # Cash 10,000 - 20,000 = -10,000. Equity -10,000 + 200 P falls to the maintenance
    # margin 0.25 x 200 P where 150 P = 10,000: P = 66.67, inside bar 2 (low 60).
    quantity, cash = 200.0, -10_000.0
    price = 10_000.0 / 150.0
    fee = 0.01 * quantity * price  # the liquidation fee on the notional: 133.33
    after = cash + quantity * price - fee  # 3,333.33 - 133.33 = 3,200
    journal = tmp_path / "run" / "journal.sqlite"
    (liquidation,) = read_rows(journal, ["liquidation"])
    assert (liquidation.bar, liquidation.timestamp) == (2, "2024-01-01T02:00:00+00:00")
    assert liquidation.values == pytest.approx(
        {
            "side": -1,
            "quantity": quantity,
            "price": price,
            "fee": fee,
            "equity_before": cash + quantity * price,
            "maintenance": 0.25 * quantity * price,
        },
        rel=1e-12,
    )
    orders = [r.values for r in read_rows(journal, ["order"])]
    assert [(o["side"], o["reason"], o["quantity"]) for o in orders] == [
        (1, "ENTRY", pytest.approx(quantity, rel=1e-12)),
        (-1, "EXIT_LIQUIDATION", pytest.approx(quantity, rel=1e-12)),
    ]
    fills = [(r.bar, r.values["price"], r.values["fee"]) for r in read_rows(journal, ["fill"])]
    assert fills == [(1, 100.0, 0.0), (2, pytest.approx(price), pytest.approx(fee))]
    assert list(read_rows(journal, ["rejection", "halt"])) == []
    equity = pd.read_csv(tmp_path / "run" / "equity.csv")
    assert equity["position"].tolist() == [0.0, quantity, 0.0, 0.0]
    assert equity["equity"].tolist() == pytest.approx(
        [10_000.0, cash + quantity * 100.0, after, after], rel=1e-12
    )
    assert after == pytest.approx(3_200.0)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "    max_order_notional: 25000\n",
            "    max_order_notional: 0\n",
            "s.yaml:19:25 risk.limits.max_order_notional: must be > 0, was 0",
        ),
        (
            "    max_position_quantity: 250\n",
            "    max_position_quantity: -1\n",
            "s.yaml:20:28 risk.limits.max_position_quantity: must be > 0, was -1",
        ),
        (
            "    max_orders_per_minute: 5\n",
            "    max_orders_per_minute: 0\n",
            "s.yaml:21:28 risk.limits.max_orders_per_minute: must be >= 1, was 0",
        ),
        (
            "    price_collar: 0.05\n",
            "    price_collar: 1\n",
            "s.yaml:22:19 risk.limits.price_collar: must be < 1, was 1",
        ),
        (
            "    daily_loss_limit: 0.5\n",
            "    daily_loss_limit: 1.5\n",
            "s.yaml:23:23 risk.limits.daily_loss_limit: must be < 1, was 1.5",
        ),
        (
            "    maintenance: 0.25\n",
            "    maintenance: 0.6\n",
            "s.yaml:29:5 execution.margin: maintenance (0.6) must be below initial (0.5): "
            "a position would be liquidated as soon as it is opened",
        ),
        (
            "    leverage: 2\n",
            "    leverage: 0.5\n",
            "s.yaml:31:15 execution.margin.leverage: must be >= 1, was 0.5",
        ),
        (
            "    leverage: 2\n",
            "    leverage: 4\n",
            "s.yaml:29:5 execution.margin: leverage 4 needs initial <= 0.25, was 0.5 (the "
            "equity covers initial x leverage of a full position)",
        ),
    ],
)
def test_risk_settings_that_cannot_hold_are_refused_at_validate(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    line: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _bars(tmp_path)
    assert STRATEGY.count(old) == 1
    (tmp_path / "s.yaml").write_text(STRATEGY.replace(old, new), encoding="utf-8")
    assert main(["validate", "s.yaml"]) == 2
    assert capsys.readouterr() == ("", line + "\n")
    assert main(["run", "s.yaml", "--out", "run"]) == 2
    assert capsys.readouterr() == ("", line + "\n")
    assert not (tmp_path / "run").exists()
