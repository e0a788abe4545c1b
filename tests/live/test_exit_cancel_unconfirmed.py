"""An exit that must first cancel the symbol's working order, whose cancel took no effect
at the venue (not answered: the order works on, its end and fills unknown), sends nothing
for the symbol (``CANCEL_UNCONFIRMED``, naming the exit), as a replacement does: the order
it could not cancel may still fill, and the exit would sell the position twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.live_emulated import emulated_run, rows
from tests.live.test_restart_and_kill_edges import FAST, SIZING, edit, no_sleep
from tradeloom.testing import ServerError

ORDER = "POST /api/v3/order"
CANCEL = "DELETE /api/v3/order"
OPEN = ("NEW", "PARTIALLY_FILLED")
LIMITS = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, orders: "


def test_a_stop_loss_exit_waits_for_a_working_order_its_cancel_did_not_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A limit exit (EXIT_SIGNAL, a sell of the whole position) rests at the exchange; the
    # exchange answers no cancel (503 every attempt); the bar's range then reaches the
    # stop-loss. The stop's market sell went out with the limit sell still working: the
    # position sold twice once that filled.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
    text = edit(FAST, execution, LIMITS + "{type: limit, limit: {offset_bps: 60}}}")
    text = edit(text, SIZING, SIZING + "  stop_loss: 0.003\n")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        emulator, exchange = run.emulator, run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        refused_at = None
        while refused_at is None or exchange.position < refused_at + 3:
            assert exchange.position < len(run.bars) - 1, "no stop met a working order"
            emulator.advance()
            before = len(emulator.requests(ORDER))
            working = {o.client_order_id for o in exchange.orders() if o.status in OPEN}
            faulted = bool(working) and float(exchange.balance("BTC").total) > 0.01
            if faulted:  # a sell works: the exchange answers no cancel this bar
                emulator.faults.always(CANCEL, ServerError(503))
            runner.tick()
            emulator.faults.clear()
            sent = emulator.requests(ORDER)[before:]
            still = {o.client_order_id for o in exchange.orders() if o.status in OPEN}
            # nothing goes out while an order whose cancel took no effect works
            assert not (faulted and sent and working & still), (exchange.position, sent)
            stops = [
                r
                for r in rows(journal, "rejection")
                if r["code"] == "CANCEL_UNCONFIRMED" and r["purpose"] == "EXIT_STOP_LOSS"
            ]
            if stops and refused_at is None:
                refused_at = exchange.position
        runner.stop("test over")
    assert stops[0]["message"].startswith("order ")
    # the account never sold more than it bought (a second sell would need the BTC)
    assert [r for r in rows(journal, "order_state") if r["state"] == "rejected"] == []
    fills = rows(journal, "fill")
    assert sum(f["side"] * f["quantity"] for f in fills) >= -1e-9


def test_a_flatten_waits_for_a_working_order_its_cancel_did_not_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kill cancels every order and the flatten's exits go out at the next bar. A
    # limit order whose cancels (the kill's, then the flatten's own) the exchange never
    # answers works on: the flatten's sell is held (CANCEL_UNCONFIRMED, naming
    # EXIT_FLATTEN) and sent at a later bar, once a cancel ended the order.
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
        runner.start()
        while not (working() and float(exchange.balance("BTC").total) > 0.01):
            assert exchange.position < len(run.bars) - 1, "no order worked with a position"
            emulator.advance()
            runner.tick()
        emulator.faults.always(CANCEL, ServerError(503))
        runner.session_or_fail.flatten("test")
        before = len(emulator.requests(ORDER))
        emulator.advance()
        runner.tick()
        assert working(), "the order ended at the flatten's bar: the test proves nothing"
        assert emulator.requests(ORDER)[before:] == []  # nothing goes out while it works
        held = [
            r
            for r in rows(journal, "rejection")
            if r["code"] == "CANCEL_UNCONFIRMED" and r["purpose"] == "EXIT_FLATTEN"
        ]
        assert held, "nothing says why the flatten was not sent"
        emulator.faults.clear()
        for _ in range(3):
            emulator.advance()
            runner.tick()
        runner.stop("test over")
    flattens = [o for o in rows(journal, "order") if o["reason"] == "EXIT_FLATTEN"]
    assert flattens, "the flatten was never sent"
    assert float(exchange.balance("BTC").total) < 0.001
    assert [r for r in rows(journal, "order_state") if r["state"] == "rejected"] == []


def test_a_drawdown_halt_exit_waits_for_a_working_order_then_goes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A drawdown halt latches while a limit order rests beside a position; the exchange
    # answers no cancel (503). The halt's exit is held (CANCEL_UNCONFIRMED, naming
    # EXIT_HALT). It was then never tried again: nothing cancelled the resting order, so
    # the exit waited for that order to end on its own and the position the halt meant
    # to close stayed open. Once cancels work, the exit goes out, its cancel first, once.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
    text = edit(FAST, execution, LIMITS + "{type: limit, limit: {offset_bps: 60}}}")
    text = edit(text, SIZING, SIZING + "  rules:\n    - {kind: drawdown_halt, max_drawdown: 0.9}\n")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        emulator, exchange = run.emulator, run.emulator.exchange

        def working() -> set[str]:
            return {o.client_order_id for o in exchange.orders() if o.status in OPEN}

        def held() -> list[dict[str, object]]:
            return [
                r
                for r in rows(journal, "rejection")
                if r["code"] == "CANCEL_UNCONFIRMED" and r["purpose"] == "EXIT_HALT"
            ]

        runner = run.runner(run_dir)
        runner.start()
        engine = runner.session_or_fail.engine
        while not (working() and float(exchange.balance("BTC").total) > 0.01):
            assert exchange.position < len(run.bars) - 3, "no order worked with a position"
            emulator.advance()
            runner.tick()
        resting = working()
        resting_ids = {str(o.order_id) for o in exchange.orders() if o.status in OPEN}
        emulator.faults.always(CANCEL, ServerError(503))
        # the drawdown rule halts at the next close: any drawdown reaches a limit of 0
        engine.state.limits[:] = 0.0
        before = len(emulator.requests(ORDER))
        for _ in range(3):  # the halt's bar, then two bars whose cancels fail too
            emulator.advance()
            runner.tick()
            assert working() == resting, "the order ended: the test proves nothing"
        assert engine.halt_code == "MAX_DRAWDOWN_HALT"
        assert emulator.requests(ORDER)[before:] == []  # nothing goes out while it works
        assert len(held()) == 3, "the held exit was not tried again at each bar"
        emulator.faults.clear()
        for _ in range(3):
            emulator.advance()
            runner.tick()
        runner.stop("test over")
    exits = [o for o in rows(journal, "order") if o["reason"] == "EXIT_HALT"]
    assert len(exits) == 1, exits
    assert float(exchange.balance("BTC").total) < 0.001
    posts = emulator.requests(ORDER)[before:]
    assert len(posts) == 1, posts  # the exit, once
    ended = [
        r.seq
        for r in emulator.requests(CANCEL)
        if r.dispatched
        and (
            r.params.get("origClientOrderId") in resting
            or str(r.params.get("orderId")) in resting_ids
        )
    ]
    assert ended and min(ended) < posts[0].seq  # the resting order cancelled first
    assert [r for r in rows(journal, "order_state") if r["state"] == "rejected"] == []
