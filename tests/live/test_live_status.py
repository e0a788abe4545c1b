"""What a paper run shows while it trades: ``tradeloom status`` from its journal (during the
run, after a kill switch, after it stopped), one line per bar, and its files rewritten
whole after every bar."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.live.live_emulated import STRATEGY_REPORTED, EmulatedRun, emulated_run
from tradeloom.cli.main import main
from tradeloom.journal import read_frames
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.live.tick.services import Observer


def status(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``tradeloom status RUN_DIR --json`` through the command line."""
    capsys.readouterr()  # the run's own output so far
    code = main(["status", str(run_dir), "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    return dict(json.loads(out))


def journal_says(run_dir: Path) -> dict[str, Any]:
    """Position, cash flow and open orders from the journal's own rows, summed here."""
    f = read_frames(run_dir / "journal.sqlite", ["order", "fill", "order_cancelled", "live_bar"])
    fills, orders = f["fill"], f["order"]
    position = float((fills["side"] * fills["quantity"]).sum())
    flow = float((fills["side"] * fills["quantity"] * fills["price"] + fills["fee"]).sum())
    done = set(fills["order_id"]) | set(f["order_cancelled"]["order_id"])
    return {
        "position": position,
        "flow": flow,
        "open": sorted(set(orders["id"]) - done),
        "last_bar": int(f["live_bar"]["bar"].iloc[-1]),
        "last_close": float(f["live_bar"]["close"].iloc[-1]),
    }


def held(st: dict[str, Any]) -> float:
    return sum(p["quantity"] for p in st["positions"])


def check_against_the_run(st: dict[str, Any], runner: LiveRunner) -> None:
    """The status is what the journal says and what the running engine holds."""
    truth = journal_says(runner.run_dir)
    session = runner.session_or_fail
    book = session.engine.portfolio
    assert st["last_bar"] == truth["last_bar"] == len(session.history) - 1
    assert st["last_close"] == truth["last_close"]
    assert held(st) == pytest.approx(truth["position"], abs=1e-12)
    assert held(st) == pytest.approx(book.position, abs=1e-9)
    assert st["cash"] == pytest.approx(st["capital"] - truth["flow"], rel=1e-12)
    assert st["cash"] == pytest.approx(book.cash, rel=1e-9)
    assert st["equity"] == pytest.approx(book.equity(truth["last_close"]), rel=1e-9)
    assert [o["id"] for o in st["open_orders"]] == truth["open"]
    assert st["state"] == session.state


def check_files(run_dir: Path, runner: LiveRunner) -> None:
    """metrics.json and equity.csv parse, cover every live bar, end at the engine's equity."""
    assert runner.outputs is not None
    runner.outputs.wait()  # written on the writer's thread
    metrics = json.loads((run_dir / "metrics.json").read_text())
    equity = pd.read_csv(run_dir / "equity.csv")
    bars = len(runner.session_or_fail.history) - runner.first_live_bar
    assert len(equity) == metrics["bars"] == bars
    close = float(equity["close"].iloc[-1])
    assert metrics["final_equity"] == pytest.approx(
        runner.session_or_fail.engine.portfolio.equity(close), rel=1e-12
    )
    assert float(equity["equity"].iloc[-1]) == metrics["final_equity"]
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def drive_until_traded(
    run: EmulatedRun, runner: LiveRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tick bar by bar, checking status and files after each, until orders were open
    and a position was held on some bars."""
    run_dir = runner.run_dir
    seen = {"open": 0, "position": 0}
    while run.emulator.exchange.position < len(run.bars) and min(seen.values()) < 3:
        run.emulator.advance()
        runner.tick()
        st = status(run_dir, capsys)
        assert (st["process"], st["pid"], st["mode"]) == ("running", os.getpid(), "paper")
        check_against_the_run(st, runner)
        check_files(run_dir, runner)
        # the emulator's clock is the run's: its bars are of 2024, and none is late
        assert (st["stale"], st["last_bar_age_seconds"]) == (False, 0.0), st["staleness"]
        assert st["staleness"] == "fresh (simulated clock): the next bar closes in 60 min"
        seen["open"] += bool(st["open_orders"])
        seen["position"] += bool(st["positions"])
    assert min(seen.values()) >= 3, seen


def test_status_follows_a_paper_run_while_it_trades_and_after_it_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch, text=STRATEGY_REPORTED) as run:
        runner = run.runner(run_dir, "paper", echo=lines.append)
        runner.start()
        drive_until_traded(run, runner, capsys)
        (run_dir / "KILL").touch()  # the operator's kill switch
        runner.tick()
        halted = status(run_dir, capsys)
        assert (halted["state"], halted["state_code"]) == ("HALTED", "KILL_SWITCH")
        assert halted["open_orders"] == []
        runner.stop("done")
        last = runner.session_or_fail.history.bar(len(runner.session_or_fail.history) - 1)
    # one line per bar, naming it, its close, and the state
    assert len(lines) == runner.bars_processed
    first = runner.first_live_bar
    for i, line in enumerate(lines):
        assert f" bar {first + i} close " in line, line
        assert "| position " in line and "| equity " in line, line
    assert lines[-1].endswith(" | ACTIVE") or "HALTED" in lines[-1]
    assert any("decision accepted order buy" in line for line in lines), lines
    after = status(run_dir, capsys)
    assert after["process"] == "stopped" and after["pid"] is None
    assert after["process_detail"].startswith("done (after ")
    # a stopped run waits for no bar: nothing is overdue, on any clock
    close = after["last_bar_close_time"]
    assert (after["stale"], after["staleness"]) == (
        None,
        f"the run stopped (simulated clock); its last bar closed at {close}",
    )
    assert (after["last_bar"], after["last_close"]) == (last.index, last.close)
    assert held(after) == held(halted) and after["equity"] == halted["equity"]
    assert (run_dir / "report.html").stat().st_size > 10_000  # drawn at the stop
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "state      HALTED (KILL_SWITCH: " in text
    assert f"last bar   #{last.index} {last.timestamp:%Y-%m-%dT%H:%M:%SZ}" in text
    assert "process    stopped (done (after " in text


def test_a_refresh_that_fails_leaves_the_old_files_and_the_run_trades_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch, text=STRATEGY_REPORTED) as run:
        runner = run.runner(run_dir, "paper")
        runner.start()
        for _ in range(3):
            run.emulator.advance()
            runner.tick()
        outputs = runner.outputs
        assert outputs is not None
        outputs.wait()
        before = (run_dir / "equity.csv").read_bytes()
        real = pd.DataFrame.to_csv

        def half_then_fail(frame: pd.DataFrame, path: Any = None, **kw: Any) -> Any:
            path.write("timestamp,cl")  # half a file, then the disk fills up
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
        run.emulator.advance()
        assert runner.tick() == 1  # the bar is traded and journaled all the same
        outputs.wait()
        assert (run_dir / "equity.csv").read_bytes() == before
        assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
        monkeypatch.setattr(pd.DataFrame, "to_csv", real)
        run.emulator.advance()
        runner.tick()
        check_files(run_dir, runner)
        runner.stop("done")
    assert status(run_dir, capsys)["last_bar"] == runner.first_live_bar + 4


class _WatchedLock:
    """A lock that tells when a thread other than the holder starts to wait for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waited = threading.Event()
        self.holder: int | None = None

    def __enter__(self) -> None:
        if self.holder is not None and self.holder != threading.get_ident():
            self.waited.set()
        self.lock.acquire()
        self.holder = threading.get_ident()

    def __exit__(self, *exc: object) -> None:
        self.holder = None
        self.lock.release()

    def locked(self) -> bool:
        return self.lock.locked()


def test_the_files_are_snapshot_between_ticks_never_during_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's thread copies the run under the lock a tick (and the stop) holds: a
    snapshot is of the run between two ticks, and a tick does not wait for it."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch, text=STRATEGY_REPORTED) as run:
        runner = run.runner(run_dir, "paper")
        outputs = runner.outputs
        assert outputs is not None
        watched = _WatchedLock()
        outputs.lock = watched  # type: ignore[assignment]
        runner.start()
        held_in_tick: list[bool] = []

        class HeldInTick(Observer):
            def after_tick(self, processed: int, state: str) -> None:
                held_in_tick.append(watched.locked())

        runner.observe(HeldInTick())
        for _ in range(3):
            run.emulator.advance()
            assert runner.tick() == 1
        outputs.wait()
        assert held_in_tick == [True, True, True]
        assert not watched.locked()  # let go after each tick
        written = outputs.refreshes
        with watched:  # as a tick: the writer finds the run, and waits for the lock
            outputs.refresh(runner)
            outputs.writer._bell.set()  # look now (as `wait` asks)
            assert watched.waited.wait(timeout=30), "the writer never asked for the lock"
            assert outputs.refreshes == written  # it waits: nothing snapshot or written
        outputs.wait()
        assert outputs.refreshes == written + 1
        check_files(run_dir, runner)
        runner.stop("done")
        assert not watched.locked()
