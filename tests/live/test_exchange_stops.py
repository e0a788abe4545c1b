"""A live position's stop-loss rests at the exchange: placed, filled there, booked once.

The runs trade the loopback emulator on its clock (`live_emulated`); the strategy
trains its first fold from the history and trades often, with a stop-loss tight
enough to be reached within a few bars.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.engine.test_status_rows import assert_rows_read_as_frames
from tests.live.live_emulated import HISTORY, STRATEGY, EmulatedRun, crash, emulated_run, rows
from tradeloom.domain import Order
from tradeloom.engine.status_rows import read_status
from tradeloom.live.orders.exchange_venue import ExchangeVenue
from tradeloom.live.recovery.handover import recover_stops
from tradeloom.live.recovery.journal_state import JournalState
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.protocols_orders.client_ids import derived_client_id

FAST = (
    STRATEGY.replace("threshold: 0.04, min_interval: 2", "threshold: 0.02, min_interval: 1")
    .replace(
        "walk_forward: {train_window: 120, retrain_every: 40}",
        "walk_forward: {train_window: 80, retrain_every: 30}",
    )
    .replace(
        "  sizing: {kind: fixed_fraction, fraction: 0.5}\n",
        "  sizing: {kind: fixed_fraction, fraction: 0.5}\n  stop_loss: 0.002\n"
        "  take_profit: 0.004\n",
    )
)
ORDER = "POST /api/v3/order"


def _posted(run: EmulatedRun) -> list[dict[str, str]]:
    return [dict(r.params) for r in run.emulator.requests(ORDER)]


def _drive(run: EmulatedRun, runner: LiveRunner, bars: int) -> None:
    for _ in range(bars):
        run.emulator.advance()
        runner.tick()


def _leg_orders(run: EmulatedRun) -> list[object]:
    return [o for o in run.emulator.exchange.orders() if o.type == "STOP_LOSS"]


@pytest.mark.slow
def test_a_stop_rests_at_the_exchange_and_its_fill_is_the_engines_stop_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "run" / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        # until a stop filled at the exchange (the bars depend on the fold in effect at
        # the start: the backtest's, not one written here)
        while not rows(journal, "stop_bound"):
            assert run.emulator.exchange.position < HISTORY + 60, "no stop filled"
            _drive(run, runner, 1)
        _drive(run, runner, 2)
        runner.stop("test over")
        posted = _posted(run)
        orders = {o["id"]: o for o in rows(journal, "order")}
        stops = [p for p in posted if p["type"] == "STOP_LOSS"]
        assert stops, "no stop was placed: the test proves nothing"
        for stop in stops:  # one per entry, under the entry's derived id
            entry = stop["newClientOrderId"][: -len("-sl")]
            assert orders[entry]["side"] == 1
            assert stop["newClientOrderId"] == derived_client_id(entry, "sl")
            assert stop["side"] == "SELL"
        assert Counter(p["newClientOrderId"] for p in posted).most_common(1)[0][1] == 1
        bound = rows(journal, "stop_bound")
        assert bound, "no stop filled at the exchange: the test proves nothing"
        fills = rows(journal, "fill")
        venue_fills = rows(journal, "venue_fill")
        for row in bound:
            exit_ = orders[row["order_id"]]
            assert exit_["reason"] in ("EXIT_STOP_LOSS", "EXIT_SIGNAL", "EXIT_HALT")
            # nothing was sent for the exit: its fills are the resting stop's
            assert row["order_id"] not in {p["newClientOrderId"] for p in posted}
            booked = [f for f in fills if f["order_id"] == row["order_id"]]
            traded = [f for f in venue_fills if f["order_id"] == row["client_id"]]
            assert [f["price"] for f in booked] == [f["price"] for f in traded]
            # the whole position, less what the lot step (1e-5 BTC) leaves as dust
            assert 0.0 <= exit_["quantity"] - sum(f["quantity"] for f in booked) < 1e-5
        # every stop-loss exit the exchange filled is the one exit of its position
        market_sells = [p for p in posted if p["type"] == "MARKET" and p["side"] == "SELL"]
        stop_exits = {r["order_id"] for r in bound}
        assert not stop_exits & {p["newClientOrderId"] for p in market_sells}
        # spot: the stop-loss holds the BTC, the take-profit is watched at the bar close
        fallbacks = rows(journal, "stop_fallback")
        assert {f["client_id"] for f in fallbacks} == {
            derived_client_id(s["newClientOrderId"][: -len("-sl")], "tp") for s in stops
        }
        assert {f["code"] for f in fallbacks} == {"STOP_UNSUPPORTED"}
        assert not [p for p in posted if p["type"] == "TAKE_PROFIT"]
        shown = read_status(tmp_path / "run").errors
        assert_rows_read_as_frames(tmp_path / "run")  # a stop_fallback among its errors
        assert any(
            e["kind"] == "stop_fallback" and "-tp: take_profit" in e["message"] for e in shown
        ), shown
        # the account agrees with the journal: no BTC left over or missing
        again = run.runner(tmp_path / "run")
        again.start()
        (reconciled,) = rows(journal, "reconciled")
        assert abs(reconciled["venue_position"] - reconciled["position"]) <= reconciled["tolerance"]
        again.stop("test over")
        assert run.emulator.errors == []


@pytest.mark.slow
def test_a_stop_filled_while_the_runner_was_down_is_booked_once_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        exchange = run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        while not any(o.status == "NEW" for o in _leg_orders(run)):
            assert exchange.position < HISTORY + 60, "no stop was placed"
            _drive(run, runner, 1)
        (leg,) = [o for o in _leg_orders(run) if o.status == "NEW"]
        crash(runner)  # as kill -9: the process is gone, the stop rests at the exchange
        while exchange.order(leg.market_id, order_id=leg.order_id).status != "FILLED":
            assert exchange.position < len(run.bars), "the stop never filled"
            exchange.advance()
        filled = exchange.order(leg.market_id, order_id=leg.order_id)
        before = len(_posted(run))
        again = run.runner(run_dir)
        again.start()  # finds the stop by its client id, holds its fill for the exit
        _drive(run, again, 2)
        assert abs(again.session_or_fail.engine.portfolio.position) < 1e-5  # flat, as the account
        again.stop("test over")
        posted = _posted(run)
        assert Counter(p["newClientOrderId"] for p in posted).most_common(1)[0][1] == 1
        assert leg.client_order_id not in {p["newClientOrderId"] for p in posted[before:]}
        (bound,) = [r for r in rows(journal, "stop_bound") if r["client_id"] == leg.client_order_id]
        exit_fills = [f for f in rows(journal, "fill") if f["order_id"] == bound["order_id"]]
        assert sum(f["quantity"] for f in exit_fills) == pytest.approx(float(filled.executed_qty))
        reconciled = rows(journal, "reconciled")
        assert all(abs(r["venue_position"] - r["position"]) <= r["tolerance"] for r in reconciled)
        assert run.emulator.errors == []


@pytest.mark.slow
def test_the_kill_switch_cancels_the_resting_stop_and_a_resume_does_not_place_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "run" / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        exchange = run.emulator.exchange
        runner = run.runner(tmp_path / "run")
        runner.start()
        while not any(o.status == "NEW" for o in _leg_orders(run)):
            assert exchange.position < HISTORY + 60, "no stop was placed"
            _drive(run, runner, 1)
        (leg,) = [o for o in _leg_orders(run) if o.status == "NEW"]
        session = runner.session_or_fail
        session.kill("test")
        assert exchange.order(leg.market_id, order_id=leg.order_id).status == "CANCELED"
        cancelled = [
            r for r in rows(journal, "order_state") if r["client_id"] == leg.client_order_id
        ]
        assert cancelled[-1]["state"] == "cancelled"
        session.resume("test")
        _drive(run, runner, 2)
        runner.stop("test over")
        posted = _posted(run)
        assert [p["newClientOrderId"] for p in posted].count(leg.client_order_id) == 1
        assert run.emulator.errors == []


class _Died(Exception):
    """The process dies here (the test's stand-in for kill -9 inside a bar)."""


@pytest.mark.slow
def test_a_stop_exit_whose_binding_died_with_the_process_is_booked_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    close_by_stop = ExchangeVenue._close_by_stop

    def die_at_a_traded_stop(self: ExchangeVenue, order: Order) -> bool:
        if order.kind == "stop" and self.stops is not None and self.stops.held_fills():
            # the bar's rows up to the exit's order row are committed (as a full buffer
            # commits them), the binding is not
            assert runner.journal is not None
            runner.journal.flush()
            raise _Died(order.id)
        return close_by_stop(self, order)

    with emulated_run(tmp_path, monkeypatch, text=FAST) as run:
        exchange = run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        with monkeypatch.context() as patch:  # the patch holds `runner` above
            patch.setattr(ExchangeVenue, "_close_by_stop", die_at_a_traded_stop)
            with pytest.raises(_Died) as died:
                while exchange.position < HISTORY + 60:
                    _drive(run, runner, 1)
        crash(runner)  # the bar's rows were not committed: the exit is decided again
        exit_id = str(died.value)
        (leg,) = [o for o in _leg_orders(run) if o.status == "FILLED"]
        again = run.runner(run_dir)
        again.start()
        _drive(run, again, 1)
        assert abs(again.session_or_fail.engine.portfolio.position) < 1e-5
        again.stop("test over")
        posted = [p["newClientOrderId"] for p in _posted(run)]
        assert posted.count(leg.client_order_id) == 1 and exit_id not in posted
        (bound,) = [r for r in rows(journal, "stop_bound") if r["client_id"] == leg.client_order_id]
        assert bound["order_id"] == exit_id
        booked = [f for f in rows(journal, "fill") if f["order_id"] == exit_id]
        assert sum(f["quantity"] for f in booked) == pytest.approx(float(leg.executed_qty))
        assert run.emulator.errors == []


TRAILING = FAST.replace(
    "  stop_loss: 0.002\n  take_profit: 0.004\n", "  stop_loss: 0.03\n  trailing_stop: 0.006\n"
).replace("threshold: 0.02, min_interval: 1", "threshold: 0.1, min_interval: 1")


@pytest.mark.slow
def test_a_trailing_stop_resting_at_the_exchange_follows_the_cores_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bar the core's stop rises, the resting stop is cancelled and placed again at
    the new level under the entry's next id; each one rests at the level the core
    checks the next bar against."""
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "run" / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=TRAILING) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        session = runner.session_or_fail
        followed: list[tuple[str, float, float]] = []  # leg id, its level, the core's
        while not any(p["newClientOrderId"].endswith("-sl2") for p in _posted(run)):
            assert run.emulator.exchange.position < HISTORY + 120, "no stop moved"
            _drive(run, runner, 1)
            market = session.engine.venue.exchanges[0][2]  # type: ignore[attr-defined]
            resting = session.engine.portfolio.stop_of(0)
            if market.pending():  # an order works: the stop waits for it
                continue
            for leg in market.stops.working():
                if leg.type == "stop_loss" and resting is not None:
                    followed.append((leg.client_id, leg.level, resting[1]))
        _drive(run, runner, 2)
        runner.stop("test over")
        posted = [p for p in _posted(run) if p["type"] == "STOP_LOSS"]
        orders = {o["id"]: o for o in rows(journal, "order_sent")}
        moved = [p for p in posted if not p["newClientOrderId"].endswith("-sl")]
        assert moved, "no stop was placed again"
        for stop in moved:
            entry, number = stop["newClientOrderId"].rsplit("-sl", 1)
            previous = f"{entry}-sl" if number == "2" else f"{entry}-sl{int(number) - 1}"
            assert float(stop["stopPrice"]) > orders[previous]["trigger_price"]
            assert float(stop["stopPrice"]) == orders[stop["newClientOrderId"]]["trigger_price"]
            assert orders[stop["newClientOrderId"]]["reason"] in (
                "EXIT_TRAILING_STOP",
                "EXIT_BREAK_EVEN",
            )
            states = [
                r["state"] for r in rows(journal, "order_state") if r["client_id"] == previous
            ]
            assert states[-1] == "cancelled", states  # the leg it replaces, cancelled first
        # the leg rests at the core's level, a tick down at most (0.01 on BTC/USDT)
        assert followed
        for _, level, core in followed:
            assert core - 0.01 - 1e-9 <= level <= core + 1e-9
        assert Counter(p["newClientOrderId"] for p in _posted(run)).most_common(1)[0][1] == 1
        assert run.emulator.errors == []


@pytest.mark.slow
def test_a_moved_stop_is_found_at_restart_and_moves_on_under_the_next_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch, text=TRAILING) as run:
        runner = run.runner(run_dir)
        runner.start()
        while not any(p["newClientOrderId"].endswith("-sl2") for p in _posted(run)):
            assert run.emulator.exchange.position < HISTORY + 120, "no stop moved"
            _drive(run, runner, 1)
        crash(runner)  # as kill -9, with the moved stop resting at the exchange
        before = [p["newClientOrderId"] for p in _posted(run)]
        again = run.runner(run_dir)
        again.start()
        _drive(run, again, 40)
        again.stop("test over")
        posted = [p["newClientOrderId"] for p in _posted(run)]
        assert Counter(posted).most_common(1)[0][1] == 1  # nothing sent twice
        after = posted[len(before) :]
        assert any(c.rsplit("-sl", 1)[-1].isdigit() for c in after if "-sl" in c), after
        reconciled = rows(run_dir / "journal.sqlite", "reconciled")
        assert all(abs(r["venue_position"] - r["position"]) <= r["tolerance"] for r in reconciled)
        assert run.emulator.errors == []


SCALING = STRATEGY.replace(
    "threshold: 0.04, min_interval: 2", "threshold: 0.02, min_interval: 1"
).replace(
    "  sizing: {kind: fixed_fraction, fraction: 0.5}\n",
    "  sizing: {kind: fixed_fraction, fraction: 0.3}\n  stop_loss: 0.01\n"
    "  scaling:\n    take_profit_levels: [{gain: 0.003, close: 0.5}]\n"
    "    scale_in: {kind: pyramid, step: 0.002, max_adds: 2, max_position: 0.9}\n",
)


@pytest.mark.slow
def test_adds_and_partial_take_profits_rest_the_stop_again_for_what_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """risk.scaling live: an add cancels the resting stop-loss before it buys, a partial
    take-profit before it sells; once either has filled, the stop rests again under its
    derived id for the whole position held then, and the account reconciles."""
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "run" / "journal.sqlite"

    def rested_for() -> set[str]:
        """The reasons of the orders a stop-loss was rested for (its parent)."""
        orders = {o["id"]: o["reason"] for o in rows(journal, "order")}
        posted = [p["newClientOrderId"] for p in _posted(run) if p["type"] == "STOP_LOSS"]
        return {orders[c[: -len("-sl")]] for c in posted}

    with emulated_run(tmp_path, monkeypatch, text=SCALING) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        while not {"SCALE_IN", "TAKE_PROFIT_PARTIAL"} <= rested_for():
            assert run.emulator.exchange.position < HISTORY + 300, rested_for()
            _drive(run, runner, 1)
        runner.stop("test over")
        posted = _posted(run)
        fills = rows(journal, "fill")
        stops = {p["newClientOrderId"]: p for p in posted if p["type"] == "STOP_LOSS"}
        held: dict[str, float] = {}  # the position after each order's last fill
        position = 0.0
        for f in fills:
            position += f["side"] * f["quantity"]
            held[f["order_id"]] = position
        for client_id, stop in stops.items():
            parent = client_id[: -len("-sl")]
            assert client_id == derived_client_id(parent, "sl")
            # for the whole position once the parent filled (to the lot step, 1e-5 BTC)
            assert 0.0 <= held[parent] - float(stop["quantity"]) < 1e-5
        # a stop is cancelled (or fills) before the next one rests: one at a time on spot
        done = {r["client_id"] for r in rows(journal, "order_state") if r["state"] == "cancelled"}
        done |= {r["client_id"] for r in rows(journal, "stop_bound")}
        assert len(set(stops) - done) <= 1
        assert Counter(p["newClientOrderId"] for p in posted).most_common(1)[0][1] == 1
        again = run.runner(tmp_path / "run")
        again.start()
        (reconciled,) = rows(journal, "reconciled")
        assert abs(reconciled["venue_position"] - reconciled["position"]) <= reconciled["tolerance"]
        again.stop("test over")
        assert run.emulator.errors == []


SCALING_TRAILING = SCALING.replace(
    "  stop_loss: 0.01\n", "  stop_loss: 0.01\n  trailing_stop: 0.003\n"
)


@pytest.mark.slow
def test_the_resting_stop_follows_the_trailing_level_and_is_anchored_anew_by_each_leg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """risk.scaling with a trailing stop live: one rule for the resting leg. It is named
    after its anchor, the last filled entry, add or partial take-profit: ``{anchor}-sl``
    at the core's stop, ``-sl2``, ``-sl3``... as that stop rises; each leg is for the
    whole position held, and the one it replaces was cancelled before it was sent."""
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "run" / "journal.sqlite"

    def legs() -> list[tuple[str, str, int]]:
        """(client id, its anchor, its number) of each stop-loss leg posted."""
        out = []
        for p in _posted(run):
            if p["type"] == "STOP_LOSS":
                anchor, _, number = p["newClientOrderId"].rpartition("-sl")
                out.append((p["newClientOrderId"], anchor, int(number or 1)))
        return out

    def reasons() -> dict[str, str]:
        return {o["id"]: o["reason"] for o in rows(journal, "order")}

    def done() -> bool:
        anchored = {reasons().get(anchor) for _, anchor, _ in legs()}
        moved = {reasons().get(anchor) for _, anchor, number in legs() if number > 1}
        return bool(anchored & {"SCALE_IN", "TAKE_PROFIT_PARTIAL"}) and bool(moved)

    with emulated_run(tmp_path, monkeypatch, text=SCALING_TRAILING) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        while not done():
            assert run.emulator.exchange.position < HISTORY + 300, legs()
            _drive(run, runner, 1)
        runner.stop("test over")
        posted = _posted(run)
        why = reasons()
        sent = {o["id"]: o for o in rows(journal, "order_sent")}
        held: dict[str, float] = {}  # the position after each order's last fill
        position = 0.0
        for f in rows(journal, "fill"):
            position += f["side"] * f["quantity"]
            held[f["order_id"]] = position
        quantity = {p["newClientOrderId"]: float(p["quantity"]) for p in posted}
        cancelled = {
            r["client_id"] for r in rows(journal, "order_state") if r["state"] == "cancelled"
        }
        for client_id, anchor, number in legs():
            assert why[anchor] in ("ENTRY", "SCALE_IN", "TAKE_PROFIT_PARTIAL"), client_id
            assert 0.0 <= held[anchor] - quantity[client_id] < 1e-5  # all that is held
            assert sent[client_id]["reason"] in (
                "EXIT_STOP_LOSS",
                "EXIT_TRAILING_STOP",
            )
            if number > 1:  # moved up from the anchor's previous leg, cancelled first
                previous = f"{anchor}-sl" if number == 2 else f"{anchor}-sl{number - 1}"
                assert sent[client_id]["trigger_price"] > sent[previous]["trigger_price"]
                assert previous in cancelled
        assert Counter(p["newClientOrderId"] for p in posted).most_common(1)[0][1] == 1
        assert run.emulator.errors == []


def test_a_restart_takes_the_last_filled_entry_add_or_partial_as_the_stops_anchor() -> None:
    """The anchor the stops rest under, as the live venue set it before the restart: the
    last order with fills among the entry, the adds and the partial take-profits; an
    exit or an order without fills is not one."""

    def order(id_: str, side: int, reason: str) -> Order:
        return Order(id_, 0, pd.Timestamp(0, tz="UTC"), side, 1.0, reason, 100.0)

    state = JournalState()
    for id_, side, reason, fills in (
        ("e1", 1, "ENTRY", 1),
        ("a1", 1, "SCALE_IN", 2),
        ("p1", -1, "TAKE_PROFIT_PARTIAL", 1),
        ("a2", 1, "SCALE_IN", 0),  # sent, not filled yet
        ("x1", -1, "EXIT_SIGNAL", 0),
    ):
        state.orders[id_] = order(id_, side, reason)
        if fills:
            state.engine_fills[id_] = fills
    exchange = SimpleNamespace(stops=SimpleNamespace(placed_for=set()), entry_id=None)
    recover_stops(state, exchange)  # type: ignore[arg-type]
    assert exchange.entry_id == "p1"
    state.orders["a3"] = order("a3", 1, "SCALE_IN")
    state.engine_fills["a3"] = 1
    recover_stops(state, exchange)  # type: ignore[arg-type]
    assert exchange.entry_id == "a3"
