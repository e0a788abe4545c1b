"""The backtest engine, end to end through `run_strategy`, on tiny hand-made markets.

Each test writes a CSV of bars with a ``p_up`` column and a strategy file that reads it
with the ``precomputed`` model, so the test decides every probability and every price;
the expected numbers are computed by hand from the engine's contract (the module
docstring of `tradeloom.backtest.pipeline`):

* a decision at bar t's close is sized at ``fraction * equity / (close_t * (1 + slippage)
  * (1 + fee))``: the quantity whose cost, slippage and fee included, is that share;
* ``fill: next_open`` fills it at bar t+1's open, ``fill: close`` at bar t's close, the
  price moved against the order by the slippage, plus a fee on the filled notional;
* same direction holds, the opposite direction exits (long-only) or reverses in one
  order; a position is closed once ``bar - entry fill bar >= max_holding_bars``; a halt
  closes the position and every later signal is rejected.

The last tests check the accounting of the real default strategy (shortened) and that
nothing before bar t moves when the bars after t change.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.builders import PRECOMPUTED, strategy, write_bars
from tradeloom.backtest.run import RunOutcome, run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RUN_KINDS, journal_digest, read_rows
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
DEFAULT_STRATEGY = ROOT / "strategies" / "btc_rf.yaml"

HOUR = pd.Timedelta(hours=1)
CASH = 10_000.0
ORDER_ID = r"tiny-[0-9a-f]{8}-\d{6}"


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test plugins in tests/fixtures/plugins importable by module name."""
    monkeypatch.syspath_prepend(str(FIXTURES))


DRIVER = ["auto"]


