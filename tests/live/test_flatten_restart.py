"""A kill switch's flatten still to carry out when the run dies (kill -9) is carried out
after the restart, once: requested and journaled but not yet sent (the process died
before the next bar), or held by ``CANCEL_UNCONFIRMED`` (a working order's cancel took no
effect) and due again at the next bar. The restart rebuilds the pending flatten
(``A_EXIT_HALT``) from the journal: a lost one would leave the run killed with the
position the operator asked to close open. A flatten whose exit never reached the
exchange (kill -9 between its intent and its request) goes again after the restart
(``A_FLATTEN``: the flatten unwinds until resume, as a risk halt's exits do)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import crash, emulated_run, rows
from tests.live.test_exit_cancel_unconfirmed import CANCEL, LIMITS, OPEN
from tests.live.test_restart_and_kill_edges import (
    FAST,
    SIZING,
    ask,
    drive,
    edit,
    no_sleep,
    signals,
    state,
    ticks,
)
from tradeloom.core import layout as L
from tradeloom.engine.control import request_flatten
from tradeloom.live.accounts import venues
from tradeloom.live.tick.runner import LiveRunner, Mode
from tradeloom.testing import DropConnection, ServerError

ORDER = "POST /api/v3/order"


def ask_flatten(runner: LiveRunner, reason: str) -> None:
    """Ask the running ``runner`` to flatten, as ``tradeloom kill --flatten`` does; it
    answers between bars (journaled: the request, the kill)."""
    runner.inbox.wake.clear()
    delivery = request_flatten(runner.run_dir, reason)
    assert delivery.signalled
    assert runner.inbox.wake.wait(5)
    runner.tick()


def flattens(journal: Path) -> list[dict[str, Any]]:
    return [o for o in rows(journal, "order") if o["reason"] == "EXIT_FLATTEN"]


def pending_flatten(runner: LiveRunner) -> float:
    return float(runner.session_or_fail.engine.state.acct[L.A_EXIT_HALT])


def _sold_once_after_its_cancel(
    emulator: Any, journal: Path, before: int, exit_id: str, resting: set[str], ids: set[str]
) -> None:
    """Assert that the exit ``exit_id`` was the one sell sent since request ``before``,
    after a cancel of the resting order (client ids ``resting``, exchange ids ``ids``),
    that the account holds no BTC, and that no order was rejected."""
    sells = [r for r in emulator.requests(ORDER)[before:] if r.params["side"] == "SELL"]
    assert [r.params["newClientOrderId"] for r in sells] == [exit_id]
    ended = [
        r.seq
        for r in emulator.requests(CANCEL)
        if r.dispatched
        and (r.params.get("origClientOrderId") in resting or str(r.params.get("orderId")) in ids)
    ]
    assert ended and min(ended) < sells[0].seq  # the resting order cancelled first
    assert float(emulator.exchange.balance("BTC").total) < 0.001
    assert [r for r in rows(journal, "order_state") if r["state"] == "rejected"] == []


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_flatten_asked_just_before_a_kill_9_closes_the_position_after_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    # The operator asks for a flatten; the run journals the request and its kill, and
    # dies (kill -9) before the next bar's halts stage sends the exits. The restart
    # replays the journal: the flatten is still due, and goes out at the next bar, once.
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        runner = run.runner(run_dir, mode=mode)
        with signals(runner):
            runner.start()
            engine = runner.session_or_fail.engine
            # a position, and no order of the bar that would close it anyway
            drive(
                run,
                runner,
                lambda: abs(engine.portfolio.position) > 0.01 and not engine.venue.pending(),
            )
            ask_flatten(runner, "leave now")
            assert state(runner) == "HALTED"
            assert pending_flatten(runner) == 2.0
            assert flattens(journal) == []  # not yet: at the next bar's halts stage
        crash(runner)

        again = run.runner(run_dir, mode=mode)
        again.start()
        assert state(again) == "HALTED"
        assert pending_flatten(again) == 2.0, "the restart lost the flatten"
        ticks(run, again, 3)
        position = again.session_or_fail.engine.portfolio.position
        again.stop("test over")
        assert run.emulator.errors == []
    (flatten,) = flattens(journal)
    (request,) = rows(journal, "control_request")
    assert request["action"] == "flatten"
    assert flatten["bar"] == request["bar"] + 1
    assert abs(position) < 1e-5  # flat, but dust below the lot (0.00001)
    if mode == "live":  # sent to the exchange once, and the account holds no BTC
        sells = [r for r in run.emulator.requests(ORDER) if r.params["side"] == "SELL"]
        assert [r.params["newClientOrderId"] for r in sells].count(flatten["id"]) == 1
        assert float(run.emulator.exchange.balance("BTC").total) < 0.001


def test_a_flatten_held_by_a_cancel_without_effect_goes_after_a_kill_9(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A limit order rests beside the position; the exchange answers no cancel (503). The
    # flatten's exit is held (CANCEL_UNCONFIRMED, naming EXIT_FLATTEN), due again at the
    # next bar, its cancel first; the run dies (kill -9) before that bar. After the
    # restart the flatten still goes, its cancel first, once.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
    text = edit(FAST, execution, LIMITS + "{type: limit, limit: {offset_bps: 60}}}")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        emulator, exchange = run.emulator, run.emulator.exchange

        def working() -> set[str]:
            return {o.client_order_id for o in exchange.orders() if o.status in OPEN}

        runner = run.runner(run_dir)
        with signals(runner):
            runner.start()
            while not (working() and float(exchange.balance("BTC").total) > 0.01):
                assert exchange.position < len(run.bars) - 3, "no order worked with a position"
                emulator.advance()
                runner.tick()
            resting = working()
            resting_ids = {str(o.order_id) for o in exchange.orders() if o.status in OPEN}
            emulator.faults.always(CANCEL, ServerError(503))
            ask_flatten(runner, "leave now")
            before = len(emulator.requests(ORDER))
            ticks(run, runner, 1)
            assert working() == resting, "the order ended: the test proves nothing"
            assert emulator.requests(ORDER)[before:] == []
            held = [
                r
                for r in rows(journal, "rejection")
                if r["code"] == "CANCEL_UNCONFIRMED" and r["purpose"] == "EXIT_FLATTEN"
            ]
            assert held, "the flatten was not held"
            assert pending_flatten(runner) == 2.0
        crash(runner)
        emulator.faults.clear()

        again = run.runner(run_dir)
        again.start()
        assert state(again) == "HALTED"
        assert pending_flatten(again) == 2.0, "the restart lost the held flatten"
        ticks(run, again, 3)
        again.stop("test over")
        assert emulator.errors == []
    (flatten,) = flattens(journal)
    _sold_once_after_its_cancel(emulator, journal, before, flatten["id"], resting, resting_ids)


def test_a_drawdown_halts_exit_held_by_a_cancel_without_effect_goes_after_a_kill_9(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same for a risk halt's exit (A_EXIT_HALT = 1): a drawdown halt latches while a
    # limit order rests beside the position and the exchange answers no cancel; its exit
    # is held (CANCEL_UNCONFIRMED, naming EXIT_HALT), due again at the next bar; kill -9.
    # The halt latches through a hot reload of the rule's limit (journaled, so the
    # restart's replay latches it at the same bar). After the restart the exit goes,
    # its cancel first, once.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
    text = edit(FAST, execution, LIMITS + "{type: limit, limit: {offset_bps: 60}}}")
    rule = "  rules:\n    - {kind: drawdown_halt, max_drawdown: 0.9}\n"
    text = edit(text, SIZING, SIZING + rule)
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        emulator, exchange = run.emulator, run.emulator.exchange

        def working() -> set[str]:
            return {o.client_order_id for o in exchange.orders() if o.status in OPEN}

        def held() -> list[dict[str, Any]]:
            return [
                r
                for r in rows(journal, "rejection")
                if r["code"] == "CANCEL_UNCONFIRMED" and r["purpose"] == "EXIT_HALT"
            ]

        runner = run.runner(run_dir, watch_file=True)
        runner.start()
        engine = runner.session_or_fail.engine
        while not (working() and float(exchange.balance("BTC").total) > 0.01):
            assert exchange.position < len(run.bars) - 8, "no order worked with a position"
            emulator.advance()
            runner.tick()
        resting = working()
        resting_ids = {str(o.order_id) for o in exchange.orders() if o.status in OPEN}
        emulator.faults.always(CANCEL, ServerError(503))
        # any drawdown reaches the reloaded limit: the rule halts within a few bars
        run.strategy.write_text(text.replace("max_drawdown: 0.9", "max_drawdown: 0.000001"))
        before = len(emulator.requests(ORDER))
        while not held():
            assert exchange.position < len(run.bars) - 4, "the halt's exit was never held"
            emulator.advance()
            runner.tick()
            assert working() == resting, "the order ended: the test proves nothing"
        assert rows(journal, "config_reloaded"), "the reload was not journaled"
        assert engine.halt_code == "MAX_DRAWDOWN_HALT"
        assert emulator.requests(ORDER)[before:] == []
        assert float(engine.state.acct[L.A_EXIT_HALT]) == 1.0
        crash(runner)
        emulator.faults.clear()

        again = run.runner(run_dir, watch_file=True)
        again.start()
        assert again.session_or_fail.engine.halt_code == "MAX_DRAWDOWN_HALT"
        assert pending_flatten(again) == 1.0, "the restart lost the halt's held exit"
        ticks(run, again, 3)
        again.stop("test over")
        assert emulator.errors == []
    exits = [o for o in rows(journal, "order") if o["reason"] == "EXIT_HALT"]
    assert len(exits) == 1, exits
    _sold_once_after_its_cancel(emulator, journal, before, exits[0]["id"], resting, resting_ids)


def test_a_flatten_whose_exit_never_reached_the_exchange_before_a_kill_9_still_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flatten's exit is journaled (its intent committed) and its request never
    # reaches the exchange (lost on its way in, as when kill -9 falls between the commit
    # and the request); the run dies. The restart finds no such order once the venue's
    # window is over (ORDER_NEVER_ARRIVED) and ends it. Carried out once, the flatten
    # was never sent again: the run stayed HALTED with the position the operator asked
    # to close open. It unwinds now, as a risk halt's exits do: sent again, once.
    monkeypatch.chdir(tmp_path)
    real = venues.CcxtVenue
    monkeypatch.setattr(
        venues,
        "CcxtVenue",
        lambda *a, **kw: real(*a, **kw, sleep=lambda seconds: None, settle_seconds=0.0),
    )
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        runner = run.runner(run_dir)
        with signals(runner):
            runner.start()
            engine = runner.session_or_fail.engine
            drive(
                run,
                runner,
                lambda: abs(engine.portfolio.position) > 0.01 and not engine.venue.pending(),
            )
            ask_flatten(runner, "leave now")
            before = len(run.emulator.requests(ORDER))
            run.emulator.faults.always(ORDER, DropConnection())
            ticks(run, runner, 1)
            run.emulator.faults.clear()
            (lost,) = flattens(journal)
            assert not [o for o in run.emulator.exchange.orders() if o.client_order_id == lost]
        crash(runner)

        again = run.runner(run_dir)
        again.start()
        ticks(run, again, 4)
        again.stop("test over")
        assert run.emulator.errors == []
    never = [r for r in rows(journal, "order_state") if r["code"] == "ORDER_NEVER_ARRIVED"]
    assert [r["client_id"] for r in never] == [lost["id"]]
    first, again_ = flattens(journal)  # the lost exit, then the one the restart sent
    assert first["id"] == lost["id"] and again_["bar"] > first["bar"]
    sells = [r for r in run.emulator.requests(ORDER)[before:] if r.dispatched]
    assert len(sells) == 1, sells  # the flatten, once it reaches the exchange
    assert float(run.emulator.exchange.balance("BTC").total) < 0.001


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_resume_before_the_flattens_bar_ends_it_and_the_run_trades_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    # The operator asks for a flatten, then resumes before the next bar carries it out.
    # The flatten is the kill's, carried out until resume: it ends with the kill, and the
    # run is ACTIVE. Before, the next bar's halts stage took the pending flatten for a
    # new halt: it sold and moved the run to HALTED for no halt at all, which no resume
    # could lift (the kill switch no longer held it), so the run never traded again. A
    # restart replays the same (no refusal).
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        runner = run.runner(run_dir, mode=mode)
        with signals(runner):
            runner.start()
            engine = runner.session_or_fail.engine
            drive(
                run,
                runner,
                lambda: abs(engine.portfolio.position) > 0.01 and not engine.venue.pending(),
            )
            held = engine.portfolio.position
            ask_flatten(runner, "leave now")
            ask(runner, "resume", "not now")
            assert state(runner) == "ACTIVE"
            ticks(run, runner, 3)
            assert state(runner) == "ACTIVE", "HALTED for no halt after the resume"
            assert flattens(journal) == []
            orders = len(rows(journal, "order"))
            drive(run, runner, lambda: len(rows(journal, "order")) > orders)  # it trades
            ask(runner, "resume", "again")  # nothing to lift: answered, nothing changes
            assert state(runner) == "ACTIVE"
        crash(runner)
        again = run.runner(run_dir, mode=mode)
        again.start()  # the replay makes the journal's rows
        assert state(again) == "ACTIVE"
        again.stop("test over")
        assert run.emulator.errors == []
    assert held != 0.0
    changes = [(r["state"], r["code"]) for r in rows(journal, "trading_state")]
    assert changes == [("HALTED", "KILL_SWITCH"), ("ACTIVE", "RESUME")], changes
