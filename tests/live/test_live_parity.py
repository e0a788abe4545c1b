"""A history replayed through the live driver against the emulator makes the backtest's
decisions: the same signals, the same orders, fills at the same bars and prices."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import HISTORY, STRATEGY, EmulatedRun, emulated_run, rows, tick_until
from tradeloom.backtest.pipeline import run_backtest
from tradeloom.domain import Bars, RunInfo, Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RunIdentity, open_journal
from tradeloom.schemas import load_strategy


class _Frame:
    """A data source of fixed bars (the backtest of the bars the live run saw)."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars

    def load_universe(self) -> Universe:
        return Universe((self.bars,), self.bars.frame.index)


def backtest(run: EmulatedRun, tmp_path: Path) -> Path:
    """Backtest the strategy over the emulator's bars; return its journal."""
    config, plugins = load_strategy(run.strategy, ())
    pipeline = build_pipeline(config)
    frame = run.bars.copy()
    frame.index = frame.index.as_unit("ns")
    bars = Bars(frame, "BTC/USDT", "1h", 3600)
    pipeline = replace(pipeline, data=_Frame(bars))  # type: ignore[arg-type]
    path = tmp_path / "backtest.sqlite"
    journal = open_journal(path, RunIdentity("live_rf", "bt", "backtest"))
    recorder = Recorder(journal, plugins.hook, RunInfo("bt", "live_rf", "backtest", str(tmp_path)))
    run_backtest(pipeline, recorder, "live_rf-bt", driver="per_bar")
    journal.close()
    return path


def test_live_run_against_the_emulator_makes_the_backtests_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "live")
        runner.start()
        try:
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
        assert run.emulator.errors == []
        live = tmp_path / "live" / "journal.sqlite"
        reference = backtest(run, tmp_path)
        venue_orders = run.emulator.exchange.orders()

    def signals(path: Path) -> list[tuple[int, int, float]]:
        return [(r["bar"], r["direction"], r["probability"]) for r in rows(path, "signal")]

    live_signals = signals(live)
    assert len(live_signals) > 20
    assert live_signals == [s for s in signals(reference) if s[0] >= HISTORY]

    def orders(path: Path) -> list[tuple[int, int, str, float]]:
        return [(r["bar"], r["side"], r["reason"], r["quantity"]) for r in rows(path, "order")]

    live_orders, reference_orders = orders(live), orders(reference)
    assert len(live_orders) > 5
    assert [o[:3] for o in live_orders] == [o[:3] for o in reference_orders]
    for mine, theirs in zip(live_orders, reference_orders, strict=True):
        # rounded to the market's 0.00001 lot; a buy's fee is paid in BTC live
        assert math.isclose(mine[3], theirs[3], rel_tol=3e-3, abs_tol=2e-5)

    live_fills = rows(live, "fill")
    reference_fills = rows(reference, "fill")
    assert [(f["bar"], f["side"], f["price"]) for f in live_fills] == [
        (f["bar"], f["side"], f["price"]) for f in reference_fills
    ]
    # every order went to the venue once, under its client order id
    sent = [r["id"] for r in rows(live, "order_sent")]
    assert sorted(sent) == sorted(o.client_order_id for o in venue_orders)
    assert len(set(sent)) == len(sent) == len(live_orders)
    assert all(len(c) <= 36 for c in sent)


def test_paper_run_reproduces_the_backtest_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
        paper = tmp_path / "paper" / "journal.sqlite"
        reference = backtest(run, tmp_path)
        assert run.emulator.exchange.orders() == []  # paper sends nothing

    def strip(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k not in ("id", "order_id")}  # client ids differ

    for kind in ("signal", "risk_decision", "rejection", "order", "fill", "order_cancelled"):
        mine = [strip(r) for r in rows(paper, kind)]
        theirs = [strip(r) for r in rows(reference, kind) if r["bar"] >= HISTORY]
        assert mine == theirs, kind
    assert len(rows(paper, "fill")) > 5


def test_a_paper_run_refuses_what_its_backtest_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One risk engine in every mode: binding risk.limits journal the same refusals."""
    monkeypatch.chdir(tmp_path)
    limits = (
        "  limits: {max_position_quantity: 1.3, max_orders_per_minute: 1, "
        "daily_loss_limit: 0.003}\n"
    )
    text = STRATEGY.replace(
        "  sizing: {kind: fixed_fraction, fraction: 0.5}\n",
        "  sizing: {kind: fixed_fraction, fraction: 0.5}\n" + limits + "  stop_loss: 0.004\n",
    )
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
        paper = tmp_path / "paper" / "journal.sqlite"
        reference = backtest(run, tmp_path)

    def strip(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k not in ("id", "order_id")}  # client ids differ

    refused = rows(paper, "rejection")
    codes = {r["code"] for r in refused}
    # the limits bind, each of them, and not always: the run still trades
    assert {"MAX_POSITION_QUANTITY", "ORDER_RATE", "TRADING_REDUCING"} <= codes, codes
    assert len(rows(paper, "fill")) > 5
    kinds = ("signal", "risk_decision", "rejection", "order", "fill", "order_cancelled")
    for kind in (*kinds, "trading_state", "halt"):
        # every field of every row, the refusals' codes, messages and values included
        mine = [strip(r) for r in rows(paper, kind)]
        theirs = [strip(r) for r in rows(reference, kind) if r["bar"] >= HISTORY]
        assert mine == theirs, kind
    states = {r["code"] for r in rows(paper, "trading_state")}
    assert {"DAILY_LOSS", "DAY_ROLLOVER"} <= states
