"""The kill switch of a live run: every open order cancelled, a sliced order's children
never sent, trading halted, latched in the journal across restarts until resume."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import forkserver
from tests.builders import strategy_text
from tests.live.live_emulated import EmulatedRun, crash, emulated_run, rows, tick_bars
from tradeloom.engine.control import (
    ControlInbox,
    ControlRequest,
    request,
    request_kill,
    request_resume,
)
from tradeloom.live.outputs.refresh import run_facts
from tradeloom.live.tick.runner import LiveRunner

REPO = Path(__file__).resolve().parents[2]
"""This checkout: its package first on the commands' path (tests may run from a worktree)."""


def drive_until(run: EmulatedRun, runner: LiveRunner, done: Any, limit: int) -> None:
    while run.emulator.exchange.position < limit and not done():
        run.emulator.advance()
        runner.tick()


def test_kill_cancels_open_orders_halts_and_stays_latched_until_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    # market orders fill a quarter of their quantity per bar: an order stays open for bars
    with emulated_run(tmp_path, monkeypatch, fill_fraction=Decimal("0.25")) as run:
        runner = run.runner(run_dir)
        runner.inbox.install_signal_handlers()
        runner.start()
        exchange = run.emulator.exchange
        drive_until(run, runner, lambda: bool(exchange.open_orders()), len(run.bars))
        working = exchange.open_orders()
        assert working, "the strategy never had a working order"

        delivery = request_kill(run_dir, "operator: stop everything")
        assert delivery.signalled  # this process holds the run directory: SIGUSR2 wakes it
        assert runner.inbox.wake.wait(5)
        runner.tick()
        assert exchange.open_orders() == []
        session = runner.session_or_fail
        assert session.state == "HALTED"
        (change,) = rows(journal, "trading_state")
        assert (change["state"], change["code"]) == ("HALTED", "KILL_SWITCH")
        cancelled = [r for r in rows(journal, "order_cancelled") if r["reason"] == "KILL_SWITCH"]
        assert [c["order_id"] for c in cancelled] == [o.client_order_id for o in working]

        # asked again (the console's operator did not see the first): journaled with
        # who asked, answered "already halted", and nothing else changes
        again_asked = request(run_dir, "kill", "operator: stop it!", by="console")
        assert again_asked.describe() == (
            f"already halted at {change['at'][:19]}Z by the kill switch (operator: stop "
            f"everything (by cli)); the running process (pid {os.getpid()}) journals the "
            "request; nothing else changes"
        )
        assert runner.inbox.wake.wait(5)
        runner.tick()
        assert [(c["state"], c["code"]) for c in rows(journal, "trading_state")] == [
            ("HALTED", "KILL_SWITCH")
        ]
        sent_before = len(exchange.orders())
        signals_before = len(rows(journal, "signal"))
        for _ in range(40):
            run.emulator.advance()
            runner.tick()
        assert len(rows(journal, "signal")) > signals_before  # it keeps deciding...
        assert len(exchange.orders()) == sent_before  # ...and sends nothing
        halted = [r for r in rows(journal, "rejection") if r.get("code") == "HALTED"]
        assert halted and all("KILL_SWITCH" in r["message"] for r in halted)
        # the kill refuses what a signal would send: a signal in the side the killed run
        # still holds sends nothing, so it is a hold, never a HALTED refusal of an add
        # (this strategy does not scale in)
        assert {r["purpose"] for r in halted} <= {"ENTRY", "REVERSE"}
        holds = [r for r in rows(journal, "risk_decision") if r["outcome"] == "hold"]
        assert [h for h in holds if h["bar"] > change["bar"]], "no hold while killed"
        facts = run_facts(
            runner.files, runner.link, runner.session_or_fail
        )  # metrics.json names the halt that holds the run
        assert (facts["state"], facts["halt"]) == ("HALTED", "KILL_SWITCH")

        crash(runner)
        runner.inbox.restore_signal_handlers()
        run.emulator.advance()
        again = run.runner(run_dir)
        again.inbox.install_signal_handlers()
        again.start()  # the replay applies the journaled kill at the bar it happened
        assert again.session_or_fail.state == "HALTED"
        assert (
            run_facts(again.files, again.link, again.session_or_fail)["halt"] == "KILL_SWITCH"
        )  # latched before the restart
        for _ in range(10):
            run.emulator.advance()
            again.tick()
        assert len(exchange.orders()) == sent_before

        request_resume(run_dir, "operator: all clear")
        again.tick()
        assert again.session_or_fail.state == "ACTIVE"
        assert run_facts(again.files, again.link, again.session_or_fail)["halt"] is None
        drive_until(run, again, lambda: len(exchange.orders()) > sent_before, len(run.bars))
        assert len(exchange.orders()) > sent_before  # trading again
        again.stop("test over")
        again.inbox.restore_signal_handlers()
        assert run.emulator.errors == []
    states = [(r["state"], r["code"]) for r in rows(journal, "trading_state")]
    assert states == [("HALTED", "KILL_SWITCH"), ("ACTIVE", "RESUME")]
    requests = [(r["action"], r["by"]) for r in rows(journal, "control_request")]
    assert requests == [("kill", "cli"), ("kill", "console"), ("resume", "cli")]


