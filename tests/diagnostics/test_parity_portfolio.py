"""``tradeloom parity`` of a portfolio file's run (issue 69): each member strategy's books
replayed on one account, compared book by book, each cause's P&L summed by member
(``by_strategy``).

- examples/two_strategies.yaml on paper (the simulated clock) from flat: no difference,
  and the replay's fills are the run's in both members, though one member's file was
  edited after the run and the other's removed (each is replayed under the document it
  started with, its ``strategy_at_start`` row); with a history whose bar of one
  member's entry is revised, that book's bar is ``data_revised``;
- examples/two_strategies_risk_parity.yaml on paper from flat: its weights between the
  strategies move (journaled, ``allocation_decided``), the replay takes them at the
  run's bars and finds no difference (without them it would: its window holds only the
  live bars); one member's entry bar revised is that member's ``data_revised``, the
  causes summing to the gap;
- a live portfolio of two members against the exchange emulator, the first order it
  sends refused: a rejection in that member's book, and nowhere else (with fixed
  weights, and with risk parity between the members: the run's decisions replayed);
- a member file that is not where the run read it (a journal without
  ``strategy_at_start`` rows), or moving weights with no decision
  journaled (a journal from before they were): one line, exit 2.
"""

from __future__ import annotations

import json
import math
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.diagnostics.test_parity import POST, _parity, _report
from tests.live.live_emulated import make_bars
from tests.live.test_portfolio_live import MEMBER
from tradeloom.api import open_run
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import OrderEvent, RunIdentity, open_journal, read_rows
from tradeloom.live.tick.portfolio_session import LivePortfolio, account_pipeline
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas.portfolio_file import load_portfolio
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator, Reject

ROOT = Path(__file__).resolve().parents[2]


def _fills(run_dir: Path) -> list[tuple[Any, ...]]:
    key = ("side", "quantity", "price", "fee")
    return [
        (r.symbol, *(r.values[k] for k in key))
        for r in read_rows(run_dir / "journal.sqlite", ["fill"])
    ]


@pytest.mark.slow  # a paper run and its replay
def test_a_paper_portfolio_from_flat_has_no_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "examples" / "two_strategies.yaml", tmp_path)
    shutil.copytree(ROOT / "examples" / "two_strategies", tmp_path / "two_strategies")
    words = ["run", "two_strategies.yaml", "--mode", "paper", "--clock", "simulated"]
    assert main_quiet([*words, "--speed", "max", "--max-bars", "60", "--out", "paper"]) == 0
    started = list(read_rows(tmp_path / "paper" / "journal.sqlite", ["strategy_at_start"]))
    assert [(r.values["strategy"], r.values["file"]) for r in started] == [
        ("trend_btc", "two_strategies/trend_btc.yaml"),
        ("reversion_eth", "two_strategies/reversion_eth.yaml"),
    ]
    # the member files edited and removed after the run: the replay is of what it traded
    member = tmp_path / "two_strategies" / "reversion_eth.yaml"
    member.write_text(member.read_text().replace("fraction: 0.5", "fraction: 0.3"))
    (tmp_path / "two_strategies" / "trend_btc.yaml").unlink()

    code, out, err = _parity(capsys, "paper", "--out", "p")
    assert code == 0, err
    assert "no difference" in out
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert report["differences"] == 0 and report["equity_gap"] == 0.0 and report["passed"]
    assert report["symbols"] == ["trend_btc:BTC/USDT", "reversion_eth:ETH/USDT"]
    assert report["by_strategy"] == {"trend_btc": {}, "reversion_eth": {}}
    mine = _fills(tmp_path / "paper")
    assert {f[0] for f in mine} == set(report["symbols"])  # both members traded
    assert mine == _fills(tmp_path / "p" / "reference")

    # from Python: the same comparison, as frames
    result = open_run(tmp_path / "paper").parity(tmp_path / "api")
    assert result.passed and result.differences.empty and (result.bars["gap"] == 0.0).all()
    report.pop("differences_by_bar")
    assert result.summary | {"reference": ""} == report | {"reference": ""}

    # a history of the markets fetched later (named by market, not by book), the ETH
    # member's first entry's bar 1% higher: that member's book is revised
    live = list(read_rows(tmp_path / "paper" / "journal.sqlite", ["live_bar"]))
    history = pd.DataFrame(
        {
            "timestamp": [r.timestamp for r in live],
            "symbol": [r.symbol.split(":", 1)[1] for r in live],
            **{f: [r.values[f] for r in live] for f in ("open", "high", "low", "close")},
            "volume": [r.values["volume"] for r in live],
        }
    )
    entry = next(f for f in read_rows(tmp_path / "paper" / "journal.sqlite", ["fill"]))
    book = entry.symbol
    moved = [r.timestamp == entry.timestamp and r.symbol == book for r in live]
    prices = ["open", "high", "low", "close"]
    history.loc[moved, prices] = history.loc[moved, prices] * 1.01
    history.to_csv(tmp_path / "history.csv", index=False)
    code, out, err = _parity(capsys, "paper", "--out", "q", "--data", "history.csv")
    assert code == 0, err
    revised = json.loads((tmp_path / "q" / "parity.json").read_text())
    assert revised["data"]["bars_revised"] == 1
    rows = [d for d in revised["differences_by_bar"] if d["cause"] == "data_revised"]
    assert {(d["bar"], d["symbol"]) for d in rows} == {(entry.bar, book)}
    member = book.split(":", 1)[0]
    assert set(revised["causes"]) == {"data_revised"}
    assert revised["causes"]["data_revised"]["pnl"] != 0.0
    assert math.isclose(
        revised["causes"]["data_revised"]["pnl"] + revised["unexplained_pnl"],
        revised["equity_gap"],
        abs_tol=1e-9,
    )
    assert member in revised["by_strategy"]


