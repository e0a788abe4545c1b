"""``tradeloom parity RUN_DIR --data FILE`` (issue 69): bars revised after the run.

A paper run's bars, written out as the history a later download would give, two of them
moved 1% (the bars of the first entry's decision and fill): each revised field is a
``data_revised`` difference (which bar, which field, by how much), the P&L of replaying
on the revised bars is that cause's, and together they make the gap against the replay
on the file's bars. A file of other symbols, or not reaching the run's last bar: one
line, exit 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tests.diagnostics.test_parity import _parity, paper_run
from tradeloom.api import open_run
from tradeloom.journal import read_rows

__all__ = ["paper_run"]  # the fixture, used here by its name

pytestmark = pytest.mark.slow  # a paper run and its replays

_FIELDS = ["open", "high", "low", "close", "volume"]


def _history(run_dir: Path) -> pd.DataFrame:
    """The bars the run saw, as a history file holds them."""
    live = list(read_rows(run_dir / "journal.sqlite", ["live_bar"]))
    frame = pd.DataFrame([{f: r.values[f] for f in _FIELDS} for r in live])
    frame.insert(0, "timestamp", [r.timestamp for r in live])
    frame.insert(0, "bar", [r.bar for r in live])
    return frame


def test_bars_revised_after_the_run_are_the_cause_data_revised(
    paper_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = _history(paper_run)
    fills = [r.bar for r in read_rows(paper_run / "journal.sqlite", ["fill"])]
    assert len(fills) >= 2
    # the entry's decision bar (its close sizes the order) and its fill's bar (its open)
    moved = [fills[0] - 1, fills[0]]
    rows = history["bar"].isin(moved)
    prices = ["open", "high", "low", "close"]
    history.loc[rows, prices] = history.loc[rows, prices] * 1.01
    file = tmp_path / "history.csv"
    history.drop(columns="bar").to_csv(file, index=False)

    code, out, err = _parity(
        capsys, str(paper_run), "--out", str(tmp_path / "p"), "--data", str(file)
    )
    assert code == 0, err
    assert (
        f"data: {len(moved)} of the run's bars differ from {file} ({4 * len(moved)} fields)" in out
    )
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert report["data"] == {
        "file": str(file),
        "bars_revised": len(moved),
        "fields_revised": 4 * len(moved),
        "replay_on_data": str(tmp_path / "p" / "revised"),
    }
    revised = [d for d in report["differences_by_bar"] if d["cause"] == "data_revised"]
    seen = history.set_index("bar")
    assert sorted((d["bar"], d["field"]) for d in revised) == sorted(
        (bar, f"bar.{f}") for bar in moved for f in prices
    )
    for d in revised:
        field = d["field"].removeprefix("bar.")
        assert math.isclose(d["reference"], seen.loc[d["bar"], field], rel_tol=1e-12)
        assert math.isclose(d["reference"] / d["run"], 1.01, rel_tol=1e-9)
        assert d["code"].endswith("(+1.0000%)")
    # the run played its own bars as the replay did: the gap is the revision's alone
    assert set(report["causes"]) == {"data_revised"}
    pnl = report["causes"]["data_revised"]["pnl"]
    assert abs(pnl) > 10.0
    assert abs(pnl + report["unexplained_pnl"] - report["equity_gap"]) <= 1e-9
    assert abs(report["unexplained_pnl"]) <= 1e-6
    assert math.isclose(math.fsum(d["pnl"] for d in revised), pnl, rel_tol=1e-9)
    on_data = pd.read_csv(tmp_path / "p" / "revised" / "equity.csv")
    assert report["reference_equity"] == pytest.approx(on_data["equity"].iloc[-1], abs=1e-9)
    # the replay on the file's bars filled its entry at the revised open
    theirs = [
        r.values["price"]
        for r in read_rows(tmp_path / "p" / "revised" / "journal.sqlite", ["fill"])
    ]
    mine = [r.values["price"] for r in read_rows(paper_run / "journal.sqlite", ["fill"])]
    assert math.isclose(theirs[0] / mine[0], 1.01, rel_tol=1e-9)

    # from Python: the same
    result = open_run(paper_run).parity(tmp_path / "api", data=file)
    assert result.summary["causes"] == report["causes"]
    assert result.bars["data_revised"].iloc[-1] == pytest.approx(pnl, abs=1e-9)


def test_a_data_file_of_other_bars_is_one_line_and_exit_2(
    paper_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = _history(paper_run).drop(columns="bar")
    other = tmp_path / "eth.csv"
    history.assign(symbol="ETH/USDT").to_csv(other, index=False)
    code, _, err = _parity(capsys, str(paper_run), "--data", str(other))
    assert (code, err) == (2, f"{other}: bars of ETH/USDT; the run traded BTC/USDT\n")

    short = tmp_path / "short.csv"
    history.iloc[:-1].to_csv(short, index=False)
    last, end = history["timestamp"].iloc[-1], history["timestamp"].iloc[-2]
    first = history["timestamp"].iloc[0]
    bar = _history(paper_run)["bar"].iloc[-1]
    code, _, err = _parity(capsys, str(paper_run), "--data", str(short))
    assert (code, err) == (
        2,
        f"{short}: no BTC/USDT bar at {last}, a bar the run saw (bar {bar}); the file "
        f"spans {first}..{end}, the run saw {first}..{last}\n",
    )
    assert not (paper_run / "parity" / "revised").exists()  # refused before any replay
