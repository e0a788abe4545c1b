"""A trade an order never had: refused, journaled, never counted, and the run halted.

An exchange that reports a trade twice under two ids (`DoubledTrade`, the emulator's
fault, here on a new order's answer) would make an order fill more than its quantity. The live
venue refuses the trade (``fill_refused``, ``OVERFILL: ...``), the runner latches the
kill switch with ``FILL_REFUSED`` until an operator resumes, and a restart neither
counts the trade nor sends anything it had not sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.live_emulated import emulated_run, rows
from tests.live.test_restart_and_kill_edges import FAST, ORDER, drive, ticks
from tradeloom.testing import DoubledTrade


def test_a_trade_reported_twice_is_refused_and_halts_the_run_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        runner = run.runner(run_dir)
        runner.start()
        # every new order's answer reports its last fill twice: the first fill is doubled
        run.emulator.faults.always(ORDER, DoubledTrade())
        drive(run, runner, lambda: len(rows(journal, "fill_refused")) >= 1)
        run.emulator.faults.clear()
        refused = rows(journal, "fill_refused")
        counted = rows(journal, "venue_fill")
        assert counted, "the doubled trade's original was not counted"
        assert all(r["message"].startswith("OVERFILL: order ") for r in refused)
        # the doubled trade is not counted: the venue's fills are the exchange's real trades
        real = {str(t.trade_id) for t in run.emulator.exchange.trades()}
        assert {r["trade_id"] for r in rows(journal, "venue_fill")} <= real
        assert {r["trade_id"] for r in refused} - real == {r["trade_id"] for r in refused}
        (halt,) = rows(journal, "trading_state")
        assert (halt["state"], halt["code"]) == ("HALTED", "KILL_SWITCH")
        assert halt["message"] == f"FILL_REFUSED: {refused[0]['message']}"
        assert runner.session_or_fail.killed
        sent = len(run.emulator.requests(ORDER))
        ticks(run, runner, 8)  # halted: the signals keep coming, no order goes out
        assert len(run.emulator.requests(ORDER)) == sent
        runner.stop("test over")

        again = run.runner(run_dir)
        again.start()  # the kill switch is journaled: the restart stays halted
        assert again.session_or_fail.killed
        ticks(run, again, 4)
        assert len(run.emulator.requests(ORDER)) == sent
        assert len(rows(journal, "venue_fill")) >= len(counted)
        (reconciled, *_) = rows(journal, "reconciled")[-1:]
        assert abs(reconciled["venue_position"] - reconciled["position"]) <= reconciled["tolerance"]
        again.stop("test over")
        assert run.emulator.errors == []
