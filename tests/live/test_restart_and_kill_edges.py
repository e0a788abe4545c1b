"""A live run's kills and restarts at their edges (a stop and a signal exit in one bar, a
kill just after a restart, a failed training or poll before one...): each test failed
before its fix.

The runs trade the loopback emulator on its clock (`live_emulated`); a strategy that
trains its first fold from the history and trades often (``FAST``) keeps them short.
"""

from __future__ import annotations

import itertools
import math
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.live.live_emulated import (
    HISTORY,
    STRATEGY,
    EmulatedRun,
    broken_links,
    crash,
    emulated_run,
    rows,
)
from tradeloom.engine.control import request_kill, request_resume
from tradeloom.engine.status import read_run
from tradeloom.journal import read_rows, verify
from tradeloom.live.accounts import venues
from tradeloom.live.recovery.journal_state import read_state
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.live.tick.runner import LiveRunner, Mode
from tradeloom.live.tick.session import KILL_CODE
from tradeloom.plugins.model.sklearn_model import ModelFitError, SklearnModel
from tradeloom.testing import DropConnection, PartialFill, Reject, ServerError


def edit(text: str, old: str, new: str) -> str:
    assert old in text, f"the strategy no longer has {old!r}"
    return text.replace(old, new)


FAST = edit(
    edit(STRATEGY, "threshold: 0.04, min_interval: 2", "threshold: 0.02, min_interval: 1"),
    "walk_forward: {train_window: 120, retrain_every: 40}",
    "walk_forward: {train_window: 80, retrain_every: 30}",
)
"""The first fold trains on the history (80 rows of 100); signals at most bars."""
SIZING = "  sizing: {kind: fixed_fraction, fraction: 0.5}\n"
ORDER = "POST /api/v3/order"


def drive(run: EmulatedRun, runner: LiveRunner, done: Callable[[], bool]) -> None:
    """Close bars one at a time until ``done()``; fail when the bars run out first."""
    while not done():
        assert run.emulator.exchange.position < len(run.bars), "the bars ran out"
        run.emulator.advance()
        runner.tick()


def ticks(run: EmulatedRun, runner: LiveRunner, bars: int) -> None:
    for _ in range(bars):
        run.emulator.advance()
        runner.tick()


@contextmanager
def signals(runner: LiveRunner) -> Iterator[LiveRunner]:
    """Let this process take `request_kill`'s SIGUSR2 (it holds the run directory)."""
    runner.inbox.install_signal_handlers()
    try:
        yield runner
    finally:
        runner.inbox.restore_signal_handlers()


def ask(runner: LiveRunner, action: str, reason: str) -> None:
    """Ask the running ``runner`` to kill or resume, as the CLI does, and let it act."""
    request = request_kill if action == "kill" else request_resume
    runner.inbox.wake.clear()
    delivery = request(runner.run_dir, reason)
    assert delivery.signalled
    assert runner.inbox.wake.wait(5)
    runner.tick()  # no bar closes: the request is acted on between bars


def state(runner: LiveRunner) -> str:
    return runner.session_or_fail.state


def test_a_stop_loss_exit_and_a_signal_exit_in_one_bar_sell_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    text = edit(FAST, SIZING, SIZING + "  stop_loss: 0.002\n")
    sells: dict[int, int] = {}
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(run_dir)
        runner.start()
        while run.emulator.exchange.position < HISTORY + 40:
            run.emulator.advance()
            before = len(run.emulator.requests(ORDER))
            runner.tick()
            sent = run.emulator.requests(ORDER)[before:]
            bar = len(runner.session_or_fail.history) - 1  # the bar that just closed
            sells[bar] = sum(r.params["side"] == "SELL" for r in sent)
        runner.stop("deploy")
        stops = [o for o in rows(journal, "order") if o["reason"] == "EXIT_STOP_LOSS"]
        assert len(stops) >= 3, "the stop-loss never fired: the test proves nothing"
        assert {bar: n for bar, n in sells.items() if n > 1} == {}
        # the account starts without BTC: a second sell is refused for want of it
        assert [r for r in rows(journal, "order_state") if r["state"] == "rejected"] == []

        again = run.runner(run_dir)
        again.start()  # reconciles the journal's position with the account's BTC
        (reconciled,) = rows(journal, "reconciled")
        difference = reconciled["venue_position"] - reconciled["position"]
        assert abs(difference) <= reconciled["tolerance"]
        again.stop("test over")
        assert run.emulator.errors == []


def test_a_kill_right_after_a_restart_with_a_fill_not_reported_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        exchange = run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        # the bar's order filled at the venue as it arrived; the engine hears of it
        # at the next bar's open, which this run never reaches
        drive(run, runner, lambda: bool(exchange.orders()))
        runner.stop("deploy")

        again = run.runner(run_dir)
        with signals(again):
            again.start()
            assert again.session_or_fail.engine.venue.pending(), "no order adopted"
            ask(again, "kill", "operator: market is going crazy")  # KeyError before the fix
            assert state(again) == "HALTED"
            assert again.session_or_fail.engine.halt_code == KILL_CODE
            again.stop("deploy")

        third = run.runner(run_dir)
        third.start()
        assert state(third) == "HALTED"
        sent = len(exchange.orders())
        ticks(run, third, 3)
        assert len(exchange.orders()) == sent
        third.stop("test over")
        assert run.emulator.errors == []
    changes = [(r["state"], r["code"]) for r in rows(journal, "trading_state")]
    assert changes == [("HALTED", KILL_CODE)]