@pytest.mark.slow  # a paper run and two replays
def test_a_paper_portfolio_whose_weights_move_replays_the_runs_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "examples" / "two_strategies_risk_parity.yaml", tmp_path)
    shutil.copytree(ROOT / "examples" / "two_strategies", tmp_path / "two_strategies")
    words = ["run", "two_strategies_risk_parity.yaml", "--mode", "paper", "--clock", "simulated"]
    assert main_quiet([*words, "--speed", "max", "--max-bars", "60", "--out", "paper"]) == 0
    journal = tmp_path / "paper" / "journal.sqlite"
    first = min(r.bar for r in read_rows(journal, ["live_bar"]))
    decided = [r for r in read_rows(journal, ["allocation_decided"]) if r.bar >= first]
    # a live bar's decision moved the weights off the equal shares, and an entry was
    # sized against them: a replay that computed its own (its window: 60 bars of the
    # 200) would have sized it at 1/2
    moved = [r for r in decided if r.values["weights"] != [0.5, 0.5]]
    assert moved and moved[0].values["symbols"] == ["trend_btc", "reversion_eth"]
    assert moved[0].values["allocator"] == "risk_parity" and moved[0].values["window"] == 200
    assert math.isclose(math.fsum(moved[0].values["weights"]), 1.0, rel_tol=1e-12)
    entries = [o for o in read_rows(journal, ["order"]) if o.values["reason"] == "ENTRY"]
    assert any(o.bar > moved[0].bar for o in entries)

    code, out, err = _parity(capsys, "paper", "--out", "p")
    assert code == 0, err
    assert "no difference" in out
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert report["differences"] == 0 and report["equity_gap"] == 0.0 and report["passed"]
    assert _fills(tmp_path / "paper") == _fills(tmp_path / "p" / "reference")
    # the replay decided at the run's bars, the run's weights
    replayed = read_rows(tmp_path / "p" / "reference" / "journal.sqlite", ["allocation_decided"])
    assert [(r.timestamp, r.values["weights"]) for r in replayed] == [
        (r.timestamp, r.values["weights"]) for r in decided
    ]

    # the history fetched later revises the bar of the first entry after the weights
    # moved, in one member's book: data_revised, that member's, the causes the gap
    entry = next(o for o in entries if o.bar > moved[0].bar)
    live = list(read_rows(journal, ["live_bar"]))
    history = pd.DataFrame(
        {
            "timestamp": [r.timestamp for r in live],
            "symbol": [r.symbol.split(":", 1)[1] for r in live],
            **{f: [r.values[f] for r in live] for f in ("open", "high", "low", "close")},
            "volume": [r.values["volume"] for r in live],
        }
    )
    filled = next(r for r in live if r.bar == entry.bar + 1)  # at the next bar's open
    revised_at = [r.bar == filled.bar and r.symbol == entry.symbol for r in live]
    history.loc[revised_at, ["open", "high", "low", "close"]] *= 1.01
    history.to_csv(tmp_path / "history.csv", index=False)
    code, out, err = _parity(capsys, "paper", "--out", "q", "--data", "history.csv")
    assert code == 0, err
    revised = json.loads((tmp_path / "q" / "parity.json").read_text())
    assert revised["data"]["bars_revised"] == 1
    assert set(revised["causes"]) == {"data_revised"}
    pnl = revised["causes"]["data_revised"]["pnl"]
    assert pnl != 0.0
    assert math.isclose(pnl + revised["unexplained_pnl"], revised["equity_gap"], abs_tol=1e-9)
    member = entry.symbol.split(":", 1)[0]
    other = next(n for n in ("trend_btc", "reversion_eth") if n != member)
    assert revised["by_symbol"][entry.symbol] == {"data_revised": pnl}
    assert revised["by_strategy"] == {member: {"data_revised": pnl}, other: {}}