@pytest.fixture(autouse=True, params=["auto", "per_bar"])
def driver(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run every test under the batch driver (auto) and the per-bar driver."""
    DRIVER[0] = request.param
    yield request.param
    DRIVER[0] = "auto"


# --- building and running tiny strategies ------------------------------------------------


TINY: dict[str, Any] = {
    "name": "tiny",
    **PRECOMPUTED,
    "model": {"kind": "precomputed", "column": "p_up", "horizon": 1},
    "signal": {"threshold": 0.5},
    "execution": {
        "initial_cash": CASH,
        "fill": "next_open",
        "slippage_bps": 0,
        "fee_bps": 0,
        "allow_short": False,
    },
}
"""The overrides of `strategy` every test here starts from."""


def strategy_doc(**sections: Any) -> dict[str, Any]:
    """Return `TINY`'s strategy document with each keyword's section overridden."""
    return strategy(TINY, **sections)


def write_strategy(folder: Path, doc: dict[str, Any], name: str = "strategy.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@dataclass(frozen=True)
class JournalEvent:
    seq: int
    bar: int
    ts: str | None
    type: str
    correlation_id: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Run:
    """A finished run: its outcome and what it wrote."""

    outcome: RunOutcome

    @property
    def dir(self) -> Path:
        return self.outcome.run_dir

    @property
    def journal(self) -> list[JournalEvent]:
        return [
            JournalEvent(r.seq, r.bar, r.timestamp, r.kind, r.correlation_id, r.values)
            for r in read_rows(self.dir / "journal.sqlite")
        ]

    def events(self, kind: str, **match: Any) -> list[JournalEvent]:
        return [
            e
            for e in self.journal
            if e.type == kind and all(e.payload.get(k) == v for k, v in match.items())
        ]

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads((self.dir / "metrics.json").read_text())

    @property
    def equity(self) -> pd.DataFrame:
        return pd.read_csv(self.dir / "equity.csv")

    def csv(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.dir / name)

    @property
    def orders(self) -> list[tuple[int, int, float, str]]:
        """(decision bar, side, quantity, reason) of every order."""
        return [(o.bar, o.side, o.quantity, o.reason) for o in self.outcome.result.recorder.orders]

    @property
    def fills(self) -> list[tuple[int, int, float, float, float]]:
        """(bar, side, quantity, price, fee) of every fill."""
        return [
            (f.bar, f.side, f.quantity, f.price, f.fee) for f in self.outcome.result.recorder.fills
        ]


def run_file(path: Path, out: Path, overrides: Sequence[str] = (), **load: Any) -> Run:
    config, plugins = load_strategy(path, list(overrides), **load)
    return Run(run_strategy(build_pipeline(config), plugins, out=out, driver=DRIVER[0]))


def scenario(
    folder: Path,
    close: Sequence[float],
    p_up: Sequence[float],
    *,
    open_: Sequence[float] | None = None,
    **sections: Any,
) -> Run:
    """Write the bars and a strategy over them, run it, return the run."""
    write_bars(folder, close, p_up, open_=open_)
    return run_file(write_strategy(folder, strategy_doc(**sections)), folder / "run")


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-12, abs=1e-9)


def decisions(run: Run) -> list[tuple[int | None, str, str]]:
    """(bar, outcome, code or reason) of every risk decision and rejection in the journal."""
    return [
        (e.bar, "rejected", e.payload["code"])
        if e.type == "rejection"
        else (e.bar, e.payload["outcome"], e.payload["reason"])
        for e in run.journal
        if e.type in ("risk_decision", "rejection")
    ]


NAN = math.nan


# --- fills and sizing --------------------------------------------------------------------


def test_next_open_fills_at_the_next_open_with_slippage_and_fee(tmp_path: Path) -> None:
    slip = fee = 0.001  # 10 bps each
    close = [100.0, 104.0, 108.0, 100.0, 90.0, 95.0]
    open_ = [100.0, 102.0, 106.0, 107.0, 99.0, 91.0]
    run = scenario(
        tmp_path,
        close,
        [0.8, 0.5, 0.5, 0.5, 0.2, NAN],
        open_=open_,
        execution={"slippage_bps": 10, "fee_bps": 10},
    )

    # fraction * equity / close at the decision bar, with room for slippage and fee
    quantity = 0.5 * CASH / (100.0 * (1 + slip) * (1 + fee))
    buy = 102.0 * (1 + slip)  # bar 1's open, moved up for a buy
    buy_fee = quantity * buy * fee
    cash_long = CASH - quantity * buy - buy_fee
    sell = 91.0 * (1 - slip)  # bar 5's open, moved down for a sell
    sell_fee = quantity * sell * fee
    cash_end = cash_long + quantity * sell - sell_fee

    orders = run.csv("orders.csv")
    assert orders["id"].str.fullmatch(ORDER_ID).all()
    assert orders[["bar", "side", "reason"]].values.tolist() == [
        [0, 1, "ENTRY"],
        [4, -1, "EXIT_SIGNAL"],
    ]
    assert orders["quantity"].tolist() == [approx(quantity)] * 2
    assert orders["reference_price"].tolist() == [100.0, 90.0]
    fills = run.csv("fills.csv")
    assert fills["order_id"].tolist() == orders["id"].tolist()
    assert fills["bar"].tolist() == [1, 5]
    assert fills["timestamp"].tolist() == ["2024-01-01T01:00:00Z", "2024-01-01T05:00:00Z"]
    assert fills["price"].tolist() == [approx(buy), approx(sell)]
    assert fills["fee"].tolist() == [approx(buy_fee), approx(sell_fee)]
    assert fills["slippage"].tolist() == [
        approx(quantity * 102 * slip),
        approx(quantity * 91 * slip),
    ]
    # a fill carries the correlation id of the decision behind it, not of its own bar
    assert [e.correlation_id for e in run.events("fill")] == [0, 4]

    equity = run.equity
    assert list(equity.columns) == ["timestamp", "close", "position", "cash", "equity", "drawdown"]
    assert equity["position"].tolist() == [0.0, quantity, quantity, quantity, quantity, 0.0]
    expected_cash = [CASH, *[cash_long] * 4, cash_end]
    assert equity["cash"].tolist() == [approx(c) for c in expected_cash]
    expected_equity = [CASH, *(cash_long + quantity * c for c in close[1:5]), cash_end]
    assert equity["equity"].tolist() == [approx(e) for e in expected_equity]
    peak = np.maximum.accumulate(np.maximum(expected_equity, CASH))
    assert equity["drawdown"].tolist() == [approx(d) for d in 1 - np.array(expected_equity) / peak]

    [trade] = run.csv("trades.csv").to_dict("records")
    assert (trade["direction"], trade["entry_bar"], trade["exit_bar"]) == (1, 1, 5)
    assert trade["quantity"] == approx(quantity)
    assert (trade["entry_price"], trade["exit_price"]) == (approx(buy), approx(sell))
    assert trade["fees"] == approx(buy_fee + sell_fee)
    assert trade["pnl"] == approx(quantity * (sell - buy) - buy_fee - sell_fee)

    metrics = run.metrics
    assert metrics["fees"] == approx(buy_fee + sell_fee)
    assert metrics["final_equity"] == approx(cash_end)
    assert metrics["total_return"] == approx(cash_end / CASH - 1)
    assert (metrics["orders"], metrics["fills"], metrics["trades"]) == (2, 2, 1)
    assert (metrics["signals"], metrics["unfilled_orders"], metrics["open_position"]) == (2, 0, 0)


def test_fill_close_fills_at_the_decision_bars_close(tmp_path: Path) -> None:
    slip = fee = 0.001
    close = [100.0, 104.0, 108.0, 100.0, 90.0, 95.0]
    open_ = [100.0, 102.0, 106.0, 107.0, 99.0, 91.0]
    run = scenario(
        tmp_path,
        close,
        [0.8, 0.5, 0.5, 0.5, 0.2, NAN],
        open_=open_,
        execution={"fill": "close", "slippage_bps": 10, "fee_bps": 10},
    )

    quantity = 0.5 * CASH / (100.0 * (1 + slip) * (1 + fee))
    buy, sell = 100.0 * (1 + slip), 90.0 * (1 - slip)
    cash_long = CASH - quantity * buy * (1 + fee)
    cash_end = cash_long + quantity * sell * (1 - fee)
    assert run.fills == [
        (0, 1, approx(quantity), approx(buy), approx(quantity * buy * fee)),
        (4, -1, approx(quantity), approx(sell), approx(quantity * sell * fee)),
    ]
    equity = run.equity
    # the equity row of a bar comes after its close fills
    assert equity["position"].tolist() == [quantity] * 4 + [0.0, 0.0]
    assert equity["cash"].tolist() == [approx(cash_long)] * 4 + [approx(cash_end)] * 2
    assert equity["equity"][0] == approx(cash_long + quantity * 100.0)
    # the fees and slippage of bar 0 are a drawdown from the initial cash, not from bar 0
    assert equity["drawdown"][0] == approx(1 - equity["equity"][0] / CASH)
    assert equity["drawdown"][0] > 0
    assert run.metrics["unfilled_orders"] == 0


def test_entry_is_sized_on_equity_at_the_decision_close(tmp_path: Path) -> None:
    fee = 0.001
    close = [100.0, 100.0, 120.0, 120.0, 150.0, 150.0]
    open_ = [100.0, 100.0, 110.0, 120.0, 140.0, 150.0]
    run = scenario(
        tmp_path,
        close,
        [0.8, 0.5, 0.2, 0.5, 0.8, 0.5],
        open_=open_,
        execution={"fee_bps": 10},
    )

    first = 0.5 * CASH / (100.0 * (1 + fee))
    cash = CASH - first * 100.0 * (1 + fee)  # bought at bar 1's open, 100
    cash += first * 120.0 * (1 - fee)  # sold at bar 3's open, 120
    second = 0.5 * cash / (150.0 * (1 + fee))  # equity at bar 4's close (flat: equity is cash)
    assert run.orders == [
        (0, 1, approx(first), "ENTRY"),
        (2, -1, approx(first), "EXIT_SIGNAL"),
        (4, 1, approx(second), "ENTRY"),
    ]
    assert run.fills[2] == (5, 1, approx(second), 150.0, approx(second * 150.0 * fee))
    equity = run.equity
    assert equity["cash"][4] == approx(cash)
    assert equity["cash"][5] == approx(cash - second * 150.0 * (1 + fee))
    assert equity["position"][5] == approx(second)
    assert run.events("risk_decision", outcome="accepted")[1].payload == {
        "outcome": "accepted",
        "reason": "ENTRY",
        "target_fraction": 0.5,
        "trend": "",
        "volatility": "",
    }


# --- what a signal does to a position ----------------------------------------------------


def test_same_direction_signal_while_holding_is_a_hold(tmp_path: Path) -> None:
    run = scenario(tmp_path, [100.0] * 4, [0.8, 0.8, 0.8, 0.5])

    assert run.orders == [(0, 1, 50.0, "ENTRY")]
    assert decisions(run) == [
        (0, "accepted", "ENTRY"),
        (1, "hold", "position already in the signal's direction"),
        (2, "hold", "position already in the signal's direction"),
    ]
    assert run.equity["position"].tolist() == [0.0, 50.0, 50.0, 50.0]


def test_opposite_signal_exits_a_long_only_position_then_short_is_refused(
    tmp_path: Path,
) -> None:
    run = scenario(tmp_path, [100.0] * 5, [0.8, 0.5, 0.2, 0.2, 0.5])

    assert run.orders == [(0, 1, 50.0, "ENTRY"), (2, -1, 50.0, "EXIT_SIGNAL")]
    assert run.equity["position"].tolist() == [0.0, 50.0, 50.0, 0.0, 0.0]
    [rejection] = run.events("rejection")
    assert rejection.bar == 3
    assert rejection.ts == "2024-01-01T03:00:00+00:00"
    assert rejection.payload == {
        "code": "SHORT_NOT_ALLOWED",
        "message": "short signal on a long-only venue (execution.allow_short: false)",
        "values": {},
        "purpose": "ENTRY",
    }
    assert run.metrics["rejections"] == {"SHORT_NOT_ALLOWED": 1}
    assert run.metrics["refusals"] == {
        "rejected": {"SHORT_NOT_ALLOWED": {"ENTRY": 1}},
        "cut": {},
        "cancelled": {},
    }
    assert (run.metrics["refusals_total"], run.metrics["exits_refused"]) == (1, {})


def test_short_signal_when_flat_on_a_long_only_venue_is_rejected(tmp_path: Path) -> None:
    run = scenario(tmp_path, [100.0] * 3, [0.2, 0.5, 0.1])

    assert run.orders == []
    assert decisions(run) == [
        (0, "rejected", "SHORT_NOT_ALLOWED"),
        (2, "rejected", "SHORT_NOT_ALLOWED"),
    ]
    assert run.metrics["rejections"] == {"SHORT_NOT_ALLOWED": 2}
    assert run.equity["equity"].tolist() == [CASH] * 3


def test_opposite_signal_reverses_in_one_order_when_shorting_is_allowed(tmp_path: Path) -> None:
    run = scenario(
        tmp_path,
        [100.0, 100.0, 120.0, 120.0, 110.0],
        [0.8, 0.5, 0.2, 0.5, 0.5],
        execution={"fill": "close", "allow_short": True},
    )

    long_qty = 0.5 * CASH / 100.0
    equity_at_reverse = CASH - long_qty * 100.0 + long_qty * 120.0  # 11,000
    short_qty = 0.5 * equity_at_reverse / 120.0
    assert run.orders == [
        (0, 1, approx(long_qty), "ENTRY"),
        (2, -1, approx(long_qty + short_qty), "REVERSE"),
    ]
    assert decisions(run) == [(0, "accepted", "ENTRY"), (2, "accepted", "REVERSE")]
    assert run.events("risk_decision")[1].payload["target_fraction"] == -0.5
    equity = run.equity
    assert equity["position"].tolist() == [approx(long_qty)] * 2 + [approx(-short_qty)] * 3
    cash_short = CASH - long_qty * 100.0 + (long_qty + short_qty) * 120.0
    assert equity["cash"][4] == approx(cash_short)
    assert equity["equity"].tolist()[2:] == [
        approx(equity_at_reverse),
        approx(equity_at_reverse),
        approx(cash_short - short_qty * 110.0),
    ]
    [trade] = run.csv("trades.csv").to_dict("records")  # the long; the short is still open
    assert (trade["direction"], trade["entry_bar"], trade["exit_bar"]) == (1, 0, 2)
    assert trade["pnl"] == approx(long_qty * 20.0)
    assert run.metrics["open_position"] == approx(-short_qty)


def test_a_short_entry_sells_and_its_exit_buys_back(tmp_path: Path) -> None:
    slip = fee = 0.001
    run = scenario(
        tmp_path,
        [100.0, 100.0, 90.0, 90.0, 95.0, 95.0],
        [0.2, 0.5, 0.5, 0.5, 0.5, 0.5],
        open_=[100.0, 100.0, 92.0, 90.0, 94.0, 95.0],
        risk={"sizing": {"kind": "fixed_fraction", "fraction": 0.5}, "max_holding_bars": 2},
        execution={"allow_short": True, "slippage_bps": 10, "fee_bps": 10},
    )

    quantity = 0.5 * CASH / (100.0 * (1 + slip) * (1 + fee))
    sell = 100.0 * (1 - slip)  # bar 1's open, moved down for a sell
    buy = 94.0 * (1 + slip)  # bar 4's open, moved up for a buy
    cash_short = CASH + quantity * sell * (1 - fee)
    cash_end = cash_short - quantity * buy * (1 + fee)
    # entry filled at bar 1; 3 - 1 >= 2 closes it at bar 3, filled at bar 4's open
    q = approx(quantity)
    assert run.orders == [(0, -1, q, "ENTRY"), (3, 1, q, "EXIT_MAX_HOLDING")]
    assert run.fills == [
        (1, -1, q, approx(sell), approx(quantity * sell * fee)),
        (4, 1, q, approx(buy), approx(quantity * buy * fee)),
    ]
    equity = run.equity
    assert equity["position"].tolist() == [0.0, *[approx(-quantity)] * 3, 0.0, 0.0]
    assert equity["equity"].tolist() == [
        CASH,
        approx(cash_short - quantity * 100.0),
        approx(cash_short - quantity * 90.0),
        approx(cash_short - quantity * 90.0),
        approx(cash_end),
        approx(cash_end),
    ]
    [trade] = run.csv("trades.csv").to_dict("records")
    assert (trade["direction"], trade["entry_bar"], trade["exit_bar"]) == (-1, 1, 4)
    fees = quantity * (sell + buy) * fee
    assert (trade["fees"], trade["pnl"]) == (approx(fees), approx(quantity * (sell - buy) - fees))


def test_kelly_sizes_a_short_on_the_probability_of_a_fall(tmp_path: Path) -> None:
    run = scenario(
        tmp_path,
        [100.0] * 3,
        [0.1, 0.5, 0.5],
        signal={"kind": "threshold", "threshold": 0.3},
        risk={"sizing": {"kind": "kelly", "fraction": 0.25, "avg_win": 0.02, "avg_loss": 0.02}},
        execution={"allow_short": True},
    )

    # p_win = 1 - 0.1 = 0.9, payoff 1: full Kelly 0.9 - 0.1 = 0.8, a quarter of it 0.2
    assert decisions(run) == [(0, "accepted", "ENTRY")]
    assert run.events("risk_decision")[0].payload["target_fraction"] == approx(-0.2)
    assert run.orders == [(0, -1, approx(0.2 * CASH / 100.0), "ENTRY")]


@pytest.mark.parametrize(
    ("fill", "entry_fill_bar"), [("next_open", 1), ("close", 0)], ids=["next_open", "close"]
)
def test_max_holding_bars_exits_at_the_first_bar_held_that_long(
    tmp_path: Path, fill: str, entry_fill_bar: int
) -> None:
    limit = 3
    exit_bar = entry_fill_bar + limit  # first bar with bar - entry fill bar >= 3
    p = [0.8] + [0.5] * 7
    p[exit_bar] = 0.8  # a signal in the same direction does not keep the position open
    run = scenario(
        tmp_path,
        [100.0] * 8,
        p,
        risk={"sizing": {"kind": "fixed_fraction", "fraction": 0.5}, "max_holding_bars": limit},
        execution={"fill": fill},
    )

    assert run.orders == [(0, 1, 50.0, "ENTRY"), (exit_bar, -1, 50.0, "EXIT_MAX_HOLDING")]
    assert decisions(run) == [
        (0, "accepted", "ENTRY"),
        (exit_bar, "ignored", "position is being closed (EXIT_MAX_HOLDING)"),
    ]
    exit_fill_bar = exit_bar + (1 if fill == "next_open" else 0)
    [trade] = run.csv("trades.csv").to_dict("records")
    assert (trade["entry_bar"], trade["exit_bar"]) == (entry_fill_bar, exit_fill_bar)
    positions = run.equity["position"].tolist()
    assert positions == [50.0 if entry_fill_bar <= t < exit_fill_bar else 0.0 for t in range(8)]


# --- halts and rejections ----------------------------------------------------------------


def test_drawdown_halt_closes_the_position_and_refuses_every_later_signal(
    tmp_path: Path,
) -> None:
    close = [100.0, 100.0, 85.0, 80.0, 90.0, 95.0, 100.0]
    open_ = [100.0, 100.0, 95.0, 84.0, 80.0, 90.0, 95.0]
    run = scenario(
        tmp_path,
        close,
        [0.8, 0.5, 0.8, 0.8, 0.8, 0.2, 0.8],
        open_=open_,
        risk={
            "sizing": {"kind": "fixed_fraction", "fraction": 1.0},
            "rules": [{"kind": "drawdown_halt", "max_drawdown": 0.1}],
        },
    )

    # bar 2's close: 100 units at 85 = 8,500 against a peak of 10,000 -> 15% >= 10%
    [halt] = run.events("halt")
    assert halt.bar == 2
    assert halt.payload["code"] == "MAX_DRAWDOWN_HALT"
    assert halt.payload["message"] == "drawdown=0.1500, limit=0.1"
    assert halt.payload["values"] == {"drawdown": approx(0.15), "limit": 0.1}
    # per bar: halt moving the state to HALTED, then the signal: in the side held it
    # would send nothing, so it is no refusal but ignored (the halt's exit closes the
    # position), then the halt's exit, which a HALTED state lets through
    assert [e.type for e in run.journal if e.bar == 2] == [
        "halt",
        "trading_state",
        "signal",
        "risk_decision",
        "order",
    ]
    [state] = run.events("trading_state")
    assert (state.payload["previous"], state.payload["state"], state.payload["code"]) == (
        "ACTIVE",
        "HALTED",
        "MAX_DRAWDOWN_HALT",
    )
    assert run.orders == [(0, 1, 100.0, "ENTRY"), (2, -1, 100.0, "EXIT_HALT")]
    assert run.fills[1] == (3, -1, 100.0, 84.0, 0.0)
    assert decisions(run) == [
        (0, "accepted", "ENTRY"),
        (2, "ignored", "position is being closed (EXIT_HALT)"),
    ] + [(bar, "rejected", "HALTED") for bar in range(3, 7)]
    messages = {e.payload["message"] for e in run.events("rejection", code="HALTED")}
    assert messages == {"trading is halted (MAX_DRAWDOWN_HALT)"}
    assert run.equity["position"].tolist() == [0.0, 100.0, 100.0, 0.0, 0.0, 0.0, 0.0]
    metrics = run.metrics
    assert metrics["halt"] == "MAX_DRAWDOWN_HALT at 2024-01-01 02:00"
    assert metrics["rejections"] == {"HALTED": 4}
    assert metrics["final_equity"] == approx(8_400.0)


def test_kelly_sizing_rejects_no_edge_and_caps_at_max_position(tmp_path: Path) -> None:
    run = scenario(
        tmp_path,
        [100.0] * 8,
        [0.7, 0.5, 0.85, 0.5, 0.2, 0.5, 0.95, 0.5],
        signal={"kind": "threshold", "threshold": 0.3},
        risk={
            "sizing": {
                "kind": "kelly",
                "fraction": 0.5,
                "avg_win": 0.01,
                "avg_loss": 0.03,
                "max_position": 0.25,
            }
        },
    )

    # payoff b = 1/3; full Kelly p - (1 - p) / b = 4p - 3
    [no_edge] = run.events("rejection")
    assert no_edge.bar == 0
    assert no_edge.payload["code"] == "KELLY_NO_EDGE"
    assert no_edge.payload["message"] == "kelly=-0.2000 <= 0 (p_win=0.7000, payoff=0.3333)"
    assert no_edge.payload["values"] == {
        "kelly": approx(-0.2),
        "p_win": 0.7,
        "payoff": approx(1 / 3),
    }
    accepted = run.events("risk_decision", outcome="accepted")
    assert [(e.bar, e.payload["target_fraction"]) for e in accepted] == [
        (2, approx(0.5 * 0.4)),  # p = 0.85: 0.5 * 0.4 = 0.2 < cap
        (6, 0.25),  # p = 0.95: 0.5 * 0.8 = 0.4, capped at 0.25
    ]
    assert run.orders == [
        (2, 1, approx(0.2 * CASH / 100.0), "ENTRY"),
        (4, -1, approx(0.2 * CASH / 100.0), "EXIT_SIGNAL"),
        (6, 1, approx(0.25 * CASH / 100.0), "ENTRY"),
    ]
    assert run.metrics["rejections"] == {"KELLY_NO_EDGE": 1}


@pytest.mark.parametrize(
    ("min_interval", "signal_bars"),
    [(3, [0, 3, 6]), (1, [0, 1, 2, 3, 4, 5, 6, 7])],
    ids=["min_interval=3", "min_interval=1"],
)
def test_min_interval_spaces_signals_end_to_end(
    tmp_path: Path, min_interval: int, signal_bars: list[int]
) -> None:
    p = [0.8, 0.2, 0.2, 0.2, 0.8, 0.8, 0.8, 0.2, 0.5, 0.5]
    run = scenario(
        tmp_path,
        [100.0] * 10,
        p,
        signal={"kind": "threshold", "threshold": 0.5, "min_interval": min_interval},
        execution={"fill": "close", "allow_short": True},
    )

    signals = run.events("signal")
    assert [e.bar for e in signals] == signal_bars
    assert [e.payload["direction"] for e in signals] == [
        1 if p[b] > 0.5 else -1 for b in signal_bars
    ]
    assert run.metrics["signals"] == len(signal_bars)
    if min_interval == 3:
        assert [(bar, reason) for bar, _, _, reason in run.orders] == [
            (0, "ENTRY"),
            (3, "REVERSE"),
            (6, "REVERSE"),
        ]


def test_an_order_decided_on_the_last_bar_expires_unfilled(tmp_path: Path) -> None:
    run = scenario(tmp_path, [100.0] * 4, [0.5, 0.5, 0.5, 0.8])

    [order] = run.outcome.result.recorder.orders
    assert (order.bar, order.reason) == (3, "ENTRY")
    [expired] = run.events("order_expired")
    assert expired.bar == 3
    assert expired.payload == {"order_id": order.id, "reason": "no bar left to fill"}
    assert [e.type for e in run.journal][-3:] == ["order", "order_expired", "run_finished"]
    metrics = run.metrics
    assert (metrics["orders"], metrics["fills"], metrics["unfilled_orders"]) == (1, 0, 1)
    assert metrics["open_position"] == 0
    assert run.csv("fills.csv").empty
    assert run.equity["position"].tolist() == [0.0] * 4


def test_an_order_on_the_last_bar_fills_under_fill_close(tmp_path: Path) -> None:
    run = scenario(tmp_path, [100.0] * 4, [0.5, 0.5, 0.5, 0.8], execution={"fill": "close"})

    assert run.events("order_expired") == []
    assert run.metrics["unfilled_orders"] == 0
    assert run.fills == [(3, 1, 50.0, 100.0, 0.0)]


# --- third-party risk rules and observers ------------------------------------------------


@pytest.fixture
def feature_limit_rule() -> Iterator[Any]:
    import feature_limit_rule

    feature_limit_rule.SEEN.clear()
    yield feature_limit_rule
    feature_limit_rule.SEEN.clear()


def _rule_doc(**rule: Any) -> dict[str, Any]:
    return {
        "sizing": {"kind": "fixed_fraction", "fraction": 0.5},
        "rules": [{"kind": "feature_limit", "feature": "log_return_1", "limit": 0.05, **rule}],
    }


def test_a_third_party_rule_blocks_entries_and_its_rejection_is_journaled(
    tmp_path: Path, feature_limit_rule: Any
) -> None:
    close = [100.0, 100.0, 110.0, 110.0, 110.0, 104.5, 104.5, 115.0, 115.0, 115.0]
    p = [0.5, 0.5, 0.8, 0.5, 0.8, 0.2, 0.5, 0.8, 0.5, 0.5]
    run = scenario(
        tmp_path,
        close,
        p,
        plugins=["feature_limit_rule"],
        risk=_rule_doc(),
        execution={"fill": "close"},
    )

    rejected = run.events("rejection")
    assert [(e.bar, e.payload["code"]) for e in rejected] == [
        (2, "FEATURE_ABOVE_LIMIT"),
        (7, "FEATURE_ABOVE_LIMIT"),
    ]
    assert rejected[0].payload["message"] == "log_return_1=0.0953102 > limit=0.05"
    assert rejected[0].payload["values"] == {
        "value": pytest.approx(math.log(1.1)),
        "limit": 0.05,
    }
    assert run.orders == [
        (4, 1, approx(0.5 * CASH / 110.0), "ENTRY"),
        (5, -1, approx(0.5 * CASH / 110.0), "EXIT_SIGNAL"),
    ]
    assert run.metrics["rejections"] == {"FEATURE_ABOVE_LIMIT": 2}
    # the rule sees only exposure-increasing intents, with the decision bar's features
    checks = [(bar, seen) for method, bar, seen in feature_limit_rule.SEEN if method == "check"]
    assert [bar for bar, _ in checks] == [2, 4, 7]
    assert all(seen["increases_exposure"] and seen["reason"] == "ENTRY" for _, seen in checks)
    assert [seen["value"] for _, seen in checks] == [
        pytest.approx(math.log(110 / 100)),
        0.0,
        pytest.approx(math.log(115 / 104.5)),
    ]
    on_bar = [
        (bar, seen["position"])
        for method, bar, seen in feature_limit_rule.SEEN
        if method == "on_bar"
    ]
    assert [bar for bar, _ in on_bar] == list(range(10))
    held = 0.5 * CASH / 110.0
    assert [position for _, position in on_bar] == [0.0] * 5 + [approx(held)] + [0.0] * 4


def test_a_blocked_reversal_still_exits(tmp_path: Path, feature_limit_rule: Any) -> None:
    run = scenario(
        tmp_path,
        [100.0, 100.0, 100.0, 120.0, 120.0],
        [0.5, 0.8, 0.5, 0.2, 0.5],
        plugins=["feature_limit_rule"],
        risk=_rule_doc(),
        execution={"fill": "close", "allow_short": True},
    )

    assert decisions(run) == [(1, "accepted", "ENTRY"), (3, "rejected", "FEATURE_ABOVE_LIMIT")]
    assert run.orders == [(1, 1, 50.0, "ENTRY"), (3, -1, 50.0, "EXIT_SIGNAL")]
    assert run.equity["position"].tolist() == [0.0, 50.0, 50.0, 0.0, 0.0]


def test_a_third_party_halt_stops_trading(tmp_path: Path, feature_limit_rule: Any) -> None:
    run = scenario(
        tmp_path,
        [100.0] * 6,
        [0.5, 0.8, 0.5, 0.5, 0.8, 0.5],
        plugins=["feature_limit_rule"],
        risk=_rule_doc(halt_at_bar=2),
    )

    [halt] = run.events("halt")
    assert (halt.bar, halt.payload["code"], halt.payload["message"]) == (
        2,
        "CUSTOM_HALT",
        "halted at bar 2",
    )
    assert run.orders == [(1, 1, 50.0, "ENTRY"), (2, -1, 50.0, "EXIT_HALT")]
    [rejected] = run.events("rejection")
    assert (rejected.bar, rejected.payload["code"], rejected.payload["message"]) == (
        4,
        "HALTED",
        "trading is halted (CUSTOM_HALT)",
    )
    # once halted, the rules are not asked to halt again
    assert [bar for method, bar, _ in feature_limit_rule.SEEN if method == "on_bar"] == [0, 1, 2]


def _hook_market(folder: Path, *, plugins: Sequence[str] = ()) -> Path:
    """A random walk with an sklearn model, a monitor and a tight drawdown limit.

    With this seed every event hook fires: signals, orders, fills, rejections, a halt,
    model trainings and health changes.
    """
    n = 240
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    write_bars(folder, close)
    doc = strategy_doc(
        name="hooks",
        plugins=list(plugins),
        features=[{"kind": "log_return", "period": 1}, {"kind": "rsi", "window": 5}],
        model={
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "label": {"horizon": 1},
            "walk_forward": {"train_window": 40, "retrain_every": 40},
        },
        signal={"kind": "threshold", "threshold": 0.02},
        risk={
            "sizing": {"kind": "fixed_fraction", "fraction": 1.0},
            "rules": [{"kind": "drawdown_halt", "max_drawdown": 0.03}],
        },
        monitoring=[
            {
                "kind": "rolling_auc",
                "window": 20,
                "min_samples": 10,
                "warning_below": 0.5,
                "critical_below": 0.4,
                "hysteresis": 0,
            }
        ],
    )
    if not plugins:
        del doc["plugins"]
    return write_strategy(folder, doc)


@pytest.fixture
def recording_observer() -> Iterator[Any]:
    import recording_observer

    recording_observer.CALLS.clear()
    yield recording_observer
    recording_observer.CALLS.clear()


def test_every_observer_hook_fires_once_per_journaled_event(
    tmp_path: Path, recording_observer: Any
) -> None:
    run = run_file(_hook_market(tmp_path, plugins=["recording_observer"]), tmp_path / "run")

    calls = [(name, kw) for name, kw in recording_observer.CALLS if name != "tradeloom_components"]
    by_hook: dict[str, list[dict[str, Any]]] = {}
    for name, kw in calls:
        by_hook.setdefault(name, []).append(kw)
    journal = Counter(e.type for e in run.journal)
    rejected = run.events("rejection")
    expected = {
        "tradeloom_run_started": 1,
        "tradeloom_run_finished": 1,
        "tradeloom_signal": journal["signal"],
        "tradeloom_order": journal["order"],
        "tradeloom_fill": journal["fill"],
        "tradeloom_risk_rejection": len(rejected),
        "tradeloom_refusal": len(rejected),  # and no cancellation: the venue cuts nothing
        "tradeloom_halt": journal["halt"],
        "tradeloom_model_trained": journal["model_trained"],
        "tradeloom_health_changed": journal["health"],
    }
    assert {name: len(kws) for name, kws in by_hook.items()} == expected
    assert all(count >= 1 for count in expected.values()), expected  # the market covers all
    assert calls[0][0] == "tradeloom_run_started"
    assert calls[-1][0] == "tradeloom_run_finished"

    # observers see the very events the journal holds, in the same order
    assert [kw["signal"].bar for kw in by_hook["tradeloom_signal"]] == [
        e.bar for e in run.events("signal")
    ]
    assert [kw["order"].id for kw in by_hook["tradeloom_order"]] == [
        e.payload["id"] for e in run.events("order")
    ]
    assert [(kw["fill"].order_id, kw["fill"].price) for kw in by_hook["tradeloom_fill"]] == [
        (e.payload["order_id"], e.payload["price"]) for e in run.events("fill")
    ]
    assert [
        (kw["rejection"].bar, kw["rejection"].code) for kw in by_hook["tradeloom_risk_rejection"]
    ] == [(e.bar, e.payload["code"]) for e in rejected]
    assert journal["order_cancelled"] == 0
    assert [
        (r.bar, r.stage, r.code, r.purpose, r.exit)
        for r in (kw["refusal"] for kw in by_hook["tradeloom_refusal"])
    ] == [(e.bar, "rejected", e.payload["code"], e.payload["purpose"], False) for e in rejected]
    assert {e.payload["purpose"] for e in rejected} <= {"ENTRY", "REVERSE", "SCALE_IN"}
    assert [kw["halt"].code for kw in by_hook["tradeloom_halt"]] == ["MAX_DRAWDOWN_HALT"]
    assert [kw["training"].fold for kw in by_hook["tradeloom_model_trained"]] == [
        e.payload["fold"] for e in run.events("model_trained")
    ]
    assert [
        (kw["change"].bar, kw["change"].status) for kw in by_hook["tradeloom_health_changed"]
    ] == [(e.bar, e.payload["status"]) for e in run.events("health")]
    runs = {kw["run"] for _, kw in calls}
    assert len(runs) == 1
    [info] = runs
    assert (info.run_id, info.mode, info.run_dir) == ("run", "backtest", str(run.dir))
    finished = by_hook["tradeloom_run_finished"][0]["metrics"]
    assert {k: finished[k] for k in ("orders", "fills", "signals", "rejections", "halt")} == {
        k: run.metrics[k] for k in ("orders", "fills", "signals", "rejections", "halt")
    }


def test_the_run_id_is_the_run_folders_name_even_for_out_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recording_observer: Any
) -> None:
    write_bars(tmp_path, [100.0] * 3, [0.8, 0.5, 0.5])
    doc = strategy_doc(plugins=["recording_observer"])
    doc["data"]["path"] = str(tmp_path / "bars.csv")
    path = write_strategy(tmp_path, doc)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)

    run = run_file(path, Path("."))

    assert (here / "journal.sqlite").is_file() and run.metrics["orders"] == 1
    runs = {kw["run"].run_id for name, kw in recording_observer.CALLS if "run" in kw}
    assert runs == {"here"}


def test_an_observer_cannot_change_a_decision(tmp_path: Path, recording_observer: Any) -> None:
    import meddling_observer

    meddling_observer.CALLS.clear()
    path = _hook_market(tmp_path)
    plain = run_file(path, tmp_path / "plain")

    def with_observers(modules: Sequence[str]) -> Any:
        return load_plugins([*modules, "recording_observer", "meddling_observer"])

    observed = run_file(path, tmp_path / "observed", load_plugins=with_observers)

    assert set(meddling_observer.CALLS) == {
        "run_started",
        "run_finished",
        "signal",
        "order",
        "fill",
        "risk_rejection",
        "refusal",
        "halt",
        "model_trained",
        "health_changed",
    }
    meddling_observer.CALLS.clear()
    assert journal_digest(plain.dir / "journal.sqlite") == journal_digest(
        observed.dir / "journal.sqlite"
    )
    for name in ("equity.csv", "orders.csv", "fills.csv", "trades.csv"):
        assert (plain.dir / name).read_bytes() == (observed.dir / name).read_bytes(), name


# --- no look-ahead and determinism -------------------------------------------------------


def _random_market(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.003, n))
    p = rng.uniform(0.0, 1.0, n)
    p[rng.uniform(size=n) < 0.1] = np.nan
    return close, open_, p


def _lookahead_doc(model: str) -> dict[str, Any]:
    doc = strategy_doc(
        features=[{"kind": "log_return", "period": 1}, {"kind": "rsi", "window": 5}],
        signal={"kind": "threshold", "threshold": 0.2, "min_interval": 2},
        risk={
            "sizing": {"kind": "fixed_fraction", "fraction": 0.5},
            "rules": [{"kind": "drawdown_halt", "max_drawdown": 0.5}],
            "max_holding_bars": 4,
        },
        execution={"allow_short": True, "slippage_bps": 5, "fee_bps": 10},
        monitoring=[
            {
                "kind": "rolling_auc",
                "window": 10,
                "min_samples": 10,
                "warning_below": 0.55,
                "critical_below": 0.45,
                "hysteresis": 0,
            }
        ],
    )
    if model == "sklearn":
        doc["model"] = {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "label": {"horizon": 2},
            "walk_forward": {"train_window": 30, "retrain_every": 10},
        }
        doc["signal"] = {"kind": "threshold", "threshold": 0.05, "min_interval": 2}
    return doc


def _until(events: list[JournalEvent], bar: int) -> list[tuple[Any, ...]]:
    """The journal up to and including bar ``bar``'s decisions (without run rows)."""
    kept = []
    for e in events:
        if e.type in RUN_KINDS:
            continue
        if e.bar > bar:
            break
        kept.append((e.bar, e.ts, e.type, e.correlation_id, e.payload))
    return kept


@pytest.mark.parametrize("model", ["precomputed", "sklearn"])
def test_changing_the_future_does_not_change_the_past(tmp_path: Path, model: str) -> None:
    n = 90
    close, open_, p = _random_market(n, seed=11)
    write_bars(tmp_path, close, p, open_=open_)
    path = write_strategy(tmp_path, _lookahead_doc(model))
    base = run_file(path, tmp_path / "base")
    assert len(base.orders) >= 6 and base.events("health") and base.events("fill")

    for cut in (45, 62, 78):  # the sklearn model's first fold predicts from bar 37
        folder = tmp_path / f"cut{cut}"
        folder.mkdir()
        other_close, other_open, other_p = _random_market(n, seed=100 + cut)
        scale = close[cut] / other_close[cut]  # continue the path from bar cut's close
        changed_close = np.r_[close[: cut + 1], other_close[cut + 1 :] * scale]
        changed_open = np.r_[open_[: cut + 1], other_open[cut + 1 :] * scale]
        changed_p = np.r_[p[: cut + 1], other_p[cut + 1 :]]
        write_bars(folder, changed_close, changed_p, open_=changed_open)
        changed = run_file(write_strategy(folder, _lookahead_doc(model)), folder / "run")

        assert _until(changed.journal, cut) == _until(base.journal, cut), cut
        pd.testing.assert_frame_equal(changed.equity[: cut + 1], base.equity[: cut + 1])
        # an order decided at bar cut is in the past; its fill at cut + 1's open is not
        assert [o for o in changed.orders if o[0] <= cut] == [o for o in base.orders if o[0] <= cut]
        assert [f for f in changed.fills if f[0] <= cut] == [f for f in base.fills if f[0] <= cut]
        assert any(o[0] <= cut for o in base.orders), cut
        # the change did reach the run: the future differs
        assert not changed.equity[cut + 1 :].equals(base.equity[cut + 1 :]), cut


def _digest_and_files(run: Run) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    files = {
        name: (run.dir / name).read_bytes()
        for name in ("strategy.yaml", "equity.csv", "orders.csv", "fills.csv", "trades.csv")
    }
    metrics = {k: v for k, v in run.metrics.items() if k != "run_dir"}
    return journal_digest(run.dir / "journal.sqlite"), files, metrics


def test_two_runs_of_the_same_file_are_identical(tmp_path: Path) -> None:
    close, open_, p = _random_market(120, seed=5)
    write_bars(tmp_path, close, p, open_=open_)
    path = write_strategy(tmp_path, _lookahead_doc("precomputed"))

    first = run_file(path, tmp_path / "a")
    second = run_file(path, tmp_path / "b")

    assert first.metrics["orders"] >= 5
    assert _digest_and_files(first) == _digest_and_files(second)


def test_two_runs_of_a_seeded_synthetic_forest_are_identical(tmp_path: Path) -> None:
    doc = _lookahead_doc("sklearn")
    doc["seed"] = 3
    doc["data"] = {"kind": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "bars": 400}
    doc["model"] = {
        "kind": "sklearn",
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 10, "max_depth": 3, "n_jobs": 1},
        "label": {"horizon": 2},
        "walk_forward": {"train_window": 100, "retrain_every": 100},
    }
    path = write_strategy(tmp_path, doc)

    first = run_file(path, tmp_path / "a")
    second = run_file(path, tmp_path / "b")
    reseeded = run_file(path, tmp_path / "c", overrides=["seed=4"])

    assert first.metrics["orders"] >= 5 and first.metrics["model_trainings"] == 3
    assert _digest_and_files(first) == _digest_and_files(second)
    # the digest covers the content: another seed is another market and another forest
    assert journal_digest(reseeded.dir / "journal.sqlite") != _digest_and_files(first)[0]


