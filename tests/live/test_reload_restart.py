"""kill -9 of the real CLI after a hot reload that changed decisions while a position was
open, then the same command again: the restart replays each bar under the file in force at
that bar (the start's, then the journaled reload's), so it restarts, sends no client order
id twice, and decides what the run never killed decides (`test_crash.CrashRig`)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import SYMBOL, emulated_run, make_bars, rows
from tests.live.test_crash import (
    END,
    START,
    CrashRig,
    check_sent_once_and_reconciled,
    decisions,
    finish,
    strategy_text,
)
from tradeloom.testing import ExchangeEmulator

pytestmark = pytest.mark.slow  # child processes

EDIT = ("threshold: 0.04, min_interval: 2", "threshold: 0.21, min_interval: 2")
"""The edit: a stricter signal. Under it the open position's entry (confidence 0.20)
would not have been taken, nor its exit two bars later (0.19): a replay under the
edited file alone decides another history."""


def _position(journal: Path) -> float:
    return sum(r["side"] * r["quantity"] for r in rows(journal, "fill"))


def _uninterrupted(tmp: Path, reload_bar: int, last: int) -> dict[str, list[Any]]:
    """The decisions of the run never killed, the file edited after ``reload_bar``."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(tmp)
        text = strategy_text(tmp / "cache")
        with emulated_run(tmp, monkeypatch, text=text, history=START) as run:
            runner = run.runner(tmp / "run", watch_file=True)
            runner.start()
            try:
                while run.emulator.exchange.position <= last:
                    if len(runner.session_or_fail.history) - 1 == reload_bar:
                        run.strategy.write_text(text.replace(*EDIT))
                    run.emulator.advance()
                    runner.tick()
            finally:
                runner.stop("done")
            assert run.emulator.errors == []
    journal = tmp / "run" / "journal.sqlite"
    assert [r["bar"] for r in rows(journal, "config_reloaded")] == [reload_bar]
    return decisions(journal)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[CrashRig]:
    with ExchangeEmulator(
        {SYMBOL: make_bars()}, {"USDT": Decimal(100_000)}, start=START, include_open_kline=False
    ) as emulator:
        crash_rig = CrashRig(emulator, tmp_path, recv_window=10_000)
        try:
            yield crash_rig
        finally:
            crash_rig.close()


def test_a_run_killed_after_a_reload_with_a_position_open_restarts_and_decides_the_same(
    rig: CrashRig, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rig.launch()
    while _position(rig.journal) <= 0.0:  # a position is open
        assert rig.emulator.exchange.position < END, "no position was opened"
        assert rig.advance() == "processed"
    rig.strategy.write_text(rig.strategy.read_text().replace(*EDIT))
    while not rig.rows("config_reloaded"):
        assert rig.advance() == "processed"
    (reloaded,) = rig.rows("config_reloaded")
    assert reloaded["changes"] == ["signal.threshold: 0.04 -> 0.21"]
    reload_bar = reloaded["bar"]
    assert _position(rig.journal) > 0.0  # swapped in with the position open
    rig.kill()  # kill -9 under the edited file

    rig.launch()  # the same command, the edited file: refused before the fix
    finish(rig, at_least=max(END, rig.emulator.exchange.position + 12))
    assert rig.exit_codes == [-signal.SIGKILL, 0]
    (restarted,) = rig.rows("restarted")
    assert restarted["bars_replayed"] > 0
    check_sent_once_and_reconciled(rig)
    mine = decisions(rig.journal)
    last = rig.emulator.exchange.position - 1
    theirs = _uninterrupted(tmp_path_factory.mktemp("uninterrupted"), reload_bar, last)
    assert mine["orders"] == [o for o in theirs["orders"] if o[0] <= last]
    assert mine["fills"] == [f for f in theirs["fills"] if f[0] <= last]
    # the edit changed the decisions: signals below its threshold before it, none after
    signals = rig.rows("signal")
    assert any(s["confidence"] < 0.21 for s in signals if s["bar"] <= reload_bar)
    assert all(s["confidence"] >= 0.21 for s in signals if s["bar"] > reload_bar)
    assert [o for o in mine["orders"] if o[0] > reload_bar]  # and it traded after it