def main_quiet(words: list[str]) -> int:
    from tradeloom.cli.main import main

    return main(["-q", *words])


HISTORY = 150
MEMBERS = (("trend_btc", "BTC/USDT", 11), ("swing_eth", "ETH/USDT", 5))


@pytest.mark.slow  # two models trained, 60 live bars and a replay
@pytest.mark.parametrize(
    "allocation",
    ["", "allocation: {kind: risk_parity, window: 30, rebalance: {every: 5}}\n"],
    ids=["fixed", "moving"],
)
def test_a_rejection_in_one_member_is_that_members(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    allocation: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    for name, symbol, seed in MEMBERS:
        text = MEMBER.replace("NAME", name).replace("SYMBOL", symbol).replace("SEED", str(seed))
        (tmp_path / f"{name}.yaml").write_text(text.replace("CACHE", str(tmp_path / "cache")))
    weight = "" if allocation else ", weight: 0.5"  # moving: by risk parity
    (tmp_path / "pair.yaml").write_text(
        f"name: pair\ninitial_cash: 60000\n{allocation}strategies:\n"
        + "".join(f"  - {{file: {name}.yaml{weight}}}\n" for name, _, _ in MEMBERS)
    )
    markets = {s: make_bars(n=HISTORY + 70, seed=7 + k) for k, (_, s, _) in enumerate(MEMBERS)}
    run_dir = tmp_path / "live"
    insufficient = "Account has insufficient balance for requested action."
    with ExchangeEmulator(
        markets, {"USDT": Decimal("60000")}, start=HISTORY, include_open_kline=False
    ) as emu:
        with use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})):
            portfolio = load_portfolio(tmp_path / "pair.yaml", ())
            pipelines = tuple(build_pipeline(c) for c in portfolio.strategies)
            runner = LiveRunner(
                account_pipeline(portfolio, pipelines),
                load_plugins(()),
                mode="live",
                run_dir=run_dir,
                clock=lambda: pd.Timestamp(emu.exchange.now_ms(), unit="ms", tz="UTC"),
                watch_file=False,
                portfolio=LivePortfolio(portfolio, pipelines),
            )
            runner.start()
            try:
                emu.faults.next(POST, Reject(-2010, insufficient))
                for _ in range(60):
                    emu.advance()
                    runner.tick()
            finally:
                runner.stop("test over")
        assert emu.errors == []
    refused = next(r for r in read_rows(run_dir / "journal.sqlite", ["order_cancelled"]))
    member = refused.symbol.split(":", 1)[0]
    other = next(name for name, _, _ in MEMBERS if name != member)
    report = _report(run_dir, tmp_path / "p", capsys)
    rejected = [d for d in report["differences_by_bar"] if d["cause"] == "rejection"]
    assert rejected and {d["symbol"] for d in rejected} == {refused.symbol}
    assert rejected[0]["bar"] == refused.bar and rejected[0]["field"] == "fill"
    assert rejected[0]["code"] == f"VENUE_REJECTED: InsufficientFunds -2010: {insufficient}"
    by = report["by_strategy"]
    assert set(by) == {name for name, _, _ in MEMBERS}
    assert by[member]["rejection"] != 0.0 and "rejection" not in by[other]
    # each member's causes are its books', and together they are the causes' P&L
    for cause, row in report["causes"].items():
        if cause != "unexplained":
            total = math.fsum(b.get(cause, 0.0) for b in by.values())
            assert math.isclose(total, row["pnl"], abs_tol=1e-9), cause
    assert set(report["causes"]) <= {"rejection", "fee", "knock_on", "partial_fill"}
    gap = math.fsum(row["pnl"] for row in report["causes"].values())
    assert math.isclose(gap, report["equity_gap"], abs_tol=1e-9)
    if allocation:  # the replay sized against the weights the run decided, moved ones too
        decided = list(read_rows(run_dir / "journal.sqlite", ["allocation_decided"]))
        assert any(r.values["weights"] != [0.5, 0.5] for r in decided if r.bar >= HISTORY)
        replayed = list(
            read_rows(tmp_path / "p" / "reference" / "journal.sqlite", ["allocation_decided"])
        )
        assert replayed
        given = {r.timestamp: r.values["weights"] for r in decided}
        assert [given[r.timestamp] for r in replayed] == [r.values["weights"] for r in replayed]
        assert any(w != [0.5, 0.5] for w in given.values())