# --- accounting of the default strategy --------------------------------------------------


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """strategies/btc_rf.yaml, shortened to 3,000 bars with a walk-forward that fits them."""
    out = tmp_path_factory.mktemp("btc_rf") / "run"
    overrides = [
        "data.bars=3000",
        "model.walk_forward.train_window=1000",
        "model.walk_forward.retrain_every=500",
        "model.params.n_jobs=1",
    ]
    return run_file(DEFAULT_STRATEGY, out, overrides)


def test_default_strategy_equity_is_cash_plus_position_at_close(default_run: Run) -> None:
    equity = default_run.equity
    assert len(equity) == 3000
    np.testing.assert_allclose(
        equity["equity"], equity["cash"] + equity["position"] * equity["close"], rtol=1e-12
    )
    initial = default_run.outcome.result.portfolio.initial_cash
    peak = np.maximum.accumulate(np.maximum(equity["equity"], initial))
    np.testing.assert_allclose(equity["drawdown"], 1 - equity["equity"] / peak, atol=1e-12)
    assert default_run.metrics["max_drawdown"] == pytest.approx(equity["drawdown"].max())


def test_default_strategy_positions_and_cash_follow_the_fills(default_run: Run) -> None:
    equity, fills = default_run.equity, default_run.csv("fills.csv")
    initial = default_run.outcome.result.portfolio.initial_cash
    signed = fills["side"] * fills["quantity"]
    flow = signed * fills["price"] + fills["fee"]
    by_bar = pd.DataFrame({"bar": fills["bar"], "qty": signed, "flow": flow}).groupby("bar").sum()
    per_bar = by_bar.reindex(range(len(equity)), fill_value=0.0)
    np.testing.assert_allclose(equity["position"], per_bar["qty"].cumsum(), atol=1e-9)
    np.testing.assert_allclose(equity["cash"], initial - per_bar["flow"].cumsum(), rtol=1e-12)


