"""A paper run over a universe of three markets against the emulator, one tick per bar of
the common clock: it journals the per-bar backtest's decisions over the same bars, and a
restart rebuilds every symbol's position from the journal without deciding an order twice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.live.live_emulated import EmulatedRun, crash, make_bars, rows, tick_until
from tradeloom.backtest.pipeline import run_backtest
from tradeloom.domain import Bars, RunInfo, Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RunIdentity, open_journal, read_rows
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.schemas import load_strategy
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
HISTORY = 100
SHORT = 260
"""Bars of the runs compared with a backtest: 160 live bars, in which every market trades
and the walk-forward model is refitted four times."""
KINDS = ("signal", "risk_decision", "rejection", "order", "fill", "order_cancelled")

STRATEGY = """\
name: live_universe
seed: 3
data:
  kind: ccxt
  exchange: binance
  symbols: [BTC/USDT, ETH/USDT, SOL/USDT]
  timeframe: 1h
  start: "2024-01-01"
  cache_dir: cache
  api_key: ${EMU_API_KEY}
  secret: ${EMU_API_SECRET}
features:
  - {kind: log_return, period: 1}
  - {kind: log_return, period: 6}
  - {kind: rsi, window: 14}
  - {kind: cross_rank, of: log_return_6}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 15, max_depth: 4, min_samples_leaf: 10, n_jobs: 1}
  label: {horizon: 3}
  walk_forward: {train_window: 120, retrain_every: 40}
  pooling: POOLING
signal: {kind: threshold, threshold: 0.04, min_interval: 2, top_k: 2}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.3}
execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}
outputs: {report: false}
live:
  stream: poll
  close_delay_seconds: 0
  capital: 50000
  stale_after_bars: null
"""
"""The universe of the live universe tests. No report.html (as `live_emulated.STRATEGY`):
only test_universe_live's uninterrupted run reads it, which trades `STRATEGY_REPORTED`."""

STRATEGY_REPORTED = STRATEGY.replace("outputs: {report: false}\n", "")
"""`STRATEGY` drawing its report.html, as a user's run does."""


@contextmanager
def universe_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pooling: str = "pooled", bars: int = 420
) -> Iterator[EmulatedRun]:
    """An emulator playing three markets of ``bars`` bars from bar ``HISTORY``, the strategy
    pointed at it."""
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    monkeypatch.chdir(tmp_path)
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(STRATEGY.replace("POOLING", pooling))
    markets = {symbol: make_bars(n=bars, seed=5 + k) for k, symbol in enumerate(SYMBOLS)}
    with (
        ExchangeEmulator(
            markets, {"USDT": Decimal("100000")}, start=HISTORY, include_open_kline=False
        ) as emu,
        use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})),
        use_pro_client_factory("binance", None),
    ):
        run = EmulatedRun(emu, strategy, markets[SYMBOLS[0]])
        run.markets = markets  # type: ignore[attr-defined]
        yield run


class _Frames:
    """A data source of fixed bars: the universe the paper run saw."""

    def __init__(self, markets: dict[str, pd.DataFrame]) -> None:
        bars = []
        for symbol, frame in markets.items():
            frame = frame.copy()
            frame.index = frame.index.as_unit("ns")
            bars.append(Bars(frame, symbol, "1h", 3600))
        self.universe = Universe(tuple(bars), bars[0].frame.index)

    def load(self) -> Bars:
        return self.universe.bars[0]

    def load_universe(self) -> Universe:
        return self.universe


def backtest(run: EmulatedRun, tmp_path: Path) -> Path:
    """Backtest the strategy over the emulator's bars with the per-bar driver."""
    config, plugins = load_strategy(run.strategy, ())
    pipeline = replace(build_pipeline(config), data=_Frames(run.markets))  # type: ignore[attr-defined,arg-type]
    path = tmp_path / "backtest.sqlite"
    journal = open_journal(path, RunIdentity("live_universe", "bt", "backtest"))
    info = RunInfo("bt", "live_universe", "backtest", str(tmp_path))
    run_backtest(pipeline, Recorder(journal, plugins.hook, info), "bt", driver="per_bar")
    journal.close()
    return path


def strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "order_id")}  # client ids differ


def symbols_of(path: Path, kind: str) -> list[str]:
    return [r.symbol for r in read_rows(path, [kind])]


