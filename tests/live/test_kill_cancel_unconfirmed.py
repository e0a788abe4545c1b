"""The kill switch's cancel of a working order that took no effect at the exchange (not
answered: the order works on, its end and fills unknown) is journaled
(``CANCEL_UNCONFIRMED``, naming the order, purpose ``KILL_SWITCH``) and tried again at
each next bar while the kill holds, until the exchange ends the order; a restart after
kill -9 in between rebuilds the same rows and goes on trying. Before, the kill asked
once: a resting limit order could fill hours later, the very thing the operator stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import crash, emulated_run, rows
from tests.live.test_exit_cancel_unconfirmed import CANCEL, LIMITS, OPEN
from tests.live.test_restart_and_kill_edges import FAST, ask, edit, no_sleep, signals, state
from tradeloom.testing import ServerError

ORDER = "POST /api/v3/order"


def test_a_kill_cancel_without_effect_is_journaled_and_tried_again_each_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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

        def unconfirmed() -> list[dict[str, Any]]:
            return [
                r
                for r in rows(journal, "rejection")
                if r["code"] == "CANCEL_UNCONFIRMED" and r["purpose"] == "KILL_SWITCH"
            ]

        def asked() -> int:  # the cancel requests of the resting order
            return sum(
                r.params.get("origClientOrderId") in resting
                or str(r.params.get("orderId")) in resting_ids
                for r in emulator.requests(CANCEL)
            )

        runner = run.runner(run_dir)
        with signals(runner):
            runner.start()
            while not working():
                assert exchange.position < len(run.bars) - 8, "no order ever rested"
                emulator.advance()
                runner.tick()
            resting = working()
            resting_ids = {str(o.order_id) for o in exchange.orders() if o.status in OPEN}
            emulator.faults.always(CANCEL, ServerError(503))
            ask(runner, "kill", "operator: stop")
            assert state(runner) == "HALTED"
            assert working() == resting, "the kill's cancel ended the order: proves nothing"
            numbers = {i: int(i.rsplit("-", 1)[-1]) for i in resting}  # the engine's numbers
            said = unconfirmed()
            assert [r["message"].split(" ")[1] for r in said] == [
                str(numbers[i]) for i in sorted(resting, key=numbers.__getitem__)
            ], "the journal does not say the kill's cancel took no effect"
            tries = asked()
            sent = len(emulator.requests(ORDER))
            emulator.advance()
            runner.tick()  # the next bar asks again, and says so again
            assert working() == resting, "the order ended: the test proves nothing"
            assert asked() > tries, "the kill's cancel was not tried again"
            tries = asked()
            assert len(unconfirmed()) == 2 * len(said)
        journaled = len(unconfirmed())
        crash(runner)  # kill -9 with the order still working

        again = run.runner(run_dir)
        again.start()  # the replay makes the journal's rows again (else RestartRefused)
        assert state(again) == "HALTED"
        assert len(unconfirmed()) == journaled
        emulator.advance()
        again.tick()  # still unanswered: tried again after the restart
        assert working() == resting
        assert asked() > tries
        assert len(unconfirmed()) == journaled + len(said)
        emulator.faults.clear()
        emulator.advance()
        again.tick()  # answered: the order ends, booked as the kill's cancel
        assert working() == set(), "the kill's cancel was never tried again"
        cancelled = [r for r in rows(journal, "order_cancelled") if r["reason"] == "KILL_SWITCH"]
        assert {c["order_id"] for c in cancelled} == resting
        settled = len(emulator.requests(CANCEL))
        for _ in range(2):  # nothing is left to cancel, nor sent while the kill holds
            emulator.advance()
            again.tick()
        assert len(emulator.requests(CANCEL)) == settled
        assert len(emulator.requests(ORDER)) == sent
        assert len(unconfirmed()) == journaled + len(said)
        again.stop("test over")
        assert emulator.errors == []