def test_default_strategy_fills_match_their_orders_and_the_venue(default_run: Run) -> None:
    orders = default_run.csv("orders.csv").set_index("id")
    fills = default_run.csv("fills.csv")
    opens = default_run.outcome.result.bars.frame["open"].to_numpy()
    metrics = default_run.metrics
    assert metrics["fills"] == len(fills) >= 10
    assert metrics["orders"] == len(orders)
    assert metrics["fees"] == pytest.approx(fills["fee"].sum(), rel=1e-12)
    assert metrics["unfilled_orders"] == len(orders) - len(fills)
    for fill in fills.itertuples():
        order = orders.loc[fill.order_id]
        assert (fill.side, fill.quantity) == (order.side, order.quantity)
        assert fill.bar == order.bar + 1  # fill: next_open
        assert fill.price == pytest.approx(opens[fill.bar] * (1 + fill.side * 0.0005), rel=1e-12)
        assert fill.fee == pytest.approx(fill.quantity * fill.price * 0.001, rel=1e-12)
    final = default_run.equity.iloc[-1]
    assert metrics["final_equity"] == pytest.approx(final["equity"], rel=1e-12)
    assert metrics["open_position"] == pytest.approx(final["position"], rel=1e-12)


def test_default_strategy_trades_are_the_round_trips_of_the_fills(default_run: Run) -> None:
    fills = default_run.csv("fills.csv")
    trades = default_run.csv("trades.csv")
    reasons = dict(default_run.csv("orders.csv")[["id", "reason"]].itertuples(index=False))
    rebuilt = []
    position, current = 0.0, None
    for fill in fills.itertuples():
        signed = fill.side * fill.quantity
        if position == 0.0:
            assert fill.side == 1  # long-only: every round trip opens with a buy
            current = {"entry_bar": fill.bar, "entry_price": fill.price, "quantity": fill.quantity}
            current["fees"] = fill.fee
            current["entry_time"] = fill.timestamp
        else:
            assert current is not None and fill.side == -1
            assert fill.quantity == pytest.approx(position, rel=1e-12)  # exits close it all
            current["fees"] += fill.fee
            gross = fill.quantity * (fill.price - current["entry_price"])
            pnl = gross - current["fees"]
            rebuilt.append(
                {
                    "symbol": fill.symbol,  # the market of every row
                    "direction": 1,
                    "side": "long",
                    "entry_bar": current["entry_bar"],
                    "entry_time": current["entry_time"],
                    "exit_bar": fill.bar,
                    "exit_time": fill.timestamp,
                    "holding_bars": fill.bar - current["entry_bar"],
                    "quantity": current["quantity"],
                    "entry_price": current["entry_price"],
                    "exit_price": fill.price,
                    "fees": current["fees"],
                    "pnl": pnl,
                    "return": pnl / (current["quantity"] * current["entry_price"]),
                    "exit_reason": reasons[fill.order_id],  # the closing order's reason
                }
            )
        position = 0.0 if abs(position + signed) < 1e-9 else position + signed
    expected = pd.DataFrame(rebuilt, columns=list(trades.columns))
    assert len(trades) == default_run.metrics["trades"] >= 5
    pd.testing.assert_frame_equal(
        trades, expected, check_exact=False, rtol=1e-12, check_dtype=False
    )
    assert set(trades["exit_reason"]) <= {"EXIT_SIGNAL", "EXIT_MAX_HOLDING", "EXIT_HALT"}
    assert default_run.metrics["win_rate"] == pytest.approx((trades["pnl"] > 0).mean())