@pytest.mark.parametrize("pooling", ["pooled", "per_symbol"])
def test_a_paper_universe_journals_the_per_bar_backtests_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pooling: str
) -> None:
    with universe_run(tmp_path, monkeypatch, pooling, bars=SHORT) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
        assert run.emulator.exchange.orders() == []  # paper sends nothing
        paper = tmp_path / "paper" / "journal.sqlite"
        reference = backtest(run, tmp_path)
    for kind in KINDS:
        mine = [strip(r) for r in rows(paper, kind)]
        theirs = [strip(r) for r in rows(reference, kind) if r["bar"] >= HISTORY]
        assert mine == theirs, kind
        assert symbols_of(paper, kind) == [
            s
            for s, r in zip(symbols_of(reference, kind), rows(reference, kind), strict=True)
            if r["bar"] >= HISTORY
        ], kind
    fills = rows(paper, "fill")
    assert len(fills) > 5
    assert len(set(symbols_of(paper, "fill"))) == 3  # every market traded
    assert len(rows(paper, "live_bar")) == 3 * (len(run.bars) - HISTORY)
    assert len([r for r in rows(paper, "model_trained") if r["bar"] > HISTORY]) >= 3  # refits
    ids = [r["id"] for r in rows(paper, "order")]
    assert len(set(ids)) == len(ids)  # one counter across the symbols


@pytest.mark.slow
def test_a_restarted_paper_universe_rebuilds_every_symbols_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with universe_run(tmp_path, monkeypatch, bars=SHORT) as run:
        straight = run.runner(tmp_path / "straight", mode="paper")
        straight.start()
        killed = run.runner(tmp_path / "killed", mode="paper")
        killed.start()
        while run.emulator.exchange.position < 200:
            run.emulator.advance()
            straight.tick()
            killed.tick()
        held = [killed.session_or_fail.engine.portfolio.position_of(s) for s in range(3)]
        assert sum(1 for q in held if q != 0.0) >= 1
        crash(killed)
        again = run.runner(tmp_path / "killed", mode="paper")
        again.start()
        book = again.session_or_fail.engine.portfolio
        assert [book.position_of(s) for s in range(3)] == held
        assert again.first_live_bar == HISTORY
        while run.emulator.exchange.position < len(run.bars):
            run.emulator.advance()
            straight.tick()
            again.tick()
        straight.stop("test over")
        again.stop("test over")
    one, two = tmp_path / "straight" / "journal.sqlite", tmp_path / "killed" / "journal.sqlite"
    for kind in KINDS:
        assert [strip(r) for r in rows(two, kind)] == [strip(r) for r in rows(one, kind)], kind
    ids = [r["id"] for r in rows(two, "order")]
    assert len(set(ids)) == len(ids)
    assert len(rows(two, "restarted")) == 1
    assert [r for r in rows(two, "order") if r["bar"] >= 200]  # it traded after the restart
    assert [r for r in rows(two, "model_trained") if r["bar"] >= 200]  # and refitted