@pytest.mark.parametrize(
    ("fault", "restarts"),
    [(DropConnection(after_accept=True), 0), (DropConnection(), 2)],
    ids=["taken-then-lost", "lost-on-its-way-in"],
)
def test_a_restart_journals_an_order_whose_answer_was_lost_unknown_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: DropConnection, restarts: int
) -> None:
    # The answer to the order is lost: the run journals it unknown and is killed before
    # the next open resolves it. Each restart journaled it unknown again (a second row
    # ``submitted -> unknown`` after ``submitted -> unknown``): one row per restart, not
    # per loss, and a chain of rows whose ``previous`` is not the state before it.
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        run.emulator.faults.next(ORDER, fault)
        runner = run.runner(run_dir)
        runner.start()
        drive(run, runner, lambda: bool(rows(journal, "order_sent")))
        (sent,) = rows(journal, "order_sent")
        client_id = sent["id"]
        assert [r["state"] for r in rows(journal, "order_state")] == ["submitted", "unknown"]
        crash(runner)
        for _ in range(restarts):  # killed again before the venue's window is over
            runner = run.runner(run_dir)
            runner.start()
            crash(runner)
        runner = run.runner(run_dir)
        runner.start()
        ticks(run, runner, 1)
        runner.stop("test over")
        assert run.emulator.errors == []
        taken = [o for o in run.emulator.exchange.orders() if o.client_order_id == client_id]
    changes = [
        (r["previous"], r["state"])
        for r in rows(journal, "order_state")
        if r["client_id"] == client_id
    ]
    assert [state for _, state in changes].count("unknown") == 1, changes
    # each row moves from the state the one before it entered
    assert [previous for previous, _ in changes] == ["pending"] + [s for _, s in changes[:-1]]
    # the journal's readers agree with its last row, and with the venue
    last = changes[-1][1]
    assert last == ("filled" if taken else "unknown")
    assert read_state(journal).order_states[client_id] == last
    still_open = [o.id for o in read_run(run_dir).status.open_orders]
    assert still_open == ([] if taken else [client_id])
    assert verify(journal).rows == sum(1 for _ in read_rows(journal))


_ORDER_ROWS = ("order_sent", "order_state", "venue_fill")


def order_rows(journal: Path) -> list[tuple[str, dict[str, Any]]]:
    """The journal's rows of what its venue holds (intents, states, trades), in order."""
    return [(r.kind, r.values) for r in read_rows(journal, list(_ORDER_ROWS))]


def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the live venue's retries and waits return at once."""
    real = venues.CcxtVenue
    monkeypatch.setattr(
        venues, "CcxtVenue", lambda *a, **kw: real(*a, **kw, sleep=lambda seconds: None)
    )


