"""An order that replaces a working one is sized after the fills its cancel turned up.

A limit sell rests at the exchange; within a bar, after the bar's opening poll saw it
working, the exchange fills it (in part) just before the run's cancel of it, and answers
the cancel with the order partly filled. The exit that replaces it (here the stop-loss's)
must sell only what is still held: sized from the position before the cancel, it sold the
filled part again."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import emulated_run, rows
from tests.live.test_restart_and_kill_edges import FAST, SIZING, edit, no_sleep
from tradeloom.journal.reader import verify

ORDER = "POST /api/v3/order"
LIMITS = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, orders: "


@pytest.mark.parametrize("fraction", ["0.5", "1"])
def test_a_replacement_sells_only_what_the_cancelled_sell_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fraction: str
) -> None:
    # fraction: what the exchange fills of the sell before the cancel (1: all of it,
    # the cancel then finds it filled)
    monkeypatch.chdir(tmp_path)
    no_sleep(monkeypatch)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
    text = edit(FAST, execution, LIMITS + "{type: limit, limit: {offset_bps: 60}}}")
    text = edit(text, SIZING, SIZING + "  stop_loss: 0.003\n")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        emulator, exchange = run.emulator, run.emulator.exchange
        real_cancel = exchange.cancel
        raced: list[str] = []

        def cancel(market_id: str, **kw: Any) -> Any:
            # the exchange fills half of a resting sell just before it takes the cancel
            found = exchange._find(market_id, kw.get("order_id"), kw.get("client_order_id"))
            if found is not None and found.is_open and found.side == "SELL" and not raced:
                with exchange._lock:
                    half = replace(found, fill_fraction=Decimal(fraction))
                    exchange._orders[found.order_id] = half
                    exchange._use.by_order.pop(found.order_id, None)
                    assert found.price is not None
                    exchange._fill(
                        found.order_id, found.price, is_maker=True, time_ms=exchange.now_ms()
                    )
                raced.append(found.client_order_id)
            return real_cancel(market_id, **kw)

        monkeypatch.setattr(exchange, "cancel", cancel)
        runner = run.runner(run_dir)
        runner.start()
        after = None
        while after is None or exchange.position < after + 3:
            assert exchange.position < len(run.bars) - 1, "no cancel met a resting sell"
            emulator.advance()
            runner.tick()
            if raced and after is None:
                after = exchange.position
        runner.stop("test over")
        # a restart replays the journal (the cancel's fills at their ask) and goes on
        again = run.runner(run_dir)
        again.start()
        for _ in range(2):
            emulator.advance()
            again.tick()
        again.stop("test over")
        assert emulator.errors == []
    verify(journal)
    held = float(exchange.balance("BTC").total)
    fills = rows(journal, "fill")
    booked = sum(f["side"] * f["quantity"] for f in fills)
    # the exit that replaced the raced sell sold what the sell left, no more: the
    # exchange refused no sell for want of BTC, and the run books what it holds
    raced_id = raced[0]
    (raced_order,) = [o for o in rows(journal, "order") if o["id"] == raced_id]
    raced_bar = raced_order["bar"]
    next_sells = [
        o
        for o in rows(journal, "order")
        if o["side"] == -1 and o["bar"] > raced_bar and o["id"] != raced_id
    ]
    raced_filled = sum(f["quantity"] for f in fills if f["order_id"] == raced_id)
    if fraction == "1":
        assert raced_filled == pytest.approx(raced_order["quantity"], abs=1e-4)  # its lot
        assert all(o["bar"] > raced_bar + 1 for o in next_sells)  # nothing more to sell
    else:
        assert 0.0 < raced_filled < raced_order["quantity"]
        left = raced_order["quantity"] - raced_filled
        assert next_sells[0]["quantity"] == pytest.approx(left)
    assert [r for r in rows(journal, "order_state") if r["state"] == "rejected"] == []
    assert booked >= -1e-9
    assert abs(booked - held) < 1e-6, (booked, held)
    (reconciled,) = rows(journal, "reconciled")
    assert abs(reconciled["venue_position"] - reconciled["position"]) <= reconciled["tolerance"]