@pytest.mark.slow  # child processes
def test_a_paper_universe_killed_with_kill_9_resumes_with_the_same_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real CLI in a child process, killed at its third order before it is committed,
    then started again with the same command: every order once, the journal continuous,
    every symbol's decisions and fills those of the backtest over the same bars."""
    from tests.live.test_crash import CrashRig

    start = HISTORY  # before the first prediction: the backtest has traded nothing yet

    markets = {symbol: make_bars(n=200, seed=5 + k) for k, symbol in enumerate(SYMBOLS)}
    text = STRATEGY.replace("POOLING", "pooled").replace(
        "seed: 3\n", "seed: 3\nplugins: [tests.live.live_child]\n"
    )
    text = text.replace("cache_dir: cache", f"cache_dir: {tmp_path / 'cache'}")
    text = text.replace("  stream: poll\n", "  stream: poll\n  poll_seconds: 0.02\n")
    with ExchangeEmulator(
        markets, {"USDT": Decimal("100000")}, start=start, include_open_kline=False
    ) as emu:
        rig = CrashRig(emu, tmp_path, 10_000)
        rig.strategy.write_text(text)
        rig.args = ("--mode", "paper")
        rig.started_kinds = ("warm_up", "restarted")
        rig.polls_per_tick = len(SYMBOLS)  # else a bar played mid-tick is absent for some
        try:
            rig.launch(crash="order:3")
            while rig.child is not None and rig.advance() == "processed":
                pass
            rig.reap(-9)
            killed_at = max(r["bar"] for r in rig.rows("live_bar"))
            rig.launch()
            rig.advance_to(len(markets[SYMBOLS[0]]))
            rig.stop()
            assert "; positions BTC/USDT " in rig.log_tail()  # its last line: each symbol's
        finally:
            rig.close()
    journal = rig.journal
    ids = rig.order_ids()
    assert len(ids) >= 3 and len(set(ids)) == len(ids)  # no order decided twice
    decided = [
        (r["bar"], s)
        for r, s in zip(rows(journal, "order"), symbols_of(journal, "order"), strict=True)
    ]
    assert len(set(decided)) == len(decided)  # no symbol ordered twice at a bar
    assert len(rows(journal, "restarted")) == 1
    assert killed_at < len(markets[SYMBOLS[0]]) - 1  # it died mid-run
    assert len(set(symbols_of(journal, "live_bar"))) == 3
    seqs = [row.seq for row in read_rows(journal)]
    assert seqs == list(range(1, len(seqs) + 1))  # the journal is continuous
    run = EmulatedRun(emu, rig.strategy, markets[SYMBOLS[0]])
    run.markets = markets  # type: ignore[attr-defined]
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    reference = backtest(run, tmp_path)
    for kind in KINDS:  # the decisions of a run never killed, each symbol's fills included
        mine = [
            (strip(r), s)
            for r, s in zip(rows(journal, kind), symbols_of(journal, kind), strict=True)
        ]
        theirs = [
            (strip(r), s)
            for r, s in zip(rows(reference, kind), symbols_of(reference, kind), strict=True)
            if r["bar"] >= start
        ]
        assert mine == theirs, kind


def test_status_of_a_running_paper_universe_shows_every_symbols_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tradeloom.cli.main import main
    from tradeloom.core import layout as L

    with universe_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            book = runner.session_or_fail.engine.portfolio
            while sum(1 for s in range(3) if book.position_of(s) != 0.0) < 2:
                run.emulator.advance()
                runner.tick()
            capsys.readouterr()
            assert main(["status", str(tmp_path / "paper"), "--json"]) == 0
            shown = json.loads(capsys.readouterr().out)
            engine = runner.session_or_fail.engine
            held = {s: book.position_of(k) for k, s in enumerate(SYMBOLS) if book.position_of(k)}
            assert {p["symbol"]: p["quantity"] for p in shown["positions"]} == pytest.approx(held)
            for position in shown["positions"]:  # each marked at its own last close
                k = SYMBOLS.index(position["symbol"])
                assert (
                    position["mark"]
                    == runner.session_or_fail.history.prices(  # type: ignore[attr-defined]
                        len(runner.session_or_fail.history) - 1
                    )[k, 3]
                )
            assert shown["symbol"] == ", ".join(SYMBOLS)
            assert shown["process"] == "running"
            assert shown["cash"] == pytest.approx(book.cash, rel=1e-9)
            assert shown["equity"] == pytest.approx(float(engine.state.acct[L.A_EQUITY]), rel=1e-9)
            assert main(["status", str(tmp_path / "paper")]) == 0
            text = capsys.readouterr().out
            assert all(symbol in text for symbol in held)
        finally:
            runner.stop("test over")