def test_a_restart_journals_only_what_changed_of_an_order_working_at_the_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An order a quarter filled per bar works when the run is killed. Each restart
    # journaled its states again (``submitted -> unknown``, ``unknown -> accepted``,
    # ``accepted -> partially_filled``): three rows per restart, the first of them moving
    # from a state the row before it had not entered. A restart journals what it finds
    # changed at the venue: nothing twice with no bar between, the one new trade once
    # after a bar in which the venue filled another quarter.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        exchange = run.emulator.exchange
        run.emulator.faults.next(ORDER, PartialFill(0.25))
        runner = run.runner(run_dir)
        runner.start()
        drive(run, runner, lambda: bool(exchange.orders()))  # a quarter fills as it arrives
        (order,) = exchange.orders()
        client_id = order.client_order_id
        crash(runner)
        before = order_rows(journal)
        assert [v["state"] for k, v in before if k == "order_state"][-1] == "partially_filled"
        for _ in range(2):  # killed again, nothing traded while it was down
            runner = run.runner(run_dir)
            runner.start()
            crash(runner)
            assert order_rows(journal) == before
        run.emulator.advance()  # the venue fills another quarter while the run is down
        runner = run.runner(run_dir)
        runner.start()
        added = order_rows(journal)[len(before) :]
        traded = [t for t in exchange.trades() if t.order_id == order.order_id]
        assert len(traded) == 2
        assert [(k, str(v["trade_id"])) for k, v in added] == [
            ("venue_fill", str(traded[-1].trade_id))
        ]
        ticks(run, runner, 1)
        runner.stop("test over")
        assert run.emulator.errors == []
        traded = [t for t in exchange.trades() if t.order_id == order.order_id]
    assert broken_links(journal) == []
    counted = [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
    assert sorted(str(r["trade_id"]) for r in counted) == sorted(str(t.trade_id) for t in traded)
    # the engine booked each trade once; the readers agree with the journal's last row
    booked = [f for f in rows(journal, "fill") if f["order_id"] == client_id]
    assert len(booked) == len(counted)
    last = [r["state"] for r in rows(journal, "order_state") if r["client_id"] == client_id][-1]
    assert read_state(journal).order_states[client_id] == last
    still_open = [o.id for o in read_run(run_dir).status.open_orders]
    assert (client_id in still_open) == (last not in ("filled", "cancelled", "rejected"))
    assert verify(journal).rows == sum(1 for _ in read_rows(journal))


def test_an_order_a_restart_adopts_journals_one_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The journal lost its last commits (its write-ahead log cut), the intent of an order
    # the venue took among them: the restart finds the order at the venue and adopts it
    # (``unknown -> adopted``), then journaled ``submitted -> unknown``, a row moving from
    # a state the row before it had not entered. The adopted order's rows are one chain,
    # and restarts with nothing changed at the venue journal nothing of it.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    kept = ("journal.sqlite", "journal.sqlite-wal")
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        runner = run.runner(run_dir)
        runner.start()
        drive(run, runner, lambda: bool(rows(journal, "order_sent")))
        sent = {r["id"] for r in rows(journal, "order_sent")}
        # the journal as a cut log will leave it: its connection open, as kill -9 does
        cut = {n: (run_dir / n).read_bytes() for n in kept if (run_dir / n).exists()}
        drive(run, runner, lambda: len(rows(journal, "order_sent")) > len(sent))
        lost = {r["id"] for r in rows(journal, "order_sent")} - sent
        crash(runner)
        for name in (*kept, "journal.sqlite-shm"):
            (run_dir / name).unlink(missing_ok=True)
        for name, data in cut.items():
            (run_dir / name).write_bytes(data)
        assert lost.isdisjoint(r["id"] for r in rows(journal, "order_sent"))
        runner = run.runner(run_dir)
        runner.start()
        crash(runner)
        changes = {
            client_id: [
                (r["previous"], r["state"])
                for r in rows(journal, "order_state")
                if r["client_id"] == client_id
            ]
            for client_id in lost
        }
        assert {i: c[0] for i, c in changes.items()} == dict.fromkeys(lost, ("unknown", "adopted"))
        before = order_rows(journal)
        for _ in range(2):  # nothing changed at the venue: nothing journaled
            runner = run.runner(run_dir)
            runner.start()
            crash(runner)
            assert order_rows(journal) == before
        runner = run.runner(run_dir)
        runner.start()
        ticks(run, runner, 1)
        runner.stop("test over")
        assert run.emulator.errors == []
        taken = {o.client_order_id: o for o in run.emulator.exchange.orders()}
    assert broken_links(journal) == [], changes
    journaled = read_state(journal)
    for client_id in lost:
        last = [r["state"] for r in rows(journal, "order_state") if r["client_id"] == client_id]
        assert journaled.order_states[client_id] == last[-1]
        counted = [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
        assert len({str(r["trade_id"]) for r in counted}) == len(counted)
        executed = float(taken[client_id].executed_qty)
        assert sum(r["quantity"] for r in counted) == pytest.approx(executed)
    assert verify(journal).rows == sum(1 for _ in read_rows(journal))


@pytest.mark.parametrize("mode", ["live", "paper"])
def test_a_restart_after_the_kill_file_refused_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    text = edit(STRATEGY, SIZING, SIZING + "  max_holding_bars: 3\n")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(run_dir, mode=mode)
        runner.start()
        drive(run, runner, lambda: abs(runner.session_or_fail.engine.portfolio.position) > 0.01)
        (run_dir / "KILL").write_text("operator: stop now\n")
        ticks(run, runner, 6)
        runner.stop("deploy")
        (halt,) = rows(journal, "trading_state")
        # HALTED sends nothing, the engine's own exits included: the position that
        # max_holding_bars would have closed is held until the operator resumes
        assert not [r for r in rows(journal, "order") if r["bar"] > halt["bar"]]
        assert abs(runner.session_or_fail.engine.portfolio.position) > 0.01

        again = run.runner(run_dir, mode=mode)
        again.start()  # RestartRefused (order_cancelled) before the fix
        assert state(again) == "HALTED"
        ticks(run, again, 2)
        again.stop("test over")
        assert run.emulator.errors == []


def test_a_restart_replays_a_rate_refusal_after_a_stop_loss_exit_in_one_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    text = edit(FAST, SIZING, SIZING + "  stop_loss: 0.002\n  limits: {max_orders_per_minute: 1}\n")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        # every order's answer is lost (it was accepted): a stop-loss exit is learned
        # filled at the next open; an order decided at the same bar close is refused
        run.emulator.faults.always(ORDER, ServerError(status=500, after_accept=True))
        runner = run.runner(run_dir)
        runner.start()

        def both() -> set[int]:
            refused = {r["bar"] for r in rows(journal, "rejection") if r["code"] == "ORDER_RATE"}
            stops = {r["bar"] for r in rows(journal, "order") if r["reason"] == "EXIT_STOP_LOSS"}
            return refused & stops

        # the bars depend on the fold in effect at the start (the backtest's): play on
        # until a stop exit and a refusal fall in one bar
        drive(run, runner, lambda: bool(both()))
        runner.stop("deploy")

        again = run.runner(run_dir)
        again.start()  # the replay makes the same refusals, or the restart is refused
        ticks(run, again, 2)
        again.stop("test over")
        assert run.emulator.errors == []


def test_kill_then_resume_leaves_a_risk_halt_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    text = edit(
        FAST, SIZING, SIZING + "  rules:\n    - {kind: drawdown_halt, max_drawdown: 0.001}\n"
    )
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(run_dir, mode="paper")
        with signals(runner):
            runner.start()
            engine = runner.session_or_fail.engine
            drive(run, runner, lambda: engine.halt_code == "MAX_DRAWDOWN_HALT")
            ticks(run, runner, 1)  # the halt's exit fills
            ask(runner, "kill", "operator: cancel everything")
            assert state(runner) == "HALTED"
            ask(runner, "resume", "operator: all clear")
            # the kill switch's halt is lifted; the drawdown's stays, and holds the run
            # HALTED (issue 24: a drawdown halt is the HALTED state)
            assert state(runner) == "HALTED"
            assert engine.halt_code == "MAX_DRAWDOWN_HALT"
            states = [
                (r["previous"], r["state"], r["code"]) for r in rows(journal, "trading_state")
            ]
            assert states == [
                ("ACTIVE", "HALTED", "MAX_DRAWDOWN_HALT"),
                ("HALTED", "HALTED", "KILL_SWITCH"),
                ("HALTED", "HALTED", "RESUME"),
            ]
            orders = len(rows(journal, "order"))
            ticks(run, runner, 10)
            assert len(rows(journal, "order")) == orders  # still halted
            runner.stop("test over")


def test_a_new_run_in_a_deleted_run_directory_sends_new_client_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "runs" / "live_rf-live"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        exchange = run.emulator.exchange
        first = run.runner(run_dir)
        first.start()
        drive(run, first, lambda: len(exchange.orders()) >= 2)
        first.stop("done")
        first_ids = {o.client_order_id for o in exchange.orders()}
        (started,) = rows(journal, "run_started")
        first_key = started["run_key"]

        shutil.rmtree(run_dir)  # start over in the same (default) directory
        second = run.runner(run_dir)
        second.start()
        drive(run, second, lambda: len(exchange.orders()) >= len(first_ids) + 2)
        second.stop("done")
        second_ids = {o.client_order_id for o in exchange.orders()} - first_ids
        (started,) = rows(journal, "run_started")
        assert run.emulator.errors == []
    assert started["run_key"] != first_key
    assert len(second_ids) >= 2  # none of them was one of the first run's ids
    assert all(started["run_key"] in i and first_key not in i for i in second_ids)
    assert all(first_key in i for i in first_ids)


def flaky_training(monkeypatch: pytest.MonkeyPatch, fail_call: int) -> list[int]:
    """Make the ``fail_call``-th fold's training fail; return the first bar it predicts."""
    real = SklearnModel._train
    calls: list[int] = []
    failed: list[int] = []

    def train(self: SklearnModel, fold: Any, *args: Any) -> Any:
        calls.append(fold.predict_start)
        if len(calls) == fail_call:
            failed.append(fold.predict_start)
            return ModelFitError("model: killed in fit (out of memory)")
        return real(self, fold, *args)

    monkeypatch.setattr(SklearnModel, "_train", train)
    return failed


def probabilities(journal: Path, after: int) -> dict[int, float]:
    return {
        r["bar"]: math.nan if r["probability"] is None else r["probability"]
        for r in rows(journal, "live_bar")
        if r["bar"] > after
    }


def test_a_restart_trains_the_scheduled_fold_whose_training_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    reference = tmp_path / "reference"
    reference.mkdir()
    monkeypatch.chdir(reference)  # a cache of its own: the run below starts at bar 100
    with emulated_run(reference, monkeypatch, text=FAST) as run:
        runner = run.runner(reference / "run")
        runner.start()
        ticks(run, runner, 45)
        runner.stop("done")
    expected = probabilities(reference / "run" / "journal.sqlite", HISTORY - 1)

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    failed = flaky_training(monkeypatch, fail_call=2)  # the first fold after the startup's
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        first = run.runner(run_dir)
        first.start()
        with pytest.raises(ModelFitError, match="killed in fit"):
            ticks(run, first, 45)
        first.stop("ModelFitError")
        (missed,) = failed
        stopped_at = run.emulator.exchange.position - 1
        assert missed == stopped_at + 1  # the fold was due at the next bar

        again = run.runner(run_dir)
        again.start()
        latest = again.session_or_fail.p.model.latest
        assert latest.training.predict_start == missed
        ticks(run, again, HISTORY + 45 - run.emulator.exchange.position)
        again.stop("test over")
    trained = [r for r in rows(journal, "model_trained") if r["reason"] == "scheduled"]
    assert missed in [r["predict_start"] for r in trained]
    live = probabilities(journal, stopped_at)
    assert live, "no bar closed after the restart"
    assert live == {bar: expected[bar] for bar in live}  # as if the fold never failed


def test_a_restart_after_a_failed_startup_training_predicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    failed = flaky_training(monkeypatch, fail_call=1)
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        first = run.runner(run_dir)
        with pytest.raises(ModelFitError, match="killed in fit"):
            first.start()
        first.stop("ModelFitError")
        assert failed, "the startup training did not fail"
        assert len(rows(journal, "run_started")) == 1

        again = run.runner(run_dir)
        again.start()  # a restart: the journal has its started row
        assert rows(journal, "model_trained"), "no fold trained at the restart"
        ticks(run, again, 10)
        again.stop("test over")
    live = probabilities(journal, HISTORY - 1)
    assert len(live) == 10
    assert all(math.isfinite(p) for p in live.values()), live


@contextmanager
def stopped_while_an_order_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmulatedRun]:
    """A run stopped while its first order works, a quarter filled as it arrived, then
    down for a bar, in which the venue fills another quarter (retries do not sleep)."""
    monkeypatch.chdir(tmp_path)
    real = venues.CcxtVenue
    monkeypatch.setattr(
        venues, "CcxtVenue", lambda *a, **kw: real(*a, **kw, sleep=lambda seconds: None)
    )
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        exchange = run.emulator.exchange
        run.emulator.faults.next(ORDER, PartialFill(0.25))
        runner = run.runner(tmp_path / "run")
        runner.start()
        drive(run, runner, lambda: bool(exchange.orders()))  # a quarter fills as it arrives
        runner.stop("deploy")
        run.emulator.advance()
        yield run


def test_a_restart_whose_poll_failed_after_counting_a_trade_reconciles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with stopped_while_an_order_works(tmp_path, monkeypatch) as run:
        exchange = run.emulator.exchange
        # The restart's poll counts that trade, then its read of the open orders fails
        # every attempt: the trade is held for the next call, and the account has it.
        run.emulator.faults.next("GET /api/v3/openOrders", ServerError(503), times=5)
        again = run.runner(run_dir)
        again.start()  # refused before the fix: the held trade was not in the position
        (reconciled,) = rows(journal, "reconciled")
        assert len(rows(journal, "venue_fill")) == 2
        assert reconciled["position"] == pytest.approx(reconciled["venue_position"])
        ticks(run, again, 2)
        again.stop("test over")
        assert run.emulator.errors == []
        # a trade the last poll counted is booked at the next bar's open, which never came
        assert again.exchange_venue is not None
        undelivered = again.exchange_venue.markets["BTC/USDT"].undelivered_position()
    fills = rows(journal, "fill")
    held = float(exchange.balance("BTC").total)
    (market,) = rows(journal, "market_at_start")
    position = sum(f["side"] * f["quantity"] for f in fills)
    assert position + undelivered == pytest.approx(held - market["base_at_start"], abs=1e-8)


@pytest.mark.parametrize("poll", ["answered", "failed"])
def test_a_restart_allows_for_a_working_order_only_when_its_trades_could_not_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poll: str
) -> None:
    # An order a quarter filled per bar works on while the run is down, and a manual buy
    # of 0.01 BTC lands meanwhile. Answered, the restart counts the order's trades and
    # the manual buy is refused; with its trades unread (myTrades failing every
    # attempt), the order may have filled up to what it has left, which covers the buy:
    # the restart trades on (before the fix it refused a run that had only its own fills).
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with stopped_while_an_order_works(tmp_path, monkeypatch) as run:
        (order,) = run.emulator.exchange.orders()
        run.emulator.client().create_order("BTC/USDT", "market", "buy", 0.01)
        if poll == "failed":
            run.emulator.faults.next("GET /api/v3/myTrades", ServerError(503), times=5)
        again = run.runner(run_dir)
        if poll == "answered":
            with pytest.raises(RestartRefused, match="the journal's position is"):
                again.start()
            again.inbox.release_pid()
            (reconciled,) = rows(journal, "reconciled")
            assert reconciled["unknown_orders"] == []
            return
        again.start()
        (reconciled,) = rows(journal, "reconciled")
        assert reconciled["unknown_orders"] == [order.client_order_id]
        assert reconciled["venue_position"] - reconciled["position"] > 0.01
        again.stop("test over")
        assert run.emulator.errors == []


