"""Regression tests for the hostile-input pass (issue 17) that need a running paper or
live session: a broken edit, an edit adding a plugin, a signal during start-up and a
full disk. Each failed on the code before the fix (7f587ca).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests import forkserver
from tests.live.live_child import SIGNAL_ENV
from tests.live.live_emulated import STRATEGY, emulated_run, make_bars, rows, tick_bars
from tests.live.test_crash import CHILD, START, strategy_text
from tradeloom.errors import ConfigError
from tradeloom.journal import OrderSent, RunStarted, RunStopped, read_events
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator


def test_a_control_character_in_an_edit_is_refused_and_the_run_trades_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, mode="paper", watch_file=True)
        runner.start()
        tick_bars(run, runner, 5)
        broken = STRATEGY.replace("seed: 3", "seed: 3  # bell\x07")
        run.strategy.write_text(broken)
        tick_bars(run, runner, 3)
        (refused,) = rows(journal, "config_reload_refused")
        assert refused["errors"] == [
            f"{run.strategy}:2:16: invalid YAML: control character U+0007 (BEL) is not "
            "allowed; remove it"
        ]
        assert len(runner.session_or_fail.history) == 100 + 8  # every bar still traded
        runner.stop("test over")
        # the restart with the file as left: one line, exit 2 (it died with a traceback)
        with pytest.raises(ConfigError) as caught:
            run.runner(run_dir, mode="paper")
        assert caught.value.lines() == refused["errors"]


def test_a_refused_reload_imports_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = "hostile_reload_probe"
    (tmp_path / f"{module}.py").write_text("IMPORTED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, mode="paper", watch_file=True)
        runner.start()
        run.strategy.write_text(STRATEGY.replace("seed: 3", f"seed: 3\nplugins: [{module}]"))
        tick_bars(run, runner, 2)
        (refused,) = rows(run_dir / "journal.sqlite", "config_reload_refused")
        assert refused["errors"] == [
            f"{run.strategy}:3:11 plugins.0: '{module}' is not imported while the strategy "
            "runs: plugins are imported once, when the run starts; restart the run to change "
            "them"
        ]
        assert module not in sys.modules
        runner.stop("test over")


def test_a_signal_during_start_up_stops_the_run_with_a_stopped_row(tmp_path: Path) -> None:
    bars = make_bars(START + 40)
    with ExchangeEmulator(
        {"BTC/USDT": bars}, {"USDT": Decimal("100000")}, start=START, include_open_kline=False
    ) as emulator:
        strategy = tmp_path / "strategy.yaml"
        strategy.write_text(strategy_text(tmp_path / "cache"))
        run_dir = tmp_path / "run"
        env = {
            **os.environ,
            "EMU_API_KEY": DEFAULT_API_KEY,
            "EMU_API_SECRET": DEFAULT_SECRET,
            SIGNAL_ENV: "1",  # SIGTERM while the strategy file is validated
        }
        child = forkserver.run(
            [sys.executable, CHILD, emulator.url, strategy, run_dir],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert child.returncode == 0, child.stderr[-2000:]
    assert "Traceback" not in child.stdout + child.stderr
    assert child.stdout.startswith(f"live run {run_dir}: stopped by a signal;")
    runs = list(read_events(run_dir / "journal.sqlite", [RunStarted, RunStopped]))
    assert isinstance(runs[0], RunStarted)
    assert isinstance(runs[-1], RunStopped)
    assert "stopped by a signal" in runs[-1].reason
    assert not emulator.exchange.orders()


def test_a_full_disk_stops_the_live_run_before_it_sends_an_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeloom.engine.run_dir import environment_fault

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    text = STRATEGY.replace("threshold: 0.04, min_interval: 2", "threshold: 0.001, min_interval: 1")
    with emulated_run(tmp_path, monkeypatch, text=text, history=130) as run:
        runner = run.runner(run_dir, mode="live")
        runner.start()
        assert runner.journal is not None
        db = runner.journal._db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
        with pytest.raises(sqlite3.OperationalError) as caught:
            tick_bars(run, runner, 200)
        at_venue = {o.client_order_id for o in run.emulator.exchange.orders()}
        runner.stop(f"{type(caught.value).__name__}: {caught.value}")  # no second error
    # every order the venue holds was committed to the journal before it was sent
    journaled = {e.id for e in read_events(run_dir / "journal.sqlite", [OrderSent])}
    assert at_venue <= journaled
    assert "database or disk is full" in str(caught.value)
    assert environment_fault(caught.value) == (
        "the journal cannot be written (database or disk is full): nothing was sent that the "
        "journal had not recorded first; free disk space and run the same command to continue"
    )