def test_a_symbol_whose_bar_never_comes_has_none_at_that_tick_as_in_the_backtest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOL/USDT publishes nothing for bars 150-154 and ETH/USDT nothing at bar 200: at those
    ticks they get no bar (no signal, no fill), as the backtest over the same gaps has it."""
    gaps = {"SOL/USDT": range(150, 155), "ETH/USDT": range(200, 201)}
    with universe_run(tmp_path, monkeypatch, bars=SHORT) as run:
        for symbol, bars in gaps.items():
            run.emulator.exchange.withhold(symbol, bars)
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
        for symbol, bars in gaps.items():  # the backtest's data: the bars the exchange had
            frame = run.markets[symbol]  # type: ignore[attr-defined]
            run.markets[symbol] = frame.drop(frame.index[list(bars)])  # type: ignore[attr-defined]
        paper = tmp_path / "paper" / "journal.sqlite"
        reference = backtest(run, tmp_path)
    for kind in KINDS:
        mine = [
            (strip(r), s) for r, s in zip(rows(paper, kind), symbols_of(paper, kind), strict=True)
        ]
        theirs = [
            (strip(r), s)
            for r, s in zip(rows(reference, kind), symbols_of(reference, kind), strict=True)
            if r["bar"] >= HISTORY
        ]
        assert mine == theirs, kind
    absent = [(r.bar, r.symbol) for r in read_rows(paper, ["symbol_absent"])]
    assert absent == [(150, "SOL/USDT"), (200, "ETH/USDT")]  # once per stretch
    bars = [(r.bar, r.symbol) for r in read_rows(paper, ["live_bar"])]
    assert all((b, s) not in bars for s, gap in gaps.items() for b in gap)
    signalled = set(
        zip((r["bar"] for r in rows(paper, "signal")), symbols_of(paper, "signal"), strict=True)
    )
    assert not {(b, s) for s, gap in gaps.items() for b in gap} & signalled


def test_a_symbol_the_exchange_does_not_answer_for_stalls_the_tick_not_its_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ETH/USDT's request fails: no bar runs at that tick (the symbols not asked would read
    as missing); the next tick asks every symbol again and runs the bar with all three."""
    from tradeloom.testing import ServerError

    with universe_run(tmp_path, monkeypatch) as run:
        text = run.strategy.read_text().replace(
            "  cache_dir: cache\n", "  cache_dir: cache\n  retry: {max_attempts: 1}\n"
        )
        run.strategy.write_text(text)
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            run.emulator.advance()
            seen = len(run.emulator.requests("GET /api/v3/klines"))
            run.emulator.faults.on_call("GET /api/v3/klines", seen + 2, ServerError(503))
            assert runner.tick() == 0
            assert runner.tick() == 1
        finally:
            runner.stop("test over")
    journal = tmp_path / "paper" / "journal.sqlite"
    assert [r["operation"] for r in rows(journal, "venue_unreachable")] == ["closed_bars"]
    assert symbols_of(journal, "live_bar") == list(SYMBOLS)
    assert rows(journal, "symbol_absent") == []


def test_the_kill_switch_halts_every_symbol_of_a_paper_universe_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeloom.engine.control import request_kill, request_resume

    run_dir = tmp_path / "paper"
    with universe_run(tmp_path, monkeypatch, bars=SHORT) as run:
        runner = run.runner(run_dir, mode="paper")
        runner.inbox.install_signal_handlers()  # the request wakes the run with SIGUSR2
        runner.start()
        while run.emulator.exchange.position < 150:
            run.emulator.advance()
            runner.tick()
        request_kill(run_dir, "operator: stop everything")
        runner.tick()
        assert runner.session_or_fail.state == "HALTED"
        killed_at = len(runner.session_or_fail.history) - 1
        for _ in range(20):
            run.emulator.advance()
            runner.tick()
        crash(runner)
        runner.inbox.restore_signal_handlers()
        again = run.runner(run_dir, mode="paper")
        again.inbox.install_signal_handlers()
        again.start()  # the replay applies the journaled kill where it happened
        assert again.session_or_fail.state == "HALTED"
        request_resume(run_dir, "operator: all clear")
        again.tick()
        assert again.session_or_fail.state == "ACTIVE"
        while run.emulator.exchange.position < len(run.bars):
            run.emulator.advance()
            again.tick()
        again.stop("test over")
        again.inbox.restore_signal_handlers()
    journal = run_dir / "journal.sqlite"
    states = [(r["state"], r["code"]) for r in rows(journal, "trading_state")]
    assert states == [("HALTED", "KILL_SWITCH"), ("ACTIVE", "RESUME")]
    resumed = rows(journal, "trading_state")[1]["bar"]
    orders = rows(journal, "order")
    assert not [o for o in orders if killed_at < o["bar"] <= resumed]  # no symbol ordered
    assert {
        s for o, s in zip(orders, symbols_of(journal, "order"), strict=True) if o["bar"] > resumed
    }
    halted = [r for r in rows(journal, "rejection") if r["code"] == "HALTED"]
    assert len(set(symbols_of(journal, "rejection"))) >= 2 and halted
