"""A live run stopped at any bar and restarted from its journal continues as if it never
stopped: the same decisions as an uninterrupted run, each order sent once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import STRATEGY, crash, emulated_run, rows, tick_until
from tradeloom.live.recovery.reconcile import RestartRefused


def decisions(path: Path) -> dict[str, list[Any]]:
    return {
        "signals": [(r["bar"], r["direction"], r["probability"]) for r in rows(path, "signal")],
        "orders": [(r["bar"], r["side"], r["reason"], r["quantity"]) for r in rows(path, "order")],
        "fills": [(r["bar"], r["price"], r["quantity"], r["fee"]) for r in rows(path, "fill")],
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """The decisions of the run never stopped (one run: every restart compares with it)."""
    tmp = tmp_path_factory.mktemp("whole")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(tmp)
        with emulated_run(tmp, monkeypatch) as run:
            whole = run.runner(tmp / "whole")
            whole.start()
            tick_until(run, whole, len(run.bars))
            whole.stop("done")
            assert run.emulator.errors == []
    return decisions(tmp / "whole" / "journal.sqlite")


@pytest.mark.parametrize(("stop_at", "down"), [(180, 0), (251, 0), (180, 3), (300, 2)])
def test_a_restarted_run_continues_the_uninterrupted_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted: dict[str, list[Any]],
    stop_at: int,
    down: int,
) -> None:
    monkeypatch.chdir(tmp_path)
    with emulated_run(tmp_path, monkeypatch) as run:
        first = run.runner(tmp_path / "cut")
        first.start()
        tick_until(run, first, stop_at)
        crash(first)
        if down:
            run.emulator.advance(down)  # bars close while the run is down
        second = run.runner(tmp_path / "cut")
        second.start()
        tick_until(run, second, len(run.bars))
        second.stop("done")
        assert run.emulator.errors == []
        client_ids = [o.client_order_id for o in run.emulator.exchange.orders()]
    cut = tmp_path / "cut" / "journal.sqlite"
    mine, theirs = decisions(cut), uninterrupted
    assert mine["signals"] == theirs["signals"]
    if down == 0:
        assert mine == theirs
    else:
        # Orders decided on a bar that closed while the run was down are sent at the
        # restart and fill at that time's price: the quantities after them differ.
        assert [o[:3] for o in mine["orders"]] == [o[:3] for o in theirs["orders"]]
        assert [f[0] for f in mine["fills"]] == [f[0] for f in theirs["fills"]]
    assert len(client_ids) == len(set(client_ids)) == len(rows(cut, "order"))
    (restarted,) = rows(cut, "restarted")
    assert restarted["bars_replayed"] > 0
    (reconciled,) = rows(cut, "reconciled")
    assert abs(reconciled["venue_position"] - reconciled["position"]) <= reconciled["tolerance"]


@pytest.mark.parametrize("minimum", [None, 50.0])
def test_a_restart_counts_a_venue_position_below_the_minimum_as_flat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minimum: float | None
) -> None:
    """A manual buy of 0.0005 BTC (about 10 USDT, 50 lots) while the run is down: beyond
    the lot, refused; below a minimum notional of 50, no position, as in the core."""
    text = STRATEGY
    if minimum is not None:
        text = text.replace(
            "initial_cash: 50000}", f"initial_cash: 50000, min_notional: {minimum}}}"
        )
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        first = run.runner(tmp_path / "live")
        first.start()
        tick_until(run, first, 180)
        crash(first)
        run.emulator.client().create_order("BTC/USDT", "market", "buy", 0.0005)
        again = run.runner(tmp_path / "live")
        if minimum is None:
            with pytest.raises(RestartRefused, match="the journal's position is"):
                again.start()
            again.inbox.release_pid()
            return
        again.start()
        again.stop("done")
    (reconciled,) = rows(tmp_path / "live" / "journal.sqlite", "reconciled")
    difference = reconciled["venue_position"] - reconciled["position"]
    assert difference == pytest.approx(0.0005, rel=2e-3)  # less the fee, in BTC
    assert 0.0005 < reconciled["tolerance"] < 0.005  # 50 USDT at about 20,000
