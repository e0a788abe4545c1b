"""A live run's IOC and FOK limit orders: sent with their time in force, never left resting.

The strategy's ``execution.orders.limit.time_in_force`` goes to the exchange with each
limit order; the emulator fills what it can on arrival (IOC) or all or nothing (FOK)
and expires the rest, and the engine hears of each end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.live_emulated import STRATEGY, emulated_run, rows

FAST = STRATEGY.replace("threshold: 0.04, min_interval: 2", "threshold: 0.02, min_interval: 1")
FAST = FAST.replace(
    "walk_forward: {train_window: 120, retrain_every: 40}",
    "walk_forward: {train_window: 80, retrain_every: 30}",
)
EXECUTION = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"


@pytest.mark.slow
@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_a_live_limit_order_goes_with_its_time_in_force_and_never_rests(
    tif: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    orders = f"orders: {{type: limit, limit: {{offset_bps: 2, time_in_force: {tif}}}}}"
    text = FAST.replace(EXECUTION, EXECUTION[:-1] + f", {orders}}}")
    journal = tmp_path / "run" / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        for _ in range(30):
            run.emulator.advance()
            runner.tick()
            assert run.emulator.exchange.open_orders() == []  # filled or expired on arrival
        runner.stop("test over")
        posted = [dict(r.params) for r in run.emulator.requests("POST /api/v3/order")]
        limits = [p for p in posted if p["type"] == "LIMIT"]
        assert limits and all(p["timeInForce"] == tif for p in limits)
        statuses = {o.status for o in run.emulator.exchange.orders()}
        assert "EXPIRED" in statuses, "every order filled: the test proves nothing"
        expired = [r for r in rows(journal, "order_cancelled") if r["reason"] == "EXPIRED"]
        assert expired
        position = sum(r["side"] * r["quantity"] for r in rows(journal, "fill"))
        btc = run.emulator.exchange.balance("BTC")
        assert position == pytest.approx(float(btc.free + btc.locked), abs=1e-8)
        assert run.emulator.errors == []
