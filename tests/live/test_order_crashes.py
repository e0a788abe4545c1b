"""kill -9 of the real CLI in the middle of an order type's life, then the same command again.

A stop resting at the exchange fills while the run is down; a TWAP parent is killed
between its children; a limit order is killed between its fallback's cancel and the
market order for its rest. Each time every client order id reaches the venue at most
once, and the journal's position is the account's (`test_crash.CrashRig`: the child
process, the emulator, the waits).
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import SYMBOL, emulated_run, make_bars
from tests.live.test_crash import END, START, CrashRig, decisions, finish, strategy_text
from tradeloom.testing import ExchangeEmulator

pytestmark = pytest.mark.slow  # child processes

RISK = "  sizing: {kind: fixed_fraction, fraction: 0.5}\n"
EXECUTION = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[CrashRig]:
    """An emulator at bar `START` and a rig to run a strategy against it."""
    with ExchangeEmulator(
        {SYMBOL: make_bars()}, {"USDT": Decimal(100_000)}, start=START, include_open_kline=False
    ) as emulator:
        crash_rig = CrashRig(emulator, tmp_path, recv_window=2_000)
        try:
            yield crash_rig
        finally:
            crash_rig.close()


def _text(cache: Path, *, risk: str = "", orders: str = "") -> str:
    text = strategy_text(cache, recv_window=2_000)
    assert RISK in text and EXECUTION in text
    text = text.replace(RISK, RISK + risk)
    if orders:
        text = text.replace(EXECUTION, EXECUTION[:-1] + f", orders: {orders}}}")
    return text


def _strategy(rig: CrashRig, *, risk: str = "", orders: str = "") -> None:
    rig.strategy.write_text(_text(rig.tmp / "cache", risk=risk, orders=orders))


def _uninterrupted(tmp: Path, last: int, *, orders: str) -> dict[str, list[Any]]:
    """The decisions of the run never killed, up to bar ``last`` (in this process)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(tmp)
        text = _text(tmp / "cache", orders=orders)
        with emulated_run(tmp, monkeypatch, text=text, history=START) as run:
            runner = run.runner(tmp / "run")
            runner.start()
            try:
                while run.emulator.exchange.position <= last:
                    run.emulator.advance()
                    runner.tick()
            finally:
                runner.stop("done")
            assert run.emulator.errors == []
    mine = decisions(tmp / "run" / "journal.sqlite")
    return {k: [d for d in v if d[0] <= last] for k, v in mine.items()}


def _btc_agrees(rig: CrashRig) -> None:
    position = sum(r["side"] * r["quantity"] for r in rig.rows("fill"))
    btc = rig.emulator.exchange.balance("BTC")
    assert position == pytest.approx(float(btc.free + btc.locked), abs=1e-8)


def _posted_once(rig: CrashRig) -> list[str]:
    posted = rig.posted()
    assert [i for i, n in Counter(posted).items() if n > 1] == []
    assert rig.emulator.errors == []
    assert rig.rows("fill_refused") == []
    return posted


def test_a_stop_filled_while_the_cli_was_killed_is_booked_once_at_restart(
    rig: CrashRig,
) -> None:
    _strategy(rig, risk="  stop_loss: 0.002\n")
    exchange = rig.emulator.exchange
    rig.launch()

    def resting() -> list[object]:
        return [o for o in exchange.orders() if o.type == "STOP_LOSS" and o.status == "NEW"]

    while not resting():
        assert rig.advance() == "processed" and exchange.position < END, "no stop was placed"
    (leg,) = resting()
    rig.kill()  # kill -9: the stop rests at the exchange
    while exchange.order(leg.market_id, order_id=leg.order_id).status != "FILLED":
        assert exchange.position < END + 30, "the stop never filled"
        exchange.advance()
    rig.launch()  # the same command: finds the stop by its id, books its fill
    rig.advance_to(exchange.position + 2)
    rig.stop()
    assert rig.exit_codes == [-signal.SIGKILL, 0]
    posted = _posted_once(rig)
    assert posted.count(leg.client_order_id) == 1
    (bound,) = [r for r in rig.rows("stop_bound") if r["client_id"] == leg.client_order_id]
    (exit_,) = [r for r in rig.rows("order") if r["id"] == bound["order_id"]]
    # the exit its fill is booked to: the stop-loss's, or a signal's decided before the
    # restarted run learned of the fill (which follows from the bars); never sent
    assert exit_["reason"] in ("EXIT_STOP_LOSS", "EXIT_SIGNAL") and exit_["id"] not in posted
    booked = [r for r in rig.rows("fill") if r["order_id"] == exit_["id"]]
    traded = [r for r in rig.rows("venue_fill") if r["order_id"] == leg.client_order_id]
    assert [(r["quantity"], r["price"]) for r in booked] == [
        (r["quantity"], r["price"]) for r in traded
    ]
    _btc_agrees(rig)


TWAP = "{slicing: {kind: twap, children: 2, every_bars: 1}}"
"""Two children: the strategy's next signal (two bars after its first entry) would
cancel a third."""


