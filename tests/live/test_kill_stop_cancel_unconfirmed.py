"""The kill switch's cancel of a stop resting at the exchange that the exchange did not
confirm (a 503 on every retry: the stop rests on) is journaled naming the stop and asked
again after each bar while the kill holds, until the exchange ends it; a restart after
kill -9 in between goes on asking. Before, the kill asked once and wrote only a
``venue_unreachable`` row not naming it: the stop could sell hours later, the very thing
the operator stopped. A stop that fires meanwhile is booked at the next bar to the one
exit the kill lets through, bound to the stop, and nothing is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import HISTORY, crash, emulated_run, rows
from tests.live.test_exchange_stops import FAST, _drive, _leg_orders
from tests.live.test_exit_cancel_unconfirmed import CANCEL, ORDER
from tests.live.test_restart_and_kill_edges import no_sleep
from tradeloom.journal import verify
from tradeloom.testing import ServerError


def _unconfirmed(journal: Path, client_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in rows(journal, "venue_unreachable")
        if r["operation"] == "cancel"
        and r["error"].startswith("CANCEL_UNCONFIRMED KILL_SWITCH: stop ")
        and client_id in r["error"].split()
    ]


@pytest.mark.slow
def test_a_kill_stop_cancel_without_effect_is_journaled_and_asked_again_each_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        emulator, exchange = run.emulator, run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        while not any(o.status == "NEW" for o in _leg_orders(run)):
            assert exchange.position < HISTORY + 60, "no stop was placed"
            _drive(run, runner, 1)
        (leg,) = [o for o in _leg_orders(run) if o.status == "NEW"]

        def status() -> str:
            return str(exchange.order(leg.market_id, order_id=leg.order_id).status)

        def asked() -> int:
            return sum(
                r.params.get("origClientOrderId") == leg.client_order_id
                or str(r.params.get("orderId")) == str(leg.order_id)
                for r in emulator.requests(CANCEL)
            )

        emulator.faults.always(CANCEL, ServerError(503))
        session = runner.session_or_fail
        session.kill("operator: stop")
        assert status() == "NEW", "the kill's cancel ended the stop: the test proves nothing"
        said = _unconfirmed(journal, leg.client_order_id)
        assert len(said) == 1, "the journal does not name the stop the kill left resting"
        tries = asked()
        _drive(run, runner, 1)  # the next bar asks again, and says so again
        assert asked() > tries, "the kill's cancel of the stop was not asked again"
        assert len(_unconfirmed(journal, leg.client_order_id)) == 2
        tries = asked()
        crash(runner)  # kill -9 with the stop resting

        again = run.runner(run_dir)
        again.start()
        assert again.session_or_fail.killed
        journaled = len(_unconfirmed(journal, leg.client_order_id))
        _drive(run, again, 1)  # still unanswered: asked again after the restart
        assert status() == "NEW"
        assert asked() > tries
        assert len(_unconfirmed(journal, leg.client_order_id)) == journaled + 1
        emulator.faults.clear()
        _drive(run, again, 1)  # answered: the stop is cancelled
        assert status() == "CANCELED"
        states = [r for r in rows(journal, "order_state") if r["client_id"] == leg.client_order_id]
        assert states[-1]["state"] == "cancelled"
        settled = asked()
        _drive(run, again, 2)  # nothing is left to cancel
        assert asked() == settled
        again.stop("test over")
        assert emulator.errors == []


@pytest.mark.slow
def test_a_stop_that_fires_while_the_kill_holds_is_booked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its trades are booked at the next bar to the one exit the kill lets through, the
    stop-loss exit bound to the stop (nothing is sent): the engine holds what the account
    holds, and a restart after kill -9 replays the same rows and reconciles with no
    difference. Before, they waited for an exit the kill never sends (until resume)."""
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        emulator, exchange = run.emulator, run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        while not any(o.status == "NEW" for o in _leg_orders(run)):
            assert exchange.position < HISTORY + 60, "no stop was placed"
            _drive(run, runner, 1)
        (leg,) = [o for o in _leg_orders(run) if o.status == "NEW"]
        emulator.faults.always(CANCEL, ServerError(503))
        session = runner.session_or_fail
        session.kill("operator: stop")
        if exchange.order(leg.market_id, order_id=leg.order_id).status != "NEW":
            pytest.fail("the kill's cancel ended the stop: the test proves nothing")
        while exchange.order(leg.market_id, order_id=leg.order_id).status != "FILLED":
            if exchange.position >= len(run.bars) - 4:
                pytest.fail("the stop never fired: the test proves nothing")
            _drive(run, runner, 1)
        sent = len(emulator.requests(ORDER))
        _drive(run, runner, 1)  # the bar after it fired books it, the kill holding
        assert session.killed
        bindings = [r for r in rows(journal, "stop_bound") if r["client_id"] == leg.client_order_id]
        assert len(bindings) == 1, "the stop's fill was not booked at the bar after it fired"
        bound = bindings[0]
        exit_ = next(r for r in rows(journal, "order") if r["id"] == bound["order_id"])
        assert exit_["reason"] == "EXIT_STOP_LOSS"
        assert len(emulator.requests(ORDER)) == sent, "the kill sent an order to the exchange"
        booked = [f for f in rows(journal, "fill") if f["order_id"] == bound["order_id"]]
        traded = [f for f in rows(journal, "venue_fill") if f["order_id"] == leg.client_order_id]
        assert sum(f["quantity"] for f in booked) == pytest.approx(
            sum(f["quantity"] for f in traded)
        )
        assert abs(session.engine.portfolio.position) < 1e-5, "the engine holds what the stop sold"
        assert abs(session.engine.portfolio.position - float(exchange.balance("BTC").total)) < 1e-5
        emulator.faults.clear()
        _drive(run, runner, 1)
        crash(runner)  # kill -9 under the kill, the stop booked

        again = run.runner(run_dir)
        again.start()  # replays the bars, the exit bound at the same bar, and reconciles
        assert again.session_or_fail.killed
        assert abs(again.session_or_fail.engine.portfolio.position) < 1e-5
        reconciled = rows(journal, "reconciled")
        assert reconciled, "the restart did not reconcile"
        assert (
            abs(reconciled[-1]["venue_position"] - reconciled[-1]["position"])
            <= (reconciled[-1]["tolerance"])
        )
        _drive(run, again, 1)
        again.stop("test over")
        verify(journal)
        assert len(emulator.requests(ORDER)) == sent
        assert emulator.errors == []