def test_a_restart_adopts_what_an_order_found_nowhere_filled_while_the_run_was_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run is killed while its market order rests acknowledged (no trade counted: the
    # journal has no venue id of it); it fills while the run is down, and the exchange
    # finds it by its client id no more (it archives finished orders). The restart cannot
    # count its trades, and only it can have made the account's difference: the reconcile
    # books that difference to it (``reconciled-{id}``, at the price it was decided at)
    # and ends it ORDER_LOST, with a log line saying so; the engine books it once and a
    # later restart reconciles clean. Before, the restart refused on the position mismatch
    # for good (the order was asked for at every restart, never found).
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
    limits = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, orders: "
    text = edit(FAST, execution, limits + "{type: limit, limit: {offset_bps: 2}}}")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        exchange = run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        drive(run, runner, lambda: bool(exchange.orders()))
        (order,) = exchange.orders()
        client_id = order.client_order_id
        assert read_state(journal).order_states[client_id] == "accepted"
        assert rows(journal, "venue_fill") == []
        crash(runner)
        while exchange.orders()[0].status == "NEW":  # it fills while the run is down
            run.emulator.advance()
        assert exchange.orders()[0].status == "FILLED"
        run.emulator.faults.always("GET /api/v3/order", Reject(-2013, "Order does not exist."))
        again = run.runner(run_dir)
        with capture_logs() as logs:
            again.start()
        (adopted,) = [e for e in logs if e["event"] == "reconcile_adopted_position"]
        assert [b["client_id"] for b in adopted["booked"]] == [client_id]
        (reconciled,) = rows(journal, "reconciled")
        assert reconciled["unknown_orders"] == [client_id]
        ticks(run, again, 2)
        again.stop("test over")
        again = run.runner(run_dir)
        again.start()  # the booked fill is the journal's now: a clean reconcile
        again.stop("test over")
        posted = run.emulator.requests(ORDER)
        assert run.emulator.errors == []
        held = float(exchange.balance("BTC").total)
    counted = [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
    assert [str(r["trade_id"]) for r in counted] == [f"reconciled-{client_id}"]
    booked = [f for f in rows(journal, "fill") if f["order_id"] == client_id]
    assert len(booked) == 1
    _, second = rows(journal, "reconciled")
    assert second["position"] == pytest.approx(second["venue_position"], abs=1e-9)
    assert second["unknown_orders"] == []
    (market,) = rows(journal, "market_at_start")
    fills = rows(journal, "fill")
    position = sum(f["side"] * f["quantity"] for f in fills)
    assert position == pytest.approx(held - market["base_at_start"], abs=1e-8)
    states = [
        (r["previous"], r["state"])
        for r in rows(journal, "order_state")
        if r["client_id"] == client_id
    ]
    assert states[-1][1] in ("filled", "cancelled"), states
    assert broken_links(journal) == []
    assert [r for r in posted if r.params.get("newClientOrderId") == client_id] != []
    assert len({r.params.get("newClientOrderId") for r in posted}) == len(posted)


def restarted_while_lookups_fail(
    run: EmulatedRun, run_dir: Path, *, fills: bool = True
) -> tuple[LiveRunner, str]:
    """Kill the run while its limit entry rests acknowledged (no trade counted: the journal
    has no venue id of it), let it fill while the run is down (``fills``; else it is
    cancelled at the exchange, unfilled), and restart while its lookups fail every
    attempt (503) and the exchange finds it by its client id no more after: the restart's
    reconcile allows for it and books nothing. Return the restarted runner, the lookups'
    window over (as if the bars were hours), and the order's client id."""
    exchange = run.emulator.exchange
    runner = run.runner(run_dir)
    runner.start()
    drive(run, runner, lambda: bool(exchange.orders()))
    (order,) = exchange.orders()
    crash(runner)
    if fills:
        while exchange.orders()[0].status == "NEW":  # it fills while the run is down
            run.emulator.advance()
    else:
        exchange.cancel("BTCUSDT", client_order_id=order.client_order_id)
    run.emulator.faults.next("GET /api/v3/order", ServerError(503), times=10)
    run.emulator.faults.always("GET /api/v3/order", Reject(-2013, "Order does not exist."))
    again = run.runner(run_dir)
    again.start()  # the reconcile allows for it (its trades unread) and books nothing
    (reconciled,) = rows(run_dir / "journal.sqlite", "reconciled")
    assert reconciled["unknown_orders"] == [order.client_order_id]
    assert again.exchange_venue is not None
    again.exchange_venue.markets["BTC/USDT"].venue.settle_seconds = 0.0
    return again, str(order.client_order_id)


def stopped_after_a_restart_whose_lookups_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: EmulatedRun, run_dir: Path
) -> str:
    """The adopt test's order (acknowledged, no venue id, filled while the run is down,
    found nowhere by its client id), restarted while its lookups fail every attempt
    (503), then ticked until five lookups found it nowhere, by a run that ends it
    ``ORDER_LOST`` with nothing booked (as a run before the mid-run reconcile did, and a
    market that cannot read its account does); return its client id."""
    again, client_id = restarted_while_lookups_fail(run, run_dir)
    assert again.exchange_venue is not None
    again.exchange_venue.markets["BTC/USDT"].standing = None  # no mid-run reconcile
    with capture_logs() as logs:
        ticks(run, again, 3)
    assert not [e for e in logs if e["event"] == "reconcile_adopted_position"]
    assert [e for e in logs if e["event"] == "order_lost"], "never ended ORDER_LOST"
    again.stop("test over")
    return client_id


def test_a_later_restart_books_an_order_the_run_ended_order_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The changelog's promise (a restart no longer refuses for good when such an order
    # filled while the run was down) holds when the first restart's lookup answers. When
    # it failed, the reconcile allowed for the order and booked nothing; five lookups
    # later a run that does not reconcile mid-run (one before that fix, whose journal a
    # new version restarts) ends it ORDER_LOST and tells the engine it was cancelled,
    # whole. The next restart handed over only what the engine still counts pending: the
    # order was never looked up (nor counted unaccounted) again, and the account's
    # difference it made was refused at that restart and every one after.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
    limits = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, orders: "
    text = edit(FAST, execution, limits + "{type: limit, limit: {offset_bps: 2}}}")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        client_id = stopped_after_a_restart_whose_lookups_failed(
            tmp_path, monkeypatch, run, run_dir
        )
        last = run.runner(run_dir)
        last.start()  # refused on main: the journal's position is short of the account's
        last.stop("test over")
    booked = [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
    assert [str(r["trade_id"]) for r in booked] == [f"reconciled-{client_id}"]


def test_a_restart_whose_lookups_failed_enters_once_for_one_intent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The acknowledged limit entry filled while the run was down; the restart's lookups
    # of it fail every attempt (503): the reconcile allows for it, as it may have filled.
    # The next bar the engine decides the same entry again (an order of the same size)
    # and the exchange fills it: the account holds both, the journal one. Nothing may be
    # sent for an intent whose order may have filled until that order's end is known.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
    limits = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, orders: "
    text = edit(FAST, execution, limits + "{type: limit, limit: {offset_bps: 2}}}")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        exchange = run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        drive(run, runner, lambda: bool(exchange.orders()))
        crash(runner)
        while exchange.orders()[0].status == "NEW":  # it fills while the run is down
            run.emulator.advance()
        run.emulator.faults.next("GET /api/v3/order", ServerError(503), times=10)
        run.emulator.faults.always("GET /api/v3/order", Reject(-2013, "Order does not exist."))
        again = run.runner(run_dir)
        again.start()
        ticks(run, again, 3)
        assert again.exchange_venue is not None
        undelivered = again.exchange_venue.markets["BTC/USDT"].undelivered_position()
        again.stop("test over")
        held = float(exchange.balance("BTC").total)
    (market,) = rows(journal, "market_at_start")
    position = sum(f["side"] * f["quantity"] for f in rows(journal, "fill"))
    # the journal's position, and what the pending entry may still fill, covers the account
    (sent, *_) = rows(journal, "order")
    assert held - market["base_at_start"] <= position + undelivered + sent["quantity"] + 1e-8
    assert len([r for r in rows(journal, "order") if r["reason"] == "ENTRY"]) == 1
    # the replacement its cancel could not end is refused, naming the order left working
    refused = [r for r in rows(journal, "rejection") if r["code"] == "CANCEL_UNCONFIRMED"]
    assert refused, "nothing says why the entry was not sent"
    assert refused[0]["message"] == (
        "order 1 works on at the venue: its cancel took no effect (not answered, or the "
        "order was not found while it may have filled); nothing more is sent for the "
        "symbol until its end and its fills are known"
    )


def cash_gap(journal: Path, quote_at_start: float, quote: float) -> float:
    """What the account paid (its quote balance's fall since ``quote_at_start``) less what
    the journal's fills paid: 0 when the engine's cash is the account's."""
    paid = sum(f["side"] * f["quantity"] * f["price"] + f["fee"] for f in rows(journal, "fill"))
    return quote_at_start - quote - paid


def lost_while_down(run: EmulatedRun, run_dir: Path, side: str) -> tuple[LiveRunner, str]:
    """Kill the run while an order of ``side`` rests acknowledged (no trade counted: the
    journal has no venue id of it), let it fill while the run is down, and restart it
    while the exchange finds it by its client id no more; return the restarted runner,
    its reconcile done, and the order's client id."""
    exchange = run.emulator.exchange
    runner = run.runner(run_dir)
    runner.start()
    drive(run, runner, lambda: [o for o in exchange.orders() if o.status == "NEW"] != [])
    (order,) = [o for o in exchange.orders() if o.status == "NEW"]
    assert order.side == side, f"the order that rests is a {order.side}"
    crash(runner)
    while exchange.orders()[-1].status == "NEW":  # it fills while the run is down
        run.emulator.advance()
    run.emulator.faults.always("GET /api/v3/order", Reject(-2013, "Order does not exist."))
    again = run.runner(run_dir)
    again.start()
    return again, str(order.client_order_id)


def test_a_restart_books_an_order_found_nowhere_with_the_cash_the_account_paid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The adopt test's order (a limit entry, acknowledged, no venue id, filled while the
    # run was down, found nowhere by its client id): the reconcile booked the base
    # difference at the order's limit price, which is what the exchange filled it at,
    # with fee 0. The exchange charged its maker fee in BTC (a Binance spot buy), so the
    # difference was net of it: the journal's cash, and so its equity, drawdown and
    # sizing, stayed above the account's by that fee (24.97 USDT) for good. Now the
    # booking is the trade the exchange made: the gross quantity, the fee in BTC.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=LIMIT_FAST) as run:
        exchange = run.emulator.exchange
        quote_at_start = float(exchange.balance("USDT").total)
        again, client_id = lost_while_down(run, run_dir, "BUY")
        ticks(run, again, 1)  # the booked fill reaches the engine at this bar's open
        position, held = engine_and_account(run, again, journal)
        again.stop("test over")
        assert run.emulator.errors == []
        quote = float(exchange.balance("USDT").total)
        assert len(exchange.trades()) == len(rows(journal, "fill"))  # each one booked
        (trade, *_) = exchange.trades()  # the lost order's: its fee in BTC (a buy)
        fee = float(trade.commission * trade.price)
    assert position == pytest.approx(held, abs=1e-8)
    # on main the account paid more than the journal's fills by exactly that fee (24.97)
    assert cash_gap(journal, quote_at_start, quote) == pytest.approx(0.0, abs=fee * 1e-6)
    (booked,) = [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
    assert str(booked["trade_id"]) == f"reconciled-{client_id}"
    assert (booked["quantity"], booked["fee_currency"]) == (float(trade.qty), "BTC")
    assert booked["fee_cost"] == pytest.approx(float(trade.commission), abs=1e-12)


def test_a_restart_books_an_exit_found_nowhere_with_the_cash_the_account_received(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same for a limit exit: a Binance spot sell's fee is charged in USDT, so the
    # base difference is the quantity sold, and the booking pays the market's maker fee
    # on it in quote. Before, the journal's cash was above the account's by that fee.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=LIMIT_FAST) as run:
        exchange = run.emulator.exchange
        quote_at_start = float(exchange.balance("USDT").total)
        runner = run.runner(run_dir)
        runner.start()
        drive(run, runner, lambda: any(o.status == "FILLED" for o in exchange.orders()))
        runner.stop("entered")
        again, client_id = lost_while_down(run, run_dir, "SELL")
        ticks(run, again, 1)
        position, held = engine_and_account(run, again, journal)
        again.stop("test over")
        assert run.emulator.errors == []
        quote = float(exchange.balance("USDT").total)
        (trade,) = [t for t in exchange.trades() if t.side == "SELL"]
        assert trade.commission_asset == "USDT"
    assert position == pytest.approx(held, abs=1e-8)
    assert cash_gap(journal, quote_at_start, quote) == pytest.approx(0.0, abs=1e-6)
    (booked,) = [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
    assert str(booked["trade_id"]) == f"reconciled-{client_id}"
    assert (booked["quantity"], booked["fee_currency"]) == (float(trade.qty), "USDT")
    assert booked["fee_cost"] == pytest.approx(float(trade.commission), abs=1e-8)


LIMIT_FAST = edit(
    FAST,
    "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}",
    "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, orders: "
    "{type: limit, limit: {offset_bps: 2}}}",
)
"""``FAST`` with limit entries: one rests acknowledged across a kill."""


def engine_and_account(run: EmulatedRun, runner: LiveRunner, journal: Path) -> tuple[float, float]:
    """The engine's position (its fills, and those counted not delivered yet) and the
    account's since the run's first start."""
    assert runner.exchange_venue is not None
    undelivered = runner.exchange_venue.markets["BTC/USDT"].undelivered_position()
    position = sum(f["side"] * f["quantity"] for f in rows(journal, "fill"))
    (market,) = rows(journal, "market_at_start")
    held = float(run.emulator.exchange.balance("BTC").total) - market["base_at_start"]
    return position + undelivered, held


def entered_twice(journal: Path) -> list[int]:
    """The bars of the entries the engine decided while the one before was not exited:
    an entry after an entry, not after an exit of what it bought."""
    decided = [(r["bar"], r["reason"]) for r in rows(journal, "order")]
    return [
        bar
        for (_, before), (bar, reason) in itertools.pairwise(decided)
        if reason == before == "ENTRY"
    ]


def buys_after(run: EmulatedRun, client_id: str) -> list[str]:
    """The client ids of the buy orders posted after ``client_id``'s."""
    posted = [r.params for r in run.emulator.requests(ORDER)]
    ids = [str(p.get("newClientOrderId")) for p in posted]
    later = posted[ids.index(client_id) + 1 :]
    return [str(p.get("newClientOrderId")) for p in later if p.get("side") == "BUY"]


def test_an_order_lost_mid_run_that_filled_is_booked_at_once_and_never_entered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The restart's lookups of its acknowledged entry failed (503), so its reconcile
    # booked nothing; five lookups later, mid-run, the order is found nowhere. It had
    # filled while the run was down. Before, it ended ORDER_LOST and the engine heard it
    # cancelled whole: flat, it entered again on the next long signal (the account held
    # two entries, the journal one) until a restart. Now the account is read at once, as
    # a restart's reconcile reads it, and the difference booked to the order (trade
    # ``reconciled-{id}``): the engine holds what the account holds and sends no entry.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=LIMIT_FAST) as run:
        quote_at_start = float(run.emulator.exchange.balance("USDT").total)
        again, client_id = restarted_while_lookups_fail(run, run_dir)
        with capture_logs() as logs:
            ticks(run, again, 4)  # two lookups a bar: the fifth finds it nowhere
        (adopted,) = [e for e in logs if e["event"] == "reconcile_adopted_position"]
        assert [b["client_id"] for b in adopted["booked"]] == [client_id]
        position, held = engine_and_account(run, again, journal)
        assert position == pytest.approx(held, abs=1e-8)
        assert held > 0.0
        ticks(run, again, 8)
        position, held = engine_and_account(run, again, journal)
        again.stop("test over")
        assert run.emulator.errors == []
        quote = float(run.emulator.exchange.balance("USDT").total)
    assert position == pytest.approx(held, abs=1e-8)
    assert cash_gap(journal, quote_at_start, quote) == pytest.approx(0.0, abs=1e-4)
    assert entered_twice(journal) == [], "a second entry on the position the account held"
    booked = [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
    assert [str(r["trade_id"]) for r in booked] == [f"reconciled-{client_id}"]
    assert len([f for f in rows(journal, "fill") if f["order_id"] == client_id]) == 1
    assert broken_links(journal) == []
    assert verify(journal).rows == sum(1 for _ in read_rows(journal))


def test_an_order_lost_mid_run_that_never_filled_books_nothing_and_trading_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same order, cancelled unfilled at the exchange while the run was down: the
    # account holds what the journal holds, so nothing is booked; it ends ORDER_LOST
    # and the engine, flat, enters again on a later signal.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=LIMIT_FAST) as run:
        again, client_id = restarted_while_lookups_fail(run, run_dir, fills=False)
        with capture_logs() as logs:
            ticks(run, again, 4)
        assert [e for e in logs if e["event"] == "order_lost"], "never ended ORDER_LOST"
        assert not [
            e for e in logs if e["event"] in ("reconcile_adopted_position", "order_lost_held")
        ]
        drive(run, again, lambda: bool(buys_after(run, client_id)))
        position, held = engine_and_account(run, again, journal)
        again.stop("test over")
        assert run.emulator.errors == []
    assert position == pytest.approx(held, abs=1e-8)
    ended = [r for r in rows(journal, "order_cancelled") if r["order_id"] == client_id]
    assert [r["reason"] for r in ended] == ["ORDER_LOST"]
    assert not [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
    assert broken_links(journal) == []
    assert verify(journal).rows == sum(1 for _ in read_rows(journal))


def test_an_order_lost_mid_run_holds_its_market_while_the_account_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The filled order is found nowhere while the account's balance cannot be read (503
    # every attempt): what it filled is not known, so it is not ended and the engine
    # sends nothing for the market (its next decision there is refused
    # CANCEL_UNCONFIRMED), journaled as the venue's trouble; once the balance answers,
    # the fill is booked and the engine holds what the account holds, entered once.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    account = "GET /api/v3/account"
    with emulated_run(tmp_path, monkeypatch, text=LIMIT_FAST) as run:
        again, client_id = restarted_while_lookups_fail(run, run_dir)
        run.emulator.faults.always(account, ServerError(503))
        with capture_logs() as logs:
            ticks(run, again, 8)
        assert [e for e in logs if e["event"] == "order_lost_held"]
        assert not [e for e in logs if e["event"] in ("order_lost", "reconcile_adopted_position")]
        assert buys_after(run, client_id) == []
        troubles = [r for r in rows(journal, "venue_unreachable") if r["operation"] == "reconcile"]
        assert troubles, "nothing says why the market is held"
        assert troubles[0]["error"].startswith(
            f"ORDER_LOST_UNRECONCILED: {client_id} found nowhere by client order id, and "
            "the account's position could not be read ("
        ), troubles[0]["error"]
        run.emulator.faults.clear()
        run.emulator.faults.always("GET /api/v3/order", Reject(-2013, "Order does not exist."))
        with capture_logs() as logs:
            ticks(run, again, 1)
        (adopted,) = [e for e in logs if e["event"] == "reconcile_adopted_position"]
        assert [b["client_id"] for b in adopted["booked"]] == [client_id]
        ticks(run, again, 6)
        position, held = engine_and_account(run, again, journal)
        again.stop("test over")
        assert run.emulator.errors == []
    assert position == pytest.approx(held, abs=1e-8)
    assert entered_twice(journal) == []
    refused = [r for r in rows(journal, "rejection") if r["code"] == "CANCEL_UNCONFIRMED"]
    assert refused, "the engine decided nothing for the market while it was held"
    assert broken_links(journal) == []
    assert verify(journal).rows == sum(1 for _ in read_rows(journal))


def test_an_order_lost_mid_run_is_booked_when_the_account_paid_less_than_the_market_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mid-run test's order (a limit entry found nowhere, filled while the run was
    # down), on an account the exchange charges 0.02% where ccxt's market says 0.1% (a
    # VIP tier; a fee paid in BNB leaves the whole quantity in BTC the same way). The
    # account's BTC difference is more than the order's rest net of the market's rate,
    # so it could not be booked to it: the market was held (CANCEL_UNCONFIRMED) at every
    # open for good, the engine short of the account's position, and every restart the
    # same. The order filled its rest: the whole rest is booked, the fee the account shows.
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=LIMIT_FAST, maker_fee=Decimal("0.0002")) as run:
        again, client_id = restarted_while_lookups_fail(run, run_dir)
        with capture_logs() as logs:
            ticks(run, again, 4)  # two lookups a bar: the fifth finds it nowhere
        assert not [e for e in logs if e["event"] == "order_lost_held"]
        (adopted,) = [e for e in logs if e["event"] == "reconcile_adopted_position"]
        assert [b["client_id"] for b in adopted["booked"]] == [client_id]
        ticks(run, again, 1)
        position, held = engine_and_account(run, again, journal)
        again.stop("test over")
        assert run.emulator.errors == []
        (trade, *_) = run.emulator.exchange.trades()
    assert position == pytest.approx(held, abs=1e-8)
    (booked,) = [r for r in rows(journal, "venue_fill") if r["order_id"] == client_id]
    assert (booked["quantity"], booked["fee_currency"]) == (float(trade.qty), "BTC")
    assert booked["fee_cost"] == pytest.approx(float(trade.commission), abs=1e-12)