@pytest.mark.parametrize(
    "point",
    [
        "order:2",  # at its second child, before the child is committed
        "sent:1",  # right after the exchange answered its first child
    ],
)
def test_a_twap_parent_killed_between_its_children_sends_each_child_once(
    rig: CrashRig, tmp_path_factory: pytest.TempPathFactory, point: str
) -> None:
    _strategy(rig, orders=TWAP)
    rig.launch(point)
    while rig.advance() == "processed":
        assert rig.emulator.exchange.position < END, "the run never reached its 2nd child"
    rig.reap(-signal.SIGKILL)
    assert len(rig.rows("order")) == 1
    rig.launch()
    finish(rig)  # to END, and on until the last child's fill is booked
    posted = _posted_once(rig)
    orders = rig.rows("order")
    assert sorted(posted) == sorted(o["id"] for o in orders)
    (parent, *_) = rig.rows("sliced_order")
    children = [o for o in orders if o["parent_id"] == parent["id"]]
    assert len(children) == 2
    # each child is the parent's rest: the last one takes what the first one's fills (as
    # booked: net of the fee the exchange takes in BTC) left, so none was lost or doubled
    first, last = children
    booked = sum(f["quantity"] for f in rig.rows("fill") if f["order_id"] == first["id"])
    assert booked + last["quantity"] == pytest.approx(parent["quantity"], rel=1e-12)
    _btc_agrees(rig)
    # the restarted run decided what the run never killed decides, child by child
    end = rig.emulator.exchange.position - 1
    theirs = _uninterrupted(tmp_path_factory.mktemp("uninterrupted"), end, orders=TWAP)
    assert decisions(rig.journal) == theirs


def test_a_twap_child_killed_after_its_intent_before_its_request_is_never_sent(
    rig: CrashRig,
) -> None:
    """A child's intent committed, its request not gone, the restart after the venue's
    window (recvWindow 2 s + the allowance for clock skew, 0.5 s here): the child is taken
    as never arrived and cancelled, as any order is (`test_crash`'s kill at ``intent:N``),
    and no child of the parent is sent after the restart."""
    _strategy(rig, orders=TWAP)
    rig.skew_seconds = 0.5  # the restart waits the window out: the shorter, the sooner
    rig.launch("intent:2")  # the parent's second child
    while rig.advance() == "processed":
        assert rig.emulator.exchange.position < END, "the run never reached its 2nd child"
    rig.reap(-signal.SIGKILL)
    (parent, *_) = rig.rows("sliced_order")
    first, lost = [o for o in rig.rows("order") if o["parent_id"] == parent["id"]]
    assert rig.posted() == [first["id"]]
    (intent,) = [r for r in rig.rows("order_sent") if r["id"] == lost["id"]]
    rig.wait_out_window(intent["sent_at"], 2.0)
    rig.launch()
    finish(rig, at_least=rig.emulator.exchange.position + 3)  # every fill applied
    (rejected,) = [r for r in rig.rows("order_state") if r["state"] == "rejected"]
    assert (rejected["client_id"], rejected["code"]) == (lost["id"], "ORDER_NEVER_ARRIVED")
    (cancelled,) = [r for r in rig.rows("order_cancelled") if r["order_id"] == lost["id"]]
    assert cancelled["reason"] == "REJECTED ORDER_NEVER_ARRIVED"
    posted = _posted_once(rig)
    children = {o["id"] for o in rig.rows("order") if o["parent_id"] == parent["id"]}
    assert [i for i in posted if i in children] == [first["id"]]
    _btc_agrees(rig)


def test_a_limit_fallback_killed_after_its_cancel_sends_one_market_order(
    rig: CrashRig,
) -> None:
    _strategy(rig, orders="{type: limit, limit: {offset_bps: 300, fallback_after_bars: 1}}")
    rig.launch("fallback:1")  # dies once the limit's cancel is confirmed, before the -f
    while rig.advance() == "processed":
        assert rig.emulator.exchange.position < END + 30, "no limit order fell back"
    rig.reap(-signal.SIGKILL)
    assert [p for p in rig.posted() if p.endswith("-f")] == []
    killed = {o["id"] for o in rig.rows("order")}  # the limit orders decided by the kill
    rig.launch()
    rig.advance_to(rig.emulator.exchange.position + 2)
    rig.stop()
    posted = _posted_once(rig)
    fallbacks = [p for p in posted if p.endswith("-f") and p[: -len("-f")] in killed]
    assert len(fallbacks) == 1
    (limit,) = [o for o in rig.rows("order") if o["id"] + "-f" == fallbacks[0]]
    traded = [f for f in rig.rows("venue_fill") if f["order_id"] in (limit["id"], fallbacks[0])]
    assert any(f["order_id"] == fallbacks[0] for f in traded)
    # the limit order and its one fallback bought the decision's quantity (less a lot)
    assert sum(f["quantity"] for f in traded) == pytest.approx(limit["quantity"], abs=1e-5)
    # the engine booked them as the limit order's fills, once each
    booked = [f for f in rig.rows("fill") if f["order_id"] == limit["id"]]
    assert len(booked) == len(traded)
    _btc_agrees(rig)