def test_the_kill_file_halts_and_blocks_resume_while_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir)
        runner.start()
        (run_dir / "KILL").write_text("maintenance window\n")
        run.emulator.advance()
        runner.tick()
        assert runner.session_or_fail.state == "HALTED"
        for _ in range(5):  # the file is read every tick; the halt is journaled once
            run.emulator.advance()
            runner.tick()
        runner.stop("test over")
    changes = rows(run_dir / "journal.sqlite", "trading_state")
    assert [(c["state"], c["code"]) for c in changes] == [("HALTED", "KILL_SWITCH")]
    assert "maintenance window" in changes[0]["message"]
    requests = rows(run_dir / "journal.sqlite", "control_request")
    assert [(r["action"], r["by"]) for r in requests] == [("kill", "file")]


class _Died(Exception):
    """The process dies (kill -9) right after a request's answer was committed."""


@pytest.mark.parametrize("action", ["kill", "flatten"])
def test_a_request_answered_before_the_process_died_is_not_answered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir)
        runner.inbox.install_signal_handlers()
        runner.start()
        tick_bars(run, runner, 3)
        asked = request(run_dir, action, "operator: stop")  # type: ignore[arg-type]
        assert asked.path is not None

        def died(inbox: ControlInbox, asked_now: ControlRequest) -> None:
            raise _Died  # committed, its file not yet moved to control/done/

        with monkeypatch.context() as patched:
            patched.setattr(ControlInbox, "done", died)
            with pytest.raises(_Died):
                runner.tick()
        crash(runner)
        runner.inbox.restore_signal_handlers()
        assert asked.path.exists()  # the restart finds it again
        (answered,) = rows(journal, "control_request")
        assert (answered["action"], answered["request"]) == (action, asked.path.name)

        run.emulator.advance()
        again = run.runner(run_dir)
        again.inbox.install_signal_handlers()
        again.start()
        tick_bars(run, again, 3)
        assert again.session_or_fail.state == "HALTED"
        again.stop("test over")
        again.inbox.restore_signal_handlers()
    assert not asked.path.exists()
    assert (run_dir / "control" / "done" / asked.path.name).is_file()
    assert [(r["action"], r["request"]) for r in rows(journal, "control_request")] == [
        (action, asked.path.name)
    ]
    changes = [(r["state"], r["code"]) for r in rows(journal, "trading_state")]
    assert changes == [("HALTED", "KILL_SWITCH")]


@pytest.mark.slow
def test_the_kill_ends_a_sliced_order_whose_children_are_never_sent(tmp_path: Path) -> None:
    # an entry sliced into 4 children, one every 2 bars: the kill comes after the first
    twap = {"slicing": {"kind": "twap", "children": 4, "every_bars": 2}}
    (tmp_path / "s.yaml").write_text(
        strategy_text(
            name="sliced",
            signal={"threshold": 0.001, "min_interval": 20},
            execution={"allow_short": True, "orders": twap},
        )
    )
    run = tmp_path / "runs" / "sliced-paper-simulated"
    journal = run / "journal.sqlite"

    def play(bars: int) -> None:
        done = forkserver.tradeloom(
            "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
            "--max-bars", str(bars), "-q", cwd=tmp_path, pythonpath=REPO,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    play(2)
    (parent,) = rows(journal, "sliced_order")
    children = [r for r in rows(journal, "order") if r["parent_id"] == parent["id"]]
    assert len(children) == 1, "the kill must come between the children"
    killed = forkserver.tradeloom("kill", str(run), cwd=tmp_path, pythonpath=REPO)
    assert killed.returncode == 0, killed.stderr
    play(6)  # 3 children were due: none is sent, nor after a restart
    play(2)
    assert rows(journal, "order") == children
    assert [s["code"] for s in rows(journal, "trading_state")] == ["KILL_SWITCH"]