def test_a_member_file_not_where_the_run_read_it_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.diagnostics.test_parity_shapes import _hand_made

    monkeypatch.chdir(tmp_path)
    portfolio = _hand_made(tmp_path / "portfolio", {"strategies": [{"file": "a.yaml"}]})
    code, _, err = _parity(capsys, str(portfolio))
    assert (code, err) == (
        2,
        f"{portfolio / 'journal.sqlite'}: strategies.0.file a.yaml is not there; run "
        "parity from the folder the run was started in (a portfolio's member files are "
        "read where the run read them)\n",
    )


def test_moving_weights_without_their_decisions_journaled_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.diagnostics.test_parity_shapes import _hand_made

    # a run of examples/two_strategies_risk_parity.yaml's allocation journaled by a
    # tradeloom before the decisions were: an entry sized after the window filled
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\n")
    document = {
        "allocation": {"kind": "risk_parity", "window": 200, "rebalance": {"every": 24}},
        "strategies": [{"file": "a.yaml"}, {"file": "b.yaml"}],
    }
    portfolio = _hand_made(tmp_path / "portfolio", document)
    journal = open_journal(portfolio / "journal.sqlite", RunIdentity("hand", "portfolio", "paper"))
    at = pd.Timestamp("2024-01-09T20:00", tz="UTC")
    journal.append(
        OrderEvent(
            bar=212, timestamp=at, symbol="a:BTC/USDT", correlation_id=212, id="a-0badc0de-000001",
            side=1, quantity=1.0, reason="ENTRY", reference_price=1.0,
        )
    )  # fmt: skip
    journal.close()
    code, _, err = _parity(capsys, str(portfolio))
    assert (code, err) == (
        2,
        f"{portfolio / 'journal.sqlite'}: a portfolio whose weights move (allocation: "
        "risk_parity over 200 bars) sized an order at bar 212 with no allocation_decided "
        "row before it: a journal written before tradeloom journaled the weights between "
        "its strategies, so parity cannot replay them\n",
    )
