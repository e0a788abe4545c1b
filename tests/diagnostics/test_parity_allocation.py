"""``tradeloom parity`` of a run that allocates (issue 69): the replay takes each
rebalance as the run journaled it (``allocation_decided``), never solving it again.

- a paper universe rebalanced by risk parity, from flat: no difference, and the replay's
  rebalances are the run's, weight for weight;
- a rebalance decided late (its solve held past ``live.allocation_deadline_seconds``):
  the replay solves it as a backtest would, and the orders the run did not send are the
  cause ``late_decision``;
- a live run whose first rebalance order the venue refuses: a rejection in that market.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import tests.live.test_allocation_live as allocation_live
from tests.diagnostics.test_parity import POST, _parity, _report
from tests.live.live_emulated import rows, tick_until
from tests.live.test_allocation_live import FIXTURES, HISTORY, allocated_run
from tradeloom.api import open_run
from tradeloom.journal import read_rows
from tradeloom.testing import Reject

pytestmark = pytest.mark.slow  # a paper or live run and its replay a case


def _decisions(journal: Path) -> list[tuple[Any, ...]]:
    """Each rebalance's bar (a replay's numbered as the run's: it plays the run's warm-up
    first), status and weights."""
    return [(d["bar"], d["status"], d["weights"]) for d in rows(journal, "allocation_decided")]


def _fills(run_dir: Path) -> list[tuple[Any, ...]]:
    key = ("side", "quantity", "price", "fee")
    return [
        (r.symbol, *(r.values[k] for k in key))
        for r in read_rows(run_dir / "journal.sqlite", ["fill"])
    ]


def test_a_paper_allocating_universe_from_flat_has_no_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with allocated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
    paper = tmp_path / "paper"
    code, out, err = _parity(capsys, str(paper), "--out", str(tmp_path / "p"))
    assert code == 0, err
    assert "no difference" in out
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert report["differences"] == 0 and report["equity_gap"] == 0.0 and report["passed"]
    # the replay rebalanced at the run's bars to the run's weights (its window of 100
    # returns reached into the history before the run's first bar: it solved nothing)
    mine = _decisions(paper / "journal.sqlite")
    assert len(mine) >= 5 and mine[0][0] == HISTORY
    assert {d[1] for d in mine} == {"ok"}
    assert mine == _decisions(tmp_path / "p" / "reference" / "journal.sqlite")
    fills = _fills(paper)
    assert {f[0] for f in fills} == set(report["symbols"])
    assert fills == _fills(tmp_path / "p" / "reference")

    # from Python: the same comparison, as frames
    result = open_run(paper).parity(tmp_path / "api")
    assert result.passed and result.differences.empty and (result.bars["gap"] == 0.0).all()
    report.pop("differences_by_bar")
    assert result.summary | {"reference": ""} == report | {"reference": ""}


def test_a_late_rebalance_is_the_cause_late_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a window of 20 returns: the replay's own window is full by the held rebalance
    monkeypatch.setattr(
        allocation_live,
        "STRATEGY",
        allocation_live.STRATEGY.replace("window: 100", "window: 20"),
    )
    monkeypatch.syspath_prepend(str(FIXTURES))
    import gated_allocator

    gated_allocator.RELEASE.clear()
    with allocated_run(
        tmp_path,
        monkeypatch,
        allocator="kind: gated\n  hold_at: [4]",
        plugins="plugins: [gated_allocator]\n",
        deadline=0.5,
    ) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            tick_until(run, runner, HISTORY + 3 * 8 + 1)  # bar 124's solve is held
            gated_allocator.RELEASE.set()
            for thread in threading.enumerate():
                if thread.name.startswith("tradeloom-allocation-"):
                    thread.join()
            tick_until(run, runner, len(run.bars))
        finally:
            gated_allocator.RELEASE.set()
            runner.stop("test over")
    paper = tmp_path / "paper"
    decided = _decisions(paper / "journal.sqlite")
    assert [d[:2] for d in decided[:5]] == [
        (100, "ok"),
        (108, "ok"),
        (116, "ok"),
        (124, "late"),
        (132, "ok"),
    ]
    report = _report(paper, tmp_path / "p", capsys)
    # the replay solved bar 124 (its first call: the first rebalance's weights again)
    theirs = _decisions(tmp_path / "p" / "reference" / "journal.sqlite")
    assert theirs[3] == (124, "ok", decided[0][2])
    assert [d for k, d in enumerate(theirs) if k != 3] == [
        d for k, d in enumerate(decided) if k != 3
    ]
    late = [d for d in report["differences_by_bar"] if d["cause"] == "late_decision"]
    message = (
        "the solve took longer than live.allocation_deadline_seconds (0.5 s): the last weights hold"
    )
    (noted,) = [d for d in late if d["field"] == "allocation"]
    assert (noted["bar"], noted["code"]) == (124, message)
    assert noted["run"].startswith("late [") and noted["reference"].startswith("ok [")
    # the orders only the replay sent at bar 124 (filled at 125's open): late_decision,
    # in every market; the next rebalance closes what they left apart (its fills of
    # opposite sides at 133, the cause of what opened it)
    traded = [d for d in late if d["field"] == "fill"]
    at_decision = [d for d in traded if d["bar"] == HISTORY + 3 * 8 + 1]
    assert {d["symbol"] for d in at_decision} == set(report["symbols"])
    assert all(d["run"] == "" and d["reference"] for d in at_decision)
    assert {d["bar"] for d in traded} <= {HISTORY + 3 * 8 + 1, HISTORY + 4 * 8 + 1}
    assert report["causes"]["late_decision"]["pnl"] != 0.0
    assert set(report["causes"]) <= {"late_decision", "knock_on"}
    assert report["passed"]  # what the causes leave is within 1e-6 (`_report`)


def test_a_refused_rebalance_order_is_a_rejection_in_its_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    insufficient = "Account has insufficient balance for requested action."
    with allocated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "live", mode="live")
        runner.start()
        try:
            run.emulator.faults.next(POST, Reject(-2010, insufficient))
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
        assert run.emulator.errors == []
    live = tmp_path / "live"
    refused = next(r for r in read_rows(live / "journal.sqlite", ["order_cancelled"]))
    # the first rebalance's first order, refused at the bar it was to fill
    assert (refused.correlation_id, refused.bar) == (HISTORY, HISTORY + 1)
    report = _report(live, tmp_path / "p", capsys)
    rejected = [d for d in report["differences_by_bar"] if d["cause"] == "rejection"]
    assert rejected and rejected[0]["symbol"] == refused.symbol
    assert rejected[0]["bar"] == refused.bar and rejected[0]["field"] == "fill"
    assert rejected[0]["code"] == f"VENUE_REJECTED: InsufficientFunds -2010: {insufficient}"
    assert report["by_symbol"][refused.symbol]["rejection"] != 0.0
    assert set(report["causes"]) <= {"rejection", "fee", "knock_on"}
