"""A live run stopped at any bar and restarted from its journal continues as if it never
stopped: the same decisions as an uninterrupted run, each order sent once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from live_emulated import crash, emulated_run, rows, tick_until


def decisions(path: Path) -> dict[str, list[Any]]:
    return {
        "signals": [(r["bar"], r["direction"], r["probability"]) for r in rows(path, "signal")],
        "orders": [(r["bar"], r["side"], r["reason"], r["quantity"]) for r in rows(path, "order")],
        "fills": [(r["bar"], r["price"], r["quantity"], r["fee"]) for r in rows(path, "fill")],
    }


@pytest.mark.parametrize(("stop_at", "down"), [(180, 0), (251, 0), (180, 3), (300, 2)])
def test_a_restarted_run_continues_the_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_at: int, down: int
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with emulated_run(tmp_path / "a", monkeypatch) as run:
        whole = run.runner(tmp_path / "whole")
        whole.start()
        tick_until(run, whole, len(run.bars))
        whole.stop("done")
    with emulated_run(tmp_path / "b", monkeypatch) as run:
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
    mine, theirs = decisions(cut), decisions(tmp_path / "whole" / "journal.sqlite")
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
